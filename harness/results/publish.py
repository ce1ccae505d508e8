"""``harness push``: an upload-ready folder for a trained model, uploaded to the Hugging Face Hub when it can be.

``prepare(run)`` writes, under the run folder (``push/<kind>/``) or a chosen one, atomically:

- the model: the LoRA adapter (``adapter_model.safetensors``, ``adapter_config.json`` with
  ``base_model_name_or_path`` set to the base's Hub id, or null, never a machine path), or with ``merged`` the
  merged model (a fully fine-tuned model when the run trained without LoRA); weights are hard-linked where the
  file system allows, else copied;
- the processor's files (tokenizer, image processor, chat template), from the run's saved model;
- ``README.md``: the model card (``harness.results.card``), naming the repo in its loading snippet;
- ``results.json``: the evaluation's results and each task's data record (no machine paths).

``push(run, ...)`` prepares the folder, then uploads it through ``huggingface_hub.HfApi`` (``create_repo`` and
``upload_folder``) when ``HF_TOKEN`` is in the environment and the Hub answers. Without a token, offline
(``HF_HUB_OFFLINE``) or with the Hub unreachable it stops after preparing: ``PushOutcome.uploaded`` is False and
``reason`` says why. A Hub that refuses (a bad token, a repo that is not yours) is a one-line error.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import atomic_dir, read_json, write_json
from harness.results import card as cards

log = logging.getLogger(__name__)

TOKEN_ENV = "HF_TOKEN"
# The files AutoProcessor.save_pretrained writes: copied beside an adapter, so the repo loads on its own.
PROCESSOR_FILES = ("tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab*", "merges.txt", "*.model",
                   "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json",
                   "chat_template*")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
SKIPPED = (cards.CARD_FILE, ".*")


@dataclass
class PushOutcome:
    run: str
    kind: str
    folder: Path
    repo_id: str | None
    uploaded: bool
    reason: str = ""  # why the folder was not uploaded ('' when it was)
    url: str | None = None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data


def locate(run: str) -> tuple[Path, Path]:
    """``(run folder, training folder)`` of ``run``: a ``harness run`` id (its ``train/``), or the folder of a
    ``harness train`` / ``harness sft`` (``--output-dir``). One-line errors for anything else."""
    from harness.core.paths import check_run_id, runs_dir

    path = Path(run).expanduser()
    if os.sep in run or run.startswith((".", "~")) or (path.is_dir() and not (runs_dir() / run).is_dir()):
        if not path.is_dir():
            raise HarnessError(f"{run}: no such training folder")
        if (path / "pipeline.json").is_file():
            return path, path / "train"
        if (path / "train_config.json").is_file():
            return path, path
        raise HarnessError(f"{run}: not a training folder (no pipeline.json or train_config.json)")
    run_id = check_run_id(run)
    folder = runs_dir() / run_id
    if (folder / "pipeline.json").is_file():
        return folder, folder / "train"
    if (folder / "train_config.json").is_file():
        return folder, folder
    if (folder / "run.json").is_file():
        raise HarnessError(f"run '{run_id}' is an evaluation (harness eval): it trained no model to push")
    raise HarnessError(f"no harness run '{run_id}' (harness results lists runs; a harness train folder is "
                       "pushed by its path)")


def pick_model(train_dir: Path, merged: bool) -> tuple[Path, str]:
    """``(model folder, kind)``: the adapter by default, the merged (or full) model with ``merged``."""
    adapter, model = train_dir / "adapter", train_dir / "model"
    has_adapter = (adapter / "adapter_config.json").is_file()
    has_model = (model / "config.json").is_file()
    if merged or not has_adapter:
        if not has_model:
            what = "no merged model (it trained with --no-merge-lora: push the adapter)" if has_adapter \
                else "no trained model yet (its training has not finished)"
            raise HarnessError(f"{train_dir.parent.name if train_dir.name == 'train' else train_dir.name}: {what}")
        if not merged:
            log.info("no LoRA adapter (a full fine-tuning): pushing the full model")
        return model, "merged" if has_adapter else "full"
    return adapter, "adapter"


def card_facts(run_dir: Path, train_dir: Path, kind: str, *, repo_id: str | None,
               base_model_id: str | None) -> cards.CardFacts:
    """The card's facts: recomputed from a ``harness run`` folder, else the ones saved when training ended."""
    saved = cards.saved_facts(train_dir)
    if (run_dir / "pipeline.json").is_file():
        facts = cards.facts_from_run(run_dir, kind, base_model_id=base_model_id, repo_id=repo_id)
        if facts.pairs is None and saved:  # the pair cache was cleared since: the summary taken at training
            facts.pairs = saved.get("pairs")
        return facts
    if saved is None:
        raise HarnessError(f"{train_dir.name}: trained before model cards were saved (no {cards.FACTS_FILE}); "
                           "train it again to push it")
    facts = cards.CardFacts(**{**saved, "kind": kind, "repo_id": repo_id})
    if base_model_id:
        facts.base_model_id = base_model_id
    return facts


def prepare(run: str, *, merged: bool = False, output_dir: str | Path | None = None, repo_id: str | None = None,
            base_model_id: str | None = None) -> PushOutcome:
    """Write the upload-ready folder of ``run`` (see the module docstring); uploads nothing."""
    run_dir, train_dir = locate(run)
    source, kind = pick_model(train_dir, merged)
    facts = card_facts(run_dir, train_dir, kind, repo_id=repo_id, base_model_id=base_model_id)
    folder = Path(output_dir).expanduser() if output_dir is not None else run_dir / "push" / kind
    if folder.resolve() == source.resolve() or source.resolve() in folder.resolve().parents:
        raise HarnessError(f"--output-dir {folder}: inside the model folder it would copy")
    if folder.exists() and not folder.is_dir():
        raise HarnessError(f"--output-dir {folder}: a file, not a folder")

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        patterns = ADAPTER_FILES if kind == "adapter" else ("*",)
        for path in sorted(source.iterdir()):
            if path.is_file() and _matches(path.name, patterns) and not _matches(path.name, SKIPPED):
                _link_or_copy(path, tmp / path.name)
        if kind == "adapter":
            config = read_json(source / "adapter_config.json")
            config["base_model_name_or_path"] = facts.base_model_id  # never the folder it was trained from
            write_json(tmp / "adapter_config.json", config)
            processor = train_dir / "model"
            for path in sorted(processor.iterdir()) if processor.is_dir() else []:
                if path.is_file() and _matches(path.name, PROCESSOR_FILES):
                    shutil.copy2(path, tmp / path.name)
        write_json(tmp / "results.json", results_payload(facts))
        cards.write_card(tmp, facts)

    atomic_dir(folder, write)
    return PushOutcome(run=run, kind=kind, folder=folder, repo_id=repo_id, uploaded=False,
                       files=sorted(p.name for p in folder.iterdir()))


def results_payload(facts: cards.CardFacts) -> dict[str, Any]:
    """``results.json`` of the upload: the run, the base, the method, its results and data records."""
    return {"run_id": facts.run.get("run_id"), "method": facts.method.get("name"), "base_model": facts.base_model,
            "base_model_id": facts.base_model_id, "evaluated": facts.evaluation == "done",
            "split": facts.run.get("eval_split"), "results": facts.results, "data": facts.data}


def push(run: str, *, repo_id: str | None = None, merged: bool = False, private: bool = False,
         output_dir: str | Path | None = None, base_model_id: str | None = None) -> PushOutcome:
    """Prepare ``run``'s folder and upload it when a token and the Hub allow (see the module docstring)."""
    for value, flag in ((repo_id, "--repo-id"), (base_model_id, "--base-model")):
        if value is not None:
            check_repo_id(value, flag)
    token = os.environ.get(TOKEN_ENV) or None
    offline = _offline()
    reason = "" if token and not offline else (
        f"{TOKEN_ENV} is not set" if not token else "offline mode (HF_HUB_OFFLINE)")
    api = None
    if not reason:
        import huggingface_hub

        api = huggingface_hub.HfApi(token=token)
        if repo_id is None:
            try:
                user = api.whoami()["name"]
            except Exception as exc:  # noqa: BLE001 - sorted by _hub_failure: unreachable, or refused
                reason = _hub_failure(exc, "asking whom the token belongs to")
            else:
                repo_id = f"{user}/{default_repo_name(run, merged, base_model_id)}"
    outcome = prepare(run, merged=merged, output_dir=output_dir, repo_id=repo_id, base_model_id=base_model_id)
    if reason:
        outcome.reason = reason
        return outcome
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(outcome.folder), repo_type="model",
                          commit_message=f"harness push: {outcome.kind} of run {run}")
    except Exception as exc:  # noqa: BLE001 - sorted by _hub_failure: unreachable, or refused
        outcome.reason = _hub_failure(exc, f"uploading to {repo_id}", folder=outcome.folder)
        return outcome
    outcome.uploaded, outcome.url = True, str(url)
    return outcome


def default_repo_name(run: str, merged: bool = False, base_model_id: str | None = None) -> str:
    """The repo name ``push`` uses without ``--repo-id``: ``<base>-<method>-<run id>`` (the card's model name)."""
    run_dir, train_dir = locate(run)
    _, kind = pick_model(train_dir, merged)
    name = cards.model_name(card_facts(run_dir, train_dir, kind, repo_id=None, base_model_id=base_model_id))
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:96] or "model"


def check_repo_id(value: str, flag: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        raise HarnessError(f"{flag} {value[:80]!r}: not a Hub repo id ({str(exc).splitlines()[0][:160]})") from None
    if "/" not in value:
        raise HarnessError(f"{flag} {value[:80]!r}: a Hub repo id is 'owner/name'")
    return value


def _hub_failure(exc: Exception, doing: str, folder: Path | None = None) -> str:
    """The reason for a prepared-only push when the Hub cannot be reached; a refusal raises a one-line error."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status is not None and status < 500:
        where = f"; the folder is ready at {folder}" if folder else ""
        raise HarnessError(f"the Hub refused {doing} (HTTP {status}: {_first_line(exc)}){where}") from None
    if isinstance(exc, (OfflineModeIsEnabled, HfHubHTTPError, ConnectionError, TimeoutError)) or \
            _is_transport_error(exc):
        return f"the Hub is unreachable ({type(exc).__name__} while {doing})"
    raise exc


def _is_transport_error(exc: Exception) -> bool:
    """A failure to reach the Hub: httpx's (huggingface_hub 1.x and later) or requests' (earlier releases)."""
    kinds: list[type] = []
    try:
        import httpx

        kinds.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - huggingface_hub >= 1.0 depends on httpx
        pass
    try:
        import requests

        kinds += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    return isinstance(exc, tuple(kinds))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no second copy of a 14 GB model), or a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
