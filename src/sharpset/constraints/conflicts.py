"""Which constraints may share a prompt (METHODS §9b: "conflicting pairs blocked by a table").

Three layers, checked in this order by :func:`sharpset.constraints.draw`:

1. **exclusive types** (``TypeSpec.exclusive``): the type dictates the whole reply (answer only
   with an option, repeat the request, one word per line, no whitespace, ...); it never shares a
   prompt.
2. **the pair table** (:data:`PAIRS` plus the tag rules below it): two types that no reply can
   satisfy together, or only by accident, each with the reason. Tag rules keep the table short:
   a reply that must be JSON conflicts with every type that shapes visible layout
   (:data:`LAYOUT`); a reply in another language conflicts with every type that needs English
   words or English casing (:data:`ENGLISH`); bullet conventions conflict with each other
   (:data:`BULLETS`).
3. **kwargs rules** (:func:`kwargs_problem`): pairs compatible as types but not with these
   values -- the words budget (the words the structure asks for -- sentences, paragraphs,
   bullets, sections, keywords, ... -- summed with 1.5x room, or an explicit word count's lower
   bound, must fit under the tightest upper bound on words), a section label whose case breaks a lowercase or
   all-capitals rule, a request that is repeated verbatim while a comma, a letter or a word it
   contains is limited.

The table is symmetric (``conflict(a, b) == conflict(b, a)``); ``tests/test_constraints.py`` checks
that no draw ever holds a conflicting pair.
"""

from __future__ import annotations

import re
from typing import Any

from .types import IFBENCH, IFEVAL

SPECS = {**IFEVAL, **IFBENCH}
EXCLUSIVE = frozenset(t for t, s in SPECS.items() if s.exclusive)

# types whose checker reads visible layout: a JSON-only reply cannot carry them
LAYOUT = frozenset({
    "detectable_format:title", "detectable_format:multiple_sections", "detectable_format:number_bullet_lists",
    "length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
    "combination:two_responses", "combination:repeat_prompt", "startend:quotation", "startend:end_checker",
    "detectable_content:postscript", "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections", "punctuation:no_comma",
    "format:list", "format:sub-bullets", "format:no_bullets_bullets", "format:line_indent", "format:thesis",
    "format:output_template", "words:paragraph_last_first", "format:emoji", "format:title_case",
    "format:quote_unquote", "ratio:sentence_type", "ratio:sentence_balance", "sentence:increment",
    "words:last_first", "sentence:alliteration_increment",
})
# types that need English words, English casing or Latin letters: not in a reply in another language
ENGLISH = frozenset({
    "change_case:english_lowercase", "change_case:english_capital", "change_case:capital_word_frequency",
    "keywords:existence", "keywords:frequency", "keywords:letter_frequency",
    "length_constraints:nth_paragraph_first_word", "startend:end_checker", "combination:repeat_prompt",
    "detectable_format:constrained_response", "detectable_format:multiple_sections",
    "count:conjunctions", "count:pronouns", "count:person_names", "sentence:keyword", "count:keywords_multiple",
    "words:keywords_specific_position", "words:words_position", "format:output_template", "format:title_case",
    "ratio:overlap", "words:palindrome", "count:words_japanese",
})
# types that count the reply's words themselves (their bounds overlap rather than add up)
WORD_COUNTS = frozenset({"length_constraints:number_words", "count:word_count_range", "count:unique_word_count"})
# bullet conventions: each counts or requires its own kind of item line
BULLETS = frozenset({"detectable_format:number_bullet_lists", "format:sub-bullets", "format:no_bullets_bullets",
                     "format:list"})

PAIRS: tuple[tuple[str, str, str], ...] = (
    ("change_case:english_lowercase", "change_case:english_capital", "opposite case rules"),
    ("change_case:english_lowercase", "change_case:capital_word_frequency",
     "an all-lowercase reply has no all-capitals words"),
    ("change_case:english_capital", "change_case:capital_word_frequency",
     "in an all-capitals reply every word is an all-capitals word"),
    ("change_case:english_lowercase", "format:title_case", "lowercase vs capitalised words"),
    ("change_case:english_lowercase", "detectable_format:constrained_response",
     "the fixed answer phrases start with a capital letter"),
    ("change_case:english_capital", "detectable_format:constrained_response",
     "the fixed answer phrases are in mixed case"),
    ("length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word",
     "paragraphs split by *** vs by blank lines, with different counts"),
    ("length_constraints:number_paragraphs", "combination:two_responses",
     "the ****** between two responses reads as paragraph dividers"),
    ("length_constraints:number_paragraphs", "words:paragraph_last_first",
     "paragraphs split by *** vs by line breaks"),
    ("length_constraints:nth_paragraph_first_word", "words:paragraph_last_first",
     "paragraphs split by blank lines vs by single line breaks"),
    ("combination:repeat_prompt", "startend:quotation", "the reply must start with the request vs with a quote mark"),
    ("combination:repeat_prompt", "length_constraints:nth_paragraph_first_word",
     "the first paragraph must start with the request"),
    ("ratio:sentence_type", "ratio:sentence_balance", "a 2:1 ratio vs equal counts of sentence types"),
    ("format:emoji", "startend:end_checker", "the last sentence must end with an emoji vs with a fixed phrase"),
    ("count:numbers", "detectable_format:multiple_sections", "the section labels' numbers count as numbers"),
    ("count:numbers", "detectable_content:number_placeholders", "placeholders such as [1] would count as numbers"),
    ("words:repeats", "keywords:frequency", "a word repeated a set number of times vs a cap on repeats"),
    ("words:repeats", "count:keywords_multiple", "words needed up to seven times vs a cap on repeats"),
    ("keywords:frequency", "count:keywords_multiple", "two exact word counts that may name the same word"),
    ("sentence:keyword", "words:keywords_specific_position", "two position rules that may name the same sentence"),
)

_TABLE: dict[frozenset, str] = {}
for _a, _b, _why in PAIRS:
    assert _a in SPECS and _b in SPECS, (_a, _b)
    _TABLE[frozenset((_a, _b))] = _why


def conflict(a: str, b: str) -> str | None:
    """Why types ``a`` and ``b`` cannot share a prompt, or None when they can."""
    if a == b:
        return "the same type twice"
    if a in EXCLUSIVE or b in EXCLUSIVE:
        return f"{a if a in EXCLUSIVE else b} dictates the whole reply"
    why = _TABLE.get(frozenset((a, b)))
    if why:
        return why
    pair = {a, b}
    if "detectable_format:json_format" in pair and (pair - {"detectable_format:json_format"}) <= LAYOUT:
        return "the reply must be JSON only"
    if "language:response_language" in pair and (pair - {"language:response_language"}) <= ENGLISH:
        return "needs English text in a reply written in another language"
    if pair <= BULLETS:
        return "two bullet conventions"
    return None


def _words(c: dict, instruction: str) -> tuple[int, int | None]:
    return SPECS[c["id"]].words(c["kwargs"], instruction)


def kwargs_problem(chosen: list[dict[str, Any]], cand: dict[str, Any], instruction: str) -> str | None:
    """Why ``cand`` (``{"id", "kwargs"}``) cannot join ``chosen`` with these kwargs, or None."""
    every = [*chosen, cand]
    bounds = [(c["id"], *_words(c, instruction)) for c in every]
    # explicit word counts bound the same words (max of them); structure adds up (with 1.5x room)
    need = max([lo for t, lo, _ in bounds if t in WORD_COUNTS] + [0])
    need = max(need, round(1.5 * sum(lo for t, lo, _ in bounds if t not in WORD_COUNTS)))
    caps = [hi for _, _, hi in bounds if hi is not None]
    if caps and need > min(caps):
        return f"words budget: the constraints need about {need} words, at most {min(caps)} allowed"
    by = {c["id"]: c["kwargs"] for c in every}
    sec = by.get("detectable_format:multiple_sections")
    if sec is not None:
        label = sec["section_spliter"]
        if "change_case:english_lowercase" in by and label != label.lower():
            return f"section label {label!r} is not lowercase"
        if "change_case:english_capital" in by and label != label.upper():
            return f"section label {label!r} is not in capitals"
    rep = by.get("combination:repeat_prompt")
    if rep is not None:
        text = rep["prompt_to_repeat"]
        if "punctuation:no_comma" in by and "," in text:
            return "the repeated request holds a comma"
        let = by.get("keywords:letter_frequency")
        if let and let["let_relation"] == "less than" and text.lower().count(let["letter"].lower()) >= let["let_frequency"]:
            return "the repeated request alone has too many of the letter"
        kw = by.get("keywords:frequency")
        if kw and kw["relation"] == "less than" and len(re.findall(kw["keyword"], text, re.I)) >= kw["frequency"]:
            return "the repeated request alone has too many of the keyword"
        forb = by.get("keywords:forbidden_words")
        if forb and any(re.search(r"\b" + w + r"\b", text, re.I) for w in forb["forbidden_words"]):
            return "the repeated request holds a forbidden word"
        caps_ = by.get("change_case:capital_word_frequency")
        if caps_ and caps_["capital_relation"] == "less than" and \
                sum(w.isupper() for w in text.split()) >= caps_["capital_frequency"]:
            return "the repeated request alone has too many all-capitals words"
    return None
