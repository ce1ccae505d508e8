"""Model cards: a Hub-ready ``README.md`` for every model the harness trains.

``harness run`` writes one into ``train/adapter/`` (over PEFT's empty template) and one into ``train/model/``
(the merged model, which had none), first when training ends (without results, saying the evaluation is
pending) and again when the evaluation finishes; ``harness train`` and ``harness sft`` write theirs when
training ends (no evaluation: the card says so); ``harness push`` writes one into the upload folder.

A card is built with ``huggingface_hub``'s ``ModelCardData`` and ``EvalResult``, so its YAML front matter is
what the Hub reads:

- ``base_model``: the base's Hub id when it came from the Hub (a hub id, or a folder inside the local hub
  cache, ``models--org--name/snapshots/<rev>``), or one given explicitly; otherwise omitted, and the body
  names the base by its content identity (``<name>@<fingerprint>``). Never a machine path;
- ``library_name`` (``peft`` for an adapter, ``transformers`` for a full model), ``pipeline_tag``, ``tags``
  (the method and the methods it extends, ``medical``, ``preference-optimization``, ``lora``, the paper's
  ``arxiv:<id>``), ``datasets`` (the Hub ids of the evaluated data where the data record names one),
  ``license`` (the base model's card's, when it has one);
- ``model-index``: one entry per evaluated task and metric (task type, dataset, split, metric and value in
  the units ``results.json`` holds), with ``n`` and the 95% interval in the metric's ``args``.

The body gives the method and its citation, the base model, the pairs (per task: count, kinds, sources, and
a content digest), the training settings, the results with their intervals, how to load the model, and the
provenance (each task's data record: source, partial mark, content digest; the harness version and commit).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import atomic_write, read_json, write_json

log = logging.getLogger(__name__)

CARD_FILE = "README.md"
FACTS_FILE = "card_facts.json"  # beside train_config.json: what the cards said, for harness push
BASE_TAGS = ("medical", "preference-optimization")
KINDS = ("adapter", "merged", "full")  # a LoRA adapter, the LoRA-merged model, a fully fine-tuned model
PLACEHOLDER_REPO = "<this folder, or its Hub id>"
TASK_TYPES = {  # harness task family -> Hub task type and name
    "vqa": ("visual-question-answering", "Visual Question Answering"),
    "report": ("image-to-text", "Report generation"),
}
_ARXIV = re.compile(r"arXiv:\s*(\d{4}\.\d{4,5})", re.IGNORECASE)
_HUB_CACHE_REPO = re.compile(r"^models--(?P<org>[^/]+?)--(?P<name>[^/]+)$")


@dataclass
class CardFacts:
    """What a card says; built from a run folder (``facts_from_run``) or from a training (``facts_from_training``).

    ``results`` are the rows of the evaluation's ``results.json`` (natural units), ``data`` the data record of
    each evaluated task (``harness.tasks.identity``), ``pairs`` a ``pairs_summary``. ``base_model`` is the
    harness's identity of the base (``<name>@<fingerprint>``); ``base_model_id`` its Hub id when known.
    """

    kind: str
    method: dict[str, Any]
    base_model: str | None = None
    base_model_id: str | None = None
    license: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    total_steps: int | None = None
    pairs: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    evaluation: str = "none"  # "done", "pending" (harness run, before its evaluation) or "none"
    environment: dict[str, Any] = field(default_factory=dict)
    repo_id: str | None = None


# ------------------------------------------------------------------------------------------------ facts

def hub_id_of(spec: str | Path | None) -> str | None:
    """The Hub id a base model spec names: ``org/name`` itself (not a local path), or a folder inside the local
    hub cache (``.../models--org--name/snapshots/<revision>``); None for anything else."""
    if not spec:
        return None
    text = str(spec)
    prefix, sep, rest = text.partition(":")
    if sep and prefix.isalnum() and rest and not re.match(r"^[A-Za-z]:[\\/]", text):
        text = rest  # llava:<folder>, hf:<hub id>
    path = Path(text).expanduser()
    if path.exists():
        resolved = path.resolve()
        if resolved.parent.name == "snapshots":
            match = _HUB_CACHE_REPO.match(resolved.parent.parent.name)
            if match:
                return f"{match['org']}/{match['name']}"
        return None
    parts = text.split("/")
    if len(parts) == 2 and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", p) for p in parts) and ".." not in text:
        return text
    return None


def base_folder(spec: str | None) -> Path | None:
    """The local folder of a base model spec (``<folder>``, ``llava:<folder>``...), None when it has none."""
    if not spec:
        return None
    prefix, sep, rest = str(spec).partition(":")
    for candidate in ((rest,) if sep and rest else ()) + (str(spec),):
        path = Path(candidate).expanduser()
        if path.is_dir():
            return path
    return None


def base_license(folder: Path | None) -> str | None:
    """The ``license`` of the base model's own card (a Hub snapshot has one); None when it has none."""
    card = folder / CARD_FILE if folder is not None else None
    if card is None or not card.is_file():
        return None
    try:
        from huggingface_hub import ModelCard

        value = ModelCard.load(card, ignore_metadata_errors=True).data.to_dict().get("license")
    except Exception as exc:  # noqa: BLE001 - a card we cannot read only loses its license line
        log.debug("base model card not read (%s)", exc)
        return None
    return str(value) if isinstance(value, str) and value else None


def pairs_summary(pairs: list[Any], tasks: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Per task (read off the pair id's ``<task>-`` prefix; ``pairs`` when none matches): the count, kinds and
    sources; overall: the count, the weights' range, and the SHA-256 of the pairs' content (id, prompt, chosen,
    rejected, weight, kind, source and the images' file names, in id order; the folders images lie in are left
    out, so the same pairs elsewhere have the same digest)."""
    by_task: dict[str, dict[str, Counter]] = {}
    digest = hashlib.sha256()
    names = sorted(tasks, key=len, reverse=True)
    weights = []
    for pair in sorted(pairs, key=lambda p: str(p.id)):
        task = next((t for t in names if str(pair.id).startswith(f"{t}-")), "pairs")
        entry = by_task.setdefault(task, {"kinds": Counter(), "sources": Counter()})
        entry["kinds"][pair.kind] += 1
        entry["sources"][pair.source or "-"] += 1
        weights.append(float(pair.weight))
        content = {"id": pair.id, "prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected,
                   "weight": pair.weight, "kind": pair.kind, "source": pair.source,
                   "image": Path(pair.image).name if pair.image else None,
                   "rejected_image": Path(pair.rejected_image).name if pair.rejected_image else None}
        digest.update(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return {
        "total": len(pairs),
        "sha256": digest.hexdigest(),
        "weights": [min(weights), max(weights)] if weights else None,
        "tasks": {task: {"count": sum(e["kinds"].values()), "kinds": dict(sorted(e["kinds"].items())),
                         "sources": dict(e["sources"].most_common())} for task, e in sorted(by_task.items())},
    }


def method_tags(method_name: str) -> list[str]:
    """The method's name and those of the registered methods it extends (``mmedpo`` -> mmedpo, dpo)."""
    names = [method_name]
    try:
        from harness.methods import get_method

        cls = get_method(method_name)
    except Exception:  # noqa: BLE001 - a method whose package is gone still gets its own name as a tag
        return names
    from harness.methods.base import Method

    for parent in cls.__mro__[1:]:
        if isinstance(parent, type) and issubclass(parent, Method) and parent.name and parent.name not in names:
            names.append(parent.name)
    return names


def facts_from_run(run_dir: str | Path, kind: str, *, base_model_id: str | None = None,
                   repo_id: str | None = None) -> CardFacts:
    """The facts of a ``harness run`` folder: ``pipeline.json``, ``train/train_config.json``, the pairs the run
    trained on (its pair cache), and, once evaluated, ``eval/results.json`` and ``eval/run.json``."""
    run_dir = Path(run_dir)
    manifest = run_dir / "pipeline.json"
    if not manifest.is_file():
        raise HarnessError(f"{run_dir.name}: not a harness run (no pipeline.json)")
    pipeline = read_json(manifest)
    config = pipeline.get("config") or {}
    trained = _read_optional(run_dir / "train" / "train_config.json")
    pairs = _pairs_of(pipeline.get("pairs_dir"), config.get("tasks") or [])
    facts = CardFacts(
        kind=kind, method=dict(pipeline.get("method") or {"name": config.get("method")}),
        base_model=pipeline.get("base_model"), repo_id=repo_id,
        train=(trained.get("config") if trained else None) or config.get("train") or {},
        hparams=(trained or {}).get("hparams") or {}, total_steps=(trained or {}).get("total_steps"), pairs=pairs,
        run={"run_id": pipeline.get("run_id") or run_dir.name, "tasks": config.get("tasks") or [],
             "eval_split": config.get("eval_split"), "eval_limit": config.get("eval_limit"),
             "train_limit": config.get("train_limit"), "pair_seed": config.get("pair_seed"),
             "text_pairs": config.get("text_pairs"), "options": config.get("options") or {},
             "task_options": config.get("task_options") or {}, "base_run_id": pipeline.get("base_run_id"),
             "command": "harness run"},
    )
    saved = saved_facts(run_dir / "train")
    if saved is not None and base_model_id is None:
        # what the run's first card found, in the run's own working directory: a relative model folder
        # read again from elsewhere (harness push) must not pass for a hub id
        facts.base_model_id, facts.license = saved.get("base_model_id"), saved.get("license")
        facts.run["builtin_base"] = (saved.get("run") or {}).get("builtin_base")
    else:
        _set_base(facts, config.get("model"), base_model_id)
    results = _read_optional(run_dir / "eval" / "results.json")
    evaluated = _read_optional(run_dir / "eval" / "run.json")
    if results is not None:
        facts.results = list(results.get("results") or [])
        facts.data = dict((evaluated or {}).get("data") or {})
        facts.environment = dict((evaluated or {}).get("environment") or {})
        facts.evaluation = "done"
    else:
        facts.evaluation = "pending"
        facts.environment = _environment()
    return facts


def facts_from_training(output_dir: str | Path, kind: str, *, method: Any, pairs: list[Any], base_spec: str,
                        base_model: str | None, command: str = "harness train") -> CardFacts:
    """The facts of a training without an evaluation (``harness train``, ``harness sft``): the method, the base,
    the pairs and ``train_config.json``."""
    trained = _read_optional(Path(output_dir) / "train_config.json") or {}
    info = {"name": method.name, "citation": getattr(method, "citation", ""), "module": type(method).__module__}
    facts = CardFacts(kind=kind, method=info, base_model=base_model, train=trained.get("config") or {},
                      hparams=trained.get("hparams") or dict(getattr(method, "hparams", {})),
                      total_steps=trained.get("total_steps"), pairs=pairs_summary(pairs),
                      run={"command": command}, evaluation="none", environment=_environment())
    _set_base(facts, base_spec, None)
    return facts


def _set_base(facts: CardFacts, spec: str | None, explicit: str | None) -> None:
    from harness.models.registry import MODELS

    builtin = bool(spec) and spec in MODELS and spec != "hf"
    facts.base_model_id = explicit or (None if builtin else hub_id_of(spec))
    facts.license = base_license(None if builtin else base_folder(spec))
    facts.run["builtin_base"] = spec if builtin else None


def _pairs_of(folder: str | None, tasks: list[str]) -> dict[str, Any] | None:
    if not folder:
        return None
    path = Path(folder) / "pairs.jsonl"
    if not path.is_file():
        return None
    from harness.curation.preferences import read_pairs

    summary = pairs_summary(list(read_pairs(path)), tasks)
    summary["cache"] = Path(folder).name  # <method>-<key>: the cache is keyed by content, never by a path
    return summary


def _read_optional(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def _environment() -> dict[str, Any]:
    from harness.core.provenance import provenance

    return provenance()


# ------------------------------------------------------------------------------------------------ the card

def model_card(facts: CardFacts):
    """The ``huggingface_hub.ModelCard`` of ``facts`` (front matter from ``ModelCardData``, body in markdown)."""
    from huggingface_hub import ModelCard, ModelCardData

    if facts.kind not in KINDS:
        raise HarnessError(f"model card: kind must be one of {', '.join(KINDS)}, got {facts.kind!r}")
    method = facts.method.get("name") or "unknown"
    tags = [*method_tags(method), *BASE_TAGS, "vision-language", "medpo-harness"]
    if facts.kind in ("adapter", "merged"):
        tags.append("lora")
    tags += [f"arxiv:{paper}" for paper in _papers(facts.method.get("citation") or "")]
    eval_results = eval_results_of(facts)
    data = ModelCardData(
        base_model=facts.base_model_id, license=facts.license,
        library_name="peft" if facts.kind == "adapter" else "transformers",
        pipeline_tag="image-text-to-text", tags=list(dict.fromkeys(tags)), datasets=datasets_of(facts) or None,
        model_name=model_name(facts) if eval_results else None, eval_results=eval_results or None,
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{card_body(facts)}")


def model_name(facts: CardFacts) -> str:
    """The model's name in the model-index: the repo's name, else ``<base>-<method>-<run id>``."""
    if facts.repo_id:
        return facts.repo_id.split("/")[-1]
    base = (facts.base_model_id or facts.base_model or "model").split("/")[-1].split("@")[0]
    parts = [base, facts.method.get("name") or "trained", facts.run.get("run_id")]
    return "-".join(str(p) for p in parts if p)


def eval_results_of(facts: CardFacts) -> list[Any]:
    """One ``EvalResult`` per result row with a finite value: task type, dataset (its Hub id when the data record
    names one, else the task's name), split, metric and value as ``results.json`` holds them; ``n`` and the
    interval in the metric's ``args``."""
    from huggingface_hub import EvalResult

    out = []
    for row in facts.results:
        value = row.get("value")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        task = str(row.get("task"))
        task_type, task_name = _task_type(task)
        record = facts.data.get(task) or {}
        args: dict[str, Any] = {"n": row.get("n")}
        if _finite(row.get("ci_low")) and _finite(row.get("ci_high")):
            args.update(ci_low=row["ci_low"], ci_high=row["ci_high"], ci_level=0.95)
        args["higher_is_better"] = row.get("higher_is_better")
        out.append(EvalResult(
            task_type=task_type, task_name=task_name, dataset_type=_hub_repo(record) or task, dataset_name=task,
            dataset_split=record.get("split") or facts.run.get("eval_split"),
            dataset_config=_dataset_config(record), metric_type=str(row.get("metric")),
            metric_name=str(row.get("metric")), metric_value=float(value), metric_args=args,
        ))
    return out


def datasets_of(facts: CardFacts) -> list[str]:
    """The Hub ids of the evaluated data, where a task's data record names one (``hub:<repo>``,
    ``hub-snapshot:<repo>``)."""
    return sorted({repo for record in facts.data.values() if (repo := _hub_repo(record))})


def card_body(facts: CardFacts) -> str:
    method = facts.method.get("name") or "unknown"
    title = model_name(facts)
    what = {"adapter": "a LoRA adapter", "merged": "the LoRA-merged model",
            "full": "a fully fine-tuned model"}[facts.kind]
    lines = [f"# {title}", "",
             f"{what[0].upper()}{what[1:]} trained with **{method}** (preference optimization for a medical "
             f"vision-language model) by the medpo-harness (`{facts.run.get('command') or 'harness'}`).", ""]
    lines += _method_section(facts) + _base_section(facts) + _pairs_section(facts) + _training_section(facts)
    lines += _results_section(facts) + _loading_section(facts) + _provenance_section(facts)
    return "\n".join(lines).rstrip() + "\n"


def _method_section(facts: CardFacts) -> list[str]:
    info = facts.method
    lines = ["## Method", "", f"- method: `{info.get('name')}`"
             + (f" (module `{info['module']}`" + (f", version {info['version']})" if info.get("version") else ")")
                if info.get("module") else "")]
    if info.get("citation"):
        lines.append(f"- citation: {info['citation']}")
        lines += [f"- paper: https://arxiv.org/abs/{paper}" for paper in _papers(info["citation"])]
    if facts.hparams:
        lines.append("- loss hyperparameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(facts.hparams.items())))
    return lines + [""]


def _base_section(facts: CardFacts) -> list[str]:
    lines = ["## Base model", ""]
    if facts.base_model_id:
        lines.append(f"- Hub id: [{facts.base_model_id}](https://huggingface.co/{facts.base_model_id})")
    else:
        builtin = facts.run.get("builtin_base")
        why = (f"the harness's built-in `{builtin}` model, built locally (`harness eval --model {builtin}` builds "
               "it)" if builtin else "a local model folder whose Hub id is not known (`harness push --base-model ID` "
               "names it)")
        lines.append(f"- not on the Hub: {why}, so `base_model` is left out of the metadata")
    if facts.base_model:
        lines.append(f"- content identity: `{facts.base_model}` (name @ SHA-256 of its weights, configurations and "
                     "tokenizer files)")
    if facts.license:
        lines.append(f"- license: `{facts.license}`, from the base model's card")
    return lines + [""]


def _pairs_section(facts: CardFacts) -> list[str]:
    pairs = facts.pairs
    lines = ["## Preference pairs", ""]
    if not pairs:
        return lines + ["The pairs this model was trained on are no longer where the run left them.", ""]
    lines += ["| task | pairs | kinds | sources |", "|---|---|---|---|"]
    for task, entry in pairs["tasks"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in entry["kinds"].items())
        sources = ", ".join(f"{k} {v}" for k, v in list(entry["sources"].items())[:4])
        more = len(entry["sources"]) - 4
        lines.append(f"| {task} | {entry['count']} | {kinds} | {sources}{f' (+{more} more)' if more > 0 else ''} |")
    lines += ["", f"- {pairs['total']} pairs in all; content SHA-256 `{pairs['sha256']}` (text, weights, kinds and "
              "image file names, in id order)"]
    if pairs.get("weights") and pairs["weights"][0] != pairs["weights"][1]:
        lines.append(f"- pair weights from {pairs['weights'][0]:.4g} to {pairs['weights'][1]:.4g}")
    if pairs.get("cache"):
        lines.append(f"- pair cache `{pairs['cache']}` (keyed by the base model, method, builder options and the "
                     "training items' content)")
    run = facts.run
    if run.get("train_limit") is not None or run.get("pair_seed") is not None:
        lines.append(f"- training items per task: {run.get('train_limit') or 'all'}; data seed {run.get('pair_seed')}"
                     + (f"; default text pairs: `{run['text_pairs']}`" if run.get("text_pairs") else ""))
    return lines + [""]


def _training_section(facts: CardFacts) -> list[str]:
    lines = ["## Training settings", ""]
    if facts.total_steps is not None:
        lines.append(f"{facts.total_steps} optimizer steps. The run's `TrainConfig`:")
        lines.append("")
    shown = {k: v for k, v in sorted(facts.train.items()) if not _looks_like_path(k, v)}
    if shown:
        lines += ["| option | value |", "|---|---|"]
        lines += [f"| `{k}` | `{_plain(v)}` |" for k, v in shown.items()]
    extra = {k: v for k, v in (("method options", facts.run.get("options")),
                               ("task options", facts.run.get("task_options"))) if v}
    if extra:
        lines.append("")
        lines += [f"- {k}: `{json.dumps(v, sort_keys=True)}`" for k, v in extra.items()]
    return lines + [""]


def _results_section(facts: CardFacts) -> list[str]:
    lines = ["## Evaluation", ""]
    if facts.evaluation == "pending":
        return lines + ["Not evaluated yet: the run's evaluation had not finished when this card was written; "
                        "`harness run --run-id ...` finishes it and rewrites the card.", ""]
    if facts.evaluation != "done" or not facts.results:
        return lines + ["Not evaluated: this training ran without an evaluation, so the card holds no results. "
                        "`harness eval --model <this folder> --tasks ...` evaluates it.", ""]
    run = facts.run
    lines += [f"Run `{run.get('run_id')}`, split `{run.get('eval_split')}`. Values in natural units (rates from 0 "
              "to 1) with 95% bootstrap intervals over the test items; n is the number of items the metric "
              "scored.", "", "| task | metric | value | 95% interval | n | better |", "|---|---|---|---|---|---|"]
    for row in facts.results:
        interval = (f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
                    if _finite(row.get("ci_low")) and _finite(row.get("ci_high")) else "-")
        value = f"{row['value']:.4f}" if _finite(row.get("value")) else "-"
        better = {True: "higher", False: "lower"}.get(row.get("higher_is_better"), "-")
        lines.append(f"| {row.get('task')} | {row.get('metric')} | {value} | {interval} | {row.get('n')} | {better} |")
    partial = {t: r["partial"] for t, r in facts.data.items() if r.get("partial")}
    if partial:
        lines += ["", "**Partial test set** (not comparable with scores on the official split): "
                  + "; ".join(f"{t}: {why}" for t, why in sorted(partial.items()))]
    if run.get("base_run_id"):
        lines += ["", f"The base model's evaluation on the same items is run `{run['base_run_id']}`."]
    return lines + [""]


def _loading_section(facts: CardFacts) -> list[str]:
    repo = facts.repo_id or PLACEHOLDER_REPO
    base = facts.base_model_id or "<the base model's folder>"
    lines = ["## How to load it", "", "```python"]
    if facts.kind == "adapter":
        lines += ["from peft import PeftModel",
                  "from transformers import AutoModelForImageTextToText, AutoProcessor", "",
                  f'base = AutoModelForImageTextToText.from_pretrained("{base}")',
                  f'model = PeftModel.from_pretrained(base, "{repo}")',
                  f'processor = AutoProcessor.from_pretrained("{repo}")',
                  "model = model.merge_and_unload()  # optional: the merged model answers exactly as the adapter does"]
    else:
        lines += ["from transformers import AutoModelForImageTextToText, AutoProcessor", "",
                  f'model = AutoModelForImageTextToText.from_pretrained("{repo}")',
                  f'processor = AutoProcessor.from_pretrained("{repo}")']
    tasks = ",".join(facts.run.get("tasks") or ["vqa_rad"])
    lines += ["```", "", f"or with the harness: `harness eval --model <folder> --tasks {tasks}`"
              + (" (an adapter: `--model <base> --adapter <folder>`)" if facts.kind == "adapter" else "") + ".", ""]
    return lines


def _provenance_section(facts: CardFacts) -> list[str]:
    lines = ["## Provenance", ""]
    env = facts.environment
    if env.get("harness_version") or env.get("git_commit"):
        lines.append(f"- medpo-harness {env.get('harness_version') or '?'}, commit `{env.get('git_commit') or '?'}`")
    versions = env.get("versions") or {}
    if versions:
        lines.append("- libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    if facts.data:
        lines += ["", "| task | split | version | source | items | content SHA-256 | test set |",
                  "|---|---|---|---|---|---|---|"]
        for task, record in sorted(facts.data.items()):
            source = record.get("data_source") or record.get("source") or "-"
            items = f"{record.get('n')}" + (f" of {record['expected_n']}" if record.get("expected_n") else "")
            test_set = f"partial ({record['partial']})" if record.get("partial") else "full"
            lines.append(f"| {task} | {record.get('split')} | {record.get('version')} | {source} | {items} | "
                         f"`{str(record.get('content_sha256') or '')[:16]}` | {test_set} |")
    return lines + [""]


def _papers(citation: str) -> list[str]:
    return list(dict.fromkeys(_ARXIV.findall(citation)))


def _task_type(task: str) -> tuple[str, str]:
    try:
        from harness.tasks import get_task

        family = get_task(task).family
    except Exception:  # noqa: BLE001 - a task whose plugin is gone keeps its results, typed generically
        family = ""
    return TASK_TYPES.get(family, ("image-text-to-text", "Image-text-to-text"))


def _hub_repo(record: dict[str, Any]) -> str | None:
    source = str(record.get("data_source") or "")
    for prefix in ("hub-snapshot:", "hub:", "hf://"):
        if source.startswith(prefix) and hub_id_of(source[len(prefix):]) == source[len(prefix):]:
            return source[len(prefix):]
    return None


def _dataset_config(record: dict[str, Any]) -> str | None:
    options = record.get("options") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(options.items())) or None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _looks_like_path(key: str, value: Any) -> bool:
    """Settings that hold a machine path (``ref_cache``): named in the body only by whether they were set."""
    return isinstance(value, str) and (value.startswith(("/", "~")) or "\\" in value or key.endswith(("_cache", "_dir")))


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)


# ------------------------------------------------------------------------------------------------ writing

def write_card(folder: str | Path, facts: CardFacts) -> Path:
    """Write ``facts``' card as ``folder/README.md`` atomically (over PEFT's template, when there is one)."""
    path = Path(folder) / CARD_FILE
    text = str(model_card(facts))
    with atomic_write(path) as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return path


def write_run_cards(run_dir: str | Path) -> list[Path]:
    """The cards of a ``harness run``'s trained models (``train/adapter``, ``train/model``), from its folder."""
    train = Path(run_dir) / "train"
    lora = (train / "adapter" / "adapter_config.json").is_file()
    written = []
    for folder, kind in ((train / "adapter", "adapter"), (train / "model", "merged" if lora else "full")):
        if (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file():
            facts = facts_from_run(run_dir, kind)
            written.append(write_card(folder, facts))
    if written:
        save_facts(train, facts)
    return written


def write_training_cards(output_dir: str | Path, *, method: Any, pairs: list[Any], base_spec: str,
                         base_model: str | None, command: str = "harness train") -> list[Path]:
    """The cards of a training without an evaluation (``harness train``, ``harness sft``)."""
    output_dir = Path(output_dir)
    lora = (output_dir / "adapter" / "adapter_config.json").is_file()
    written = []
    for folder, kind in ((output_dir / "adapter", "adapter"), (output_dir / "model", "merged" if lora else "full")):
        if folder.is_dir():
            facts = facts_from_training(output_dir, kind, method=method, pairs=pairs, base_spec=base_spec,
                                        base_model=base_model, command=command)
            written.append(write_card(folder, facts))
    if written:
        save_facts(output_dir, facts)
    return written


def base_identity(spec: str, model: Any) -> str:
    """``<name>@<fingerprint>`` of a loaded base model, as ``harness run`` names its base: the registered name,
    else the folder's (or hub id's) last part."""
    from harness.models.registry import MODELS

    label = spec if spec in MODELS and spec != "hf" else Path(str(getattr(model, "path", None) or spec)).name
    return f"{label}@{model.fingerprint()}"


def save_facts(train_dir: Path, facts: CardFacts) -> None:
    """``card_facts.json``: the facts the cards were written from (the pair summary, the base), which
    ``harness push`` reads when the pair cache has gone or the folder is not a ``harness run``'s."""
    data = asdict(facts)
    for key in ("kind", "repo_id"):
        data.pop(key)
    write_json(Path(train_dir) / FACTS_FILE, data)


def saved_facts(train_dir: Path) -> dict[str, Any] | None:
    path = Path(train_dir) / FACTS_FILE
    return read_json(path) if path.is_file() else None
