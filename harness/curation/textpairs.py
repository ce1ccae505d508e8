"""The default text pairs: the ground truth preferred over a dispreferred text about the same image.

Every method without a pair builder of its own trains on these (DPO and its relatives, as in the MMedPO
paper's DPO baseline: ground truth vs a dispreferred text), so a comparison of MMedPO with DPO isolates
MMedPO's visual pairs and weights. Two modes (``harness run --text-pairs``; docs/hallucinations.md):

- ``sample-and-judge`` (default; the paper's textual dispreference, offline): the base model answers each
  item ``k`` = 4 times (temperature 1); the ground-truth judge reads each sample against the case
  (``harness.curation.errortypes.classify``) and keeps the one that most clearly conflicts with it (a denial of a
  present finding before an invented finding before a wrong kind, side, level or size; see
  ``harness.curation.errortypes.conflict_rank``). If no sample contradicts the case, the verified injector
  (``harness.curation.hallucinate.make_hallucination``) writes one. The base also answers each item once greedily;
  those answers' error types are the base's own error distribution, published next to the pairs' mix in
  ``manifest.json``, and the denial floor (:func:`harness.curation.errortypes.denial_rule`) swaps the rejected text of
  the fewest lesion-case pairs needed for a denial (the base's own greedy denial first, else a verified
  injected one) so that denials appear in the pairs at least in proportion to the base's own denial rate;
- ``injector``: the verified injector alone (no model), the behaviour before the paper's procedure was the
  default.

Either way an item with no verified dispreferred text is skipped, and the count is logged and kept on the
returned list (``pairs.skipped``); ``pairs.manifest`` says what made the pairs.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.curation.errortypes import (
    DENIAL_TOLERANCE,
    ErrorReading,
    admits_denial,
    case_group,
    classify,
    conflict_rank,
    denial_rule,
    error_mix,
    floor_order,
)
from harness.curation.hallucinate import make_denial, make_hallucination
from harness.curation.preferences import PreferencePair

log = logging.getLogger(__name__)

TEXT_PAIR_MODES = ("sample-and-judge", "injector")
DEFAULT_TEXT_PAIRS = "sample-and-judge"
TEXT_PAIRS_VERSION = "2"  # bump when the default pairs for the same inputs change
NUM_SAMPLES, TEMPERATURE, MAX_NEW_TOKENS, BATCH_SIZE = 4, 1.0, 64, 8
# Pair sources (``PreferencePair.source``) of the default pairs.
SOURCES = {
    "model-sample": "a sample of the base model, picked by the ground-truth judge",
    "injector-fallback": "no sample contradicted the case: the verified injector's hallucination",
    "denial-floor-greedy": "the denial floor: the base's own greedy denial",
    "denial-floor-injector": "the denial floor: a verified injected denial",
    "rules-hallucination": "text_pairs=injector: the verified injector's hallucination",
}


class TextPairs(list):
    """A list of pairs that also says how many items were skipped and what made the pairs (``manifest``)."""

    skipped: int = 0
    skipped_ids: list[str]
    manifest: dict[str, Any]

    def __init__(self, pairs=(), *, skipped_ids: list[str] | None = None, manifest: dict[str, Any] | None = None):
        super().__init__(pairs)
        self.skipped_ids = list(skipped_ids or [])
        self.skipped = len(self.skipped_ids)
        self.manifest = dict(manifest or {})


def item_seed(seed: int, sample_id: Any) -> int:
    """The per-item seed of the hallucination (stable across runs and splits)."""
    return zlib.crc32(f"{seed}:{sample_id}".encode())


# ------------------------------------------------------------------------------------ model answers


def sample_answers(model: Any, images: Sequence[Any], prompts: Sequence[str], *, k: int, seed: int,
                   temperature: float = TEMPERATURE, max_new_tokens: int = MAX_NEW_TOKENS) -> list[list[str]]:
    """``k`` sampled answers per prompt from the target model (``VisionLanguageModel.generate``)."""
    from harness.models.base import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                              num_return_sequences=k, seed=seed)
    out = model.generate(list(images), list(prompts), config)
    return [[a] for a in out] if k == 1 else [list(a) for a in out]


def greedy_answers(model: Any, images: Sequence[Any], prompts: Sequence[str], *,
                   max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """One greedy answer per prompt: what the model says, for the base's own error distribution."""
    from harness.models.base import GenerationConfig

    out = model.generate(list(images), list(prompts), GenerationConfig(max_new_tokens=max_new_tokens))
    return [str(a[0] if isinstance(a, list) else a).strip() for a in out]


def _same(a: str, b: str) -> bool:
    norm = lambda t: re.sub(r"[^a-z0-9]+", " ", str(t).lower()).strip()  # noqa: E731
    return norm(a) == norm(b)


def candidates(answer: str, samples: Sequence[str]) -> list[str]:
    """Distinct non-empty samples that differ from the ground truth (up to case and punctuation), in order."""
    return [s for s in dict.fromkeys(str(s).strip() for s in samples) if s and not _same(s, answer)]


def pick_conflicting_sample(case: Any, answer: str, samples: Sequence[str]) -> tuple[str, ErrorReading] | None:
    """The ground-truth judge: the sample that most clearly conflicts with ``case``
    (``harness.curation.errortypes.conflict_rank``; a tie keeps the earlier sample), or None when none contradicts it.
    A sample the fact checker cannot read (``unreadable``) or that makes no error is never picked."""
    best: tuple[tuple, str, ErrorReading] | None = None
    for candidate in candidates(answer, samples):
        reading = classify(candidate, {**case, "answer": answer})
        if reading.primary in ("none", "unreadable"):
            continue
        rank = conflict_rank(reading)
        if best is None or rank > best[0]:  # strict: a tie keeps the earlier sample
            best = (rank, candidate, reading)
    return None if best is None else (best[1], best[2])


def denial_alternative(case: Any, greedy: str | None, greedy_reading: ErrorReading | None, *,
                       seed: int) -> dict[str, Any] | None:
    """What the denial floor may put on a lesion-case pair's rejected side: the base's greedy answer when it
    denies a present finding, else a verified injected denial (``harness.curation.hallucinate.make_denial``), else None."""
    if greedy is not None and greedy_reading is not None and greedy_reading.primary == "denial":
        found = list(greedy_reading.contradictions)
        return {"text": greedy, "source": "greedy", "error": greedy_reading.to_json(),
                "contradictions": [c.__dict__ for c in found], "severity": _severity(found)}
    made = make_denial(case, seed=seed)
    if made is None:
        return None
    return {"text": made.text, "source": "injector", "error": classify(made.text, case).to_json(),
            "contradictions": [c.__dict__ for c in made.contradictions], "severity": made.severity}


def _severity(found: Sequence[Any]) -> float:
    from harness.curation.factcheck import severity

    return severity(found)


# ------------------------------------------------------------------------------------- the default pairs


def default_text_pairs(task, samples, seed: int, *, mode: str = DEFAULT_TEXT_PAIRS, model: Any = None,
                       num_samples: int = NUM_SAMPLES, temperature: float = TEMPERATURE,
                       max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = BATCH_SIZE,
                       tolerance: float = DENIAL_TOLERANCE) -> TextPairs:
    """The default text pairs for every item of ``samples`` (a task's ``datasets.Dataset``); see the module
    docstring. ``mode='sample-and-judge'`` needs ``model`` (a ``VisionLanguageModel``: the base)."""
    import datasets

    if mode not in TEXT_PAIR_MODES:
        raise HarnessError(f"text pairs '{mode}': expected one of {', '.join(TEXT_PAIR_MODES)}")
    if mode == "sample-and-judge" and model is None:
        raise HarnessError("text pairs 'sample-and-judge' sample the base model, but none was given "
                           "(harness curate --model ...), or ask for --text-pairs injector")
    images = samples.cast_column("image", datasets.Image(decode=False))["image"]
    rows = list(samples.remove_columns([c for c in ("image", "mask") if c in samples.column_names]))
    for index, row in enumerate(rows):
        image = images[index]
        row["_path"] = image.get("path") if isinstance(image, dict) else None
        if not row["_path"]:
            raise HarnessError(f"task '{task.name}': sample {row['id']} has no image file to train on")
        row["answer"] = str(row["answer"]).strip()
    sampled: dict[int, list[str]] = {}
    greedy: dict[int, str] = {}
    if mode == "sample-and-judge":
        sampled, greedy = _generate(task, samples, rows, model, seed=seed, k=num_samples,
                                    temperature=temperature, max_new_tokens=max_new_tokens, batch_size=batch_size)
    items, skipped = [], []
    for index, row in enumerate(rows):
        item = _item(row, sampled.get(index), greedy.get(index), seed=item_seed(seed, row["id"]), mode=mode)
        if item.get("skipped"):
            skipped.append(str(row["id"]))
        else:
            items.append(item)
    base_lesion = [i["base"]["primary"] for i in [*items, *_base_only(rows, greedy, skipped)]
                   if i.get("base") and i["denial_question"]]
    floor = apply_denial_floor(items, base_lesion, tolerance) if mode == "sample-and-judge" else None
    pairs = [PreferencePair(
        id=f"{task.name}-{i['id']}", image=str(Path(i['path']).resolve()), prompt=task.prompt(i["row"]),
        chosen=i["row"]["answer"], rejected=i["rejected"], kind="text", source=i["source"],
        extra={"severity": i["severity"], "contradictions": i["contradictions"], "error": i["error"],
               "case": i["group"], **({"samples": i["samples"], "base": i["base"]} if mode != "injector" else {}),
               **({"denial_floor": i["denial_floor"]} if i.get("denial_floor") else {})})
        for i in items]
    manifest = _manifest(mode, items, rows, greedy, skipped, floor,
                         {"num_samples": num_samples, "temperature": temperature, "max_new_tokens": max_new_tokens,
                          "denial_tolerance": tolerance} if mode == "sample-and-judge" else {})
    if skipped:
        log.info("task %s: %d of %d items skipped (no verified dispreferred text), e.g. %s", task.name,
                 len(skipped), len(rows), ", ".join(skipped[:3]))
    return TextPairs(pairs, skipped_ids=skipped, manifest=manifest)


def _generate(task, samples, rows, model, *, seed: int, k: int, temperature: float, max_new_tokens: int,
              batch_size: int) -> tuple[dict[int, list[str]], dict[int, str]]:
    from tqdm.auto import tqdm

    sampled: dict[int, list[str]] = {}
    greedy: dict[int, str] = {}
    with tqdm(total=len(rows), desc=f"text pairs {task.name}", unit="item", disable=None) as bar:
        for start in range(0, len(rows), batch_size):
            stop = min(start + batch_size, len(rows))
            images = samples.select(range(start, stop))["image"]
            prompts = [task.prompt(rows[i]) for i in range(start, stop)]
            answers = sample_answers(model, images, prompts, k=k, seed=seed + start, temperature=temperature,
                                     max_new_tokens=max_new_tokens)
            said = greedy_answers(model, images, prompts, max_new_tokens=max_new_tokens)
            for offset in range(stop - start):
                sampled[start + offset] = answers[offset]
                greedy[start + offset] = said[offset]
            bar.update(stop - start)
    return sampled, greedy


def _item(row: dict, samples: list[str] | None, greedy: str | None, *, seed: int, mode: str) -> dict[str, Any]:
    """One item's dispreferred text (and, sampling, the base's greedy reading and the floor's alternative)."""
    case = {k: v for k, v in row.items() if k != "_path"}
    item: dict[str, Any] = {"id": str(row["id"]), "row": case, "path": row["_path"], "group": case_group(case),
                            "denial_question": admits_denial(case), "order": seed, "samples": list(samples or [])}
    base = classify(greedy, case) if greedy is not None else None
    if base is not None:
        item["base"] = {"greedy": greedy, **base.to_json()}
    picked = pick_conflicting_sample(case, case["answer"], samples) if mode == "sample-and-judge" and samples else None
    if picked is not None:
        text, reading = picked
        source, found = "model-sample", list(reading.contradictions)
    else:
        made = make_hallucination(case, seed=seed)
        if made is None:
            return {**item, "skipped": True}
        text, found = made.text, list(made.contradictions)
        reading = classify(text, case)
        source = "injector-fallback" if mode == "sample-and-judge" else "rules-hallucination"
    item.update(rejected=text, source=source, own=source == "model-sample", error=reading.to_json(),
                contradictions=[c.__dict__ for c in found], severity=_severity(found))
    if mode == "sample-and-judge" and item["denial_question"] and reading.primary != "denial":
        item["alternative"] = denial_alternative(case, greedy, base, seed=seed)
    return item


def _base_only(rows: list[dict], greedy: dict[int, str], skipped: list[str]) -> list[dict[str, Any]]:
    """The base's reading of the skipped items (they count in its error distribution, not in the pairs')."""
    gone = set(skipped)
    out = []
    for index, row in enumerate(rows):
        if str(row["id"]) in gone and index in greedy:
            case = {k: v for k, v in row.items() if k != "_path"}
            out.append({"group": case_group(case), "denial_question": admits_denial(case),
                        "base": classify(greedy[index], case).to_json()})
    return out


def apply_denial_floor(items: list[dict[str, Any]], base_lesion: Sequence[str],
                       tolerance: float = DENIAL_TOLERANCE) -> dict[str, Any]:
    """Swap the rejected text of the fewest items needed for the denial rule to hold
    (``harness.curation.errortypes.denial_rule``; order: ``harness.curation.errortypes.floor_order``), in place. Each item is a
    dict with ``denial_question`` (``harness.curation.errortypes.admits_denial`` of its case; the rule counts only
    those), ``error`` (``{"primary", ...}``), ``own`` (its rejected text is the model's sample),
    ``order`` and ``alternative`` (``denial_alternative``'s dict or None); a swapped item gets ``rejected``,
    ``source`` (``denial-floor-<greedy|injector>``), ``error``, ``contradictions``, ``severity`` and a
    ``denial_floor`` record of what it replaced. Returns the rule before and after, and the swap count."""
    lesion = [i for i in items if i.get("denial_question")]
    before = denial_rule([i["error"]["primary"] for i in lesion], base_lesion, tolerance)
    chosen = []
    if before["missing"]:
        pool = [i for i in lesion if i["error"]["primary"] != "denial" and i.get("alternative")]
        chosen = floor_order(pool)[:before["missing"]]
    for item in chosen:
        alternative = item["alternative"]
        item["denial_floor"] = {"replaced": item["rejected"], "replaced_source": item["source"],
                                "replaced_error": item["error"], "from": alternative["source"]}
        item.update(rejected=alternative["text"], source=f"denial-floor-{alternative['source']}",
                    error=alternative["error"], contradictions=alternative["contradictions"],
                    severity=alternative["severity"], own=alternative["source"] == "greedy")
    after = denial_rule([i["error"]["primary"] for i in lesion], base_lesion, tolerance)
    if after["holds"] is False:
        log.warning("denial floor: only %d of %d pairs on lesion cases reject a denial (floor %.2f): too few "
                    "items with a denial to offer", after["pair_denials"], after["pairs"], after["floor"])
    return {**after, "swapped": len(chosen), "before": before}


def _manifest(mode: str, items: list[dict], rows: list[dict], greedy: dict[int, str], skipped: list[str],
              floor: dict[str, Any] | None, settings: dict[str, Any]) -> dict[str, Any]:
    everyone = [*items, *_base_only(rows, greedy, skipped)]
    measured = [i for i in everyone if i.get("base")]
    return {
        "text_pairs": mode,
        "version": TEXT_PAIRS_VERSION,
        "settings": settings,
        "behaviour": text_pairs_behaviour(mode, floor),
        "counts": {"pairs": len(items), "skipped": len(skipped)},
        "sources": dict(sorted(Counter(i["source"] for i in items).items())),
        "cases": dict(Counter(i["group"] for i in items)),
        "error_mix": {"pairs": error_mix((i["group"], i["error"]["primary"]) for i in items),
                      "base": error_mix((i["group"], i["base"]["primary"]) for i in measured) if measured else None},
        "denial_rule": floor,
    }


def text_pairs_behaviour(mode: str, floor: dict[str, Any] | None) -> dict[str, str]:
    """How the default pairs depart from the paper's procedure (the run's record names each departure)."""
    if mode == "injector":
        return {"text": "offline-rules (text_pairs=injector: the verified injector, no model samples)",
                "denial_floor": "off (no base answers to measure)"}
    swapped = (floor or {}).get("swapped", 0)
    return {"text": "offline-ground-truth-judge (the paper's samples, k=4 at T=1; the fact checker stands in for "
                    "the judge LLM; the verified injector stands in for its rewrite)",
            "denial_floor": f"project rule (tolerance {(floor or {}).get('tolerance', DENIAL_TOLERANCE):g}; "
                            f"{swapped} pair{'s' if swapped != 1 else ''} swapped)"}


def mix_summary(manifest: dict[str, Any]) -> str:
    """One log line: pair sources, the pairs' error mix on lesion cases and the base's."""
    mix = manifest.get("error_mix") or {}
    show = lambda counts: ", ".join(f"{k} {v}" for k, v in (counts or {}).items()) or "-"  # noqa: E731
    base = mix.get("base")
    rule = manifest.get("denial_rule") or {}
    text = (f"{manifest['counts']['pairs']} pairs ({show(manifest.get('sources'))}); rejected on lesion cases: "
            f"{show(mix.get('pairs', {}).get('lesion'))}")
    if base:
        text += f"; base greedy on lesion cases: {show(base.get('lesion'))}"
    if rule.get("floor") is not None:
        text += (f"; denial share {rule['pair_denial_share']:.2f} vs base {rule['base_denial_share']:.2f} "
                 f"(floor {rule['floor']:.2f}, {rule['swapped']} swapped)")
    return text
