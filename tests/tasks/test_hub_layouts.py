"""Hub snapshot layouts (harness.tasks.hub) for VQA-RAD, SLAKE and PathVQA, and the provenance they leave.

The VQA-RAD fixture is built from real records and images of ../shared/data/vqa_rad with
scripts/make_hub_layout.py (the same code that builds the full 451-item folder), in the exact layout of
flaviagiammarino/vqa-rad: data/{train,test}-00000-of-00001-<16 hex>.parquet, columns image {bytes, path},
question, answer, one image re-encoded as a CMYK JPEG.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from task_layouts import one_line_error

from harness.core.errors import DataError, HarnessError
from harness.core.images import open_image
from harness.tasks import get_task, hub
from harness.tasks._loading import verify_images
from harness.tasks.identity import partial_tasks, split_record

REPO = Path(__file__).resolve().parents[2]
VQA_RAD = get_task("vqa_rad")
HUB_NAME = re.compile(r"^(train|test)-00000-of-00001-[0-9a-f]{16}\.parquet$")


def _script():
    spec = importlib.util.spec_from_file_location("make_hub_layout", REPO / "scripts" / "make_hub_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pick_test_records(records: list[dict]) -> list[dict]:
    """Three yes/no closed questions, the first closed question answered otherwise ("Left"...), two open."""
    yes_no = [r for r in records if r["answer_type"].strip() == "CLOSED" and hub.yes_no_type(r["answer"]) == "closed"]
    other = [r for r in records if r["answer_type"].strip() == "CLOSED" and hub.yes_no_type(r["answer"]) == "open"]
    open_ = [r for r in records if r["answer_type"].strip() == "OPEN"]
    return yes_no[:3] + other[:1] + open_[:2]


@pytest.fixture(scope="module")
def vqa_rad_hub(shared_data, tmp_path_factory) -> Path:
    """``<root>/vqa_rad/data/*.parquet`` from 6 real test QA (the first image CMYK) and 3 OSF train QA."""
    source = shared_data / "vqa_rad"
    script = _script()
    test = _pick_test_records(json.loads((source / "testset.json").read_text(encoding="utf-8")))
    osf = json.loads((source / "VQA_RAD Dataset Public.json").read_text(encoding="utf-8"))
    train = [r for r in osf if r["phrase_type"] not in ("test_freeform", "test_para")][:3]
    root = tmp_path_factory.mktemp("hub") / "vqa_rad"
    hub.write_snapshot(root, "test", script.hub_rows(source, test, cmyk=1))
    hub.write_snapshot(root, "train", script.hub_rows(source, train, dedupe=True))
    return root


# --- VQA-RAD from its Hub layout --------------------------------------------------------------------

def test_snapshot_has_the_hub_file_names_and_columns(vqa_rad_hub):
    import pyarrow.parquet as pq

    files = sorted(p.name for p in (vqa_rad_hub / "data").iterdir())
    assert len(files) == 2 and all(HUB_NAME.match(name) for name in files), files
    schema = pq.read_schema(vqa_rad_hub / "data" / files[0])
    assert schema.names == ["image", "question", "answer"]
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert b"huggingface" in schema.metadata  # the Image feature, as push_to_hub writes it


def test_snapshot_is_detected_counted_and_labelled(vqa_rad_hub):
    assert VQA_RAD.size_report(vqa_rad_hub.parent) == ({"train": 3, "test": 6}, {})
    assert VQA_RAD.data_source(vqa_rad_hub.parent) == "hub-snapshot:flaviagiammarino/vqa-rad"


def test_counting_a_snapshot_imports_neither_datasets_nor_torch(vqa_rad_hub):
    import subprocess
    import sys

    code = ("import sys, io, contextlib\n"
            "from harness.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['tasks', '--data-dir', {str(vqa_rad_hub.parent)!r}]) == 0\n"
            "print(sorted(m for m in ('torch', 'datasets', 'transformers') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_the_original_files_the_yes_no_rule_types_the_rows(vqa_rad_hub, shared_data):
    ds = VQA_RAD.load("test", vqa_rad_hub.parent)
    originals = _pick_test_records(json.loads((shared_data / "vqa_rad" / "testset.json").read_text()))
    assert ds["id"] == [f"hub-{i}" for i in range(6)]
    assert ds["question"] == [r["question"].strip() for r in originals]
    # the rule gets yes/no questions right and files the closed "Left"-type question as open: its known error
    assert ds["answer_type"] == ["closed"] * 3 + ["open"] * 3
    assert originals[3]["answer_type"].strip() == "CLOSED" and ds["answer"][3] == str(originals[3]["answer"])


def test_matching_to_the_original_release_recovers_qids_and_types(vqa_rad_hub, shared_data):
    ds = VQA_RAD.load("test", vqa_rad_hub.parent, annotations=str(shared_data / "vqa_rad"))
    original = VQA_RAD.load("test", shared_data)
    by_id = {row["id"]: row for row in original.select_columns(
        ["id", "question", "answer", "answer_type", "image_path", "image_organ", "question_type", "phrase_type"])}
    rows = ds.select_columns(list(next(iter(by_id.values())))).to_list()
    assert [r["answer_type"] for r in rows] == ["closed"] * 4 + ["open"] * 2
    assert all(row == by_id[row["id"]] for row in rows)  # the same item as the original split, field for field
    train = VQA_RAD.load("train", vqa_rad_hub.parent, annotations=str(shared_data / "vqa_rad"))
    assert not any(i.startswith("hub-") for i in train["id"])


def test_cmyk_image_reads_as_rgb(vqa_rad_hub):
    ds = VQA_RAD.load("test", vqa_rad_hub.parent)
    assert ds[0]["image"].mode == "CMYK" and ds[1]["image"].mode == "RGB"
    rgb = open_image(ds[0]["image"])
    assert rgb.mode == "RGB" and rgb.size == ds[0]["image"].size
    verify_images(ds, source="vqa_rad test")  # decodes the bytes, not the struct's bare file name


def test_yes_no_rule_error_rate_on_the_original_test_split(shared_data):
    """The figure docs/tasks.md states: the rule misfiles 21 of 272 closed questions and no open one."""
    records = json.loads((shared_data / "vqa_rad" / "testset.json").read_text())
    truth = [r["answer_type"].strip().lower() for r in records]
    rule = [hub.yes_no_type(r["answer"]) for r in records]
    wrong = Counter(t for t, r in zip(truth, rule) if t != r)
    assert Counter(truth) == {"closed": 272, "open": 179} and wrong == {"closed": 21}


def test_eval_records_the_hub_source_and_marks_it(vqa_rad_hub, tiny_model_dir, tmp_path, capsys):
    from harness.cli import main
    from harness.results.compare import partial_reason

    code = main(["eval", "--model", "tiny", "--tasks", "vqa_rad", "--data-dir", str(vqa_rad_hub.parent),
                 "--no-store", "--no-progress", "--format", "json", "--output-dir", str(tmp_path / "out")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    record = _find_record(out, "vqa_rad")
    assert record["data_source"] == "hub-snapshot:flaviagiammarino/vqa-rad" and record["n"] == 6
    marks = partial_tasks({"vqa_rad": record})
    assert "data from hub-snapshot:flaviagiammarino/vqa-rad" in marks["vqa_rad"]
    assert "data from hub-snapshot" in partial_reason({"config": {"data": {"vqa_rad": record}}})


def _find_record(out: dict, task: str) -> dict:
    """The task's data record, as the run folder's run.json keeps it (``harness eval --format json`` names the folder)."""
    return json.loads((Path(out["run_dir"]) / "run.json").read_text(encoding="utf-8"))["data"][task]


def test_annotations_folder_is_recorded_without_its_path(vqa_rad_hub, shared_data):
    task = get_task("vqa_rad")
    task.options = {"annotations": str(shared_data / "vqa_rad")}
    try:
        ds = task.load("test", vqa_rad_hub.parent)
        rows = ds.select_columns([c for c in ds.column_names if c != "image"]).to_list()
        record = split_record(task, "test", rows, n_split=len(rows), limit=None, data_dir=vqa_rad_hub.parent)
    finally:
        task.options = {}
    assert record["options"] == {"annotations": "vqa_rad"} and str(shared_data) not in json.dumps(record)


def test_original_record_is_not_marked(shared_data):
    ds = VQA_RAD.load("test", shared_data)
    rows = ds.select_columns([c for c in ds.column_names if c != "image"]).to_list()
    record = split_record(VQA_RAD, "test", rows, n_split=len(rows), limit=None, data_dir=shared_data)
    assert record["data_source"] == "original:split" and partial_tasks({"vqa_rad": record}) == {}


# --- the source option, remote repositories, bad snapshots ----------------------------------------

def test_source_values(vqa_rad_hub):
    with pytest.raises(HarnessError) as exc:
        VQA_RAD.load("test", vqa_rad_hub.parent, source="hugface")
    one_line_error(exc, "source='hugface'", "'hub:<repo>'")
    with pytest.raises(HarnessError) as exc:
        VQA_RAD.load("test", vqa_rad_hub.parent, source="hub:not a repo")
    one_line_error(exc, "hub:<owner>/<name>")
    with pytest.raises(DataError) as exc:  # the original layout asked for explicitly, in a snapshot folder
        VQA_RAD.load("test", vqa_rad_hub.parent, source="split")
    one_line_error(exc, "testset.json", "not found")


def test_remote_source_goes_through_load_dataset(vqa_rad_hub, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(repo, split=None, **kwargs):
        calls.append((repo, split))
        files = [str(p) for p in (vqa_rad_hub / "data").glob(f"{split}-*.parquet")]
        return datasets.Dataset.from_parquet(files, keep_in_memory=True)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    for value in ("hub:someone/vqa-rad-copy", "hf://someone/vqa-rad-copy"):
        ds = VQA_RAD.load("test", None, source=value)
        assert len(ds) == 6 and ds[3]["answer_type"] == "open" and ds[0]["image"].mode == "CMYK"
    assert calls == [("someone/vqa-rad-copy", "test")] * 2
    task = get_task("vqa_rad")
    task.options = {"source": "hf://someone/vqa-rad-copy"}
    assert task.data_source() == "hub:someone/vqa-rad-copy"
    task.options = {}


def test_remote_source_offline_is_one_line(monkeypatch):
    import datasets

    def offline(repo, split=None, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/x' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(HarnessError) as exc:
        VQA_RAD.load("test", None, source="hub:someone/x")
    one_line_error(exc, "source hub:someone/x", "ConnectionError", "source=hub")


def _copy_snapshot(src: Path, dest: Path) -> Path:
    (dest / "data").mkdir(parents=True)
    for path in (src / "data").iterdir():
        (dest / "data" / path.name).write_bytes(path.read_bytes())
    return dest


def test_bad_snapshots_are_one_line_errors(vqa_rad_hub, tmp_path):
    import pyarrow.parquet as pq

    root = _copy_snapshot(vqa_rad_hub, tmp_path / "vqa_rad")
    test_file = next((root / "data").glob("test-*.parquet"))
    table = pq.read_table(test_file)
    # an empty answer: skipped and counted, or refused when strict
    answers = table.column("answer").to_pylist()
    answers[2] = " "
    pq.write_table(table.set_column(2, "answer", [answers]), test_file)
    assert VQA_RAD.size_report(root.parent) == ({"train": 3, "test": 5}, {"test": "1 skipped: empty answer"})
    assert len(VQA_RAD.load("test", root.parent)) == 5
    with pytest.raises(DataError) as exc:
        VQA_RAD.load("test", root.parent, strict=True)
    one_line_error(exc, test_file.name, "record 2", "field 'answer'", "empty value")
    # a missing column
    pq.write_table(table.drop(["answer"]), test_file)
    with pytest.raises(DataError) as exc:
        VQA_RAD.load("test", root.parent)
    one_line_error(exc, test_file.name, "missing column(s) answer", "field 'answer'")
    # not parquet
    test_file.write_bytes(b"PAR1 but not really")
    with pytest.raises(DataError) as exc:
        VQA_RAD.load("test", root.parent)
    one_line_error(exc, test_file.name, "not a readable parquet file")
    # one shard of two
    test_file.rename(test_file.with_name("test-00001-of-00002-0123456789abcdef.parquet"))
    with pytest.raises(DataError) as exc:
        VQA_RAD.load("test", root.parent)
    one_line_error(exc, "split 'test'", "complete -00000-of-N set")


def test_image_without_bytes_is_a_bad_record(vqa_rad_hub, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = _copy_snapshot(vqa_rad_hub, tmp_path / "vqa_rad")
    test_file = next((root / "data").glob("test-*.parquet"))
    table = pq.read_table(test_file)
    images = table.column("image").to_pylist()
    images[1] = {"bytes": None, "path": "synpic0.jpg"}
    column = pa.array(images, table.schema.field("image").type)
    pq.write_table(table.set_column(0, "image", column), test_file)
    assert len(VQA_RAD.load("test", root.parent)) == 5
    with pytest.raises(DataError) as exc:
        VQA_RAD.load("test", root.parent, strict=True)
    one_line_error(exc, test_file.name, "record 1", "field 'image'", "no image bytes")


# --- PathVQA ----------------------------------------------------------------------------------------

PATH_VQA = get_task("path_vqa")
PATH_QA = {
    "train": [("train_0001", "what is present?", "colon"), ("train_0001", "is colon present?", "yes"),
              ("train_0001", "is colon present?", "yes"),  # a repeated triplet, as in the release
              ("train_0002", "where is this from?", "gastrointestinal system")],
    "val": [("val_0001", "is edema present?", "no"), ("val_0001", "what does this image show?", "varices")],
    "test": [("test_0001", "is hyperplasia present?", "yes"), ("test_0001", "how is hyperplasia characterized?",
             "by nests of closely packed glands"), ("test_0002", "is this from the liver?", "no"),
             ("test_0002", "what is present?", "liver"), ("test_0002", "is fat necrosis present?", "no")],
}
HUB_NAMES = {"val": "validation"}


def _jpeg(value: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (12, 10), (value, 40, 200) if mode == "RGB" else (value, 10, 20, 0)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def path_vqa_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """The release (pvqa/qas/*/*_qa.pkl + pvqa/images) and the Hub snapshot (train in 2 shards) of one data."""
    base = tmp_path_factory.mktemp("pvqa")
    release, snapshot = base / "release" / "path_vqa", base / "snapshot" / "path_vqa"
    for split, triplets in PATH_QA.items():
        folder = release / "pvqa" / "qas" / split
        folder.mkdir(parents=True)
        records = [{"image": image, "question": q, "answer": a} for image, q, a in triplets]
        (folder / f"{split}_qa.pkl").write_bytes(pickle.dumps(records))
        images = {}
        for n, image in enumerate(dict.fromkeys(i for i, _, _ in triplets)):
            images[image] = _jpeg(30 * n, "CMYK" if image == "test_0002" else "RGB")
            target = release / "pvqa" / "images" / split / f"{image}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(images[image])
        unique = list(dict.fromkeys(triplets))
        rows = [{"image": {"bytes": images[i], "path": None}, "question": q, "answer": a} for i, q, a in unique]
        hub.write_snapshot(snapshot, HUB_NAMES.get(split, split), rows, shards=2 if split == "train" else 1)
    return release, snapshot


def test_path_vqa_is_registered_with_paper_sizes_and_citation():
    assert PATH_VQA.family == "vqa" and PATH_VQA.splits == ("train", "validation", "test")
    assert PATH_VQA.official_sizes == {"train": 19654, "validation": 6259, "test": 6719}
    assert "PathVQA: 30000+ Questions" in PATH_VQA.citation and "closed_accuracy" in PATH_VQA.metrics


def test_path_vqa_layouts_give_the_same_items(path_vqa_dirs):
    release, snapshot = path_vqa_dirs
    assert sorted(p.name.split("-")[0] for p in (snapshot / "data").iterdir()) == \
        ["test", "train", "train", "validation"]
    assert PATH_VQA.size_report(release.parent) == ({"train": 3, "validation": 2, "test": 5}, {})
    assert PATH_VQA.size_report(snapshot.parent) == ({"train": 3, "validation": 2, "test": 5}, {})
    assert PATH_VQA.sizes(release.parent, dedupe=False)["train"] == 4
    assert PATH_VQA.data_source(release.parent) == "original:release"
    assert PATH_VQA.data_source(snapshot.parent) == "hub-snapshot:flaviagiammarino/path-vqa"
    columns = ["id", "question", "answer", "answer_type"]
    for split in ("train", "validation", "test"):
        a = PATH_VQA.load(split, release.parent).select_columns(columns).to_list()
        b = PATH_VQA.load(split, snapshot.parent).select_columns(columns).to_list()
        assert a == b
    test = PATH_VQA.load("test", snapshot.parent)
    assert test["answer_type"] == ["closed", "open", "closed", "open", "closed"]
    assert test[2]["image"].mode == "CMYK" and open_image(test[2]["image"]).mode == "RGB"
    assert PATH_VQA.load("test", release.parent)["image_path"][0] == "test/test_0001.jpg"


def test_path_vqa_pickle_with_code_is_refused(path_vqa_dirs, tmp_path):
    release, _ = path_vqa_dirs
    root = tmp_path / "path_vqa"
    (root / "qas" / "test").mkdir(parents=True)
    (root / "qas" / "test" / "test_qa.pkl").write_bytes(pickle.dumps([{"image": Path("x")}]))
    with pytest.raises(DataError) as exc:
        PATH_VQA.load("test", tmp_path)
    one_line_error(exc, "test_qa.pkl", "refusing the global")


def test_path_vqa_evaluates_from_its_hub_layout(path_vqa_dirs, tiny_model_dir, tmp_path, capsys):
    from harness.cli import main

    _, snapshot = path_vqa_dirs
    assert main(["tasks", "--data-dir", str(snapshot.parent), "--format", "json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["path_vqa"]["sizes"] == {"train": 3, "validation": 2, "test": 5}
    code = main(["eval", "--model", "tiny", "--tasks", "path_vqa", "--data-dir", str(snapshot.parent),
                 "--limit", "4", "--no-store", "--no-progress", "--format", "json",
                 "--output-dir", str(tmp_path / "out")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    record = _find_record(out, "path_vqa")
    assert record["n"] == 4 and record["data_source"] == "hub-snapshot:flaviagiammarino/path-vqa"
    assert "limit 4" in record["partial"]


# --- SLAKE ------------------------------------------------------------------------------------------

SLAKE = get_task("slake")


def _slake_snapshot(root: Path, with_columns: bool) -> Path:
    """mdwiratathya/SLAKE-vqa-english's file names (no hash part; train in two shards)."""
    rows = {
        "train": [("Is this a CT?", "Yes", "CLOSED", "en"), ("Which organ?", "Liver", "CLOSED", "en"),
                  ("是CT吗?", "是", "CLOSED", "zh")],
        "validation": [("Where is the liver?", "Left", "OPEN", "en")],
        "test": [("Does the picture contain liver?", "Yes", "CLOSED", "en"),
                 ("Which is bigger, liver or spleen?", "Liver", "CLOSED", "en"),
                 ("What modality is used?", "CT", "OPEN", "en")],
    }
    for split, items in rows.items():
        records = []
        for n, (question, answer, kind, lang) in enumerate(items):
            record = {"image": {"bytes": _jpeg(n), "path": f"xmlab{n}/source.jpg"}, "question": question,
                      "answer": answer}
            if with_columns:
                record.update(qid=1000 + n, answer_type=kind, q_lang=lang, modality="CT", location="Abdomen")
            records.append(record)
        files = hub.write_snapshot(root, split, records, shards=2 if split == "train" else 1)
        for path in files:
            path.rename(path.with_name(re.sub(r"-[0-9a-f]{16}\.parquet$", ".parquet", path.name)))
    return root


def test_slake_snapshot_with_slake_columns(tmp_path):
    root = _slake_snapshot(tmp_path / "slake", with_columns=True)
    assert SLAKE.size_report(tmp_path) == ({"train": 2, "validation": 1, "test": 3}, {})
    assert SLAKE.data_source(tmp_path) == "hub-snapshot:mdwiratathya/SLAKE-vqa-english"
    test = SLAKE.load("test", tmp_path)
    assert test["id"] == ["1000", "1001", "1002"] and test["answer_type"] == ["closed", "closed", "open"]
    assert test["modality"] == ["CT"] * 3 and test["boxes"] == ["[]"] * 3
    assert len(SLAKE.load("train", root.parent, language="all")) == 3


def test_slake_snapshot_without_answer_type_uses_the_rule(tmp_path):
    _slake_snapshot(tmp_path / "slake", with_columns=False)
    test = SLAKE.load("test", tmp_path)
    assert test["id"] == ["0", "1", "2"] and test["answer_type"] == ["closed", "open", "open"]
    assert test["image_path"][0] == "xmlab0/source.jpg"
