"""Prose measures of plain text: sentences, words, content words and their overlap, language.

Pure functions over text whose markdown is already removed (:mod:`sharpset.text.parse`), except
:func:`content_words`, which removes it itself. :mod:`sharpset.text.shape`'s columns are built on
them; :mod:`sharpset.evaluate.dimensions` and ``restyle`` use them directly.
"""

from __future__ import annotations

import functools
import re

from .parse import markdown_stripped

# The detector sees only the first LANGUAGE_MAX_CHARS characters of the prose: ~100 words decide the
# language reliably, and py3langid walks its byte DFA in pure Python (~0.2 us/byte), so this cap is
# what keeps detection to ~0.1 ms a response.
LANGUAGE_MAX_CHARS = 600
LANGUAGE_MIN_WORDS = 3

# ---------------------------------------------------------------------------------------------
# Sentences
# A terminator run (., ..., …, !, ?, combinations) with optional closing quotes/brackets, followed by
# whitespace (the next visible character is captured) or by the end of the unit. "3.14", "e.g.x"
# and "example.com" never match because no whitespace follows the dot.
_TERMINATOR = re.compile(r"(\.{2,}|…|[.!?]+)[\"'”’)\]]*(?=\s+(\S)|\s*$)"
                         r"|[。！？]+[」』”’）)]*")  # CJK full stops end a sentence with no space after
# After these, a "." never ends a sentence (titles and Latin abbreviations that introduce more text).
_ABBREV = frozenset("mr mrs ms mx dr prof sr jr st mt vs cf e.g eg i.e ie viz approx ca incl".split())
# ... and these only before a digit ("No. 5", "Fig. 3", "pp. 12"): "The answer is no. Then ..." splits.
_ABBREV_NUM = frozenset("no nos fig figs eq eqs vol vols pp ch sec secs ref refs".split())
_DOTTED = re.compile(r"(?:[a-z]\.)+[a-z]")  # u.s, e.g, a.m -- the final "." is the terminator
_HAS_ALNUM = re.compile(r"[^\W_]")
_PUNCT_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|_)+(?!\S)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# ---------------------------------------------------------------------------------------------
# Lexical overlap: content words = lower-cased alphanumeric tokens of length >= 2, not stopwords.
_TOKEN = re.compile(r"[^\W_]+(?:'(?!s\b)[^\W_]+)*")  # "smith's" -> "smith", "s" (too short)
STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each either else etc even ever every few for from further get gets got had hadn't has hasn't have
haven't having he he'd he'll he's her here here's hers herself him himself his how how's however i i'd
i'll i'm i've if in into is isn't it it's its itself just let let's like make may me might more most
much must mustn't my myself neither no nor not now of off often on once one only or other ought our
ours ourselves out over own per please rather really same shall shan't she she'd she'll she's should
shouldn't so some still such than that that's the their theirs them themselves then there there's these
they they'd they'll they're they've this those though through thus to too under until up upon us use
used using very via want was wasn't we we'd we'll we're we've well were weren't what what's when when's
where where's whether which while who who's whom whose why why's will with within without won't would
wouldn't yes yet you you'd you'll you're you've your yours yourself yourselves
""".split())



def split_sentences(s: str) -> list[str]:
    """Split one text unit (markdown already removed) into sentences.

    A boundary is a run of ``.``/``!``/``?``/``...``/``…`` (plus closing quotes/brackets) followed by
    whitespace or the end, *unless* the next character is a lower-case letter ("Wait... what"), or
    the run is a single ``.`` after an abbreviation in ``_ABBREV`` ("Dr.", "e.g.", "vs."), after a
    single letter ("J. Smith"), after a dotted acronym ("U.S."), or after a word in ``_ABBREV_NUM``
    ("No.", "Fig.", "pp.") before a digit. Decimals ("3.14") never split (no whitespace after the
    dot). Text after the last terminator (a list item without final punctuation) is a sentence of
    its own. ``。！？`` always end a sentence (no space follows them in CJK text). Segments without
    any letter or digit are dropped.
    """
    out, start = [], 0
    for m in _TERMINATOR.finditer(s):
        nxt = m.group(2)
        if nxt is not None:
            if nxt.islower():
                continue
            if m.group(1) == ".":
                j = s.rfind(" ", start, m.start())
                w = s[j + 1:m.start()].lstrip("([\"'“‘").lower()
                if (w in _ABBREV or (len(w) == 1 and w.isalpha()) or _DOTTED.fullmatch(w)
                        or (nxt.isdigit() and w in _ABBREV_NUM)):
                    continue
        seg = s[start:m.end()].strip()
        if _HAS_ALNUM.search(seg):
            out.append(seg)
        start = m.end()
    tail = s[start:].strip()
    if _HAS_ALNUM.search(tail):
        out.append(tail)
    return out


def count_words(s: str) -> int:
    """Whitespace-separated tokens that contain a letter or digit; each CJK character (Han, kana) is
    a word of its own, since Chinese and Japanese do not separate words with spaces."""
    if _CJK.search(s):
        return len(_CJK.findall(s)) + count_words(_CJK.sub(" ", s))
    return len(s.split()) - len(_PUNCT_TOKEN.findall(s))


def content_words(text: str) -> set[str]:
    """Lower-cased tokens of ``markdown_stripped(text)`` of length >= 2 that are not in STOPWORDS."""
    s = markdown_stripped(text).lower().replace("’", "'")
    return _content_words_plain(s)


def _content_words_plain(s: str) -> set[str]:
    return {t for t in set(_TOKEN.findall(s)) if len(t) >= 2 and t not in STOPWORDS}


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; 0.0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@functools.lru_cache(maxsize=1)
def _identifier():
    # py3langid: a maintained fork of langid.py; the model ships in the wheel (no download).
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) from py3langid; ("und", 0.0) under LANGUAGE_MIN_WORDS words."""
    if count_words(text) < LANGUAGE_MIN_WORDS:
        return "und", 0.0
    lang, p = _identifier().classify(text[:LANGUAGE_MAX_CHARS])
    return lang, round(float(p), 4)
