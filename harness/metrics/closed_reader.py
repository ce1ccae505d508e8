"""The closed-answer reader behind ``closed_accuracy``: what answer a model's reply gives to a closed question.

Models rarely answer "yes" alone: they write "Yes, the heart is enlarged.", "The answer is no.", "It is not
present.", "Probably not.", "Yes. The liver is not enlarged." This reader takes the reply and the reference
(never the question: metrics see predictions and references only) and decides whether the reply gives the
reference's answer and nothing against it.

Yes/no references (:func:`read_yes_no_answer`):

1. A refusal anywhere ("I cannot determine", "not sure", "unclear", "consult a radiologist") or an open
   alternative ("yes or no", "either") gives no answer.
2. The answer is the first of, clause by clause: a clause that answers alone ("Correct.", "Negative.",
   "Unlikely.", "Present.", "I don't think so.", "Probably not.", an elliptical reply such as "It is not.",
   "There is.", "It does not.", "Not seen.", "None seen.", "It is present."), or an answer word: "yes"
   (yeah, yep) anywhere, "no" (nope) when a clause ends after it ("Based on the image, no.", "The answer
   is no") or when it opens the reply ("No fracture.").
3. What follows the answer must not take it back: the other answer word ("Yes... no.", "No, but yes on
   second look", "yes yes no") or a clause that answers alone the other way ("Yes, it is not.", "No, it
   is.") makes the reply give no answer. Any other explanation is accepted, negated or not: "Yes. The
   liver is not enlarged." gives yes, "No. There is a nodule." gives no (whether such an explanation
   contradicts the answer depends on the question, which the reader does not see).

Other references (choice answers such as "Left", "MRI", "Right side", "non-contrast"), :func:`names_option`:
the reply names the reference's words ("On the left side." for Left, "Coronal." for Coronal plane: the
words side, plane, view, matter, weighted... may be left out) with no negation just before them ("not
the left", "non-contrast" for contrast), no alternative beside them ("left or right") and no "both",
"either" or "neither" unless the reference says so.

docs/metrics.md ("closed_accuracy") lists the cases it still gets wrong, measured on
tests/data/closed_answers/ by scripts/validate_closed_reader.py.
"""

from __future__ import annotations

import re

from harness.metrics.llava_med_norm import normalize

_YES_WORDS = frozenset({"yes", "yeah", "yep", "yup"})
_NO_WORDS = frozenset({"no", "nope", "nah"})
_BREAK = "|"  # a clause boundary in the token stream
# Words that answer only when they make a clause alone ("Correct.", "Unlikely.").
_ALONE = {
    "correct": "yes", "true": "yes", "positive": "yes", "affirmative": "yes", "certainly": "yes", "indeed": "yes",
    "sure": "yes", "absolutely": "yes", "definitely": "yes", "present": "yes",
    "false": "no", "incorrect": "no", "negative": "no", "unlikely": "no", "absent": "no", "none": "no",
}
_HEDGES = frozenset({"probably", "likely", "most", "possibly", "perhaps", "maybe"})
# Elliptical replies that echo the question: "It is (not) [present]", "There are", "It does not".
_SUBJECTS = frozenset({"it", "there", "they", "this", "that", "he", "she"})
_AUX = frozenset({"is", "are", "was", "were", "does", "do", "did", "has", "have"})
_PRESENCE = frozenset({"present", "seen", "visible", "noted", "identified", "evident", "observed", "detected",
                       "shown", "apparent", "there", "so"})
_INTERJECTIONS = frozenset({"well", "hmm", "um", "uh", "oh", "ok", "okay", "so"})
_REFUSAL = re.compile(
    r"\b(?:can ?not|unable to|not possible to|impossible to|difficult to|hard to)\s+(?:be\s+)?"
    r"(?:determine|determined|tell|told|say|answer|answered|assess|assessed|evaluate|evaluated|interpret|"
    r"provide|comment|identify|judge)\b"
    r"|\bnot (?:sure|certain)\b|\bunsure\b|(?:^|\bis )unclear\b|\bdo not know\b|\bconsult\b|\bas an ai\b"
    r"|\binsufficient (?:information|data|to)\b|\bindeterminate\b"
)
_OPEN_ALTERNATIVE = re.compile(r"\byes or no\b|\bno or yes\b|^either\b|\bcould be either\b")


def _tokens(text: object) -> list[str]:
    """Lowercased words with clause boundaries as ``|``; "n't" becomes "not"; an echoed "Question: ...?" goes."""
    t = str(text).lower()
    t = re.sub(r"^\s*question\s*:[^?]*\?", " ", t)
    t = re.sub(r"\bcan't\b", "can not", t).replace("cannot", "can not")
    t = re.sub(r"\bwon't\b", "will not", t)
    t = re.sub(r"n[’']t\b", " not", t)
    return [_BREAK if tok in ",.;:!?\n/" else tok for tok in re.findall(r"[a-z0-9]+|[,.;:!?\n/]", t)]


def _alone(clause: list[str]) -> str | None:
    """The answer of a clause that answers by itself ("It is not.", "Probably not.", "I believe so."), or None."""
    lead = 0
    while lead < len(clause) - 1 and clause[lead] in _INTERJECTIONS:
        lead += 1
    words = clause[lead:]
    if len(words) == 1 and words[0] in _ALONE:
        return _ALONE[words[0]]
    if words[-1:] == ["so"] and len(words) in (3, 5) and words[0] == "i" and words[-2] in ("think", "believe"):
        return "no" if "not" in words else "yes"
    if len(words) >= 2 and words[-1] == "not" and all(w in _HEDGES for w in words[:-1]):
        return "no"
    negated = "not" in words
    core = [w for w in words if w != "not"]
    if core and core[0] in _SUBJECTS:
        core = core[1:]
        if not core or core[0] not in _AUX:
            return None
        core = core[1:]
    elif core and core[0] == "none":
        core, negated = core[1:], True
    elif not negated or not core:
        return None
    if len(core) > 1 or (core and core[0] not in _PRESENCE) or words.count("not") > 1:
        return None
    return "no" if negated else "yes"


def _answer_word(tokens: list[str], i: int) -> str | None:
    """The answer token ``tokens[i]`` gives: any yes word; a no word that ends a clause or opens the reply."""
    tok = tokens[i]
    if tok in _YES_WORDS:
        return "yes"
    if tok in _NO_WORDS:
        ends_clause = i + 1 == len(tokens) or tokens[i + 1] == _BREAK or tokens[i + 1] in _NO_WORDS
        opens = all(t == _BREAK or t in _INTERJECTIONS for t in tokens[:i])
        return "no" if ends_clause or opens else None
    return None


def _answers(tokens: list[str]) -> list[str]:
    """Every answer the reply gives, in order: clauses that answer alone and answer words."""
    found, start = [], 0
    for end in [i for i, t in enumerate(tokens) if t == _BREAK] + [len(tokens)]:
        clause = tokens[start:end]
        alone = _alone(clause) if clause else None
        if alone is not None:
            found.append(alone)
        else:
            found += [a for i in range(start, end) if (a := _answer_word(tokens, i)) is not None]
        start = end + 1
    return found


def read_yes_no_answer(prediction: object) -> str | None:
    """"yes" or "no" when the reply gives that answer and does not take it back; None otherwise."""
    tokens = _tokens(prediction)
    text = " ".join(t for t in tokens if t != _BREAK)
    if not text or _REFUSAL.search(text) or _OPEN_ALTERNATIVE.search(text):
        return None
    answers = _answers(tokens)
    if not answers or any(a != answers[0] for a in answers[1:]):
        return None
    return answers[0]


# ---------------------------------------------------------------------------------------------- choices

# Words a reply may leave out of a reference ("Coronal." for "Coronal plane", "Right" for "Right side").
_OPTIONAL = frozenset({"side", "sides", "sided", "plane", "view", "matter", "weighted", "image", "scan", "film",
                       "in", "on", "of", "at", "to", "with", "patient", "patients"})
_NEGATORS = frozenset({"not", "no", "non", "without", "neither", "nor", "never"})
_ALTERNATIVES = frozenset({"or", "vs", "versus"})
_QUANTIFIERS = frozenset({"both", "either", "neither"})


def _choice_words(text: object) -> list[str]:
    t = re.sub(r"n[’']t\b", " not", str(text).lower())
    return re.findall(r"[a-z0-9]+", normalize(t).replace("'", " "))


def refuses(prediction: object) -> bool:
    """Whether the reply declines to answer ("I cannot determine...", "Not sure.", "Please consult...")."""
    return _REFUSAL.search(" ".join(t for t in _tokens(prediction) if t != _BREAK)) is not None


def names_option(prediction: object, reference: object) -> bool:
    """Whether the reply names the reference option and nothing that undoes it (see the module docstring)."""
    ref = _choice_words(reference)
    words = _choice_words(prediction)
    if not ref or not words or refuses(prediction):
        return False
    if words == ref:
        return True
    core = [w for w in ref if w not in _OPTIONAL] or ref
    if any(w in _QUANTIFIERS for w in words) and not any(w in _QUANTIFIERS for w in ref):
        return False
    for start in range(len(words) - len(core) + 1):
        if words[start:start + len(core)] != core:
            continue
        before = words[max(0, start - 3):start]
        after = words[start + len(core):start + len(core) + 1]
        if any(w in _NEGATORS for w in before) or any(w in _ALTERNATIVES for w in before[-1:] + after):
            continue
        return True
    return False
