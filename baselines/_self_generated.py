"""Shared parts of the baselines that build pairs from the model's own samples.

Self-Rewarding, STLLaVA-Med, SIMA and FiSAO all: read the task's training samples, sample the target model
several times per prompt, score the candidates (a judge, a critic or the vision encoder), and keep the best
and the worst as (chosen, rejected). This module holds the sampling, the model's own log-prob and
embedding scores (through the training core's encoder, so tokens match training exactly), the
reference-based scores used as offline stand-ins for strong judges, and the sampling options every
builder declares (``SamplingOptions``; each method's ``builder_options`` extends it).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.options import option_field
from harness.curation.pairs import save_sample_image, task_prompt
from harness.methods.base import Method, PairContext

log = logging.getLogger(__name__)

# words of the three SIMA-style clinical metrics (presence, location/laterality, attribute/severity)
LOCATION_WORDS = frozenset("""left right bilateral both upper lower middle mid base basal apex apical
    lateral medial anterior posterior central peripheral lobe hilar retrocardiac""".split())
ATTRIBUTE_WORDS = frozenset("""small tiny large big medium mild moderate severe marked minimal trace
    round oval irregular dense faint diffuse focal multiple single enlarged acute chronic""".split())
NEGATIONS = frozenset("no not without absent negative none normal unremarkable clear".split())


@dataclass
class Sample:
    """One training item as the builders see it."""

    id: str
    prompt: str
    question: str
    answer: str
    answer_type: str
    image: Any  # PIL image
    image_name: str  # path relative to the builder's output folder


@dataclass
class SamplingOptions:
    """How a self-generated builder samples the target model (``--option KEY=VALUE``)."""

    temperature: float = option_field(1.0, "sampling temperature of the model's answers")
    top_p: float = option_field(1.0, "nucleus sampling: sample from the smallest token set of this probability")
    max_new_tokens: int = option_field(64, "longest sampled answer, in tokens")
    batch_size: int = option_field(8, "prompts per generate call (and per resumable journal chunk)")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]")


@dataclass
class CandidateOptions(SamplingOptions):
    """Sampling options of the builders that sample ``k`` candidates per prompt and keep best vs worst."""

    k: int = option_field(4, "answers sampled per prompt (the best and the worst become a pair)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 2:
            raise ValueError(f"k must be >= 2, got {self.k}")


def parsed_options(method: type[Method] | Method, options: dict[str, Any] | None) -> dict[str, Any]:
    """The method's declared builder options from ``options`` (``Method.parse_builder_options``), as a dict."""
    return asdict(method.parse_builder_options(options))


def require_model(name: str, context: PairContext) -> Any:
    """The loaded Hugging Face model the builder samples (pair building needs the model itself)."""
    model = context.model
    if model is None or not hasattr(model, "processor"):
        raise HarnessError(f"method '{name}' builds its pairs from the base model's own samples: the pair "
                           f"context needs a loaded Hugging Face model (PairContext.model)")
    return model


def iter_samples(name: str, context: PairContext) -> Iterator[Sample]:
    output_dir = Path(context.output_dir)
    for index, sample in enumerate(context.samples):
        sample_id = str(sample.get("id", index))
        image_name, image = save_sample_image(sample, output_dir, owner=f"method '{name}'", sample_id=sample_id)
        answer = str(sample.get("answer", "")).strip()
        if not answer:
            raise HarnessError(f"method '{name}': sample {sample_id} has no answer")
        yield Sample(sample_id, task_prompt(context.task, sample), str(sample.get("question", "")), answer,
                     str(sample.get("answer_type", "open")), image, image_name)


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class ChunkJournal:
    """Resumable pair building: each finished chunk of prompts is appended (fsynced) to
    ``<output_dir>/<method>.journal.jsonl``, and a rerun with the same method, options, seed, model and
    samples replays those chunks instead of sampling them again. Each chunk's sampling is seeded by its
    index, so a resumed build gives the pairs of an uninterrupted one. The journal stays as the build's
    cache (a finished build replays without sampling); a journal written for other inputs is set aside.
    """

    def __init__(self, name: str, context: PairContext, samples: list[Sample], options: dict[str, Any]):
        import hashlib
        import json

        from harness.core.io import read_jsonl

        self.path = Path(context.output_dir) / f"{name}.journal.jsonl"
        model = context.model
        identity = {"method": name, "options": options, "seed": context.seed, "samples": [s.id for s in samples],
                    "model": str(getattr(model, "path", None) or getattr(model, "name", type(model).__name__))}
        self.key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.done: dict[int, Any] = {}
        if self.path.is_file():
            records = list(read_jsonl(self.path, skip_partial_last=True))  # appended per chunk
            if records and records[0].get("key") == self.key:
                self.done = {int(r["chunk"]): r["result"] for r in records[1:] if "chunk" in r}
                log.info("%s: resuming pair building, %d chunk(s) already done", name, len(self.done))
            else:
                log.warning("%s: %s was written for other inputs; starting over", name, self.path.name)
                self.path.unlink()

    def run(self, index: int, compute: Any) -> Any:
        """The JSON result of chunk ``index``: replayed from the journal, or ``compute()`` and recorded."""
        from harness.core.io import append_jsonl

        if index in self.done:
            return self.done[index]
        if not self.path.is_file():
            append_jsonl(self.path, {"key": self.key})
        result = compute()
        append_jsonl(self.path, {"chunk": index, "result": result})
        self.done[index] = result
        return result


def run_chunks(name: str, context: PairContext, samples: list[Sample], options: dict[str, Any], compute: Any,
               unit: str) -> list[Any]:
    """``compute(chunk, index)`` over the samples in chunks of ``options["batch_size"]``, through a
    ``ChunkJournal`` and with a progress bar; returns the chunk results."""
    from functools import partial

    from tqdm.auto import tqdm

    journal = ChunkJournal(name, context, samples, options)
    results = []
    with tqdm(total=len(samples), desc=f"{name} pairs", unit=unit) as progress:
        for index, chunk in enumerate(batched(samples, options["batch_size"])):
            results.append(journal.run(index, partial(compute, chunk, index)))
            progress.update(len(chunk))
    return results


def pairs_and_counts(results: list[dict], counts: dict[str, int]) -> list[Any]:
    """The pairs of chunk results ``{"pairs": [...], "counts": {...}}``, adding their counts to ``counts``."""
    from harness.curation.preferences import PreferencePair

    pairs = []
    for result in results:
        pairs.extend(PreferencePair(**pair) for pair in result["pairs"])
        for key, n in result["counts"].items():
            counts[key] += n
    return pairs


def build_counted_pairs(method: Method, context: PairContext, chunk_pairs: Any, *, counts: tuple[str, ...],
                        unit: str, pairs_file: str, summary: str, options: dict[str, Any] | None = None) -> list[Any]:
    """The pair builder of the baselines that sample, score and keep one pair per prompt.

    Parses the method's builder options (unless given), runs ``chunk_pairs(model, chunk, seed, options)``
    over the task's training samples in resumable chunks (``seed``: the chunk's sampling seed, the context's
    seed times 1000 plus the chunk's index), pools the chunks' ``{"pairs": [...], "counts": {...}}``, logs
    ``summary % (pairs, prompts, *counts in the order of counts)`` on the method module's logger, writes the
    pairs to ``<output_dir>/<pairs_file>`` and returns them.
    """
    from harness.curation.preferences import write_pairs

    options = parsed_options(method, context.options) if options is None else options
    model = require_model(method.name, context)
    samples = list(iter_samples(method.name, context))
    results = run_chunks(method.name, context, samples, options,
                         lambda chunk, index: chunk_pairs(model, chunk, context.seed * 1000 + index, options),
                         unit=unit)
    totals = dict.fromkeys(counts, 0)
    pairs = pairs_and_counts(results, totals)
    logging.getLogger(type(method).__module__).info(summary, len(pairs), len(samples), *totals.values())
    write_pairs(Path(context.output_dir) / pairs_file, pairs)
    return pairs


def best_and_worst(candidates: list[str], scores: list) -> tuple[int, int] | None:
    """Indices of the highest- and the lowest-scored candidate (the first of equals), or None when all
    scores are equal or the two say the same words (no pair)."""
    best = max(range(len(candidates)), key=lambda i: scores[i])
    worst = min(range(len(candidates)), key=lambda i: scores[i])
    if scores[best] == scores[worst] or same_text(candidates[best], candidates[worst]):
        return None
    return best, worst


def sample_responses(model: Any, samples: list[Sample], *, k: int, max_new_tokens: int, temperature: float,
                     top_p: float, seed: int, greedy: bool = False) -> list[list[str]]:
    """``k`` answers per sample: sampled (seeded, so reruns agree), or one greedy answer when ``greedy``."""
    from harness.models.base import GenerationConfig

    if greedy:
        config = GenerationConfig(max_new_tokens=max_new_tokens)
        return [[text] for text in model.generate([s.image for s in samples], [s.prompt for s in samples], config)]
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_p=top_p,
                              num_return_sequences=k, seed=seed)
    out = model.generate([s.image for s in samples], [s.prompt for s in samples], config)
    return [list(texts) if k > 1 else [texts] for texts in out]


def _encoded_batch(model: Any, rows: list[tuple[Any, str, str]]):
    """Rows of (image, prompt, response) encoded exactly as the training core encodes them."""
    from harness.training.batch import Collator
    from harness.training.encoding import RowEncoder

    encoder = RowEncoder(model.processor, model.format_prompt, max_length=100_000)
    tokenizer = model.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    items = [{"id": str(i), "weight": 1.0, "chosen": encoder.encode(image, prompt, response, row_id=str(i))}
             for i, (image, prompt, response) in enumerate(rows)]
    return Collator(pad)(items).to(model.device)


def mean_logps(model: Any, rows: list[tuple[Any, str, str]]) -> list[float]:
    """The model's mean per-token log-prob of each response (the training core's forward, no gradients)."""
    import torch

    from harness.training.logps import concatenated_forward

    if not rows:
        return []
    batch = _encoded_batch(model, rows)
    model.model.eval()
    with torch.no_grad():
        groups = concatenated_forward(model.model, batch)
    return [float(v) for v in groups["chosen"]["mean"]]


def token_image_similarity(model: Any, rows: list[tuple[Any, str, str]], *, layer: int = 0) -> list[list[float]]:
    """Per response token: max cosine similarity between its hidden state and the image tokens' states.

    At ``layer`` 0 (the embedding output) the image positions hold the projector's output and the text
    positions the token input embeddings: the similarity is between each response token and the projected
    image features, in the language model's space. One value per response token, in the order the training
    core encodes them (end-of-turn tokens included).
    """
    import torch
    import torch.nn.functional as F

    if not rows:
        return []
    batch = _encoded_batch(model, rows)
    rows_ = batch.chosen
    config = model.model.config
    image_token = getattr(config, "image_token_id", None)
    if image_token is None:
        image_token = getattr(config, "image_token_index", None)
    if image_token is None:
        raise HarnessError(f"model '{model.name}': its config names no image token id (image_token_id)")
    kwargs = {**rows_.images, **rows_.sequence}
    if "pixel_values" in kwargs and torch.is_floating_point(kwargs["pixel_values"]):
        kwargs["pixel_values"] = kwargs["pixel_values"].to(model.model.dtype)
    model.model.eval()
    with torch.no_grad():
        out = model.model(input_ids=rows_.input_ids, attention_mask=rows_.attention_mask, output_hidden_states=True,
                          use_cache=False, **kwargs)
    hidden = out.hidden_states[layer].float()
    result = []
    for i in range(hidden.shape[0]):
        image_states = hidden[i][rows_.input_ids[i] == image_token]
        response_states = hidden[i][rows_.response_mask[i]]
        if image_states.shape[0] == 0:
            raise HarnessError(f"model '{model.name}': no image tokens found in an encoded row")
        sims = F.normalize(response_states, dim=-1) @ F.normalize(image_states, dim=-1).T
        result.append([float(v) for v in sims.max(dim=1).values])
    return result


# ---- reference-based scores (offline stand-ins for strong judges) ----------------------------------------

def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 between two texts (0 when either is empty)."""
    pred, ref = words(prediction), words(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def yes_no(text: str) -> str | None:
    """The first yes/no word of a text, if any."""
    for word in words(text):
        if word in ("yes", "no"):
            return word
    return None


def char_similarity(candidate: str, answer: str) -> float:
    """``difflib`` ratio of the lower-cased texts: the tie-breaker when word scores are equal (often 0)."""
    import difflib

    return difflib.SequenceMatcher(None, candidate.lower().strip(), answer.lower().strip(), autojunk=False).ratio()


def reference_score(candidate: str, answer: str, answer_type: str) -> tuple[float, float]:
    """(closed: 1 + F1 when the yes/no agrees with the ground truth, else F1; others: token F1,
    character similarity); compared as a tuple, so the second value only breaks ties of the first."""
    f1 = token_f1(candidate, answer)
    if answer_type == "closed":
        truth = yes_no(answer)
        f1 += 1.0 if truth is not None and yes_no(candidate) == truth else 0.0
    return f1, char_similarity(candidate, answer)


def clinical_metrics(candidate: str, answer: str, answer_type: str) -> dict[str, float]:
    """SIMA's three visual metrics, read as clinical ones, each in [0, 1] against the ground truth.

    - presence: yes/no agreement (closed questions), else whether a finding is asserted or negated alike
      and the overlap of the answer's finding words;
    - location: overlap of laterality/location words (left, right, upper, bilateral...);
    - attribute: overlap of size/severity/shape words (small, large, mild, severe...).
    A metric whose words the ground truth does not use scores 1 when the candidate does not use them either.
    """
    cand, ref = set(words(candidate)), set(words(answer))

    def overlap(vocab: frozenset) -> float:
        want, got = ref & vocab, cand & vocab
        if not want:
            return 0.0 if got else 1.0
        return len(want & got) / len(want | got)

    if answer_type == "closed" and yes_no(answer) is not None:
        presence = 1.0 if yes_no(candidate) == yes_no(answer) else 0.0
    else:
        findings = ref - LOCATION_WORDS - ATTRIBUTE_WORDS - NEGATIONS
        negated_alike = bool(ref & NEGATIONS) == bool(cand & NEGATIONS)
        presence = 0.5 * negated_alike + 0.5 * (len(findings & cand) / len(findings) if findings else 1.0)
    return {"presence": presence, "location": overlap(LOCATION_WORDS), "attribute": overlap(ATTRIBUTE_WORDS)}


def same_text(a: str, b: str) -> bool:
    return words(a) == words(b)
