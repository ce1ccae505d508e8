"""MMedPO's pair curation: pooled textual and visual pairs with clinical-relevance weights (Sec. 3).

``build_mmedpo_pairs(context, config)`` returns the pooled ``D_o = D_t ∪ D_v`` as ``PreferencePair``s in
the project's record format (compatible with the MMedPO release: ``kind``, ``source``, ``weighted_score``,
``rejected_image``). Everything lands in ``<context.output_dir>/mmedpo-<key>/``, where ``key`` hashes the
data (task, ids, questions, answers), the model, the settings, the prompt versions and the seed:

- ``items.jsonl``: one line per finished (sample, kind), appended and fsynced as soon as it is done, so an
  interrupted curation resumes where it stopped without re-asking (or paying) any judge for finished items.
  An item whose judge failed after retries (it fell back to the offline rules or heuristic) is recorded with
  ``fallback`` but is not finished: a rerun asks the judge again. With judges configured, curation stops with
  a one-line error once fallbacks exceed ``max_fallback_share`` of the text items (default 0: none allowed);
  the request cap always stops it. The manifest counts fallbacks and says what produced each pair;
- ``images/source/``: one copy of each source image, named by its content (the original file's bytes, or a
  PNG of an in-memory image), shared by every question about it; ``images/noised/``: the noised rejected
  images (PNG), the only images curation changes;
- ``pairs.jsonl`` and ``manifest.json``: written atomically once every item is done (weights need the whole
  dataset's scores). A later call with the same key reads them back.

Image paths in the pairs are relative to ``context.output_dir`` (``CurationResult.image_root``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.core.errors import HarnessError
from harness.core.io import append_jsonl, read_json, read_jsonl, write_json
from harness.curation.preferences import PreferencePair, read_pairs, write_pairs
from mmedpo.config import CURATION_VERSION, CurationConfig, curation_options
from mmedpo.prompts import prompt_versions

log = logging.getLogger(__name__)


@dataclass
class CurationResult:
    pairs: list[PreferencePair]
    image_root: Path  # join pair.image / pair.rejected_image to this
    pairs_path: Path
    manifest: dict[str, Any]


def build_mmedpo_pairs(context: Any, config: CurationConfig | None = None) -> list[PreferencePair]:
    """The pooled MMedPO pairs for ``context`` (a ``harness.methods.PairContext``); see ``curate``."""
    return curate(context, config).pairs


def judge_options(options: dict[str, Any], spec: str) -> dict[str, Any]:
    """Options for one judge: the flat keys apply to every judge, ``{spec: {...}}`` to that judge only."""
    shared = {k: v for k, v in options.items() if not isinstance(v, dict)}
    return {**shared, **options.get(spec, {})}


def _column(samples: Any, name: str, n: int) -> list[str]:
    """The first ``n`` values of a column without decoding images (datasets.Dataset or a list of dicts)."""
    if hasattr(samples, "select_columns"):
        values = samples.select_columns([name]).select(range(n))[name]
        return [str(v) for v in values]
    return [str(samples[i][name]) for i in range(n)]


def data_fingerprint(context: Any, n: int) -> str:
    """Hash of the task identity and the first ``n`` samples' ids, questions and answers (no image decoding)."""
    task = context.task
    payload = [getattr(task, "name", str(task)), getattr(task, "version", "")]
    payload += [_column(context.samples, name, n) for name in ("id", "question", "answer")]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def cache_key(context: Any, config: CurationConfig, n: int, judges: list[Any]) -> str:
    model = context.model.describe() if context.model is not None and hasattr(context.model, "describe") else None
    payload = {
        "version": CURATION_VERSION,
        "data": data_fingerprint(context, n),
        "model": model,
        "settings": {k: v for k, v in config.to_json().items() if k != "max_fallback_share"},  # not a result
        "judges": [j.describe() for j in judges],
        "prompts": prompt_versions(),
        "seed": context.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def curate(context: Any, config: CurationConfig | None = None) -> CurationResult:
    """Curate (or read back, or resume) the pairs for ``context``; see the module docstring."""
    config = config or CurationConfig.from_options(curation_options(context.options))
    if context.output_dir is None:
        raise HarnessError("mmedpo curation needs an output folder (PairContext.output_dir)")
    root = Path(context.output_dir)
    n = len(context.samples) if config.max_items is None else min(config.max_items, len(context.samples))
    from harness.curation.judges import make_judge

    judges = [make_judge(spec, **judge_options(config.judge_options, spec)) for spec in config.judges]
    key = cache_key(context, config, n, judges)
    folder = root / f"mmedpo-{key}"
    pairs_path, manifest_path = folder / "pairs.jsonl", folder / "manifest.json"
    if pairs_path.exists() and manifest_path.exists():
        manifest = read_json(manifest_path)
        if not (manifest.get("judges") or {}).get("fallbacks"):
            log.info("mmedpo: reusing curated pairs in %s", folder.name)
            return CurationResult(list(read_pairs(pairs_path)), root, pairs_path, manifest)
        log.info("mmedpo: %s holds judge fallbacks; asking the judges again for those items", folder.name)
    from mmedpo.stages import Curator

    curator = Curator(context, config, judges, folder)
    items_path = folder / "items.jsonl"
    previous = read_items(items_path)
    done = {(r["sample"], r["kind"]) for r in _latest(previous) if not r.get("fallback")}
    if done:
        log.info("mmedpo: resuming %s (%d items already done)", folder.name, len(done))
    kinds = [k for k, on in (("text", config.text_pairs), ("visual", config.visual_pairs)) if on]
    ids = _column(context.samples, "id", n)
    if len(set(ids)) != len(ids):
        raise HarnessError(f"task '{getattr(context.task, 'name', '?')}': sample ids are not unique; "
                           "curation keys its resumable items by id")
    guard = _FallbackGuard(config, n if "text" in kinds else 0, folder.name)
    if previous:
        guard.seed({r["sample"]: r for r in _latest(previous) if r["kind"] == "text"})
    with tqdm(total=n, desc="mmedpo curation", unit="sample", disable=None if getattr(context, "progress", True) else True) as bar:
        for start in range(0, n, config.batch_size):
            indices = range(start, min(start + config.batch_size, n))
            todo = [(i, k) for i in indices for k in kinds if (ids[i], k) not in done]
            for record in curator.run_batch(todo):
                append_jsonl(items_path, record)
                guard.add(record)
            bar.update(len(indices))
    items = list(_latest(read_items(items_path)))
    pairs, manifest = assemble(items, config, key)
    write_pairs(pairs_path, pairs)
    write_json(manifest_path, manifest)
    log.info("mmedpo: %d text + %d visual pairs in %s (weights: %s; text from %s; %d skipped)",
             manifest["counts"]["text"], manifest["counts"]["visual"], folder.name, config.weighting,
             ", ".join(f"{k} {v}" for k, v in manifest["sources"]["text"].items()) or "-",
             manifest["counts"]["skipped"])
    for kind, stats in manifest["weights"].items():
        if stats:
            log.info("mmedpo: %s weights min %.3f q1 %.3f median %.3f q3 %.3f max %.3f mean %.3f (n=%d)", kind,
                     stats["min"], stats["q1"], stats["median"], stats["q3"], stats["max"], stats["mean"], stats["n"])
    return CurationResult(pairs, root, pairs_path, manifest)


def assemble(items: list[dict], config: CurationConfig, key: str) -> tuple[list[PreferencePair], dict[str, Any]]:
    """Turn finished items into pairs: normalize the raw scores into weights (pooled or per kind)."""
    from mmedpo.relevance import normalize

    items = list(_latest(items))
    usable = [r for r in items if not r.get("skipped")]
    usable, floor = _denial_floor(usable, items, config)
    weights: dict[int, float] = {}
    groups = [[r for r in usable if r["kind"] == k] for k in ("text", "visual")] if config.normalize_per_kind \
        else [usable]
    for group in groups:
        for record, weight in zip(group, normalize([r["raw_score"] for r in group], config.weighting)):
            weights[id(record)] = weight
    pairs = []
    for record in usable:
        pairs.append(PreferencePair(
            id=f"{record['sample']}-{record['kind']}", image=record["image"], prompt=record["prompt"],
            chosen=record["chosen"], rejected=record["rejected"], weight=weights[id(record)],
            rejected_image=record.get("rejected_image"), kind=record["kind"], source=record["source"],
            extra={"raw_score": record["raw_score"], "weighting": config.weighting, "case": record.get("case"),
                   **record.get("extra", {})},
        ))
    skipped = [r for r in items if r.get("skipped")]
    manifest = {
        "key": key,
        "curation_version": CURATION_VERSION,
        "config": config.to_json(),
        "text_generator": config.resolved_generator(),
        "text_judge": config.resolved_text_judge(),
        "relevance": config.resolved_relevance(),
        "weighting": config.weighting,
        "behaviour": _behaviour(config, items, floor),
        "judges": _judge_counts(config, items),
        "counts": {"text": sum(p.kind == "text" for p in pairs), "visual": sum(p.kind == "visual" for p in pairs),
                   "skipped": len(skipped)},
        "sources": {kind: _tally(p.source for p in pairs if p.kind == kind) for kind in ("text", "visual")},
        "relevance_sources": _tally(p.extra.get("relevance", {}).get("source", "?") for p in pairs
                                    if p.kind == "text"),
        "skipped": {kind: _tally(r["skipped"] for r in skipped if r["kind"] == kind) for kind in ("text", "visual")},
        "weights": {kind: distribution([p.weight for p in pairs if p.kind == kind]) for kind in ("text", "visual")},
        "raw_scores": {kind: distribution([r["raw_score"] for r in usable if r["kind"] == kind])
                       for kind in ("text", "visual")},
        "cases": {kind: _tally(p.extra.get("case") or "?" for p in pairs if p.kind == kind)
                  for kind in ("text", "visual")},
        "error_mix": _error_mix(usable, items),
        "denial_rule": floor,
        "prompts": prompt_versions(),
    }
    return pairs, manifest


def _error_mix(usable: list[dict], items: list[dict]) -> dict[str, Any]:
    """The text pairs' rejected texts' error types next to the base's greedy answers' (same items, all text
    items it answered, skipped ones included), per case group (``harness.curation.errortypes.error_mix``)."""
    from harness.curation.errortypes import error_mix

    text = [r for r in usable if r["kind"] == "text" and (r.get("extra") or {}).get("error")]
    measured = [r for r in items if r["kind"] == "text" and r.get("base")]
    return {"pairs": error_mix((r.get("case") or "unlabelled", r["extra"]["error"]["primary"]) for r in text),
            "base": error_mix((r.get("case") or "unlabelled", r["base"]["primary"]) for r in measured)
            if measured else None}


def _denial_floor(usable: list[dict], items: list[dict],
                  config: CurationConfig) -> tuple[list[dict], dict[str, Any] | None]:
    """Apply the denial floor (``harness.curation.textpairs.apply_denial_floor``) to copies of the text records, or,
    where it does not apply but the base was measured, only check the rule. Returns the records and the
    rule's report (None when the base's answers were not measured)."""
    from harness.curation.errortypes import denial_rule
    from harness.curation.textpairs import apply_denial_floor

    base = [r["base"]["primary"] for r in items
            if r["kind"] == "text" and r.get("base") and r.get("denial_question")]
    text = [r for r in usable if r["kind"] == "text" and (r.get("extra") or {}).get("error")]
    if not base:
        return usable, None
    if not config.floor_applies():
        lesion = [r["extra"]["error"]["primary"] for r in text if r.get("denial_question")]
        return usable, {**denial_rule(lesion, base, config.denial_tolerance), "swapped": 0, "enforced": False}
    entries = [{"group": r.get("case"), "denial_question": r.get("denial_question"), "error": r["extra"]["error"], "own": r["source"] == "mmedpo-truth-pick",
                "order": r.get("seed", 0), "rejected": r["rejected"],
                "source": r["source"], "alternative": r.get("denial_alternative"), "record": r} for r in text]
    report = apply_denial_floor(entries, base, config.denial_tolerance)
    swapped = {id(e["record"]): e for e in entries if e.get("denial_floor")}
    out = []
    for record in usable:
        entry = swapped.get(id(record))
        if entry is None:
            out.append(record)
            continue
        how = entry["source"]  # denial-floor-greedy / denial-floor-injector
        text_info = {**record["extra"]["text"], "how": how, "contradictions": entry["contradictions"]}
        # offline relevance of the new text: its fact-check severity (the heuristic gives the same with a row)
        relevance = {"score": entry["severity"], "source": config.resolved_relevance(), "scores_given": [],
                     "rounds": 0, "consensus": False}
        out.append({**record, "rejected": entry["rejected"], "source": f"mmedpo-{how}", "raw_score": entry["severity"],
                    "extra": {**record["extra"], "text": text_info, "relevance": relevance, "error": entry["error"],
                              "denial_floor": entry["denial_floor"]}})
    return out, {**report, "enforced": True}


def _tally(values: Any) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def distribution(values: list[float]) -> dict[str, float] | None:
    """``n``, min, quartiles (linear interpolation, as numpy's default), max and mean; None when empty."""
    if not values:
        return None
    ordered = sorted(float(v) for v in values)

    def quantile(q: float) -> float:
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"n": len(ordered), "min": ordered[0], "q1": quantile(0.25), "median": quantile(0.5),
            "q3": quantile(0.75), "max": ordered[-1], "mean": sum(ordered) / len(ordered)}


def read_items(path: Path) -> list[dict]:
    """The resumable items written so far (none before the first); a cut-off last line, from an interrupted
    curation, is skipped with a warning and its item curated again."""
    return list(read_jsonl(path, skip_partial_last=True)) if path.exists() else []


def _latest(records: Any) -> Any:
    """One record per (sample, kind): the last written (a retried fallback item supersedes its first try)."""
    latest: dict[tuple[str, str], dict] = {}
    for record in records:
        latest.pop((record["sample"], record["kind"]), None)
        latest[(record["sample"], record["kind"])] = record
    return latest.values()


def _judge_counts(config: CurationConfig, items: list[dict]) -> dict[str, Any]:
    """How many text items the judges handled, and how many fell back (per stage) after retries."""
    text = [r for r in items if r["kind"] == "text"]
    fell = [r for r in text if r.get("fallback")]
    return {"configured": list(config.judges), "text_items": len(text),
            "fallbacks": len(fell),
            "fallback_stages": _tally(stage for r in fell for stage in r["fallback"]),
            "max_fallback_share": config.max_fallback_share}


class _FallbackGuard:
    """Stops curation (one-line error) once judge fallbacks exceed ``max_fallback_share`` of the text items."""

    def __init__(self, config: CurationConfig, text_items: int, folder: str):
        import math

        self.active = bool(config.judges) and text_items > 0
        self.share = config.max_fallback_share
        self.allowed = math.floor(self.share * text_items + 1e-9)
        self.text_items = text_items
        self.folder = folder
        self.fallbacks: dict[str, dict] = {}

    def seed(self, latest_text: dict[str, dict]) -> None:
        self.fallbacks = {s: r for s, r in latest_text.items() if r.get("fallback")}

    def add(self, record: dict) -> None:
        if record["kind"] != "text":
            return
        if not record.get("fallback"):
            self.fallbacks.pop(record["sample"], None)
            return
        self.fallbacks[record["sample"]] = record
        if self.active and len(self.fallbacks) > self.allowed:
            from harness.curation.judges import FAILURES

            stages = _tally(s for r in self.fallbacks.values() for s in r["fallback"])
            raise HarnessError(
                f"mmedpo curation stopped: the judge failed after retries on {len(self.fallbacks)} of "
                f"{self.text_items} text items (fell back: {', '.join(f'{k} {v}' for k, v in stages.items())}; "
                f"allowed {self.allowed} by max_fallback_share={self.share:g}); last judge error: "
                f"{FAILURES.last_error or 'none recorded'}. Finished items are kept in {self.folder}: fix the "
                f"endpoint and rerun, or allow a share with --option max_fallback_share=0.1")


def _behaviour(config: CurationConfig, items: list[dict] | None = None,
               floor: dict[str, Any] | None = None) -> dict[str, str]:
    """Which of the paper's and the release's behaviours this curation used (docs/mmedpo.md), with the
    number of items where a judge failed and an offline fallback stood in, and what the denial floor did."""
    behaviour = _configured_behaviour(config)
    if floor is not None and floor.get("enforced"):
        behaviour["denial_floor"] += f" ({floor['swapped']} text pairs swapped)"
    text = [r for r in (items or []) if r["kind"] == "text" and not r.get("skipped")]
    for stage in ("text", "relevance"):
        fell = sum(stage in (r.get("fallback") or ()) for r in text)
        if fell:
            offline = "offline-rules" if stage == "text" else "offline-heuristic"
            behaviour[stage] += f" ({fell} of {len(text)} items fell back to {offline})"
    return behaviour


def _configured_behaviour(config: CurationConfig) -> dict[str, str]:
    """Per aspect: ``paper``, ``release``, an ``offline-*`` stand-in, an ``ablation``, or a ``project`` rule."""
    behaviour = {
        "noise": {"diffusion": "paper", "release": "release", "global": "ablation"}[config.noise],
        "weighting": {"paper": "paper", "release": "release", "none": "ablation"}[config.weighting],
        "text": {"llm": "paper", "ground-truth": "offline-ground-truth-judge", None: "offline-rules"}[
            config.resolved_text_judge()],
        "relevance": {"consensus": "paper", "factcheck": "offline-factcheck", "heuristic": "offline-heuristic"}[
            config.resolved_relevance()],
    }
    if not config.text_pairs:
        behaviour["text"] = behaviour["relevance"] = "ablation"
    if config.visual_pairs:
        behaviour["visual_items"] = {"all": "paper", "lesion": "project-lesion-only"}[config.visual_items]
        if config.visual_items == "all":
            behaviour["normal_film_region"] = "offline-seeded-region"
    else:
        behaviour["visual_items"] = "ablation"
    if config.text_pairs:
        behaviour["denial_floor"] = (f"project-rule (tolerance {config.denial_tolerance:g})"
                                     if config.floor_applies() else "off")
    return behaviour
