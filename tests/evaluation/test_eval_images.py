"""Evaluation decodes images through ``harness.core.images``: a 16-bit image gets the predictions of its 8-bit
conversion, and an image above the pixel limit stops the run with one line naming the file and the item."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.core.errors import DataError
from harness.core.images import MAX_PIXELS
from harness.evaluation import EvalConfig, evaluate
from harness.evaluation.engine import load_task_data
from harness.tasks import TASKS, Task

SHORT = {"max_new_tokens_closed": 4, "max_new_tokens_open": 6, "max_new_tokens_report": 10}
TASK = "image_files_fixture"


class ImageFilesTask(Task):
    """One item per ``*.png`` of the data folder, in name order: a report, then open questions."""

    def _load(self, split, data_dir, **options):
        import datasets

        files = sorted(Path(data_dir).glob("*.png"))
        rows = [{"id": f"img-{i}", "image": str(path), "question": "describe the image." if i == 0 else "what is shown?",
                 "answer": "a ramp.", "answer_type": "report" if i == 0 else "open"} for i, path in enumerate(files)]
        features = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image(),
                                      "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                      "answer_type": datasets.Value("string")})
        return datasets.Dataset.from_list(rows, features=features)


@pytest.fixture(scope="module", autouse=True)
def image_files_task():
    TASKS.register(TASK, ImageFilesTask(name=TASK, family="vqa", version="0.1", metrics=("toy_exact",)))
    yield
    TASKS.unregister(TASK)


@pytest.fixture(scope="module")
def folders(ramp_pngs, tmp_path_factory):
    """Two-item folders: the 16-bit ramp and its mirror image; the same in 8 bits; the same as PIL's
    ``convert("RGB")`` clipped them (what the models were shown before the shared reader)."""
    ramp16, ramp8 = ramp_pngs
    out = {kind: tmp_path_factory.mktemp(kind) for kind in ("sixteen", "eight", "clipped")}
    with Image.open(ramp16) as wide, Image.open(ramp8) as narrow:
        for name, flip in (("a.png", False), ("b.png", True)):
            turn = (lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) if flip else (lambda im: im)
            turn(wide).save(out["sixteen"] / name)
            turn(narrow).save(out["eight"] / name)
            turn(wide.convert("RGB")).save(out["clipped"] / name)
    with Image.open(out["sixteen"] / "b.png") as check:
        assert check.mode == "I;16"
    return out


def _predictions(model, folder, tmp_path, name):
    result = evaluate(model, [TASK], data_dir=folder, output_dir=tmp_path / name, store=False, progress=False,
                      config=EvalConfig(image_ablation="noise", **SHORT))
    task = result.tasks[TASK]
    return [r["prediction"] for r in task.predictions], [r["prediction"] for r in task.ablated_predictions]


def test_a_16bit_ramp_gets_the_predictions_of_its_8bit_conversion(tiny_hf_model, folders, tmp_path):
    sixteen = _predictions(tiny_hf_model, folders["sixteen"], tmp_path, "sixteen")
    eight = _predictions(tiny_hf_model, folders["eight"], tmp_path, "eight")
    assert len(sixteen[0]) == len(sixteen[1]) == 2
    assert sixteen == eight  # intact and noise-ablated passes alike
    # the model reads the pixels: the clipped images the old conversion gave it change its answers
    assert _predictions(tiny_hf_model, folders["clipped"], tmp_path, "clipped")[0] != eight[0]


def test_the_decoded_image_is_the_8bit_conversion(folders):
    data = load_task_data([TASK], EvalConfig(), folders["sixteen"])[TASK]
    eight = load_task_data([TASK], EvalConfig(), folders["eight"])[TASK]
    for index in range(2):
        got, want = data.image(index), eight.image(index)
        assert got.mode == want.mode == "L"
        assert np.array_equal(np.asarray(got), np.asarray(want))


@pytest.fixture(scope="module")
def oversized_folder(oversized_png, ramp_pngs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("oversized_task")
    shutil.copy(ramp_pngs[1], folder / "a.png")
    (folder / "b.png").symlink_to(oversized_png)
    return folder


def test_an_oversized_image_stops_evaluation_in_one_line(oracle, oversized_folder, tmp_path):
    with pytest.raises(DataError) as caught:
        evaluate(oracle, [TASK], data_dir=oversized_folder, output_dir=tmp_path / "run", store=False, progress=False)
    message = str(caught.value)
    assert message.startswith(f"{oversized_folder / 'b.png'}, record img-1, field 'image': image is 400,000,000 pixels")
    assert f"above the limit of {MAX_PIXELS:,} pixels" in message and "\n" not in message


def test_one_to_two_times_the_limit_is_refused_where_pil_only_warns(folders, monkeypatch):
    data = load_task_data([TASK], EvalConfig(), folders["eight"])[TASK]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the ramp's 16,384 pixels: PIL warns, no more
    with pytest.raises(DataError, match=r"a.png, record img-0, field 'image': image is 16,384 pixels, above the "
                                        r"limit of 10,000 pixels"):
        data.image(0)


@pytest.fixture(scope="module")
def untrained_tiny(tmp_path_factory):
    """An untrained tiny model folder: the CLI case needs a loadable model, not a trained one."""
    from harness.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("untrained_tiny"))


def test_the_cli_prints_one_line_and_exits_2(untrained_tiny, oversized_folder, capsys):
    rc = main(["eval", "--model", str(untrained_tiny), "--tasks", TASK, "--data-dir", str(oversized_folder),
               "--no-store", "--no-progress", "--max-new-tokens-open", "4"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and "Traceback" not in err and len(errors) == 1
    assert errors[0].startswith(f"error: {oversized_folder / 'b.png'}, record img-1, field 'image': image is ")
    assert errors[0].endswith(f"above the limit of {MAX_PIXELS:,} pixels (harness.core.images.MAX_PIXELS); downscale it first")
