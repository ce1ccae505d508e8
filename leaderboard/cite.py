"""BibTeX for the About tab: the harness, each benchmark and each method, from the registries' citations.

The task and method registries hold one-line citations (``Rafailov, Sharma, Mitchell, Ermon, Manning, Finn.
Direct Preference Optimization: ... NeurIPS 2023. arXiv:2305.18290``). ``entry`` turns one into an ``@misc``
entry: the authors (the text before the first ". "), the title (the next sentence), the year, the arXiv id
and a URL where the line has them, and the whole line as the note, so an imperfect parse loses nothing the
registry says. The harness's own entry takes its version from the installed package (or the snapshot), its
URL from the package metadata (``[project.urls]``), or on a Hugging Face Space from ``SPACE_ID``; a field
nobody recorded is left out rather than made up. Nothing here imports the harness (a Space has none).
"""

from __future__ import annotations

import os
import re
from typing import Any

HARNESS_TITLE = "medpo-harness: a harness for preference optimization of medical vision-language models"
HARNESS_AUTHOR = "The medpo-harness contributors"
HARNESS_YEAR = "2026"
_ARXIV = re.compile(r"arXiv:\s*(\d{4}\.\d{4,5})", re.IGNORECASE)
_URL = re.compile(r"https://[A-Za-z0-9._~:/?#@!$&'*+,;=%-]+[A-Za-z0-9/]")
_YEAR = re.compile(r"\b(19|20)\d\d\b")


def harness_url() -> str:
    """The harness's URL: the installed package's project URL, else the Space this runs on, else ''."""
    try:
        from importlib import metadata

        urls = metadata.metadata("medpo-harness").get_all("Project-URL") or []
    except Exception:  # not installed (a Space): no package metadata
        urls = []
    found = [u.split(",", 1)[1].strip() for u in urls if "," in u]
    if found:
        return found[0]
    space = os.environ.get("SPACE_ID", "")
    return f"https://huggingface.co/spaces/{space}" if re.fullmatch(r"[\w.-]+/[\w.-]+", space) else ""


def harness_entry(version: str, url: str) -> str:
    fields = {"author": f"{{{HARNESS_AUTHOR}}}", "title": HARNESS_TITLE, "year": HARNESS_YEAR,
              "version": version, "url": url,
              "note": "Leaderboard of MMedPO, DPO and related methods on Med-VQA and report generation"}
    return _format("software", "medpo_harness", fields)


def entry(key: str, citation: str) -> str:
    """An ``@misc`` entry for a registry's one-line citation ('' when there is none)."""
    text = " ".join(str(citation or "").split())
    if not text:
        return ""
    sentences = [part.strip() for part in re.split(r"(?<=[A-Za-z0-9)])\. (?=\S)", text) if part.strip()]
    authors = sentences[0] if len(sentences) > 1 else ""
    title = sentences[1] if len(sentences) > 1 else sentences[0]
    arxiv = _ARXIV.search(text)
    url = _URL.search(text)
    year = _YEAR.search(" ".join(sentences[2:]) or text)
    fields = {"author": _authors(authors), "title": title.rstrip("."), "year": year.group(0) if year else "",
              "eprint": arxiv.group(1) if arxiv else "", "archiveprefix": "arXiv" if arxiv else "",
              "url": url.group(0) if url else (f"https://arxiv.org/abs/{arxiv.group(1)}" if arxiv else ""),
              "note": text}
    return _format("misc", key, fields)


def _authors(text: str) -> str:
    """``Zhu, Xia, Li`` -> ``Zhu and Xia and Li``; ``Ouyang et al`` -> ``Ouyang and others``."""
    names = [n.strip() for n in re.split(r",| and ", text.replace(" et al", ", others")) if n.strip()]
    return " and ".join(names)


def _format(kind: str, key: str, fields: dict[str, Any]) -> str:
    body = ",\n".join(f"  {name:<13} = {{{value if name == 'url' else _escape(value)}}}"
                      for name, value in fields.items() if value)
    return f"@{kind}{{{re.sub(r'[^A-Za-z0-9_:-]', '_', key)},\n{body}\n}}"


def _escape(value: Any) -> str:
    """Braces balanced and TeX specials escaped, so a citation never breaks the file it is pasted into."""
    text = str(value).replace("`", "'")  # entries are shown inside a markdown code block
    if text.startswith("{") and text.endswith("}") and text.count("{") == 1:  # an author kept verbatim
        return text
    return re.sub(r"([&%$#_{}])", r"\\\1", text)


def bibliography(board: Any) -> dict[str, str]:
    """``{"harness": entry, "benchmarks": entries, "methods": entries}`` for a ``data.Board``: every
    benchmark card and every method with a citation, methods on the board first."""
    benchmarks = [entry(card["task"], card.get("citation", "")) for card in board.cards]
    used = {str(r.get("method") or "") for r in board.approved_runs()}
    names = sorted(board.citations, key=lambda name: (name not in used, name))
    methods = [entry(name, board.citations[name]) for name in names]
    return {"harness": harness_entry(board.harness_version, board.harness_url),
            "benchmarks": "\n\n".join(e for e in benchmarks if e),
            "methods": "\n\n".join(e for e in methods if e)}
