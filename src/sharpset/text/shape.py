"""Response-shape features: flat ``shape_*`` columns describing how an answer is laid out.

Pure functions, no model (the language detector is a small naive-Bayes table shipped inside the
``py3langid`` wheel). :func:`shape_features` feeds the ``tag`` stage; response-shape specs and
conformance scoring (``acknowledge-then-answer``, "no headings", "<= 5 bullets", ...) are meant to
be predicates over these columns, so every column has an exact definition below and a name listed
in :data:`SHAPE_COLUMNS`. Bump :data:`FEATURE_VERSION` whenever a definition changes (stage caches
key on it, DESIGN.md habit 5).

How a text is read: steps 1-3 (line kinds, fenced code, inline markdown) are
:mod:`sharpset.text.parse`'s; sentences, words and language are :mod:`sharpset.text.prose`'s. Then:

4. **Text units**: a paragraph of consecutive plain-text lines, a run of block-quote lines, or one
   list item (with the plain lines that directly follow it). Headings, tables, rules and code are
   not text units. Sentences, first person, questions, opening and closing are read from text units
   after inline markdown is removed and inline code spans are dropped.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .parse import (BLANK, BULLET, CODE, FENCE, HEADING, NUMBERED, QUOTE, RULE, SETEXT, TABLE,  # noqa: F401
                    TABLE_SEP, TEXT, _Doc, _strip_inline, _table_cells, markdown_stripped)
from .prose import (LANGUAGE_MAX_CHARS, LANGUAGE_MIN_WORDS, STOPWORDS, _content_words_plain,  # noqa: F401
                    content_words, count_words, detect_language, jaccard, split_sentences)

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

_SPACES = re.compile(r"\s+")
_QUESTION_END = re.compile(r"\?[!?.…]*[\"'”’)\]]*$")
_YOU = re.compile(r"\b(?:you|your|yours|yourself|yourselves)\b", re.I)

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
