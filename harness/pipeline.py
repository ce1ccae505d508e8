"""``harness run``: base model -> the method's pairs -> training -> evaluation -> store -> comparison.

Each stage writes an artifact under the run directory (``$HARNESS_HOME/runs/<run_id>/``) that the next
stage reads, so an interrupted run resumes from the last finished stage (``--run-id``)::

    pairs.jsonl           the method's preference pairs (its own builder, or the default text pairs)
    train/                checkpoints and the trained model (resumed from the last checkpoint)
    eval/                 the trained model's predictions and metrics (resumed per batch)

The base model's evaluation is a run of its own, reused by every later ``harness run`` with the same base
model, tasks, split and limit, so comparing methods costs one base evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.io import read_json, write_json
from harness.preferences import PreferencePair, read_pairs, write_pairs

log = logging.getLogger(__name__)

DEFAULT_TASKS = ("synth_vqa", "synth_report")
# the columns of the comparison table: the metrics papers report per family
HEADLINE = {"vqa": ("closed_accuracy", "open_recall"), "report": ("bleu", "rouge_l", "meteor", "hallucination_rate")}


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class RunConfig:
    """Everything ``harness run`` does; each field is also a CLI flag."""

    method: str = _opt("mmedpo", "preference method (harness methods lists them)")
    model: str = _opt("tiny", "base model spec: tiny, a model folder, llava:<path>...")
    tasks: tuple[str, ...] = _opt(DEFAULT_TASKS, "tasks: pairs from their train split, evaluation on test")
    data_dir: str | None = _opt(None, "data root for the real datasets (default: $HARNESS_DATA)")
    train_limit: int | None = _opt(600, "training items per task used to build pairs (None: the whole split)")
    eval_limit: int | None = _opt(None, "test items per task (None: the whole split)")
    eval_split: str = _opt("test", "split evaluated")
    batch_size: int = _opt(16, "generation batch size")
    seed: int = _opt(0, "seed of pair building, training and the bootstrap")
    epochs: float = _opt(1.0, "training epochs over the pairs")
    lr: float = _opt(1e-4, "learning rate (LoRA on the tiny model; use ~5e-6 full / 1e-5 LoRA for 7B models)")
    train_batch_size: int = _opt(8, "pairs per training step")
    lora: bool = _opt(True, "train LoRA adapters (peft) instead of all weights")
    lora_r: int = _opt(16, "LoRA rank")
    lora_alpha: int = _opt(32, "LoRA alpha")
    precision: str = _opt("fp32", "fp32 or bf16")
    max_length: int = _opt(512, "tokens per training row")
    options: dict[str, str] = _opt(None, "method options for its pair builder and loss (KEY=VALUE)")
    device: str | None = _opt(None, "torch device (default: cuda when available)")
    store: str | None = _opt(None, "results store path (default: $HARNESS_HOME/results.sqlite)")

    def __post_init__(self) -> None:
        self.options = dict(self.options or {})
        self.tasks = tuple(self.tasks)
        if not self.tasks:
            raise HarnessError("harness run needs at least one task")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise HarnessError(f"--{name.replace('_', '-')} must be positive, got {value}")


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    base_run_id: str
    table: list[dict[str, Any]]
    pairs: int
    trained_model: Path | None


def model_fingerprint(path: str | Path) -> str:
    """Identifies a model folder's weights cheaply: config plus the weight files' names and sizes."""
    path = Path(path)
    digest = hashlib.sha256()
    config = path / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def resolve_base_model(spec: str) -> Path:
    """A local folder for the base model: the tiny model is built and trained (once) when needed."""
    if spec == "tiny":
        from harness.models.tiny import ensure_tiny

        return Path(ensure_tiny())
    prefix, sep, rest = spec.partition(":")
    candidate = Path(rest if sep and prefix not in ("openai",) else spec).expanduser()
    if not candidate.is_dir():
        raise HarnessError(f"harness run trains the base model, so it needs a local model folder or 'tiny', got '{spec}'")
    return candidate


def run(config: RunConfig, *, run_id: str | None = None) -> RunOutcome:
    from harness.methods import get_method
    from harness.paths import runs_dir
    from harness.results.store import ResultsStore, new_run_id

    method_cls = get_method(config.method)  # unknown names fail before any work
    store = ResultsStore(config.store)
    run_id = run_id or new_run_id()
    run_dir = runs_dir() / run_id
    manifest = run_dir / "pipeline.json"
    if manifest.exists():
        saved = read_json(manifest)
        if saved.get("config", {}).get("method") != config.method:
            raise HarnessError(f"run '{run_id}' is a '{saved['config'].get('method')}' run, not '{config.method}'")
        log.info("resuming run %s", run_id)
    write_json(manifest, {"run_id": run_id, "config": _jsonable(config)})

    base_dir = resolve_base_model(config.model)
    base_name = f"{config.model}@{model_fingerprint(base_dir)}" if config.model == "tiny" else str(base_dir)
    base_run_id = evaluate_base(config, base_dir, base_name, store)

    method_options = {k: v for k, v in config.options.items() if k in method_cls.defaults}
    builder_options = {k: v for k, v in config.options.items() if k not in method_cls.defaults}
    method = method_cls(**method_options)
    pairs = build_pairs(config, method, base_dir, run_dir, builder_options)

    trained = train(config, method, pairs, base_dir, run_dir)
    eval_trained(config, trained, run_id, run_dir, base_name, store)
    table = comparison_table(store, base_run_id, run_id, config.tasks)
    return RunOutcome(run_id, run_dir, base_run_id, table, len(pairs), trained)


def _jsonable(config: RunConfig) -> dict[str, Any]:
    data = asdict(config)
    data["tasks"] = list(config.tasks)
    return data


def _eval_signature(config: RunConfig) -> dict[str, Any]:
    return {"tasks": sorted(config.tasks), "split": config.eval_split, "limit": config.eval_limit, "seed": config.seed}


def evaluate_base(config: RunConfig, base_dir: Path, base_name: str, store) -> str:
    """The base model's run on these tasks: reused from the store when one exists, else evaluated now."""
    signature = _eval_signature(config)
    for row in reversed(store.runs()):
        saved = row["config"]
        if row["model"] == base_name and saved.get("role") == "base" and saved.get("signature") == signature:
            log.info("base model: reusing evaluation run %s", row["run_id"])
            return row["run_id"]
    from harness.evaluation import evaluate
    from harness.models.hf import load_hf_model
    from harness.results.store import new_run_id

    model = load_hf_model(base_dir, device=config.device, name=base_name)
    run_id = new_run_id()
    log.info("evaluating the base model on %s", ", ".join(config.tasks))
    evaluate(model, list(config.tasks), split=config.eval_split, limit=config.eval_limit,
             batch_size=config.batch_size, data_dir=config.data_dir, store=store, seed=config.seed, run_id=run_id,
             run_config={"role": "base", "signature": signature, "base_model": base_name})
    return run_id


def default_text_pairs(task, samples, seed: int) -> list[PreferencePair]:
    """Ground truth preferred over an offline rule-based hallucination (harness.hallucinate), same image.

    The pairs every method without a pair builder of its own trains on (DPO and its relatives, as in the
    paper's DPO baseline: ground truth vs a dispreferred text).
    """
    import zlib

    from harness.hallucinate import hallucinate

    images = samples.cast_column("image", _undecoded_image())["image"]
    pairs = []
    for index, sample in enumerate(samples.remove_columns([c for c in ("image", "mask") if c in samples.column_names])):
        image = images[index]
        path = image.get("path") if isinstance(image, dict) else None
        if not path:
            raise HarnessError(f"task '{task.name}': sample {sample['id']} has no image file to train on")
        answer = str(sample["answer"]).strip()
        item_seed = zlib.crc32(f"{seed}:{sample['id']}".encode())
        pairs.append(PreferencePair(
            id=f"{task.name}-{sample['id']}", image=str(Path(path).resolve()), prompt=task.prompt(sample),
            chosen=answer, rejected=hallucinate(answer, seed=item_seed, question=str(sample["question"])),
            kind="text", source="rules-hallucination"))
    return pairs


def _undecoded_image():
    import datasets

    return datasets.Image(decode=False)


def build_pairs(config: RunConfig, method, base_dir: Path, run_dir: Path, options: dict[str, str]) -> list[PreferencePair]:
    """The method's pairs for every task's train split (cached in ``pairs.jsonl``), image paths absolute."""
    path = run_dir / "pairs.jsonl"
    if path.exists():
        pairs = list(read_pairs(path))
        log.info("pairs: reusing %d pairs from %s", len(pairs), path.name)
        return pairs
    from harness.methods import PairContext
    from harness.tasks import get_task

    model = None
    pooled: list[PreferencePair] = []
    for name in config.tasks:
        task = get_task(name)
        samples = task.load("train", data_dir=config.data_dir)
        if config.train_limit is not None and len(samples) > config.train_limit:
            samples = samples.shuffle(seed=config.seed).select(range(config.train_limit))
        if not method.has_pair_builder():
            pooled += default_text_pairs(task, samples, config.seed)
            continue
        if model is None and method.builder_needs_model(options):
            from harness.models.hf import load_hf_model

            model = load_hf_model(base_dir, device=config.device)
        out = run_dir / "pairs" / name
        context = PairContext(task=task, samples=samples, model=model, output_dir=out, seed=config.seed,
                              options=dict(options))
        for pair in method.build_pairs(context):
            pair.image = str((out / pair.image).resolve())
            if pair.rejected_image:
                pair.rejected_image = str((out / pair.rejected_image).resolve())
            pair.id = f"{name}-{pair.id}"
            pooled.append(pair)
    if not pooled:
        raise HarnessError(f"method '{config.method}' built no pairs for {', '.join(config.tasks)}")
    write_pairs(path, pooled)
    kinds = {k: sum(p.kind == k for p in pooled) for k in sorted({p.kind for p in pooled})}
    log.info("pairs: %d (%s)", len(pooled), ", ".join(f"{k} {v}" for k, v in kinds.items()))
    return pooled


def train(config: RunConfig, method, pairs: list[PreferencePair], base_dir: Path, run_dir: Path) -> Path:
    from harness.training import TrainConfig, train_preference
    from harness.training import checkpoint as ckpt

    out = run_dir / "train"
    final = out / "model"
    if (final / "config.json").exists():
        log.info("training: reusing the trained model in %s", final.relative_to(run_dir))
        return final
    train_config = TrainConfig(lr=config.lr, epochs=config.epochs, batch_size=config.train_batch_size,
                               lora=config.lora, lora_r=config.lora_r, lora_alpha=config.lora_alpha,
                               precision=config.precision, max_length=config.max_length, seed=config.seed,
                               save_every=20, warmup_ratio=0.1)
    resume = out.exists() and bool(ckpt.checkpoint_dirs(out))
    result = train_preference(base_dir, method, pairs, None, out, train_config, resume=resume)
    if result.model_path is None:
        raise HarnessError("training saved no full model (merge_lora is off)")
    return Path(result.model_path)


def eval_trained(config: RunConfig, model_dir: Path, run_id: str, run_dir: Path, base_name: str, store) -> None:
    from harness.evaluation import evaluate
    from harness.models.hf import load_hf_model

    if store.runs(run_ids=[run_id]):
        log.info("evaluation: run %s is already stored", run_id)
        return
    model = load_hf_model(model_dir, device=config.device, name=f"{base_name}+{config.method}")
    evaluate(model, list(config.tasks), split=config.eval_split, limit=config.eval_limit,
             batch_size=config.batch_size, data_dir=config.data_dir, store=store, seed=config.seed, run_id=run_id,
             output_dir=run_dir / "eval",
             run_config={"role": "method", "signature": _eval_signature(config), "method": config.method,
                         "base_model": base_name, "pipeline": _jsonable(config)})


def comparison_table(store, base_run_id: str, run_id: str, tasks: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows: the base model, this run, and earlier runs on the same tasks from the same base model."""
    from harness.results.compare import display_scale
    from harness.tasks import get_task

    base = store.get_run(base_run_id)
    signature = base["config"].get("signature")
    runs = [base] + [r for r in store.runs() if r["run_id"] != base_run_id and r["config"].get("role") == "method"
                     and r["config"].get("signature") == signature and r["base_model"] == base["model"]]
    runs.sort(key=lambda r: (r["run_id"] != base_run_id, r["run_id"] == run_id, r["created_at"]))
    results = store.results(run_ids=[r["run_id"] for r in runs], tasks=list(tasks))
    by_run: dict[str, dict[tuple[str, str], dict]] = {}
    for row in results:
        by_run.setdefault(row["run_id"], {})[(row["task"], row["metric"])] = row
    columns = [(t, m) for t in tasks for m in HEADLINE.get(get_task(t).family, ())]
    table = []
    for r in runs:
        label = "base" if r["run_id"] == base_run_id else (r["method"] or "?")
        if r["run_id"] == run_id:
            label += " (this run)"
        row: dict[str, Any] = {"run": label, "run_id": r["run_id"]}
        for task, metric in columns:
            cell = by_run.get(r["run_id"], {}).get((task, metric))
            scale = display_scale(metric)
            row[f"{task}/{metric}"] = None if cell is None else (
                f"{cell['value'] * scale:.1f} [{cell['ci_low'] * scale:.1f}, {cell['ci_high'] * scale:.1f}]"
                if cell["ci_low"] is not None else f"{cell['value'] * scale:.1f}")
        table.append(row)
    return table


def summary_json(outcome: RunOutcome) -> str:
    return json.dumps({"run_id": outcome.run_id, "base_run_id": outcome.base_run_id, "pairs": outcome.pairs,
                       "table": outcome.table}, indent=2)
