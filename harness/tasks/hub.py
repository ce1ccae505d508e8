"""Hugging Face Hub snapshots as data sources: the parquet layout ``datasets`` writes with ``push_to_hub``.

A snapshot folder holds ``data/<split>-<i>-of-<n>[-<hash>].parquet`` shards (``flaviagiammarino/vqa-rad``:
``data/test-00000-of-00001-<16 hex>.parquet``; ``mdwiratathya/SLAKE-vqa-english``: no hash part), whose
``image`` column is the ``datasets.Image`` struct ``{bytes: binary, path: string}`` and whose text columns
are at least ``question`` and ``answer``. A task folder holding such shards for the task's splits is a
*snapshot* (``has_snapshot``); ``source=hub`` selects one explicitly, and ``source=hub:<repo>`` (or
``hf://<repo>``) loads the repository through ``datasets.load_dataset`` where a network and the Hub exist.

Counting (``harness tasks``) reads the parquet footers and the text columns with pyarrow only, never images,
never ``datasets``. Loading keeps the images as the encoded bytes of the shards: the dataset's ``image``
column is the same struct, decoded lazily (``harness.core.images`` converts CMYK and other modes to RGB for
models). Shards are read with pyarrow rather than ``datasets``' parquet builder so that nothing is cached
under a key made of the file's path.

``write_snapshot`` writes a split in the same layout (used by ``scripts/make_hub_layout.py`` and the tests).
A loader that reads either its original release or a snapshot (VQA-RAD, SLAKE, PathVQA) builds on
``SourceOptions`` / ``source_option`` (its ``source`` option) and ``ReleaseOrSnapshot`` (picking the source,
naming it for the data record, loading and counting).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.core.errors import DataError, HarnessError
from harness.tasks._loading import LoadOptions, SizesFromReport, option_field, parse_options, split_report

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

log = logging.getLogger(__name__)

DATA_FOLDER = "data"
SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})(?:-[0-9a-f]+)?\.parquet$")
# Answers that make a question closed under the yes/no rule (the Hub copies carry no answer_type).
YES_NO = frozenset({"yes", "no"})
HUB_SOURCES = ("hub", "hub:<repo>", "hf://<repo>")


def yes_no_type(answer: Any) -> str:
    """``"closed"`` when the answer is yes or no (any case, spaces stripped), else ``"open"``."""
    return "closed" if str(answer).strip().lower() in YES_NO else "open"


def normalise(text: Any) -> str:
    """Text for matching Hub rows to the original release: lower case, single spaces, no space before '?'."""
    return re.sub(r"\s+", " ", str(text)).strip().lower().replace(" ?", "?")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------ the source option

def parse_source(value: str, layouts: Sequence[str]) -> tuple[str, str | None]:
    """``(kind, repo)`` from a ``source`` option: ``("auto", None)``, ``("<layout>", None)``, ``("hub", None)``
    for a local snapshot, or ``("remote", "<owner>/<name>")`` for ``hub:<repo>`` / ``hf://<repo>``.

    Raises ValueError (the options parser turns it into a one-line error) for anything else."""
    text = str(value).strip()
    if text in ("auto", "hub", *layouts):
        return text, None
    for prefix in ("hub:", "hf://"):
        if text.startswith(prefix):
            repo = text[len(prefix):].strip("/")
            if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo):
                return "remote", repo
            raise ValueError(f"source={text!r}: expected {prefix}<owner>/<name>")
    choices = ", ".join(repr(c) for c in ("auto", *layouts, *HUB_SOURCES))
    raise ValueError(f"option source={text!r} is not one of {choices}")


def source_option(release: str, layouts: str, repo: str) -> Any:
    """The ``source`` option of a loader that reads an original release or a Hub snapshot: ``release`` names
    what 'auto' looks for first, ``layouts`` describes the release's own layouts, ``repo`` the Hub copy."""
    return option_field(
        "auto",
        f"'auto': {release} if present, else a Hub snapshot in data/; {layouts}; 'hub': a local snapshot of "
        f"{repo} (data/*.parquet); 'hub:<repo>' or 'hf://<repo>': datasets.load_dataset(<repo>)",
    )


@dataclasses.dataclass
class SourceOptions(LoadOptions):
    """Options of a loader with a ``source`` option (``source_option``): parsed into ``kind`` and ``repo``."""

    layouts: ClassVar[tuple[str, ...]] = ("original",)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kind, self.repo = parse_source(self.source, self.layouts)


class ReleaseOrSnapshot(SizesFromReport):
    """Mixin of the loaders that read an original release or a Hub snapshot (local, or ``hub:<repo>``).

    It picks the source (``_kind``: the ``source`` option, where 'auto' takes a local snapshot only when the
    release is absent), names it for the data record (``data_source``), loads and counts (``size_report``).
    A loader gives ``hub_splits``, ``hub_repo`` and its default ``release_layout``, and implements
    ``_release_found(root, layout)`` (the layout's files are all there), ``_release_count(root, split,
    layout, opts)`` (usable rows and ``BadRecords`` of one split), ``_load_release(root, split, layout,
    opts)`` and ``_load_hub(split, data_dir, opts, kind)``."""

    hub_splits: ClassVar[dict[str, str]] = {}
    hub_repo: ClassVar[str] = ""
    release_layout: ClassVar[str] = "original"
    release_source: ClassVar[str] = "original:release"  # the data record's name of a release; {kind}: its layout

    def _hub_filter(self, opts: Any) -> tuple[str, Any] | None:
        return None

    def _release_there(self, root: Path) -> bool:
        """Whether 'auto' finds the release (so a snapshot beside it is not used)."""
        return self._release_found(root, self.release_layout)

    def _kind(self, root: Path | None, opts: Any) -> str:
        """The source ``opts.source`` selects: a release layout, 'hub' (local snapshot) or 'remote'."""
        if opts.kind != "auto":
            return opts.kind
        if root is not None and not self._release_there(root) and snapshot_files(root, self.hub_splits):
            return "hub"
        return self.release_layout

    def data_source(self, data_dir: str | Path | None = None) -> str:
        """Where the items come from, for the run's data record: ``original:<release>``,
        ``hub-snapshot:<hub_repo>`` (a local snapshot) or ``hub:<repo>``."""
        opts = parse_options(self.name, self.options_class, self.options)
        kind = self._kind(self.data_dir(data_dir) if opts.kind != "remote" else None, opts)
        return {"hub": f"hub-snapshot:{self.hub_repo}", "remote": f"hub:{opts.repo}"}.get(
            kind, self.release_source.format(kind=kind))

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = parse_options(self.name, self.options_class, options)
        kind = self._kind(None if opts.kind == "remote" else self.require_data_dir(data_dir), opts)
        if kind in ("hub", "remote"):
            return self._load_hub(split, data_dir, opts, kind)
        return self._load_release(self.require_data_dir(data_dir), split, kind, opts)

    def size_report(self, data_dir: str | Path | None = None, **options: Any) -> tuple[dict[str, int], dict[str, str]] | None:
        """``(items per split, {split: "1 skipped: empty answer"})`` after the bad-record policy; None without data."""
        opts = parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None or opts.kind == "remote":
            return None
        kind = self._kind(root, opts)
        if kind == "hub":
            return size_report(root, self.splits, self.hub_splits, opts.strict, self._hub_filter(opts))
        if not self._release_found(root, kind):
            return None
        return split_report([(split, *self._release_count(root, split, kind, opts)) for split in self.splits])


# ------------------------------------------------------------------------------------------ local snapshots

def snapshot_files(root: Path, hub_splits: dict[str, str]) -> dict[str, list[Path]]:
    """``{harness split: [shard files in order]}`` for the splits present under ``root/data``."""
    folder = Path(root) / DATA_FOLDER
    if not folder.is_dir():
        return {}
    by_name: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.iterdir():
        found = SHARD.match(path.name)
        if found and path.is_file():
            by_name.setdefault(found["split"], []).append((int(found["index"]), path))
    return {split: [p for _, p in sorted(by_name[name])] for split, name in hub_splits.items() if name in by_name}


def has_snapshot(root: Path | None, hub_splits: dict[str, str]) -> bool:
    """Whether ``root/data`` holds parquet shards for every one of the task's splits."""
    return root is not None and len(snapshot_files(root, hub_splits)) == len(hub_splits)


def split_shards(root: Path, split: str, hub_splits: dict[str, str]) -> list[Path]:
    """The shard files of one split, all of them (``-of-N`` complete), or a one-line DataError."""
    files = snapshot_files(root, hub_splits).get(split)
    folder = Path(root) / DATA_FOLDER
    if not files:
        raise DataError(folder, f"no parquet shards for split '{split}' "
                                f"(expected {hub_splits[split]}-00000-of-000NN[-<hash>].parquet)")
    counts = {int(SHARD.match(p.name)["count"]) for p in files}
    indices = [int(SHARD.match(p.name)["index"]) for p in files]
    if len(counts) != 1 or sorted(indices) != list(range(next(iter(counts)))):
        raise DataError(folder, f"split '{split}': shards {', '.join(p.name for p in files)} do not make a "
                                "complete -00000-of-N set (a shard missing, or two snapshots mixed)")
    return files


def read_table(files: Sequence[Path], columns: Sequence[str] | None = None,
               required: Sequence[str] = ("image", "question", "answer")) -> pa.Table:
    """The shards as one Arrow table (``columns`` only, when given); a missing required column is a DataError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in files:
        names = _parquet(path, lambda p: pq.ParquetFile(p).schema_arrow.names)
        missing = [c for c in required if c not in names]
        if missing:
            raise DataError(path, f"missing column(s) {', '.join(missing)} (columns: {', '.join(names)})",
                            field=missing[0])
        wanted = [c for c in columns if c in names] if columns is not None else None
        tables.append(_parquet(path, lambda p, wanted=wanted: pq.read_table(p, columns=wanted)))
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def _parquet(path: Path, read):
    try:
        return read(path)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise DataError(path, f"not a readable parquet file ({' '.join(str(exc).split())[:120]})") from None


def image_column(table: pa.Table, path: Path) -> pa.ChunkedArray:
    """The ``image`` column as the ``{bytes, path}`` struct ``datasets.Image`` stores."""
    import pyarrow as pa

    column = table.column("image")
    kind = column.type
    if not (pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0):
        raise DataError(path, f"expected the image struct {{bytes, path}}, found {kind}", field="image")
    return column


def image_entries(table: pa.Table, path: Path) -> list[tuple[bytes | None, str | None]]:
    """``(bytes, path)`` of every row's image (materialises the bytes: for matching small splits)."""
    column = image_column(table, path).combine_chunks()
    data = column.field("bytes").to_pylist()
    names = column.field("path").to_pylist() if column.type.get_field_index("path") >= 0 else [None] * len(data)
    return list(zip(data, names))


def missing_images(table: pa.Table, path: Path) -> list[int]:
    """Rows whose image struct has neither bytes nor a path (computed chunk by chunk: no bytes copied)."""
    import pyarrow.compute as pc

    column = image_column(table, path)
    empty = pc.is_null(pc.struct_field(column, "bytes"))
    if column.type.get_field_index("path") >= 0:
        empty = pc.and_(empty, pc.is_null(pc.struct_field(column, "path")))
    empty = pc.or_(empty, pc.is_null(column))
    return [i for i, flag in enumerate(empty.to_pylist()) if flag]


def image_paths(table: pa.Table, path: Path) -> list[str | None]:
    """The image struct's ``path`` of every row (None where absent), without copying the bytes."""
    import pyarrow.compute as pc

    column = image_column(table, path)
    if column.type.get_field_index("path") < 0:
        return [None] * len(column)
    return pc.struct_field(column, "path").to_pylist()


def size_report(root: Path, splits: Sequence[str], hub_splits: dict[str, str], strict: bool,
                column_filter: tuple[str, Any] | None = None) -> tuple[dict[str, int], dict[str, str]] | None:
    """``(usable rows per split, {split: "N skipped: reason"})`` from the shards' text columns (no image read),
    under the bad-record policy; None when a split has no shards. ``column_filter`` ``(column, value)`` counts
    only the rows holding that value where the column exists (SLAKE's ``q_lang``)."""
    from harness.tasks._loading import BadRecords, split_report

    if not has_snapshot(root, hub_splits):
        return None
    counted = []
    for split in splits:
        files = split_shards(root, split, hub_splits)
        bad = BadRecords(files[0], strict)
        wanted = ["question", "answer", *([column_filter[0]] if column_filter else [])]
        records = read_table(files, wanted, required=("question", "answer")).to_pylist()
        usable = 0
        for index, record in enumerate(records):
            if column_filter and column_filter[0] in record and not _selected(record, column_filter):
                continue
            with bad.record():
                question_answer(files[0], record, index)
            usable += not bad.failed
        counted.append((split, usable, bad))
    return split_report(counted)


def _selected(record: dict, column_filter: tuple[str, Any]) -> bool:
    name, value = column_filter
    return value == "all" or str(record.get(name, "")).strip() == value


def question_answer(path: Path, record: dict, index: int) -> tuple[str, str]:
    """The question and answer of one row, checked as the JSON loaders check theirs (``_loading.get_field``)."""
    from harness.tasks._loading import get_field

    question = get_field(path, record, "question", index).strip()
    answer = str(get_field(path, record, "answer", index, kind=(str, int, float))).strip()
    return question, answer


def check_image(path: Path, entry: tuple[bytes | None, str | None], index: int, mode: str) -> None:
    """A row's image struct must hold bytes (``mode`` 'exists'); with 'decode' they must also decode."""
    data, _ = entry
    if mode == "none":
        return
    if not data:
        raise DataError(path, "no image bytes in the image struct", record=index, field="image")
    if mode == "decode":
        from harness.core.images import read_image

        read_image(data, where=path, record=index, field="image")


# ------------------------------------------------------------------------------------------ remote repositories

def load_remote(task: str, repo: str, hub_split: str) -> pa.Table:
    """One split of ``repo`` through ``datasets.load_dataset`` as an Arrow table with the undecoded image struct.

    Offline (or without the repository) this is one line saying so and how to use a local snapshot instead."""
    import datasets

    try:
        dataset = datasets.load_dataset(repo, split=hub_split)
    except Exception as exc:  # noqa: BLE001  (network, authentication and missing-repo errors all end here)
        problem = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise HarnessError(
            f"task '{task}': source hub:{repo}: datasets.load_dataset could not load split '{hub_split}' "
            f"({type(exc).__name__}: {problem}); without a network, download the snapshot elsewhere and pass "
            "its folder with source=hub") from None
    if "image" in dataset.column_names and isinstance(dataset.features["image"], datasets.Image):
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
    return dataset.data.table


# ------------------------------------------------------------------------------------------ building datasets

def build_kept(columns: dict[str, list[str]], table: pa.Table, kept: Sequence[int], path: Path,
               check_images: str) -> datasets.Dataset:
    """``build`` from the rows ``kept`` of ``table``, their images decoded first when ``check_images`` is
    "decode" (a bad image is one line naming the file and row)."""
    images = image_column(table, path).take(kept)
    if check_images == "decode":
        for index, entry in zip(kept, images.to_pylist()):
            check_image(path, (entry["bytes"], entry.get("path")), index, "decode")
    return build(columns, images, source=path)


def build(columns: dict[str, list[str]], images: pa.ChunkedArray | pa.Array, source: Path) -> datasets.Dataset:
    """A ``datasets.Dataset`` with ``images`` (the ``{bytes, path}`` struct, one per row) as a lazily decoded
    ``datasets.Image`` column next to string ``columns`` (which hold ``id`` first)."""
    import datasets
    import pyarrow as pa

    ids = columns["id"]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        duplicate = next(i for i in ids if i in seen or seen.add(i))
        raise DataError(source, "duplicate id within the split", record=duplicate, field="id")
    image_type = datasets.Image().pa_type
    if isinstance(images, pa.Array):
        images = pa.chunked_array([images])
    if images.type != image_type:  # e.g. a path column stored as large_string: cast chunk by chunk
        images = pa.chunked_array([_image_struct(chunk) for chunk in images.chunks], image_type)
    names = ["id", "image", *(c for c in columns if c != "id")]
    arrays = {name: images if name == "image" else pa.array(columns[name], pa.string()) for name in names}
    features = datasets.Features({name: datasets.Image() if name == "image" else datasets.Value("string")
                                  for name in names})
    table = pa.table(arrays, schema=features.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))


def _image_struct(chunk: pa.StructArray) -> pa.StructArray:
    import pyarrow as pa

    paths = chunk.field("path").cast(pa.string()) if chunk.type.get_field_index("path") >= 0 \
        else pa.nulls(len(chunk), pa.string())
    return pa.StructArray.from_arrays([chunk.field("bytes").cast(pa.binary()), paths], names=["bytes", "path"],
                                      mask=chunk.is_null() if chunk.null_count else None)


def write_snapshot(folder: Path, split: str, rows: Sequence[dict[str, Any]], *, shards: int = 1) -> list[Path]:
    """Write ``rows`` (``{"image": {"bytes", "path"}, "question", "answer", ...}``) as ``datasets`` writes a
    Hub snapshot: ``folder/data/<split>-0000i-of-0000N-<hash>.parquet`` with the Image feature in the schema
    metadata. The hash part is a digest of the rows. Returns the files written."""
    import datasets

    from harness.core.io import atomic_write

    if not rows:
        raise HarnessError(f"write_snapshot: no rows for split '{split}'")
    names = list(rows[0])
    features = datasets.Features({n: datasets.Image() if n == "image" else datasets.Value("string") for n in names})
    out = Path(folder) / DATA_FOLDER
    files = []
    size = -(-len(rows) // shards)
    for index in range(shards):
        part = rows[index * size:(index + 1) * size]
        columns = {n: [r[n] if n == "image" else str(r[n]) for r in part] for n in names}
        dataset = datasets.Dataset.from_dict(columns, features=features)
        content = hashlib.sha256()
        for row in part:
            content.update(repr((row["question"], row["answer"], digest(row["image"]["bytes"] or b""))).encode())
        path = out / f"{split}-{index:05d}-of-{shards:05d}-{content.hexdigest()[:16]}.parquet"
        with atomic_write(path, "wb", encoding=None) as handle:
            dataset.to_parquet(handle)
        files.append(path)
    return files
