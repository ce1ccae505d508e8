"""One curation batch: the textual and visual dispreference of each (sample, kind), as a JSON record."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmedpo.config import CurationConfig
from mmedpo.keys import item_seed, safe_name

log = logging.getLogger(__name__)


class Curator:
    def __init__(self, context: Any, config: CurationConfig, judges: list[Any], folder: Path):
        from mmedpo.localize import get_localizer

        self.context = context
        self.config = config
        self.judges = judges
        self.folder = folder
        self.root = Path(context.output_dir)
        self._sources: dict[str, str] = {}  # source file -> its copy, relative to root
        self.generator = config.resolved_generator()
        self.localizer = get_localizer(config.localizer, **config.localizer_options) if config.visual_pairs else None
        self.scorer = None
        if config.text_pairs and config.resolved_relevance() == "consensus":
            from mmedpo.relevance import ConsensusScorer

            chosen = judges[:1] if config.single_judge else judges
            self.scorer = ConsensusScorer(chosen, max_rounds=config.max_rounds, retries=config.judge_retries)

    # -- helpers -------------------------------------------------------------------------------------
    def _prompt(self, sample: dict) -> str:
        task = self.context.task
        return task.prompt(sample) if hasattr(task, "prompt") else str(sample["question"])

    def _source(self, image: Any) -> str:
        """One copy of each source image, named by its content: the original file's bytes (no re-encoding)
        when the image came from a file, else a PNG of its pixels. Many questions about one image share it."""
        from harness.core.images import to_rgb
        from harness.curation.pairs import save_image

        filename = getattr(image, "filename", "") or ""
        if filename and os.path.isfile(filename):
            cached = self._sources.get(filename)
            if cached is None:
                cached = self._copy_source(Path(filename))
                self._sources[filename] = cached
            return cached
        rel = save_image(to_rgb(image), self.folder, "images/source")
        return (self.folder / rel).relative_to(self.root).as_posix()

    def _copy_source(self, source: Path) -> str:
        import hashlib
        import shutil

        data = source.read_bytes()
        path = self.folder / "images" / "source" / f"{hashlib.sha1(data).hexdigest()[:16]}{source.suffix.lower()}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            try:
                os.link(source, tmp)  # same file system: no second copy on disk
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        return path.relative_to(self.root).as_posix()

    def _save(self, image: Any, sub: str, name: str) -> str:
        from harness.core.images import to_rgb

        path = self.folder / "images" / sub / f"{safe_name(name)}.png"
        if not path.exists():
            # write-then-rename (atomic against a killed process) without fsync: images are cheap to redo
            # and fsyncing thousands of small files dominated the curation time
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            to_rgb(image).save(tmp, format="PNG")
            os.replace(tmp, path)
        return path.relative_to(self.root).as_posix()

    def _base(self, sample: dict, kind: str) -> dict[str, Any]:
        return {"sample": str(sample["id"]), "kind": kind, "prompt": self._prompt(sample),
                "chosen": str(sample["answer"]).strip()}

    # -- stages --------------------------------------------------------------------------------------
    def run_batch(self, todo: list[tuple[int, str]]) -> Iterator[dict[str, Any]]:
        samples = {i: self.context.samples[i] for i, _ in todo}
        text_indices = [i for i, k in todo if k == "text"]
        sampled: dict[int, list[str]] = {}
        greedy: dict[int, str] = {}
        if text_indices and self.generator == "sample-and-judge":
            from harness.curation.textpairs import greedy_answers
            from mmedpo.text import sample_answers

            if self.context.model is None:
                from harness.core.errors import HarnessError

                raise HarnessError("mmedpo text generator 'sample-and-judge' (the default) samples the target "
                                   "model, but none was given (harness curate --model ...), or use "
                                   "--option text_generator=rules")
            images = [samples[i]["image"] for i in text_indices]
            prompts = [self._prompt(samples[i]) for i in text_indices]
            answers = sample_answers(
                self.context.model, images, prompts, k=self.config.num_samples,
                seed=self.context.seed + text_indices[0], temperature=self.config.sample_temperature,
                max_new_tokens=self.config.max_new_tokens,
            )
            sampled = dict(zip(text_indices, answers))
            # one greedy answer per item: the base's own error distribution and the denial floor's first choice
            said = greedy_answers(self.context.model, images, prompts, max_new_tokens=self.config.max_new_tokens)
            greedy = dict(zip(text_indices, said))
        for index, kind in todo:
            sample = samples[index]
            if kind == "text":
                yield self.text_item(sample, sampled.get(index, []), greedy=greedy.get(index))
            else:
                yield self.visual_item(sample)

    def text_item(self, sample: dict, samples: list[str], greedy: str | None = None) -> dict[str, Any]:
        from harness.curation.errortypes import admits_denial, case_group, classify
        from mmedpo.text import judge_dispreference, truth_dispreference, verified_dispreference

        record = self._base(sample, "text")
        record["case"] = case_group(sample)
        record["denial_question"] = admits_denial(sample)  # the items the denial rule counts
        base = classify(greedy, sample) if greedy is not None else None
        if base is not None:
            record["base"] = {"greedy": greedy, **base.to_json()}
        # the default text pairs' per-item seed (harness.curation.textpairs), so that MMedPO's text pairs and DPO's
        # default pairs are the same pairs and a comparison isolates the visual pairs and the weights
        from harness.curation.textpairs import item_seed as text_seed

        seed = text_seed(self.context.seed, record["sample"])
        record["seed"] = seed
        picker = self.config.resolved_text_judge()
        if picker == "llm":
            made = judge_dispreference(self.judges[0], str(sample["question"]), record["chosen"], samples,
                                       seed=seed, retries=self.config.judge_retries)
        elif picker == "ground-truth":
            made = truth_dispreference(sample, record["chosen"], samples, seed=seed)
        else:
            made = verified_dispreference(sample, seed=seed)
        if made is None:
            record["skipped"] = ("no sample contradicts the truth and " if picker else "") + \
                "the injector made no hallucination the fact checker confirms"
            return record
        relevance = self.text_relevance(sample, record["chosen"], made)
        # what the judge failed to do, so the driver neither counts this item as judged nor caches it as done
        fallback = [name for name, fell in (("text", made.how == "rules-fallback"),
                                            ("relevance", relevance.source == "heuristic-fallback")) if fell]
        if fallback:
            record["fallback"] = fallback
        error = classify(made.rejected, sample)
        record.update(image=self._source(sample["image"]), rejected=made.rejected,
                      rejected_image=None, source=f"mmedpo-{made.how}", raw_score=relevance.score,
                      extra={"text": made.to_json(), "relevance": relevance.to_json(), "error": error.to_json()})
        if self.config.floor_applies() and record["denial_question"] and error.primary != "denial":
            from harness.curation.textpairs import denial_alternative

            record["denial_alternative"] = denial_alternative(sample, greedy, base, seed=seed)
        return record

    def text_relevance(self, sample: dict, chosen: str, made: Any) -> Any:
        """The judges' consensus, the severity of what ``made.rejected`` contradicts, or the edit-kind heuristic."""
        from mmedpo.relevance import Relevance, heuristic_score

        if self.scorer is not None:
            return self.scorer.score(str(sample["question"]), chosen, made.rejected, edits=made.edits)
        if self.config.resolved_relevance() == "heuristic":
            return Relevance(heuristic_score(chosen, made.rejected, made.edits, sample=sample), "heuristic")
        from harness.curation.factcheck import contradictions, severity

        found = made.contradictions if made.contradictions is not None else contradictions(made.rejected, sample)
        return Relevance(float(severity(found)) if found else 0.0, "factcheck")

    def visual_item(self, sample: dict) -> dict[str, Any]:
        from mmedpo.noise import apply_noise, noise_record

        record = self._base(sample, "visual")
        config = self.config
        # the global-noise ablation keeps the same samples and weights as local noise; only the noise differs
        from harness.curation.errortypes import case_group
        from mmedpo.localize import is_normal_film, normal_film_region

        record["case"] = case_group(sample)
        found = self.localizer.localize(sample, model=self.context.model, prompt=record["prompt"])
        if found is None and config.visual_items == "all" and is_normal_film(sample):
            # the release gives every item a visual pair: a normal film's region is a seeded lesion-sized one
            found = normal_film_region(sample["image"], seed=item_seed(self.context.seed, record["sample"]),
                                       confidence=config.normal_film_confidence)
        if found is None:
            record["skipped"] = f"localizer '{config.localizer}' found no lesion"
            return record
        confidence, source = found.confidence, found.source
        noised = apply_noise(sample["image"], found.map, mode=config.noise,
                             step=config.noise_step, seed=item_seed(self.context.seed, record["sample"]),
                             threshold=config.noise_threshold, schedule=config.noise_schedule)
        record.update(
            image=self._source(sample["image"]), rejected=record["chosen"],
            rejected_image=self._save(noised, "noised", record["sample"]),
            source=f"mmedpo-{source}-{config.noise}", raw_score=float(confidence),
            extra={"localizer": source, "region": "normal-film" if source == "normal-film" else "localizer",
                   "noise": config.noise, "noise_step": config.noise_step,
                   "region_share": float((found.map >= 0.5).mean()),
                   **noise_record(config.noise, config.noise_step, config.noise_schedule)},
        )
        return record
