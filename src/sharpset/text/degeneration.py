"""Degeneration and health of one answer: pure functions of its text (and optional token ids).

Used by the ``tag`` stage (through :func:`sharpset.signals.lm_signals`), by ``curate``'s gates and
by ``eval``'s always-on ``health`` suite, so everything here is model-free, deterministic and fast
(tens of microseconds to a few milliseconds per answer; no function is worse than O(n log n) in the
answer's length).

Why these columns (issue 13): the embedded 135M model's Magpie pool was dominated by answers that
ran to the token limit in a loop ("a placebo is a placebo is ..."), and a set curated from such a
pool teaches the loops. A loop is visible without any model: one long stretch of the answer occurs
twice, few distinct n-grams, text that compresses very well.

Words: :func:`words` splits lower-cased text into word tokens (``\\w+``), single punctuation marks
and single CJK characters (Chinese and Japanese have no spaces), so ``", , , ,"`` loops and CJK
loops count as well as English ones.

Columns of :func:`health` (exact definitions in the functions' docstrings; types in
:data:`HEALTH_COLUMNS`):

- ``n_words``, ``n_chars``;
- ``repeat_span_words`` / ``repeat_share``: longest word sequence that occurs at least twice
  (occurrences may overlap) and its share of the answer's words; ``repeat_span_tokens`` /
  ``repeat_share_tokens`` the same over token ids when they are given;
- ``distinct_1``, ``distinct_2``, ``distinct_3`` (Li et al., arXiv:1510.03055);
- ``compression_ratio``: UTF-8 bytes / zlib-compressed bytes;
- ``loop``: the documented rule :func:`is_loop`;
- ``ends_clean`` and ``complete``: :func:`ends_clean`, and the finish reason when known;
- ``refusal``: :func:`is_refusal`; ``pseudo_refusal``: :func:`is_pseudo_refusal` (declines or
  disclaims, then helps anyway);
- with a prompt: ``lang_prompt``, ``lang_response``, ``lang_match``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Hashable, Sequence

import numpy as np

from sharpset.text.shape import detect_language

HEALTH_VERSION = 2  # 2: pseudo_refusal (issue 20)

HEALTH_COLUMNS: dict[str, type] = {
    "n_words": int, "n_chars": int, "repeat_span_words": int, "repeat_share": float,
    "distinct_1": float, "distinct_2": float, "distinct_3": float, "compression_ratio": float,
    "loop": bool, "ends_clean": bool, "complete": bool, "refusal": bool, "pseudo_refusal": bool,
}
TOKEN_COLUMNS: dict[str, type] = {"repeat_span_tokens": int, "repeat_share_tokens": float}
PROMPT_COLUMNS: dict[str, type] = {"lang_prompt": str, "lang_response": str, "lang_match": bool}

# --- loop rule (is_loop). Thresholds set by reading answers, not fitted: on the 80 hand-written good
# answers of the judge fixture (experiments/judge_fixture.py) the largest repeat_share is 0.12 and the
# largest repeat_span_words 6, while the looping answers of the embedded SmolLM2's Magpie pool (issue
# 13) repeat stretches of 20-300 words and cover 40-95 % of the answer. A list that honestly repeats
# a pattern ("1. **X**: ... 2. **Y**: ...") repeats short spans (< 10 words) many times, which the
# span floor keeps out.
LOOP_MIN_SPAN_WORDS = 12  # a repeated stretch shorter than this is ordinary phrasing or a list pattern
LOOP_MIN_SHARE = 0.25  # ... and it must cover at least this share of the answer
LOOP_MIN_WORDS_FOR_RATIO = 60  # zlib's ~10-byte overhead makes ratios of short texts meaningless
LOOP_MAX_DISTINCT_3 = 0.5  # with at least LOOP_MIN_WORDS_FOR_RATIO words: half the trigrams repeat
LOOP_MIN_COMPRESSION = 4.0  # prose compresses ~2-2.8x; a loop of a short unit compresses > 5x

# --- refusal phrases (is_refusal). The usual markers used to strip refusals from instruction data
# (e.g. the "unfiltered" WizardLM/ShareGPT cleaning lists); looked for only near the start, where a
# refusal states itself, so an answer that mentions "I cannot stress enough" deep inside is not one.
REFUSAL_PHRASES = (
    "i'm sorry, but i can", "i am sorry, but i can", "i'm sorry, i can", "sorry, but i can't",
    "sorry, but i cannot", "i apologize, but", "i apologise, but", "i can't help with", "i cannot help with",
    "i can't assist", "i cannot assist", "i can't provide", "i cannot provide", "i can't fulfill",
    "i cannot fulfill", "i can't comply", "i cannot comply", "i'm unable to", "i am unable to",
    "i'm not able to", "i am not able to", "i won't be able to", "as an ai language model",
    "as an ai, i", "as a language model", "i must decline", "i'm not comfortable", "i am not comfortable",
    "it is not appropriate for me", "it's not appropriate for me", "i cannot and will not",
)
REFUSAL_WINDOW = 240  # characters from the start of the answer searched for a refusal phrase
# --- pseudo-refusals (is_pseudo_refusal): the answer opens by declining or disclaiming ("I'm sorry for
# any misunderstanding, but as an AI designed to assist with baking ... I don't have the capability
# ...") and then helps anyway ("However, I can certainly help with that!"). Issue 20 found 4 of the
# quickstart's 16 curated rows of this shape (2 of 16 random ones): the completeness gate enriches
# them (such answers are short, so they end before the token limit) and the tuned base copied the
# opening. Phrases read off those rows and SmolLM2's Magpie pool; looked for near the start only.
DISCLAIMER_PHRASES = REFUSAL_PHRASES + (
    "as an ai", "i'm sorry for any", "i am sorry for any", "i apologize for any", "i apologise for any",
    "i'm sorry for the confusion", "i'm sorry, but", "i am sorry, but", "sorry for any misunderstanding",
    "i don't have the capability", "i do not have the capability", "i don't have the ability",
    "i do not have the ability", "i don't have access", "i do not have access", "i don't have personal",
    "i do not have personal", "i don't have real-time", "i can't directly", "i cannot directly",
    "i'm not capable", "i am not capable", "i'm just an ai", "i am just an ai",
)
# the turn to helping after the disclaimer, within a sentence: "However, I can ...", "but here's ..."
_PIVOT = re.compile(r"\b(?:however|but|that said|nevertheless|instead|still)\b[^.!?\n]{0,80}?"
                    r"\b(?:i can(?!'t|not| not)|i could(?!n't| not)|i'd be|i would be|i'll|i will|here(?:'s| is| are)|let me|you can|"
                    r"we can|below|the following)", re.IGNORECASE)
PSEUDO_REFUSAL_MIN_WORDS = 60  # a disclaimer followed by this many words is an answer, not a refusal
# An answer that *opens* by apologising for a confusion or a mistake nobody made ("I'm sorry for the
# confusion. The problem is about ...") is this shape too, pivot or not, however short: in a first turn
# it answers nothing. Issue 20's quickstart kept one such constraint row (41 words, no pivot) and the
# tuned base opened 10 of 40 answers with it. Looked for in the first APOLOGY_OPENING_CHARS only.
APOLOGY_OPENINGS = re.compile(
    r"^\W{0,3}(?:i'?m|i am|we'?re|we|my|i)?\s*(?:so\s+|very\s+|truly\s+)?(?:sorry|apologi[sz]e|apologies)\b"
    r"[^.!?\n]{0,40}?\b(?:confusion|misunderstanding|mistake|error|oversight|mix-up)", re.IGNORECASE)
APOLOGY_OPENING_CHARS = 80

# health gates (issue 13; curate's ``gates``, constrain's ``gates``): gate -> (health column, value that fails it)
GATE_COLUMNS = {"empty": ("n_words", 0), "loop": ("loop", True), "incomplete": ("complete", False),
                "refusal": ("refusal", True), "pseudo_refusal": ("pseudo_refusal", True),
                "language_mismatch": ("lang_match", False)}


def failed_gates(h: dict, gates) -> list[str]:
    """The ``gates`` a row's health columns ``h`` (:func:`health`) fail; a column it lacks fails nothing."""
    return [g for g in gates if g in GATE_COLUMNS and GATE_COLUMNS[g][0] in h
            and h[GATE_COLUMNS[g][0]] == GATE_COLUMNS[g][1]]

# Language match: a detection counts only when py3langid is this sure of both texts; below it (short
# prompts, code, lists of names) lang_match is None -- unknown, never a guess.
LANG_MIN_CONFIDENCE = 0.9

_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")
# Final punctuation after which an answer counts as ended: . ! ? … and their CJK forms, a closing code
# fence; trailing closing quotes, brackets and markdown emphasis are skipped first.
_TRAILING = "\"'”’)]}*_ \t"
_FINAL = tuple(".!?…。！？")
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)\s*$")  # a bare fence line (a closing one)
_FENCE_ANY = re.compile(r"^\s{0,3}(```+|~~~+)")  # any fence line, opening ones with an info string
_LIST_OR_TABLE = re.compile(r"^\s*(?:[-*+•]\s+\S|\d{1,3}[.)]\s+\S|\|.*\|\s*$)")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: runs of letters/digits (inner apostrophes kept), each punctuation
    mark, and each CJK character on its own."""
    return _WORD.findall(text.lower())


def longest_repeat(seq: Sequence[Hashable]) -> tuple[int, int]:
    """(L, start): the length of the longest contiguous subsequence occurring at least twice in
    ``seq`` (the two occurrences may overlap), and the start of a later occurrence of it; (0, -1)
    when no element repeats.

    A loop of a k-element unit repeated r times gives L = (r - 1) * k, so L / len(seq) approaches 1.
    Binary search on L (a repeated L-sequence implies a repeated (L-1)-sequence); for each L the
    windows' polynomial hashes (mod 2^64, vectorised in numpy) are sorted and equal neighbours
    verified by comparing the slices, so a hash collision can never report a false repeat:
    O(n log^2 n) in C, ~1 ms for 2,000 words. Hand-written because a suffix-array package would be a
    dependency for thirty lines.
    """
    n = len(seq)
    if n < 2:
        return 0, -1
    ids: dict[Hashable, int] = {}
    xs = [ids.setdefault(s, len(ids) + 1) for s in seq]
    mask, base = (1 << 64) - 1, 0x9E3779B97F4A7C15  # odd 64-bit multiplier
    pre, h, pw, p = [0], 0, [1], 1
    for x in xs:
        h = (h * base + x) & mask
        pre.append(h)
        p = (p * base) & mask
        pw.append(p)
    H = np.array(pre, dtype=np.uint64)
    P = np.array(pw, dtype=np.uint64)

    def find(L: int) -> int:
        """Start of a later occurrence of some repeated L-sequence, or -1."""
        win = H[L:] - H[:-L] * P[L]  # uint64 arithmetic wraps: hash of xs[i:i+L] mod 2^64
        order = np.argsort(win, kind="stable")
        srt = win[order]
        for d in np.flatnonzero(srt[1:] == srt[:-1]):
            a, b = int(order[d]), int(order[d + 1])
            if xs[a:a + L] == xs[b:b + L]:
                return max(a, b)
        return -1

    lo, hi, best = 1, n - 1, (0, -1)
    while lo <= hi:
        mid = (lo + hi) // 2
        s = find(mid)
        if s >= 0:
            best, lo = (mid, s), mid + 1
        else:
            hi = mid - 1
    return best


def distinct_n(tokens: Sequence[Hashable], n: int) -> float | None:
    """distinct-n = |unique n-grams| / |n-grams| (arXiv:1510.03055); None with fewer than n tokens."""
    total = len(tokens) - n + 1
    if total < 1:
        return None
    return len({tuple(tokens[i:i + n]) for i in range(total)}) / total


def compression_ratio(text: str) -> float | None:
    """len(UTF-8 bytes) / len(zlib.compress(bytes, level 9)); None for empty text. Prose sits near
    2-3 for a few hundred words, a loop far above; under ~60 words zlib's fixed overhead dominates."""
    raw = text.encode("utf-8")
    if not raw:
        return None
    return len(raw) / len(zlib.compress(raw, 9))


def is_loop(n_words: int, repeat_span: int, repeat_share: float, distinct_3: float | None,
            ratio: float | None) -> bool:
    """The loop rule:

    loop = (repeat_span >= LOOP_MIN_SPAN_WORDS and repeat_share >= LOOP_MIN_SHARE)
           or (n_words >= LOOP_MIN_WORDS_FOR_RATIO and (distinct_3 <= LOOP_MAX_DISTINCT_3
                                                        or ratio >= LOOP_MIN_COMPRESSION))

    The first clause catches a long stretch said twice; the second a loop of many short units whose
    longest exact repeat is broken up by small variations (numbering, "1. ..., 2. ..."), which still
    shows as few distinct trigrams or as text that compresses far better than prose.
    """
    if repeat_span >= LOOP_MIN_SPAN_WORDS and repeat_share >= LOOP_MIN_SHARE:
        return True
    if n_words >= LOOP_MIN_WORDS_FOR_RATIO:
        if distinct_3 is not None and distinct_3 <= LOOP_MAX_DISTINCT_3:
            return True
        if ratio is not None and ratio >= LOOP_MIN_COMPRESSION:
            return True
    return False


def ends_clean(text: str) -> bool:
    """True when the answer ends like a finished text: its last non-blank line, after trailing
    closing quotes, brackets and markdown emphasis are stripped, ends in . ! ? … 。！？, or is a
    closing code fence, a list item or a table row (lists and tables often end without a full stop).
    Letters, commas, colons, an open fence or nothing at all at the end -> False. A signature line
    ("Best regards,\\nAlex") also reads as not clean: this is a heuristic, the finish reason is the
    authority when it is known (see :func:`health`)."""
    lines = [ln for ln in text.rstrip().split("\n") if ln.strip()]
    if not lines:
        return False
    last = lines[-1]
    if _FENCE.match(last):
        # a closing fence only if the fence lines pair up (an odd count: the block never closed)
        return sum(1 for ln in lines if _FENCE_ANY.match(ln)) % 2 == 0
    if _LIST_OR_TABLE.match(last):
        return True
    return last.rstrip(_TRAILING).endswith(_FINAL)


REPEAT_CLAUSE_MIN_WORDS = 4  # a clause this long said twice is a repeated phrase, not a common word pair
_CLAUSE_SPLIT = re.compile(r"[.!?;:,…\n。！？；：，、]+")
_CODE_BLOCK = re.compile(r"^\s{0,3}(```+|~~~+).*?(?:^\s{0,3}\1\s*$|\Z)", re.S | re.M)
_LEADING = {"and", "but", "so", "or", "then", "also"}


def repeated_clause(text: str) -> str | None:
    """The first clause of at least REPEAT_CLAUSE_MIN_WORDS words that occurs twice in the answer,
    or None: the phrase-level repetition ("I'd be happy to assist you further. ... I'd be happy to
    assist you further.") that a loop's long-span rule misses when the answer is short or varied.

    Clauses: the text outside fenced code blocks (code repeats lines honestly) split at . ! ? ; : ,
    … newlines and their CJK forms; each clause normalised to its lower-cased word tokens (letters,
    digits, inner apostrophes; punctuation dropped) with leading "and / but / so / or / then / also"
    removed. Two clauses repeat when their normalised word lists are equal.
    """
    seen: set[tuple[str, ...]] = set()
    for clause in _CLAUSE_SPLIT.split(_CODE_BLOCK.sub("\n", text)):
        ws = [w for w in words(clause) if w[0].isalnum()]
        while ws and ws[0] in _LEADING:
            ws = ws[1:]
        if len(ws) < REPEAT_CLAUSE_MIN_WORDS:
            continue
        key = tuple(ws)
        if key in seen:
            return " ".join(ws)
        seen.add(key)
    return None


def is_refusal(text: str) -> bool:
    """True when one of REFUSAL_PHRASES occurs in the first REFUSAL_WINDOW characters (lower-cased,
    curly apostrophes made straight)."""
    head = text[:REFUSAL_WINDOW].lower().replace("’", "'")
    return any(p in head for p in REFUSAL_PHRASES)


def is_pseudo_refusal(text: str) -> bool:
    """True when the answer declines or disclaims near its start (a DISCLAIMER_PHRASES phrase in the
    first REFUSAL_WINDOW characters) and then helps anyway: a pivot ("however, I can", "but here is")
    within the first 3 x REFUSAL_WINDOW characters, or at least PSEUDO_REFUSAL_MIN_WORDS words in all.
    An answer that opens by apologising for a confusion or mistake (APOLOGY_OPENINGS) is one however it
    goes on. A plain short refusal ("I'm sorry, but I can't help with that.") is not one: it does not help."""
    t = text.replace("’", "'")
    if APOLOGY_OPENINGS.search(t[:APOLOGY_OPENING_CHARS].lstrip()) and not is_refusal(t):
        return True
    head = t[:REFUSAL_WINDOW].lower()
    ends = [head.find(p) + len(p) for p in DISCLAIMER_PHRASES if p in head]
    if not ends:
        return False
    after = t[min(ends): 3 * REFUSAL_WINDOW]  # the pivot comes after the disclaimer, not inside it
    return bool(_PIVOT.search(after)) or len(words(t)) >= PSEUDO_REFUSAL_MIN_WORDS


def language_match(prompt: str, response: str) -> dict[str, object]:
    """``lang_prompt``, ``lang_response`` (py3langid ISO 639-1 codes via sharpset.shape; ``und`` when
    too short) and ``lang_match``: whether they agree, or None when either detection is below
    LANG_MIN_CONFIDENCE (short or code-like text: unknown, not a mismatch)."""
    lp, cp = detect_language(prompt)
    lr, cr = detect_language(response)
    match = None if min(cp, cr) < LANG_MIN_CONFIDENCE else lp == lr
    return {"lang_prompt": lp, "lang_response": lr, "lang_match": match}


def health(text: str, *, prompt: str | None = None, truncated: bool | None = None,
           finish_reason: str | None = None, token_ids: Sequence[int] | None = None) -> dict[str, object]:
    """Flat health columns of one answer (see the module docstring and HEALTH_COLUMNS).

    ``complete``: when the generation's end is known -- ``truncated`` given, or ``finish_reason``
    ("length" = cut by the token limit; anything else = ended by the model) -- an answer is complete
    iff it was not cut *and* it is not empty; otherwise complete = ends_clean(text).
    ``repeat_span_tokens`` / ``repeat_share_tokens`` appear only when ``token_ids`` is given;
    ``lang_*`` only when ``prompt`` is given.
    """
    w = words(text)
    n = len(w)
    span, _ = longest_repeat(w)
    share = span / n if n else 0.0
    d = [distinct_n(w, k) for k in (1, 2, 3)]
    ratio = compression_ratio(text)
    clean = ends_clean(text)
    if finish_reason is not None and truncated is None:
        truncated = finish_reason == "length"
    complete = (not truncated and bool(text.strip())) if truncated is not None else clean
    out: dict[str, object] = {
        "n_words": n, "n_chars": len(text), "repeat_span_words": span, "repeat_share": round(share, 4),
        "distinct_1": _r(d[0]), "distinct_2": _r(d[1]), "distinct_3": _r(d[2]),
        "compression_ratio": _r(ratio), "loop": is_loop(n, span, share, d[2], ratio),
        "ends_clean": clean, "complete": complete, "refusal": is_refusal(text),
        "pseudo_refusal": is_pseudo_refusal(text),
    }
    if token_ids is not None:
        ts, _ = longest_repeat(list(token_ids))
        out["repeat_span_tokens"] = ts
        out["repeat_share_tokens"] = round(ts / len(token_ids), 4) if len(token_ids) else 0.0
    if prompt is not None:
        out.update(language_match(prompt, text))
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
