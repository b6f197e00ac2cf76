"""Response-shape features: flat ``shape_*`` columns describing how an answer is laid out.

Pure functions, no model (the language detector is a small naive-Bayes table shipped inside the
``py3langid`` wheel). :func:`shape_features` feeds the ``tag`` stage; response-shape specs and
conformance scoring (``acknowledge-then-answer``, "no headings", "<= 5 bullets", ...) are meant to
be predicates over these columns, so every column has an exact definition below and a name listed
in :data:`SHAPE_COLUMNS`. Bump :data:`FEATURE_VERSION` whenever a definition changes (stage caches
key on it, DESIGN.md habit 5).

How a text is read (a deliberately small subset of CommonMark/GFM, line based):

1. ``\\r\\n`` and ``\\r`` become ``\\n``; the text is split into lines (a final ``\\n`` ends the last
   line; it does not add an empty one).
2. **Fenced code**: a line of 3+ backticks or tildes (<= 3 spaces indent) opens a block; a line of
   the same character, at least as long, with nothing else closes it. A fence never closed runs to
   the end of the text and sets ``shape_unterminated_fence``. Nothing inside a block is looked at
   again (``# comment`` is not a heading, ``- x`` is not a bullet, ``I`` is not first person).
   Indented (4-space) code blocks are *not* recognised: LLM answers indent nested list items far
   more often than they indent code.
3. Every other non-blank line gets one kind, first match wins: ATX heading (``#``..``######`` then a
   space or end of line), table separator row (``|---|:--:|``, needs a ``|``, directly under a line
   with a ``|`` -- that line becomes the table header), table row (a line with ``|`` right after a
   table line), setext underline (``===`` or ``---`` directly under a plain text line -- that line
   becomes a heading), horizontal rule (3+ ``-``, ``*`` or ``_``, spaces allowed), bullet item
   (``-``, ``*``, ``+`` then whitespace, or ``•``, after any indent), numbered item (``1.``, ``1)``,
   ``(1)``, ``(a)``, ``(iv)``, ``a)`` then whitespace, after any indent; ``a.``/``A.`` are *not*
   items, too often initials), block quote (``>``), else plain text.
4. **Text units**: a paragraph of consecutive plain-text lines, a run of block-quote lines, or one
   list item (with the plain lines that directly follow it). Headings, tables, rules and code are
   not text units. Sentences, first person, questions, opening and closing are read from text units
   after inline markdown is removed and inline code spans are dropped.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

FEATURE_VERSION = 1

# Column name -> type, in output order. ``shape_lexical_overlap`` only appears when a prompt is given.
SHAPE_COLUMNS: dict[str, type] = {
    "shape_words": int, "shape_chars": int, "shape_sentences": int, "shape_paragraphs": int,
    "shape_bullets": int, "shape_numbered_items": int, "shape_nested_items": int,
    "shape_headings": int, "shape_code_blocks": int, "shape_code_lines": int,
    "shape_unterminated_fence": bool, "shape_inline_code": int, "shape_tables": int,
    "shape_rules": int, "shape_quote_lines": int, "shape_bold": int, "shape_italic": int,
    "shape_links": int, "shape_markdown_density": float, "shape_first_person": int,
    "shape_has_first_person": bool, "shape_questions": int, "shape_questions_to_user": int,
    "shape_opening": str, "shape_closing": str, "shape_language": str,
    "shape_language_confidence": float,
}
PROMPT_COLUMNS: dict[str, type] = {"shape_lexical_overlap": float}
OPENINGS = ("acknowledge", "restate", "direct", "none")
CLOSINGS = ("offer", "question", "summary", "plain", "none")

# The detector sees only the first LANGUAGE_MAX_CHARS characters of the prose: ~100 words decide the
# language reliably, and py3langid walks its byte DFA in pure Python (~0.2 us/byte), so this cap is
# what keeps detection to ~0.1 ms a response.
LANGUAGE_MAX_CHARS = 600
LANGUAGE_MIN_WORDS = 3

# ---------------------------------------------------------------------------------------------
# Line kinds and block regexes (compiled once)
BLANK, FENCE, CODE, HEADING, SETEXT, RULE, BULLET, NUMBERED, TABLE, TABLE_SEP, QUOTE, TEXT = range(12)

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_RULE = re.compile(r" {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_TABLE_SEP = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_BULLET = re.compile(r"([ \t]*)(?:[-*+][ \t]+|•[ \t]*)(\S.*)")
_NUMBERED = re.compile(
    r"([ \t]*)(?:\d{1,3}[.)]|\((?:\d{1,3}|[A-Za-z]|[ivxlcIVXLC]{1,5})\)|[a-z]\))[ \t]+(\S.*)")
_QUOTE = re.compile(r" {0,3}>[ \t]?(.*)")

# Inline markdown, applied in this order: code spans, links/images, bold, italic. Span lengths are
# bounded and the link parts possessive so that a line full of unmatched markers costs O(line), not
# O(line^2) (a 12k-char line of "[a](" took 5 s before): longer spans are simply not recognised.
_INLINE_CODE = re.compile(r"(`+)(?!`)(.{1,1000}?)(?<!`)\1(?!`)")
_LINK = re.compile(r"(!?)\[([^\]\n]{0,500}+)\]"  # [text] or ![alt]
                   r"\([ \t]*+<?(?:[^()\s<>]|\([^()\s]*+\))*+>?"  # (url, one level of parens allowed
                   r"(?:[ \t]+(?:\"[^\"\n]*+\"|'[^'\n]*+'))?[ \t]*\)")  # optional "title")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>\s]+>")
_BOLD = re.compile(r"\*\*(?=\S)(.{1,500}?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.{1,500}?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"(?<![*\w\\])\*(?=[^\s*])(.{1,500}?)(?<=[^\s*\\])\*(?![*\w])"
                     r"|(?<![\w\\])_(?=[^\s_])(.{1,500}?)(?<=[^\s_\\])_(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_SPACES = re.compile(r"\s+")

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
_QUESTION_END = re.compile(r"\?[!?.…]*[\"'”’)\]]*$")
_YOU = re.compile(r"\b(?:you|your|yours|yourself|yourselves)\b", re.I)
_PUNCT_TOKEN = re.compile(r"(?<!\S)(?:[^\w\s]|_)+(?!\S)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# ---------------------------------------------------------------------------------------------
# Person, openings, closings
_FIRST_PERSON = re.compile(
    r"(?<![\w/'’-])(?:I(?:['’](?i:m|ve|d|ll))?|(?i:me|my|mine|myself))(?![\w/'’-])")
_DOUBLE_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
_ACK = re.compile(
    r"^\W*(?:sure|certainly|of course|absolutely|definitely|gladly|yes|yeah|yep|ok(?:ay)?|alright|all right"
    r"|great(?=\s*[!,.]|\s+(?:question|idea|choice))|(?:good|great|excellent|interesting|fantastic) question"
    r"|what an? (?:great|good|fun|interesting|excellent)|no problem|happy to|glad to"
    r"|i(?:['’]d| would) be (?:happy|glad|delighted)|i can help|i(?:['’]ll| will) help"
    r"|here(?:['’]s| is| are)|thanks|thank you|got it|understood|perfect)\b", re.I)
_RESTATE = re.compile(
    r"^\W*(?:so,?\s+)?(?:you(?:['’]re| are) (?:asking|wondering|looking|trying|interested|curious)"
    r"|you(?:['’]d| would) like|you (?:want|need|asked|mentioned|wrote|said)|you(?:['’]ve| have) asked"
    r"|your (?:question|request|message)|the (?:question|prompt|task|request) (?:is|asks)"
    r"|it sounds like you|if i understand|to (?:answer|address) (?:your|the|this))\b", re.I)
_OFFER = re.compile(
    r"let me know|feel free|hope (?:this|that|it) helps|happy to help|glad to help"
    r"|(?:don['’]t|do not) hesitate"
    r"|if you (?:have|need) any(?: other| more| further)? (?:questions|help)|if you(?:['’]d| would) like"
    r"|would you like|do you want me|want me to|shall i|i can also|just ask|reach out"
    r"|any (?:other|more|further) questions", re.I)
_SUMMARY = re.compile(
    r"^\W*(?:in summary|in short|in sum|to summari[sz]e|to sum up|summary|overall|in conclusion|to conclude"
    r"|all in all|ultimately|in the end|bottom line|tl;?dr|in a nutshell|key takeaways?)\b", re.I)
_SUMMARY_HEADING = re.compile(
    r"^\W*(?:summary|conclusions?|tl;?dr|key takeaways?|recap|in summary|bottom line)\b", re.I)

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


# ---------------------------------------------------------------------------------------------
class _Doc:
    """One parsed text: per-line kinds and contents plus the block counts found while parsing."""

    __slots__ = ("lines", "kinds", "content", "indent", "code_blocks", "code_lines", "unterminated")

    def __init__(self, text: str):
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()  # a final newline ends the last line; it does not start an empty one
        n = len(lines)
        kinds, content, indent = [BLANK] * n, list(lines), [0] * n
        self.code_blocks = self.code_lines = 0
        self.unterminated = False
        fence = None  # (char, length) of the open fence
        in_table = False
        for i, line in enumerate(lines):
            if fence is not None:
                s = line.strip()
                if (len(line) - len(line.lstrip(" ")) <= 3 and len(s) >= fence[1] and s[0] == fence[0]
                        and s == fence[0] * len(s)):
                    kinds[i], fence = FENCE, None
                else:
                    kinds[i] = CODE
                    self.code_lines += 1
                continue
            if not line.strip():
                in_table = False
                continue
            m = _FENCE_OPEN.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                kinds[i], fence, in_table = FENCE, (m.group(1)[0], len(m.group(1))), False
                self.code_blocks += 1
                continue
            prev = kinds[i - 1] if i else BLANK
            if (m := _ATX.match(line)) is not None:
                kinds[i], content[i] = HEADING, m.group(1) or ""
            elif "|" in line and prev == TEXT and "|" in lines[i - 1] and _TABLE_SEP.match(line):
                kinds[i - 1], kinds[i], in_table = TABLE, TABLE_SEP, True
                continue
            elif in_table and "|" in line:
                kinds[i] = TABLE
                continue
            elif prev == TEXT and _SETEXT.match(line):
                kinds[i - 1], kinds[i] = HEADING, SETEXT
            elif _RULE.match(line):
                kinds[i] = RULE
            elif (m := _BULLET.match(line)) is not None:
                kinds[i], content[i], indent[i] = BULLET, m.group(2), len(m.group(1).expandtabs(4))
            elif (m := _NUMBERED.match(line)) is not None:
                kinds[i], content[i], indent[i] = NUMBERED, m.group(2), len(m.group(1).expandtabs(4))
            elif (m := _QUOTE.match(line)) is not None:
                kinds[i], content[i] = QUOTE, m.group(1)
            else:
                kinds[i], content[i] = TEXT, line.strip()
            in_table = False
        if fence is not None:
            self.unterminated = True
        self.lines, self.kinds, self.content, self.indent = lines, kinds, content, indent


def _strip_inline(s: str, *, keep_code: bool, counts: list[int] | None = None) -> str:
    """Remove inline markdown from one line. ``counts`` (if given) gets [code, links, bold, italic] added."""
    if "`" in s:
        s, n = _INLINE_CODE.subn((lambda m: m.group(2).strip()) if keep_code else " ", s)
        if counts is not None:
            counts[0] += n
    if "](" in s:
        found = _LINK.findall(s)
        if counts is not None:
            counts[1] += sum(1 for bang, _ in found if not bang)
        s = _LINK.sub(r"\2", s)
    if "<" in s:
        s, n = _AUTOLINK.subn(lambda m: m.group(0)[1:-1], s)
        if counts is not None:
            counts[1] += n
    if "*" in s or "_" in s:
        s, n = _BOLD.subn(lambda m: m.group(1) or m.group(2), s)
        s, k = _ITALIC.subn(lambda m: m.group(1) or m.group(2), s)
        if counts is not None:
            counts[2] += n
            counts[3] += k
    if "\\" in s:
        s = _ESCAPE.sub(r"\1", s)
    return s


def _table_cells(line: str) -> str:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return "  ".join(c.strip() for c in s.split("|"))


def _render(doc: _Doc, *, keep_code: bool) -> list[str]:
    out = []
    for kind, line, content in zip(doc.kinds, doc.lines, doc.content):
        if kind == CODE:
            if keep_code:
                out.append(line)
        elif kind in (FENCE, SETEXT, RULE, TABLE_SEP):
            continue
        elif kind == BLANK:
            out.append("")
        elif kind == TABLE:
            out.append(_strip_inline(_table_cells(line), keep_code=True))
        else:
            out.append(_strip_inline(content, keep_code=True))
    return out


def markdown_stripped(text: str, *, keep_code: bool = True) -> str:
    """``text`` with markdown syntax removed and the words kept (for loose IFEval-style checks).

    Removes: fence lines, heading markers (``#`` and setext underlines), horizontal rules, list
    markers (bullets and numbers), ``>`` quote markers, table separator rows and cell pipes, bold /
    italic markers, backslash escapes, and link/image syntax (the link text / alt text stays).
    Inline code keeps its content without backticks. Fenced code content is kept verbatim unless
    ``keep_code=False``. Line structure (blank lines between paragraphs) is preserved.
    """
    return "\n".join(_render(_Doc(text), keep_code=keep_code))


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
def opening_label(first_kind: int, first_sentence: str | None, prompt_words: set[str] | None) -> str:
    """``opening`` of a response whose first non-blank line is of kind ``first_kind`` and whose first
    text unit starts with ``first_sentence`` (see :func:`shape_features`)."""
    if first_kind not in (TEXT, QUOTE) or first_sentence is None:
        return "direct"
    if _ACK.search(first_sentence):
        return "acknowledge"
    if _RESTATE.search(first_sentence):
        return "restate"
    if prompt_words:
        fw = _content_words_plain(first_sentence.lower().replace("’", "'"))
        if len(fw) >= 3 and fw <= prompt_words:
            return "restate"
    return "direct"


def closing_label(last_sentence: str | None, last_para_first: str, last_heading: str | None) -> str:
    """``closing`` given the last sentence (None when the response does not end in a text unit), the
    first sentence of the last paragraph and the last heading (None if none) (see :func:`shape_features`)."""
    if last_sentence is None:
        return "plain"
    if _OFFER.search(last_sentence):
        return "offer"
    if _QUESTION_END.search(last_sentence):
        return "question"
    if (_SUMMARY.search(last_sentence) or _SUMMARY.search(last_para_first)
            or (last_heading is not None and _SUMMARY_HEADING.search(last_heading))):
        return "summary"
    return "plain"


def shape_features(text: str, *, prompt: str | None = None) -> dict[str, int | float | bool | str]:
    """Flat ``shape_*`` columns for one response (see the module docstring for how lines are read).

    Counts (all >= 0):

    - ``words``: :func:`count_words` of ``markdown_stripped(text, keep_code=False)`` (fenced code
      is not counted; inline code is). ``chars``: ``len(text)``, raw.
    - ``sentences``: sum over text units of :func:`split_sentences` (headings, tables, code: none).
    - ``paragraphs``: maximal runs of non-blank lines outside fenced code, plus one per fenced block
      (a block is its own paragraph even without blank lines around it, even with blank lines inside).
    - ``bullets`` / ``numbered_items``: list-item lines (all nesting levels; see step 3 for markers).
      ``nested_items``: those of either kind indented by >= 2 columns (tab = 4).
    - ``headings``: ATX headings + setext headings. ``rules``: horizontal rules. ``quote_lines``.
    - ``code_blocks``: fenced blocks, unterminated ones included; ``code_lines``: lines inside them
      (fences excluded); ``unterminated_fence``: a fence was still open at the end.
    - ``inline_code``: backtick spans outside fenced code. ``tables``: separator rows that follow a
      header row. ``bold`` (``**x**``, ``__x__``), ``italic`` (``*x*``, ``_x_``), ``links``
      (``[t](url)`` and ``<https://...>``; images ``![a](src)`` and bare URLs are not links): spans.
    - ``markdown_density`` = S / N, N = non-blank lines (code lines included), S = those of them that
      are fence or code lines, headings or setext underlines, rules, list items, table rows or
      separators, quote lines, or that contain an inline code span, link, bold or italic span;
      0.0 when N = 0.
    - ``first_person``: whole-word I, I'm, I've, I'd, I'll (capital I; ' or ’) and me, my, mine,
      myself (any case) in text units and headings, outside fenced and inline code, quote blocks
      and double-quoted spans. ``has_first_person`` = first_person > 0.
    - ``questions``: sentences ending in "?" (closing quotes/brackets allowed after it).
      ``questions_to_user``: those that are in the last paragraph, or that contain
      you/your/yours/yourself.

    Labels (documented heuristics, ``none`` when the text has no non-blank line):

    - ``opening``: if the first non-blank line is not plain text or a quote (a heading, list, table,
      code...) -> ``direct``. Else the first sentence: ``acknowledge`` if it starts with an
      acknowledgement (_ACK: "Sure", "Certainly", "Of course", "Great question", "Yes", "Happy to
      help", "Here's"...), else ``restate`` if it starts with a restatement (_RESTATE: "You're asking",
      "You want to", "Your question is"...) or, given a prompt, has >= 3 content words all of which
      occur in the prompt (it adds nothing new), else ``direct``.
    - ``closing``: if the last non-blank line is not in a text unit (code, table, heading, rule) ->
      ``plain``. Else the last sentence: ``offer`` if it contains an offer (_OFFER: "Let me know",
      "Feel free", "Hope this helps", "Would you like"...), else ``question`` if it ends in "?",
      else ``summary`` if it or the first sentence of the last paragraph starts with a summary
      marker (_SUMMARY: "In summary", "Overall", "In conclusion", "TL;DR"...) or the last heading
      before it is "Summary"/"Conclusion"/"TL;DR"/..., else ``plain``.
    - ``language`` / ``language_confidence``: py3langid (ISO 639-1, normalised probability) on the
      prose (text units, headings, table cells; no code at all), first LANGUAGE_MAX_CHARS chars;
      ``und`` / 0.0 when the prose has fewer than 3 words.

    With ``prompt``: ``shape_lexical_overlap`` = Jaccard(content_words(prompt),
    content_words(text)) -- content words are lower-cased tokens, length >= 2, not in the built-in
    English STOPWORDS; fenced code included. METHODS §8 (lexical alignment) builds on this column.
    """
    doc = _Doc(text)
    walk = _Walk(doc)
    units = _read_units(walk.units)
    prompt_words = content_words(prompt) if prompt is not None else None
    words_text = "\n".join(walk.word_parts)
    out: dict[str, int | float | bool | str] = {
        **_length_columns(text, walk, units, words_text),
        **_structure_columns(doc, walk),
        **_register_columns(doc, walk, units, prompt_words),
        **_language_columns(walk),
    }
    if prompt_words is not None:
        out["shape_lexical_overlap"] = _lexical_overlap(doc, words_text, prompt_words)
    return out


class _Walk:
    """One pass over a parsed text's lines, collecting everything the columns are computed from:
    block and inline-span counts, the lines that carry markdown, the prose (for language and words),
    headings, and the text units (step 4 of the module docstring) with their paragraph index.

    One pass, so each line's inline markdown is stripped once: ``tag`` runs this on every row."""

    __slots__ = ("inline", "marked", "nonblank", "paragraphs", "para", "bullets", "numbered", "nested",
                 "headings", "rules", "quote_lines", "tables", "prose_parts", "word_parts", "heading_parts",
                 "units", "last_heading", "last_heading_line", "last_unit_line", "_unit_open")

    def __init__(self, doc: _Doc):
        self.inline = [0, 0, 0, 0]  # code spans, links, bold, italic
        self.marked = self.nonblank = 0
        self.paragraphs, self.para = doc.code_blocks, -1  # a fenced block is a paragraph of its own
        self.bullets = self.numbered = self.nested = self.headings = self.rules = self.quote_lines = 0
        self.tables = 0
        self.prose_parts: list[str] = []  # for language detection (no code at all)
        self.word_parts: list[str] = []  # for words / lexical overlap (inline code content kept)
        self.heading_parts: list[str] = []  # headings, for first person (text units add theirs later)
        self.units: list[list] = []  # text units: [kind, para_index, list of stripped lines]
        self.last_heading, self.last_heading_line, self.last_unit_line = "", -1, -1
        self._unit_open = False
        prev_prose = False
        for i in range(len(doc.kinds)):
            k = doc.kinds[i]
            if k == BLANK:
                self._unit_open = prev_prose = False
                continue
            self.nonblank += 1
            if k == FENCE or k == CODE:
                self.marked += 1
                self._unit_open = prev_prose = False
                continue
            if not prev_prose:
                self.paragraphs += 1
                self.para += 1
            prev_prose = True
            if k in (SETEXT, RULE, TABLE_SEP):
                self._markup_line(k)
            else:
                self._content_line(doc, i, k)

    def _markup_line(self, k: int) -> None:
        """A setext underline, rule or table separator: markdown, no text, and it ends a text unit."""
        self.marked += 1
        self.rules += k == RULE
        self.tables += k == TABLE_SEP
        self._unit_open = False

    def _content_line(self, doc: _Doc, i: int, k: int) -> None:
        """A line with text (heading, table row, list item, quote, plain): strip its inline
        markdown (counting the spans), mark it if it is markdown, keep its prose, then place it."""
        before = sum(self.inline)
        src = _table_cells(doc.lines[i]) if k == TABLE else doc.content[i]
        s = _strip_inline(src, keep_code=False, counts=self.inline)
        if k != TEXT or sum(self.inline) > before:
            self.marked += 1
        self.prose_parts.append(s)
        # words and lexical overlap keep inline code content; only re-strip lines that have some
        self.word_parts.append(_strip_inline(src, keep_code=True) if "`" in src else s)
        if k == HEADING:
            self.headings += 1
            self.heading_parts.append(s)
            self.last_heading, self.last_heading_line = s, i
            self._unit_open = False
        elif k == TABLE:
            self._unit_open = False
        elif k == BULLET or k == NUMBERED:
            self._list_item(doc, i, k, s)
        else:
            self._text_line(i, k, s)

    def _list_item(self, doc: _Doc, i: int, k: int, s: str) -> None:
        """A bullet or numbered item: counted (nested when indented >= 2 columns) and a text unit
        of its own, which the plain lines right after it continue."""
        if k == BULLET:
            self.bullets += 1
        else:
            self.numbered += 1
        self.nested += doc.indent[i] >= 2
        self.units.append([k, self.para, [s]])
        self._unit_open, self.last_unit_line = True, i

    def _text_line(self, i: int, k: int, s: str) -> None:
        """A plain or quote line: continues the open unit (plain lines join a paragraph or a list
        item, quote lines a quote), else starts one."""
        self.quote_lines += k == QUOTE
        units = self.units
        if self._unit_open and (units[-1][0] == k or (k == TEXT and units[-1][0] != QUOTE)):
            units[-1][2].append(s)
        else:
            units.append([k, self.para, [s]])
        self._unit_open, self.last_unit_line = True, i


class _Units(NamedTuple):
    """The text units read as sentences."""

    sentences: list[tuple[int, str]]  # (para, sentence), in text order
    first: list[str]  # the sentences of the first unit that has any
    person_parts: list[str]  # each non-quote unit's text, for first person


def _read_units(units: list[list]) -> _Units:
    """Join each unit's lines and split it into sentences; quotes are someone else's words, so
    they give sentences but no first person."""
    sentences: list[tuple[int, str]] = []
    first: list[str] = []
    person_parts: list[str] = []
    for u_kind, u_para, parts in units:
        joined = _SPACES.sub(" ", " ".join(parts)).strip()
        sents = split_sentences(joined)
        if not first and sents:
            first = sents
        if u_kind != QUOTE:
            person_parts.append(joined)
        for sent in sents:
            sentences.append((u_para, sent))
    return _Units(sentences, first, person_parts)


def _length_columns(text: str, walk: _Walk, units: _Units, words_text: str) -> dict[str, int]:
    """words (prose and inline code, no fenced code), chars (raw), sentences, paragraphs."""
    return {
        "shape_words": count_words(words_text),
        "shape_chars": len(text),
        "shape_sentences": len(units.sentences),
        "shape_paragraphs": walk.paragraphs,
    }


def _structure_columns(doc: _Doc, walk: _Walk) -> dict[str, int | float | bool]:
    """Lists, headings, code, tables, rules, quotes, inline spans and markdown density."""
    inline = walk.inline
    return {
        "shape_bullets": walk.bullets,
        "shape_numbered_items": walk.numbered,
        "shape_nested_items": walk.nested,
        "shape_headings": walk.headings,
        "shape_code_blocks": doc.code_blocks,
        "shape_code_lines": doc.code_lines,
        "shape_unterminated_fence": doc.unterminated,
        "shape_inline_code": inline[0],
        "shape_tables": walk.tables,
        "shape_rules": walk.rules,
        "shape_quote_lines": walk.quote_lines,
        "shape_bold": inline[2],
        "shape_italic": inline[3],
        "shape_links": inline[1],
        "shape_markdown_density": round(walk.marked / walk.nonblank, 4) if walk.nonblank else 0.0,
    }


def _register_columns(doc: _Doc, walk: _Walk, units: _Units, prompt_words: set[str] | None
                      ) -> dict[str, int | bool | str]:
    """How the answer speaks: first person, questions (to the user or not), opening and closing."""
    first_person = _first_person(walk.heading_parts + units.person_parts)
    questions, to_user = _questions(units.sentences, walk.para)
    opening, closing = _opening_closing(doc, walk, units, prompt_words)
    return {
        "shape_first_person": first_person,
        "shape_has_first_person": first_person > 0,
        "shape_questions": questions,
        "shape_questions_to_user": to_user,
        "shape_opening": opening,
        "shape_closing": closing,
    }


def _first_person(parts: list[str]) -> int:
    """First-person words in headings and non-quote units, double-quoted spans dropped (someone
    else speaking)."""
    person_text = "\n".join(parts)
    if '"' in person_text or "“" in person_text:
        person_text = _DOUBLE_QUOTED.sub(" ", person_text)
    return len(_FIRST_PERSON.findall(person_text))


def _questions(sentences: list[tuple[int, str]], last_para: int) -> tuple[int, int]:
    """(questions, questions_to_user): a question is to the user when it is in the last paragraph
    or says you/your/yours/yourself."""
    questions = to_user = 0
    for p, sent in sentences:
        if _QUESTION_END.search(sent):
            questions += 1
            if p == last_para or _YOU.search(sent):
                to_user += 1
    return questions, to_user


def _opening_closing(doc: _Doc, walk: _Walk, units: _Units, prompt_words: set[str] | None) -> tuple[str, str]:
    """(opening, closing) labels; both ``none`` for a text with no non-blank line."""
    kinds = doc.kinds
    first_kind = next((k for k in kinds if k != BLANK), BLANK)
    if first_kind == BLANK:
        return "none", "none"
    sentences = units.sentences
    opening = opening_label(first_kind, units.first[0] if units.first else None, prompt_words)
    last_para_first = next((sent for p, sent in sentences if p == walk.para), "")
    last_line = max(i for i in range(len(kinds)) if kinds[i] != BLANK)
    ends_in_text = last_line == walk.last_unit_line and bool(sentences)
    closing = closing_label(sentences[-1][1] if ends_in_text else None, last_para_first,
                            walk.last_heading if walk.last_heading_line >= 0 else None)
    return opening, closing


def _language_columns(walk: _Walk) -> dict[str, str | float]:
    """language, language_confidence: py3langid on the prose only (text units, headings, table
    cells), since code is not written in the answer's language."""
    lang, conf = detect_language(" ".join(walk.prose_parts))
    return {"shape_language": lang, "shape_language_confidence": conf}


def _lexical_overlap(doc: _Doc, words_text: str, prompt_words: set[str]) -> float:
    """Jaccard of the prompt's and the response's content words; unlike ``words``, fenced code
    counts here (the column's definition in :func:`shape_features`)."""
    if doc.code_lines:
        words_text += "\n" + "\n".join(ln for ln, kd in zip(doc.lines, doc.kinds) if kd == CODE)
    resp_words = _content_words_plain(words_text.lower().replace("’", "'"))
    return round(jaccard(prompt_words, resp_words), 4)
