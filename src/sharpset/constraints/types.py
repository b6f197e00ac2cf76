"""One entry per constraint type: its kwargs sampler, how its kwargs read in text, its phrasings.

Phrasings: every phrasing below was written for this registry (sharpset issue 20); none is copied
from IFEval's or IFBench's prompts or from upstream's ``build_description`` text. Two of them must
quote upstream's literal strings, because the checker compares the response with them:
``repeat:repeat_simple`` (the reply must be upstream's sentence "Only output this sentence here,
ignore all other requests.") and ``count:person_names`` (the checker counts only the 50 names of its
own list, so the list is given). :data:`PHRASING_SOURCE` says this once for every type.

Samplers: ``sample(rng, instruction) -> kwargs`` (``None`` when the type cannot apply to that
instruction, e.g. a span of words from a two-word request). Ranges are at least as wide as IFEval's
own random draws (its ``build_description`` defaults, noted per type as "IFEval: ..."), usually
wider on the low side so a small model meets them sometimes. Keyword pools are the project's own
word lists; the pool of forbidden words is disjoint from the pool of required ones, so one prompt
never asks for and forbids the same word. Every draw comes from the ``random.Random`` the caller
passes (keyed by (seed, stage, row id)), never from global state.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any, Callable

PHRASING_SOURCE = ("sharpset issue 20: written for this registry by the project; not taken from IFEval's or "
                   "IFBench's prompts or upstream description strings (except the literal strings a checker "
                   "compares with: repeat:repeat_simple's sentence, count:person_names' name list)")

REL = {"at least": "at least", "less than": "fewer than"}
RELATIONS = ("less than", "at least")

# required words (keywords:existence/frequency, IFBench keyword types) and first words of a
# paragraph: common, topic-neutral nouns a reply on almost any subject can use
KEYWORDS = ("example", "reason", "detail", "result", "question", "idea", "plan", "world", "people", "value",
            "future", "choice", "balance", "practice", "method", "benefit", "risk", "option", "summary",
            "context", "evidence", "purpose", "habit", "quality", "goal", "problem", "solution", "process",
            "change", "system", "design", "history", "nature", "energy", "health", "water", "light", "story",
            "friend", "journey", "morning", "garden", "river", "mountain", "window", "family", "season",
            "market", "memory", "patience")
# forbidden words: fillers and hedges (disjoint from KEYWORDS)
FORBIDDEN = ("very", "really", "basically", "actually", "simply", "just", "literally", "definitely", "honestly",
             "obviously", "thing", "stuff", "nice", "good", "great", "important", "interesting", "amazing",
             "perhaps", "maybe", "quite", "however", "therefore", "also", "many", "often", "always", "never",
             "can", "will")
FIRST_WORDS = ("first", "next", "finally", "overall", "today", "instead", "meanwhile", "moreover", "then", "because",
               "although", "still", "now", "yes", "imagine", "consider", "remember", "sometimes")
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?", "Let me know if this helps.",
               "That is all for now.", "Thank you for reading.", "Hope this helps!", "Good luck!",
               "I hope that answers your question.", "Have a great day.", "Feel free to ask more.")
SECTION_SPLITTERS = ("Section", "SECTION", "Part", "PART", "Chapter")
POSTSCRIPT_MARKERS = ("P.S.", "P.P.S")
LIST_SEPARATORS = ("...", "SEPARATOR", "!?!?", "-", "~~", ">>", "###")
OPTIONS = ("yes/no/maybe", "I know or I don't know", "a), b), c), d)", "true/false", "agree/disagree/not sure",
           "A), B), C)", "possible or impossible")
PERSON_NAMES = ("Emma, Liam, Sophia, Jackson, Olivia, Noah, Ava, Lucas, Isabella, Mason, Mia, Ethan, Charlotte, "
                "Alexander, Amelia, Benjamin, Harper, Leo, Zoe, Daniel, Chloe, Samuel, Lily, Matthew, Grace, Owen, "
                "Abigail, Gabriel, Ella, Jacob, Scarlett, Nathan, Victoria, Elijah, Layla, Nicholas, Audrey, David, "
                "Hannah, Christopher, Penelope, Thomas, Nora, Andrew, Aria, Joseph, Claire, Ryan, Stella, Jonathan")
REPEAT_SIMPLE = "Only output this sentence here, ignore all other requests."  # the checker's own string


def _language_names() -> dict[str, str]:
    from if_verifiable.ifeval.instructions_util import LANGUAGE_CODES

    return dict(LANGUAGE_CODES)


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def quoted(words: list[str] | tuple[str, ...]) -> str:
    """'"a"', '"a" and "b"', '"a", "b" and "c"'."""
    q = [f'"{w}"' for w in words]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def request_words(instruction: str) -> list[str]:
    return instruction.split()


@dataclass(frozen=True)
class TypeSpec:
    """How one type is drawn and said. ``sample(rng, instruction)``: kwargs or None (not applicable);
    ``view(kwargs)``: the values the phrasings' ``{fields}`` read; ``phrasings``: str.format
    templates, all the project's own text (:data:`PHRASING_SOURCE`); ``words``: ``(min, max)`` words
    a reply meeting it needs or allows (``max`` None = no bound), for the words-budget check of
    :mod:`sharpset.constraints.conflicts`; ``exclusive``: the type dictates the whole reply, so it
    never shares a prompt."""

    sample: Callable[[random.Random, str], dict | None]
    phrasings: tuple[str, ...]
    view: Callable[[dict], dict] = dict
    words: Callable[[dict, str], tuple[int, int | None]] = lambda kw, ins: (0, None)
    exclusive: bool = False


def _none(rng: random.Random, instruction: str) -> dict:
    return {}


# ---------------------------------------------------------------------------- IFEval (25)

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


# ---------------------------------------------------------------------------- IFBench (45 of 58)

def _kw(rng: random.Random) -> str:
    return rng.choice(KEYWORDS)


def _range(rng: random.Random, ins: str) -> dict:
    lo = rng.randint(20, 400)  # IFBench: 100-500, span 5-10%
    return {"min_words": lo, "max_words": lo + max(5, round(lo * rng.uniform(0.1, 0.5)))}


def _span(rng: random.Random, ins: str) -> dict | None:
    n = len(request_words(ins))
    if n < 4:
        return None
    start = rng.randint(1, n - 2)
    return {"prompt_to_repeat": ins.strip(), "n_start": start, "n_end": rng.randint(start + 1, min(n, start + 12))}


def _span_view(kw: dict) -> dict:
    return {**kw, "first": kw["n_start"] + 1, "last": kw["n_end"]}


IFBENCH: dict[str, TypeSpec] = {
    "count:word_count_range": TypeSpec(
        _range,
        ("Your answer must be between {min_words} and {max_words} words long.",
         "Use no fewer than {min_words} and no more than {max_words} words.",
         "Keep the reply within {min_words} to {max_words} words."),
        words=lambda kw, ins: (kw["min_words"], kw["max_words"])),
    "count:unique_word_count": TypeSpec(
        lambda rng, ins: {"N": rng.randint(20, 300)},
        ("Use at least {N} different words in your answer.",
         "Your reply should contain {N} or more distinct words.",
         "Write with a varied vocabulary: at least {N} unique words."),
        words=lambda kw, ins: (kw["N"], None)),
    "ratio:sentence_type": TypeSpec(
        _none,
        ("Write exactly two statements for every question in your answer (twice as many sentences ending in a "
         "period as sentences ending in a question mark).",
         "Keep a 2 to 1 ratio of declarative sentences to questions.",
         "For each question you ask in the reply, make exactly two plain statements."),
        words=lambda kw, ins: (9, None)),
    "ratio:sentence_balance": TypeSpec(
        _none,
        ("Use the same number of statements, questions and exclamations in your answer.",
         "Balance your sentences: as many ending in '.' as in '?' and as in '!'.",
         "Your reply must contain equally many declarative, interrogative and exclamatory sentences."),
        words=lambda kw, ins: (9, None)),
    "count:conjunctions": TypeSpec(
        lambda rng, ins: {"small_n": rng.randint(2, 7)},
        ("Use at least {small_n} different coordinating conjunctions (and, but, for, nor, or, so, yet).",
         "Your answer should contain {small_n} or more distinct words from: and, but, for, nor, or, so, yet.",
         "Include at least {small_n} of the coordinating conjunctions and, but, for, nor, or, so and yet."),
        words=lambda kw, ins: (2 * kw["small_n"], None)),
    "count:person_names": TypeSpec(
        lambda rng, ins: {"N": rng.randint(1, 20)},  # IFBench: 1-50
        ("Mention at least {N} different people by name, chosen from this list: " + PERSON_NAMES + ".",
         "Name {N} or more different people in your answer, using only names from: " + PERSON_NAMES + ".",
         "Your reply must mention at least {N} distinct names from the following: " + PERSON_NAMES + "."),
        words=lambda kw, ins: (kw["N"], None)),
    "ratio:overlap": TypeSpec(
        lambda rng, ins: {"reference_text": ins.strip(), "percentage": rng.randint(5, 95)} if ins.strip() else None,
        ("Of all the three-character sequences in your answer, {percentage}% (give or take 2%) should also occur "
         "in my request above.",
         "Make your reply overlap with my request: {percentage}% (plus or minus 2 points) of its character trigrams "
         "must appear in the request.",
         "Reuse my wording so that about {percentage}% (within 2%) of your answer's character trigrams come from "
         "the request above."),),
    "count:numbers": TypeSpec(
        lambda rng, ins: {"N": rng.randint(0, 10)},  # IFBench: 1-6
        ("Include exactly {N} numbers (written in digits) in your answer.",
         "Your reply must contain exactly {N} numerals.",
         "Use exactly {N} numbers written as digits, no more and no fewer."),),
    "words:alphabet": TypeSpec(
        _none,
        ("Start each word with the next letter of the alphabet, going back to A after Z.",
         "Every word must begin with the letter after the previous word's first letter (A, B, C, ..., Z, A, ...).",
         "Write so that the first letters of your words run through the alphabet in order, wrapping from Z to A."),
        exclusive=True),
    "words:vowel": TypeSpec(
        _none,
        ("Write one paragraph that uses no more than three different vowels.",
         "Answer in a single paragraph whose words use at most three of the vowels a, e, i, o, u.",
         "Your reply must be one paragraph, and only three kinds of vowel may appear in it."),
        exclusive=True),
    "words:consonants": TypeSpec(
        _none,
        ("Every word in your answer must contain two consonants in a row.",
         "Use only words that have a consonant cluster (two or more consonants next to each other).",
         "Each word you write needs at least one pair of adjacent consonants."),
        exclusive=True),
    "sentence:alliteration_increment": TypeSpec(
        _none,
        ("Each sentence must have a longer run of alliterating words than the sentence before it.",
         "Increase the alliteration as you go: every sentence needs a longer sequence of words sharing a first "
         "letter than the previous one.",
         "Make each new sentence contain a longer chain of consecutive words starting with the same letter."),),
    "words:palindrome": TypeSpec(
        _none,
        ("Use at least 10 palindromes of 5 or more letters (such as 'level' or 'radar').",
         "Include ten or more words of at least five letters that read the same backwards.",
         "Your answer needs at least 10 single-word palindromes, each 5 letters or longer."),
        words=lambda kw, ins: (10, None)),
    "count:punctuation": TypeSpec(
        _none,
        ("Use every one of these punctuation marks at least once: . , ! ? ; : and the interrobang ?!",
         "Your answer must include a period, comma, exclamation mark, question mark, semicolon, colon and an "
         "interrobang (?!).",
         "Make sure the reply contains each of . , ! ? ; : at least once, plus ?! somewhere."),),
    "format:parentheses": TypeSpec(
        _none,
        ("Nest brackets at least 5 levels deep somewhere, mixing (), [] and {{}}.",
         "Include a passage with parentheses inside brackets inside braces and so on, at least five levels deep.",
         "Somewhere in your answer, nest at least five levels of (), [] or {{}} inside each other."),),
    "format:quotes": TypeSpec(
        _none,
        ("Include a quotation inside a quotation inside a quotation (at least 3 levels), alternating double and "
         "single quotes.",
         "Nest quotes at least three deep, switching between \" and ' at each level.",
         "Your answer must contain quotes within quotes within quotes, alternating double and single marks."),),
    "words:prime_lengths": TypeSpec(
        _none,
        ("Use only words whose length is a prime number (2, 3, 5, 7, 11, ... letters).",
         "Every word you write must have a prime number of letters.",
         "Only words of 2, 3, 5, 7, 11 or 13 letters are allowed."),
        exclusive=True),
    "format:options": TypeSpec(
        lambda rng, ins: {"options": rng.choice(OPTIONS)},
        ("Reply with one of these options and nothing else: {options}.",
         "Choose one answer from {options}, and do not explain it.",
         "Your entire reply must be one of the following: {options}."),
        exclusive=True),
    "format:newline": TypeSpec(
        _none,
        ("Put every word of your answer on its own line.",
         "Write one word per line.",
         "Each word you write must be on a new line."),
        exclusive=True),
    "format:emoji": TypeSpec(
        _none,
        ("End every sentence with an emoji.",
         "Finish each of your sentences with an emoji.",
         "Every sentence in your answer must end in an emoji."),),
    "ratio:sentence_words": TypeSpec(
        _none,
        ("Answer in exactly three sentences of the same length in characters, never repeating a word.",
         "Write three sentences with identical character counts, using all different words.",
         "Your reply: three sentences, each with the same number of characters, and no word used twice."),
        exclusive=True),
    "count:words_japanese": TypeSpec(
        lambda rng, ins: {"N": rng.randint(2, 30)},  # IFBench: 1-30
        ("Write every {nth} word of your answer in Japanese.",
         "Each {nth} word must be a Japanese word.",
         "Make word number {N}, {N2}, {N3} and so on Japanese words."),
        view=lambda kw: {**kw, "nth": ordinal(kw["N"]), "N2": 2 * kw["N"], "N3": 3 * kw["N"]}),
    "words:repeats": TypeSpec(
        lambda rng, ins: {"small_n": rng.randint(1, 6)},  # IFBench: 1-5
        ("Do not use any word more than {times}.",
         "No word may appear more than {times} in your answer.",
         "Avoid repetition: every word at most {times}."),
        view=lambda kw: {**kw, "times": plural(kw["small_n"], "time")}),
    "sentence:keyword": TypeSpec(
        lambda rng, ins: {"word": _kw(rng), "N": rng.randint(1, 20)},  # IFBench: 1-20
        ('Use the word "{word}" in the {nth} sentence of your answer.',
         'Your {nth} sentence must contain the word "{word}".',
         'Put "{word}" in sentence number {N}.'),
        view=lambda kw: {**kw, "nth": ordinal(kw["N"])},
        words=lambda kw, ins: (3 * kw["N"], None)),
    "count:pronouns": TypeSpec(
        lambda rng, ins: {"N": rng.randint(1, 30)},  # IFBench: 1-25
        ("Use at least {N} pronouns in your answer.",
         "Your reply should contain {N} or more pronouns (I, you, she, they, it, ...).",
         "Include no fewer than {N} pronouns."),
        words=lambda kw, ins: (kw["N"], None)),
    "words:odd_even_syllables": TypeSpec(
        _none,
        ("Alternate between words with an odd and an even number of syllables.",
         "Each word must switch syllable parity: odd, even, odd, even, ...",
         "Write so that consecutive words never both have an odd (or both an even) number of syllables."),
        exclusive=True),
    "words:last_first": TypeSpec(
        _none,
        ("Begin each sentence with the word that ended the previous sentence.",
         "The last word of every sentence must be the first word of the next one.",
         "Chain your sentences: each starts with the previous sentence's final word."),),
    "words:paragraph_last_first": TypeSpec(
        _none,
        ("Start and end each paragraph with the same word; put each paragraph on its own line.",
         "Every paragraph must finish with the word it began with, with paragraphs separated by line breaks.",
         "Make the first and last word of each paragraph identical (one paragraph per line)."),),
    "sentence:increment": TypeSpec(
        lambda rng, ins: {"small_n": rng.randint(1, 5)},
        ("Each sentence must have exactly {words} more than the sentence before it.",
         "Grow your sentences: every one is exactly {small_n} word(s) longer than the previous.",
         "Make every sentence exactly {words} longer than the one before."),
        view=lambda kw: {**kw, "words": plural(kw["small_n"], "word")}),
    "words:no_consecutive": TypeSpec(
        _none,
        ("No two words in a row may start with the same letter.",
         "Adjacent words must never share their first letter.",
         "Make sure consecutive words always begin with different letters."),),
    "format:line_indent": TypeSpec(
        _none,
        ("Indent each new line a little more than the one before, like a staircase.",
         "Write the answer as a staircase: every line starts with more spaces than the previous line.",
         "Each line must be indented further than the line above it."),),
    "format:quote_unquote": TypeSpec(
        _none,
        ("Follow every quoted phrase with an explanation that is not in quotes.",
         "Each time you quote something, explain it right after in your own unquoted words.",
         "Every quotation in your reply must be followed by unquoted commentary."),),
    "format:list": TypeSpec(
        lambda rng, ins: {"sep": rng.choice(LIST_SEPARATORS)},
        ("Answer with a list, marking the items with {sep} instead of bullet points.",
         "Give a list whose items are introduced by {sep} rather than bullets.",
         "List the items, using {sep} as the item marker instead of bullet points."),),
    "format:thesis": TypeSpec(
        _none,
        ("Begin each section with a thesis statement in italics, marked with HTML <i> tags, followed by the rest "
         "of the text.",
         "Open with a thesis sentence in HTML italics (<i>...</i>) and continue after it.",
         "Every section must start with an italic thesis statement written as <i>thesis</i>."),),
    "format:sub-bullets": TypeSpec(
        _none,
        ("Use bullet points marked with *, and give each one at least one sub-point marked with -.",
         "Write * bullet points, each followed by at least one indented - sub-bullet.",
         "Your list must use * for main points and - for sub-points, with a sub-point under every main point."),),
    "format:no_bullets_bullets": TypeSpec(
        _none,
        ("Write at least two sentences ending in periods, followed by at least two bullet points marked with *.",
         "Start with two or more plain sentences, then give two or more * bullet points.",
         "First two full sentences (ending with a period), then at least two bullets beginning with *."),),
    "count:keywords_multiple": TypeSpec(
        lambda rng, ins: {f"keyword{i + 1}": w for i, w in enumerate(rng.sample(KEYWORDS, 5))},
        ('Use "{keyword1}" once, "{keyword2}" twice, "{keyword3}" three times, "{keyword4}" five times and '
         '"{keyword5}" seven times.',
         'Word counts to hit exactly: "{keyword1}" 1 time, "{keyword2}" 2 times, "{keyword3}" 3 times, '
         '"{keyword4}" 5 times, "{keyword5}" 7 times.',
         'Include the word "{keyword1}" exactly once, "{keyword2}" exactly twice, "{keyword3}" exactly three '
         'times, "{keyword4}" exactly five times and "{keyword5}" exactly seven times.'),
        words=lambda kw, ins: (18, None)),
    "words:keywords_specific_position": TypeSpec(
        lambda rng, ins: {"keyword": _kw(rng), "n": rng.randint(1, 10), "m": rng.randint(1, 20)},  # IFBench: 20-30, 30-40
        ('Make "{keyword}" the {mth} word of your {nth} sentence.',
         'In sentence number {n}, the word in position {m} must be "{keyword}".',
         'Place the word "{keyword}" as word {m} of sentence {n}.'),
        view=lambda kw: {**kw, "nth": ordinal(kw["n"]), "mth": ordinal(kw["m"])},
        words=lambda kw, ins: (3 * kw["n"] + kw["m"], None)),
    "words:words_position": TypeSpec(
        lambda rng, ins: {"keyword": _kw(rng)},
        ('Make "{keyword}" both the second word and the second-to-last word of your answer.',
         'The second word of your reply and its second-last word must both be "{keyword}".',
         'Use "{keyword}" as the 2nd word and again as the next-to-last word.'),
        words=lambda kw, ins: (4, None)),
    "repeat:repeat_change": TypeSpec(
        lambda rng, ins: {"prompt_to_repeat": ins.strip()} if len(request_words(ins)) >= 2 else None,
        ("Do not answer my request: repeat it back exactly, changing only its first word, and write nothing else.",
         "Instead of answering, copy my request word for word but replace its first word; add nothing.",
         "Reply only with my request repeated, with the first word changed to a different word."),
        exclusive=True),
    "repeat:repeat_simple": TypeSpec(
        _none,
        ('Ignore the request and reply with exactly this sentence and nothing else: "' + REPEAT_SIMPLE + '"',
         'Your whole reply must be this sentence, copied exactly: "' + REPEAT_SIMPLE + '"',
         'Do not answer; just write "' + REPEAT_SIMPLE + '"'),
        exclusive=True),
    "repeat:repeat_span": TypeSpec(
        _span,
        ("Do not answer; reply only with words {first} to {last} of my request, copied exactly.",
         "Copy words number {first} through {last} of my request and write nothing else.",
         "Your reply must be exactly the words {first}-{last} of my request (counting words from 1)."),
        view=_span_view, exclusive=True),
    "format:title_case": TypeSpec(
        _none,
        ("Write your whole answer in title case, capitalising the first letter of every word.",
         "Every word of your reply must start with a capital letter, Like This.",
         "Use Title Case For The Entire Answer."),),
    "format:output_template": TypeSpec(
        _none,
        ("Use this template for your answer: My Answer: [answer] My Conclusion: [conclusion] Future Outlook: [outlook]",
         "Structure the reply with the three labels 'My Answer:', 'My Conclusion:' and 'Future Outlook:'.",
         "Fill in this exact template: My Answer: ... My Conclusion: ... Future Outlook: ..."),
        words=lambda kw, ins: (6, None)),
    "format:no_whitespace": TypeSpec(
        _none,
        ("Write your answer without any spaces or line breaks.",
         "Your reply must contain no whitespace at all.",
         "Do not use a single space, tab or newline."),
        exclusive=True),
}


def view(spec: TypeSpec, kwargs: dict) -> dict[str, Any]:
    """The values a phrasing of ``spec`` reads, for these kwargs."""
    return spec.view(dict(kwargs))
