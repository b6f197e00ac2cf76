"""IFBench's 45 usable constraint types (of 58; Pyatkin et al. 2025): each type's kwargs sampler and
phrasings, :data:`IFBENCH` (the registry's *held-out* types; :mod:`sharpset.constraints.types` says
how they are written, :data:`sharpset.constraints.EXCLUDED` which are left out and why).
"""

from __future__ import annotations

import random

from .pools import KEYWORDS, LIST_SEPARATORS, OPTIONS, PERSON_NAMES, REPEAT_SIMPLE
from .typespec import TypeSpec, _none, ordinal, plural, request_words


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
