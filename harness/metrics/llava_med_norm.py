"""LLaVA-Med's answer normalization, reproduced rule for rule.

LLaVA-Med (Li et al., 2023, "LLaVA-Med: Training a Large Language-and-Vision Assistant for Biomedicine
in One Day") scores Med-VQA with ``llava/eval/run_eval.py`` and ``llava/eval/eval_metrics/`` of
microsoft/LLaVA-Med (the v1.0 tree). Its ``normalize_word`` is the VQA-v2 answer processing:

1. each of 21 punctuation marks is deleted when it touches a space (or when the text has a digit-comma-
   digit group), otherwise replaced by a space; the test looks at the *original* text, the edits
   accumulate on a copy;
2. a ``.`` not followed by a digit is deleted, at most 32 times (the upstream code passes ``re.UNICODE``,
   whose value is 32, as ``re.sub``'s *count* argument);
3. the text is lowercased and split on whitespace; number words ``none``/``zero``..``ten`` become digits;
   the articles a/an/the are dropped; the VQA contraction table is applied; commas are removed.

Everything here is written from that description; the tests pin the quirks (2 and the order of 3).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")
_PERIOD_MAX = 32  # re.UNICODE passed positionally as count upstream
_ARTICLES = {"a", "an", "the"}
_NUMBERS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
# The VQA-v2 contraction table (key -> replacement), as used by LLaVA-Med. Keys with capitals can never
# match (the text is lowercased first) but are kept so the table reads like the original.
_CONTRACTIONS = dict(
    pair.split(" ")
    for pair in """aint ain't|arent aren't|cant can't|couldve could've|couldnt couldn't|couldn'tve couldn't've
couldnt've couldn't've|didnt didn't|doesnt doesn't|dont don't|hadnt hadn't|hadnt've hadn't've
hadn'tve hadn't've|hasnt hasn't|havent haven't|hed he'd|hed've he'd've|he'dve he'd've|hes he's|howd how'd
howll how'll|hows how's|Id've I'd've|I'dve I'd've|Im I'm|Ive I've|isnt isn't|itd it'd|itd've it'd've
it'dve it'd've|itll it'll|let's let's|maam ma'am|mightnt mightn't|mightnt've mightn't've
mightn'tve mightn't've|mightve might've|mustnt mustn't|mustve must've|neednt needn't|notve not've
oclock o'clock|oughtnt oughtn't|ow's'at 'ow's'at|'ows'at 'ow's'at|'ow'sat 'ow's'at|shant shan't
shed've she'd've|she'dve she'd've|she's she's|shouldve should've|shouldnt shouldn't
shouldnt've shouldn't've|shouldn'tve shouldn't've|somebody'd somebodyd|somebodyd've somebody'd've
somebody'dve somebody'd've|somebodyll somebody'll|somebodys somebody's|someoned someone'd
someoned've someone'd've|someone'dve someone'd've|someonell someone'll|someones someone's
somethingd something'd|somethingd've something'd've|something'dve something'd've|somethingll something'll
thats that's|thered there'd|thered've there'd've|there'dve there'd've|therere there're|theres there's
theyd they'd|theyd've they'd've|they'dve they'd've|theyll they'll|theyre they're|theyve they've
twas 'twas|wasnt wasn't|wed've we'd've|we'dve we'd've|weve we've|werent weren't|whatll what'll
whatre what're|whats what's|whatve what've|whens when's|whered where'd|wheres where's|whereve where've
whod who'd|whod've who'd've|who'dve who'd've|wholl who'll|whos who's|whove who've|whyll why'll
whyre why're|whys why's|wont won't|wouldve would've|wouldnt wouldn't|wouldnt've wouldn't've
wouldn'tve wouldn't've|yall y'all|yall'll y'all'll|y'allll y'all'll|yall'd've y'all'd've
y'alld've y'all'd've|y'all'dve y'all'd've|youd you'd|youd've you'd've|you'dve you'd've|youll you'll
youre you're|youve you've""".replace("\n", "|").split("|")
)


def normalize(text: object) -> str:
    """LLaVA-Med's ``normalize_word`` (see the module docstring); non-strings are ``str()``-ed first."""
    original = str(text)
    edited = original
    digit_group = _DIGIT_COMMA_DIGIT.search(original) is not None
    for mark in _PUNCT:
        touches_space = (mark + " " in original) or (" " + mark in original)
        edited = edited.replace(mark, "" if touches_space or digit_group else " ")
    edited = _PERIOD.sub("", edited, count=_PERIOD_MAX)
    words = []
    for word in edited.lower().split():
        word = _NUMBERS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words).replace(",", "")


def word_counts(text: str) -> Counter:
    """LLaVA-Med's ``split_sentence(text, 1)``: lowercased whitespace tokens with counts."""
    return Counter(text.lower().split())


class PRF(NamedTuple):
    """Precision, recall and F1 of a prediction against its reference, the one order every P/R/F helper returns."""

    precision: float
    recall: float
    f1: float


def llava_med_f1(prediction: str, reference: str) -> PRF:
    """LLaVA-Med's ``calculate_f1score`` -> (precision, recall, f1) over already-normalized inputs.

    Upstream normalizes again inside (done here too: the rule is not idempotent in corner cases).
    TP counts the *prediction's* occurrences of shared words, FP the prediction's other words, FN the
    reference's words absent from the prediction; an empty side or no shared word scores (0, 0, 0).
    """
    pred = word_counts(normalize(prediction))
    ref = word_counts(normalize(reference))
    if not pred or not ref:
        return PRF(0.0, 0.0, 0.0)
    tp = sum(count for word, count in pred.items() if word in ref)
    fp = sum(count for word, count in pred.items() if word not in ref)
    fn = sum(count for word, count in ref.items() if word not in pred)
    if tp == 0:
        return PRF(0.0, 0.0, 0.0)
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return PRF(precision, recall, 2 * precision * recall / (precision + recall))
