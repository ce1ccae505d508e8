"""The judge prompts, shipped as versioned package data (``mmedpo/prompts/*.txt``).

Each file starts with ``# version: N`` and comment lines (dropped), then a ``string.Template`` body with
``$name`` placeholders. The version enters the curation cache key, so editing a prompt re-curates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from harness.core.errors import HarnessError


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str

    def render(self, **values: str) -> str:
        try:
            return Template(self.template).substitute(**values)
        except KeyError as exc:
            raise HarnessError(f"prompt '{self.name}' needs a value for ${exc.args[0]}") from None


@cache
def load_prompt(name: str) -> Prompt:
    try:
        text = resources.files("mmedpo.prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"mmedpo prompt '{name}' not found (package data mmedpo/prompts/{name}.txt)") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# version:"):
        raise HarnessError(f"mmedpo/prompts/{name}.txt: first line must be '# version: N'")
    version = lines[0].split(":", 1)[1].strip()
    body = [line for line in lines[1:] if not line.startswith("#")]
    return Prompt(name, version, "\n".join(body).strip() + "\n")


def prompt_versions() -> dict[str, str]:
    return {name: load_prompt(name).version for name in ("pick_conflict", "rewrite", "relevance")}
