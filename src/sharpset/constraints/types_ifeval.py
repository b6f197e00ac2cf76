"""IFEval's 25 constraint types (Zhou et al. 2023): each type's kwargs sampler and phrasings,
:data:`IFEVAL` (the registry's *train* types; :mod:`sharpset.constraints.types` says how they are
written).
"""

from __future__ import annotations

import random
import string

from .pools import (END_PHRASES, FIRST_WORDS, FORBIDDEN, KEYWORDS, POSTSCRIPT_MARKERS, REL, RELATIONS,
                    SECTION_SPLITTERS, _language_names)
from .typespec import TypeSpec, _none, ordinal, plural, quoted


def _existence(rng: random.Random, ins: str) -> dict:
    return {"keywords": rng.sample(KEYWORDS, rng.randint(1, 3))}  # IFEval: 2


def _frequency(rng: random.Random, ins: str) -> dict:
    rel = rng.choice(RELATIONS)
    # IFEval: 1-3; "less than 1" would ask for no occurrence, which forbidden_words says better
    return {"keyword": rng.choice(KEYWORDS), "frequency": rng.randint(2 if rel == "less than" else 1, 5),
            "relation": rel}


def _forbidden(rng: random.Random, ins: str) -> dict | None:
    pool = [w for w in FORBIDDEN if w not in {x.lower().strip(string.punctuation) for x in ins.split()}]
    return {"forbidden_words": rng.sample(pool, rng.randint(1, 4))} if pool else None  # IFEval: 2


def _letter(rng: random.Random, ins: str) -> dict:
    rel = rng.choice(RELATIONS)
    return {"letter": rng.choice(string.ascii_lowercase), "let_frequency": rng.randint(2 if rel == "less than" else 1, 15),
            "let_relation": rel}  # IFEval: a-z, 1-10


def _language(rng: random.Random, ins: str) -> dict:
    return {"language": rng.choice(sorted(_language_names()))}  # IFEval: the same 30 codes


def _sentences(rng: random.Random, ins: str) -> dict:
    rel = rng.choice(RELATIONS)
    return {"num_sentences": rng.randint(2 if rel == "less than" else 1, 25), "relation": rel}  # IFEval: 1-20


def _paragraphs(rng: random.Random, ins: str) -> dict:
    return {"num_paragraphs": rng.randint(1, 6)}  # IFEval: 1-5


def _words(rng: random.Random, ins: str) -> dict:
    rel = rng.choice(RELATIONS)
    # IFEval: 100-500; from 10 here so short replies are asked for too
    return {"num_words": rng.choice((rng.randint(10, 100), rng.randint(100, 500))), "relation": rel}


def _nth_first(rng: random.Random, ins: str) -> dict:
    n = rng.randint(2, 6)  # IFEval: 1-5 paragraphs
    return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n), "first_word": rng.choice(FIRST_WORDS)}


def _placeholders(rng: random.Random, ins: str) -> dict:
    return {"num_placeholders": rng.randint(1, 6)}  # IFEval: 1-4


def _postscript(rng: random.Random, ins: str) -> dict:
    return {"postscript_marker": rng.choice(POSTSCRIPT_MARKERS)}  # IFEval: the same two


def _bullets(rng: random.Random, ins: str) -> dict:
    return {"num_bullets": rng.randint(1, 8)}  # IFEval: 1-5


def _highlights(rng: random.Random, ins: str) -> dict:
    return {"num_highlights": rng.randint(1, 6)}  # IFEval: 1-4


def _sections(rng: random.Random, ins: str) -> dict:
    # IFEval: Section/SECTION, 1-5
    return {"section_spliter": rng.choice(SECTION_SPLITTERS), "num_sections": rng.randint(1, 6)}


def _repeat_prompt(rng: random.Random, ins: str) -> dict | None:
    return {"prompt_to_repeat": ins.strip()} if ins.strip() else None


def _end(rng: random.Random, ins: str) -> dict:
    return {"end_phrase": rng.choice(END_PHRASES)}  # IFEval: the first two


def _capital_words(rng: random.Random, ins: str) -> dict:
    rel = rng.choice(RELATIONS)
    return {"capital_frequency": rng.randint(2 if rel == "less than" else 1, 25), "capital_relation": rel}  # IFEval: 1-20


def _lang_view(kw: dict) -> dict:
    return {**kw, "language_name": _language_names()[kw["language"]]}


IFEVAL: dict[str, TypeSpec] = {
    "keywords:existence": TypeSpec(
        _existence,
        ("Make sure your reply uses the {word_s} {kw_list}.",
         "Include the {word_s} {kw_list} somewhere in your answer.",
         "Your answer has to mention {kw_list}."),
        view=lambda kw: {**kw, "kw_list": quoted(kw["keywords"]), "word_s": "word" if len(kw["keywords"]) == 1 else "words"},
        words=lambda kw, ins: (len(kw["keywords"]), None)),
    "keywords:frequency": TypeSpec(
        _frequency,
        ('Use the word "{keyword}" {rel} {times} in your answer.',
         'The word "{keyword}" should appear {rel} {times} in what you write.',
         'In your reply, say "{keyword}" {rel} {times}.'),
        view=lambda kw: {**kw, "rel": REL[kw["relation"]], "times": plural(kw["frequency"], "time")},
        words=lambda kw, ins: (kw["frequency"], None) if kw["relation"] == "at least" else (0, None)),
    "keywords:forbidden_words": TypeSpec(
        _forbidden,
        ("Do not use the {word_s} {kw_list} anywhere in your answer.",
         "Avoid the {word_s} {kw_list} completely.",
         "Write your reply without ever using {kw_list}."),
        view=lambda kw: {**kw, "kw_list": quoted(kw["forbidden_words"]),
                         "word_s": "word" if len(kw["forbidden_words"]) == 1 else "words"}),
    "keywords:letter_frequency": TypeSpec(
        _letter,
        ('The letter "{letter}" should appear {rel} {times} in your answer.',
         'Use the letter "{letter}" {rel} {times} in total.',
         'Count your letters: "{letter}" must occur {rel} {times}.'),
        view=lambda kw: {**kw, "rel": REL[kw["let_relation"]], "times": plural(kw["let_frequency"], "time")}),
    "language:response_language": TypeSpec(
        _language,
        ("Write your entire answer in {language_name}; no other language is allowed.",
         "Respond only in {language_name}.",
         "Your whole reply must be written in {language_name}."),
        view=_lang_view),
    "length_constraints:number_sentences": TypeSpec(
        _sentences,
        ("Answer in {rel} {sentences}.",
         "Your reply should contain {rel} {sentences}.",
         "Keep the answer to {rel} {sentences}."),
        view=lambda kw: {**kw, "rel": REL[kw["relation"]], "sentences": plural(kw["num_sentences"], "sentence")},
        words=lambda kw, ins: (3 * kw["num_sentences"], None) if kw["relation"] == "at least" else (0, None)),
    "length_constraints:number_paragraphs": TypeSpec(
        _paragraphs,
        ("Write exactly {paragraphs}, separated from each other by the markdown divider ***.",
         "Your answer must have {paragraphs}; put a line with *** between consecutive paragraphs.",
         "Split the reply into exactly {paragraphs} using *** as the separator."),
        view=lambda kw: {**kw, "paragraphs": plural(kw["num_paragraphs"], "paragraph")},
        words=lambda kw, ins: (3 * kw["num_paragraphs"], None)),
    "length_constraints:number_words": TypeSpec(
        _words,
        ("Answer in {rel} {num_words} words.",
         "Your reply should be {rel} {num_words} words long.",
         "Use {rel} {num_words} words in total."),
        view=lambda kw: {**kw, "rel": REL[kw["relation"]]},
        words=lambda kw, ins: (kw["num_words"], None) if kw["relation"] == "at least" else (0, kw["num_words"] - 1)),
    "length_constraints:nth_paragraph_first_word": TypeSpec(
        _nth_first,
        ('Write exactly {paragraphs}, separated by blank lines (two line breaks), and begin the {nth} paragraph '
         'with the word "{first_word}".',
         'Your answer needs {paragraphs} with an empty line between them; the {nth} one must start with '
         '"{first_word}".',
         'Use {paragraphs} separated by two newlines. The first word of paragraph {nth_paragraph} has to be '
         '"{first_word}".'),
        view=lambda kw: {**kw, "paragraphs": plural(kw["num_paragraphs"], "paragraph"),
                         "nth": ordinal(kw["nth_paragraph"])},
        words=lambda kw, ins: (3 * kw["num_paragraphs"], None)),
    "detectable_content:number_placeholders": TypeSpec(
        _placeholders,
        ("Include {at_least} {placeholders} in square brackets, such as [name] or [date].",
         "Leave {at_least} {placeholders} for the reader to fill in, written in square brackets like [address].",
         "Your answer should contain {at_least} bracketed {placeholders}, e.g. [city]."),
        view=lambda kw: {**kw, "at_least": "at least", "placeholders": plural(kw["num_placeholders"], "placeholder")},
        words=lambda kw, ins: (kw["num_placeholders"], None)),
    "detectable_content:postscript": TypeSpec(
        _postscript,
        ("At the end of your answer, add a postscript that starts with {postscript_marker}",
         "Finish with a postscript beginning with {postscript_marker}",
         "Add a short note after your answer, starting with {postscript_marker}"),
        words=lambda kw, ins: (2, None)),
    "detectable_format:number_bullet_lists": TypeSpec(
        _bullets,
        ("Your answer must contain exactly {bullets}, each on its own line starting with * (for example: * first point).",
         "Use markdown bullet points: exactly {bullets}, each line beginning with *.",
         "Format the reply as exactly {bullets} in markdown, like:\n* this is one point"),
        view=lambda kw: {**kw, "bullets": plural(kw["num_bullets"], "bullet point")},
        words=lambda kw, ins: (2 * kw["num_bullets"], None)),
    "detectable_format:constrained_response": TypeSpec(
        _none,
        ('Answer with one of these exact phrases: "My answer is yes.", "My answer is no." or "My answer is maybe."',
         'Your reply must contain one of the following: "My answer is yes.", "My answer is no.", "My answer is maybe."',
         'Give your verdict using exactly one of "My answer is yes.", "My answer is no." or "My answer is maybe."'),
        words=lambda kw, ins: (4, None)),
    "detectable_format:number_highlighted_sections": TypeSpec(
        _highlights,
        ("Highlight {at_least} {sections} with markdown, for example *highlighted section*.",
         "Mark {at_least} {sections} of your answer as highlighted, wrapping each in asterisks like *this*.",
         "Use markdown emphasis (*like this*) on {at_least} {sections}."),
        view=lambda kw: {**kw, "at_least": "at least", "sections": plural(kw["num_highlights"], "section")},
        words=lambda kw, ins: (kw["num_highlights"], None)),
    "detectable_format:multiple_sections": TypeSpec(
        _sections,
        ("Divide your answer into {sections}. Start each one with '{section_spliter} X', where X is its number "
         "({section_spliter} 1, {section_spliter} 2, ...).",
         "Your reply must have {sections}, each introduced by the label {section_spliter} followed by its number.",
         "Organise the answer as {sections} headed {section_spliter} 1, {section_spliter} 2 and so on."),
        view=lambda kw: {**kw, "sections": plural(kw["num_sections"], "section")},
        words=lambda kw, ins: (4 * kw["num_sections"], None)),
    "detectable_format:json_format": TypeSpec(
        _none,
        ("Format your entire answer as valid JSON; you may wrap it in markdown code fences (```).",
         "Your whole reply must be a JSON object and nothing else (markdown ``` fences are allowed).",
         "Return the answer as JSON only."),
        words=lambda kw, ins: (2, None)),
    "detectable_format:title": TypeSpec(
        _none,
        ("Give your answer a title wrapped in double angular brackets, such as <<my title>>.",
         "Start with a title written inside double angle brackets, like <<A Short Title>>.",
         "Your reply needs a title in the form <<title>>."),
        words=lambda kw, ins: (1, None)),
    "combination:two_responses": TypeSpec(
        _none,
        ("Give two different answers, separated by six asterisks: ******",
         "Write two distinct responses and put a line of six asterisks (******) between them, and nowhere else.",
         "Provide two alternative replies, separated only by ******."),
        words=lambda kw, ins: (4, None)),
    "combination:repeat_prompt": TypeSpec(
        _repeat_prompt,
        ("First repeat my request above word for word, without changing anything (only the request, not these "
         "instructions), and then give your answer. Do not write anything before the repeated request.",
         "Begin by copying my request exactly as I wrote it (just the request itself, not these rules), then answer it.",
         "Start your reply with my request, repeated verbatim (without this instruction), followed by your answer."),
        words=lambda kw, ins: (len(kw["prompt_to_repeat"].split()) + 1, None)),
    "startend:end_checker": TypeSpec(
        _end,
        ('End your answer with the exact phrase "{end_phrase}" and write nothing after it.',
         'Finish your reply with these exact words: "{end_phrase}"',
         'The very last words of your answer must be "{end_phrase}" with nothing following.'),
        words=lambda kw, ins: (len(kw["end_phrase"].split()), None)),
    "change_case:capital_word_frequency": TypeSpec(
        _capital_words,
        ("Use {rel} {words} written entirely in capital letters.",
         "Write {rel} {words} in ALL CAPS.",
         "Your reply should contain {rel} {words} in full capitals (like THIS)."),
        view=lambda kw: {**kw, "rel": REL[kw["capital_relation"]], "words": plural(kw["capital_frequency"], "word")},
        words=lambda kw, ins: (kw["capital_frequency"], None) if kw["capital_relation"] == "at least" else (0, None)),
    "change_case:english_capital": TypeSpec(
        _none,
        ("Write your entire answer in English using capital letters only.",
         "Your whole reply must be in English and in ALL CAPITAL LETTERS.",
         "Answer in English, with every letter in uppercase."),),
    "change_case:english_lowercase": TypeSpec(
        _none,
        ("Write your entire answer in English using lowercase letters only; no capital letters at all.",
         "Your whole reply must be in English and entirely in lowercase.",
         "Answer in English without a single capital letter."),),
    "punctuation:no_comma": TypeSpec(
        _none,
        ("Do not use any commas in your answer.",
         "Write the reply without a single comma.",
         "Commas are not allowed anywhere in your response."),),
    "startend:quotation": TypeSpec(
        _none,
        ("Wrap your entire answer in double quotation marks.",
         "Put your whole reply inside double quotes, from the first character to the last.",
         'Your answer must begin and end with a double quotation mark (").'),),
}
