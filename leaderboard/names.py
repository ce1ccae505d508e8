"""Names as a reader sees them: invisible characters removed, and a skeleton under which look-alikes are equal.

A submitter can make a name that renders exactly like an existing one: ``tiny`` with a word joiner (U+2060),
a byte-order mark, a soft hyphen, a combining grapheme joiner, a Hangul filler, an Arabic letter mark or a
Mongolian vowel separator inside it; a Cyrillic ``і``; fullwidth ``ｔｉｎｙ``. ``strip_invisible`` removes the
characters that render as nothing (every format character, category Cf, plus the default-ignorable letters
and marks listed in ``INVISIBLE``); ``skeleton`` also applies NFKC (fullwidth and other compatibility forms
become plain ones) and maps the Cyrillic, Greek and Armenian letters that look like Latin ones
(``CONFUSABLES``, a hand-written subset of Unicode's confusables data for these scripts); ``name_key`` is the
skeleton case-folded, what the name-claim check compares.
"""

from __future__ import annotations

import unicodedata

# Default-ignorable code points outside category Cf (those are removed by category): they render as nothing.
INVISIBLE = frozenset(
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u180b\u180c\u180d\u180e\u180f"  # Mongolian free variation selectors, vowel separator
    "\u2800"  # Braille blank
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))  # variation selectors
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))  # variation selectors supplement
)

# Letters of other scripts that render like a Latin letter, both cases (a subset of Unicode's confusables).
_LOOKS_LATIN = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "ë", "һ": "h", "н": "h", "і": "i", "ї": "ï", "ӏ": "l",
    "ј": "j", "к": "k", "м": "m", "п": "n", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "ү": "y",
    "ԝ": "w", "х": "x", "ь": "b",
    "А": "A", "В": "B", "С": "C", "Е": "E", "Ё": "Ë", "Н": "H", "І": "I", "Ї": "Ï", "Ј": "J", "К": "K",
    "М": "M", "О": "O", "Р": "P", "Ԛ": "Q", "Ѕ": "S", "Т": "T", "У": "Y", "Ү": "Y", "Ԝ": "W", "Х": "X",
    "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o", "ρ": "p",
    "ϲ": "c", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Armenian
    "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ց": "g",
    # Latin letters that read as another Latin letter
    "ı": "i", "ɩ": "i", "ǀ": "l", "ɑ": "a", "ɡ": "g", "ʏ": "y",
}
CONFUSABLES = str.maketrans(_LOOKS_LATIN)


def invisible(char: str) -> bool:
    """True for a character that renders as nothing: a format character (Cf) or a default-ignorable one."""
    return char in INVISIBLE or unicodedata.category(char) == "Cf"


def strip_invisible(text: str) -> str:
    return "".join(c for c in text if not invisible(c))


def skeleton(name: str) -> str:
    """The name as it looks: NFKC, invisible characters removed, look-alike letters mapped to Latin ones,
    whitespace collapsed. Two names with one skeleton read alike (case kept: see ``name_key``)."""
    text = strip_invisible(unicodedata.normalize("NFKC", name))
    text = unicodedata.normalize("NFKC", text.translate(CONFUSABLES))
    return " ".join(text.split())


def name_key(name: str) -> str:
    """What the name-claim check compares: the skeleton, case-folded (``Tiny`` reads as ``tiny``)."""
    return skeleton(name).casefold()


def model_label(name: str) -> str:
    """A local run's model name without its weights' fingerprint: ``tiny@44dfce972b03b425`` reads ``tiny``."""
    head, sep, tail = name.rpartition("@")
    return head if sep and head and tail.isalnum() else name
