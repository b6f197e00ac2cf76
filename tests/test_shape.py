"""Shape features: hand-written texts with known counts, labels, language, and a no-crash property."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharpset.records import validate
from sharpset.text.shape import (CLOSINGS, OPENINGS, PROMPT_COLUMNS, SHAPE_COLUMNS, markdown_stripped,
                            shape_features, split_sentences)


def f(text, **kw):
    return shape_features(text, **kw)


FENCE = "```"


def test_columns_types_and_json():
    out = f("Sure. Here is a **list**:\n\n- one\n- two\n", prompt="Give me a list")
    assert list(out) == list(SHAPE_COLUMNS) + list(PROMPT_COLUMNS)
    for name, value in out.items():
        assert type(value) is {**SHAPE_COLUMNS, **PROMPT_COLUMNS}[name], name
    json.dumps(out)
    assert "shape_lexical_overlap" not in f("no prompt here")
    # the columns are valid flat tag columns on an SFT row
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    row = {"id": "x", "messages": msgs, **out}
    assert validate(row, "sft") == []


def test_empty_and_whitespace():
    for text in ("", "   \n\n\t\n"):
        out = f(text)
        for name, typ in SHAPE_COLUMNS.items():
            if typ is int and name != "shape_chars":
                assert out[name] == 0, name
        assert out["shape_markdown_density"] == 0.0
        assert out["shape_opening"] == out["shape_closing"] == "none"
        assert out["shape_language"] == "und" and out["shape_language_confidence"] == 0.0
    assert f("", prompt="")["shape_lexical_overlap"] == 0.0
    assert f("")["shape_chars"] == 0 and f("   \n\n\t\n")["shape_chars"] == 7


def test_words_and_chars():
    out = f("Hello, world -- it's 3.14 *now*!\n\n" + FENCE + "\nignored code words\n" + FENCE)
    assert out["shape_words"] == 5  # Hello, world it's 3.14 now  ("--" has no letter/digit)
    assert out["shape_chars"] == len("Hello, world -- it's 3.14 *now*!\n\n```\nignored code words\n```")
    assert f("Use `pip install x` now.")["shape_words"] == 5  # inline code words count


def test_sentences_abbreviations_decimals_ellipses():
    assert split_sentences("Dr. Smith paid $3.14 for it, e.g. at the U.S. store. Then he left.") == [
        "Dr. Smith paid $3.14 for it, e.g. at the U.S. store.", "Then he left."]
    assert split_sentences("Wait... what? I waited... Then it came!") == [
        "Wait... what?", "I waited...", "Then it came!"]
    assert split_sentences("See Fig. 3 and vs. others. The answer is no. Fine") == [
        "See Fig. 3 and vs. others.", "The answer is no.", "Fine"]
    assert split_sentences('He said "Stop." Then "Go!" OK.') == ['He said "Stop."', 'Then "Go!"', "OK."]
    assert split_sentences("J. R. R. Tolkien wrote it. Version 2.0 is out.") == [
        "J. R. R. Tolkien wrote it.", "Version 2.0 is out."]
    assert split_sentences("... !!") == []


def test_sentences_in_document():
    text = ("Intro one. Intro two\n\n# Heading is not a sentence\n\n"
            "- item without period\n- item two. Has two\n\n"
            "| a | b |\n|---|---|\n| c. D | e |\n\n" + FENCE + "\nNot. Counted. Here.\n" + FENCE + "\n")
    assert f(text)["shape_sentences"] == 2 + 1 + 2


def test_paragraphs():
    text = "One\ntwo\n\nThree\n\n" + FENCE + "\ncode\n\nmore code\n" + FENCE + "\nAfter code\n\n\n\nLast"
    # "One two", "Three", the code block (blank line inside ignored), "After code", "Last"
    assert f(text)["shape_paragraphs"] == 5


def test_bullets_rules_bold():
    text = ("- dash item\n* star item\n+ plus item\n• dot item\n•tight dot\n"
            "---\n* * *\n___\n**Bold line** is not a bullet\n*emph start* neither\n-1 is a number\n")
    out = f(text)
    assert out["shape_bullets"] == 5
    assert out["shape_rules"] == 3
    assert out["shape_bold"] == 1 and out["shape_italic"] == 1


def test_setext_vs_rule():
    out = f("Title\n=====\n\nSection\n-------\n\ntext\n\n---\n\nmore")
    assert out["shape_headings"] == 2
    assert out["shape_rules"] == 1


def test_nested_lists():
    text = "- top\n  - nested\n    - deeper\n\t- tabbed\n- top again\n1. one\n   1. sub-one\n"
    out = f(text)
    assert out["shape_bullets"] == 5
    assert out["shape_numbered_items"] == 2
    assert out["shape_nested_items"] == 4


def test_numbered_items():
    text = ("1. first\n2) second\n(3) third\n(a) letter\n(iv) roman\nb) letter paren\n"
            "3.14 is not an item\nA. Smith is not an item\n2024. not an item\n10. tenth\n")
    assert f(text)["shape_numbered_items"] == 7


def test_headings_atx_and_code_comments():
    text = ("# One\n## Two ##\n###### Six\n####### seven is text\n#hashtag\n\n"
            + FENCE + "python\n# a comment, not a heading\n- not a bullet\n1. not numbered\n" + FENCE + "\n")
    out = f(text)
    assert out["shape_headings"] == 3
    assert out["shape_bullets"] == 0 and out["shape_numbered_items"] == 0
    assert out["shape_code_blocks"] == 1 and out["shape_code_lines"] == 3


def test_code_blocks_fences_and_unterminated():
    text = ("~~~\ntilde\n~~~\n\n````md\n```\ninner fence is content\n```\n````\n\n"
            + FENCE + "js\nnever closed\n# not heading\n")
    out = f(text)
    assert out["shape_code_blocks"] == 3
    assert out["shape_unterminated_fence"] is True
    assert out["shape_headings"] == 0
    assert out["shape_code_lines"] == 1 + 3 + 2
    assert f(FENCE + "\nx\n" + FENCE)["shape_unterminated_fence"] is False


def test_inline_code_links_emphasis():
    text = ("Call `f()` or ``a ` b`` then see [docs](https://x.org \"t\") and <https://y.org>; "
            "![img](pic.png) is an image. **bold** __also bold__ *it* _it_ snake_case_name 2*3*4 a * b")
    out = f(text)
    assert out["shape_inline_code"] == 2
    assert out["shape_links"] == 2
    assert out["shape_bold"] == 2
    assert out["shape_italic"] == 2


def test_tables():
    text = ("| a | b |\n|---|:--:|\n| 1 | 2 |\n| 3 | 4 |\n\nx | y\n--- | ---\n1 | 2\n\n"
            "a | pipe but no separator\nplain\n")
    out = f(text)
    assert out["shape_tables"] == 2
    assert out["shape_headings"] == 0  # "--- | ---" is a separator, not a setext underline


def test_markdown_density():
    text = "# H\nplain line\n- item\nline with **bold**\n\n" + FENCE + "\ncode\n" + FENCE + "\nplain again"
    # non-blank lines: 8 (H, plain, item, bold line, fence, code, fence, plain again); structured: 6
    assert f(text)["shape_markdown_density"] == round(6 / 8, 4)
    assert f("just prose.\nmore prose.")["shape_markdown_density"] == 0.0


def test_first_person():
    text = ("I think my answer is mine. I'm sure, I’ve checked, I'd say I'll help me myself.\n"
            "Idea: In I/O the iPhone. \"I said this\" in quotes.\n\n> I am quoted\n\n"
            "`I me my` inline\n\n" + FENCE + "\nI = 1  # my var\n" + FENCE + "\n")
    out = f(text)
    assert out["shape_first_person"] == 9  # I my mine I'm I've I'd I'll me myself
    assert out["shape_has_first_person"] is True
    none = f("The cat sat. It is here.")
    assert none["shape_first_person"] == 0 and none["shape_has_first_person"] is False


def test_questions_to_user():
    text = ("What is a closure? A function with its scope. Do you use Python?\n\n"
            "Here is more text.\n\nDoes that make sense? Want an example?")
    out = f(text)
    assert out["shape_questions"] == 4
    assert out["shape_questions_to_user"] == 3  # "Do you use Python?" + both in the last paragraph


@pytest.mark.parametrize("text,label", [
    ("Sure! The answer is 4.", "acknowledge"),
    ("Certainly, here it is.", "acknowledge"),
    ("Great question! It depends.", "acknowledge"),
    ("Of course. Use a loop.", "acknowledge"),
    ("Here's a poem about rain.", "acknowledge"),
    ("Happy to help with that.", "acknowledge"),
    ("You're asking how to sort a list. Use sorted().", "restate"),
    ("So you want to learn Rust. Start with the book.", "restate"),
    ("Your question is about taxes.", "restate"),
    ("The answer is 4.", "direct"),
    ("Surely nobody asks that.", "direct"),
    ("Great Britain is an island.", "direct"),
    ("# Title\n\nSure, here it is.", "direct"),
    ("- Sure item\n- other", "direct"),
])
def test_opening(text, label):
    assert label in OPENINGS
    assert f(text)["shape_opening"] == label


def test_opening_restate_with_prompt():
    prompt = "How do I reverse a list in Python?"
    assert f("Reverse a list in Python. Use slicing.", prompt=prompt)["shape_opening"] == "restate"
    assert f("Reverse a list in Python with slicing.", prompt=prompt)["shape_opening"] == "direct"
    assert f("Reverse a list in Python. Use slicing.")["shape_opening"] == "direct"


@pytest.mark.parametrize("text,label", [
    ("Use a loop. Let me know if you need more.", "offer"),
    ("Use a loop. Feel free to ask follow-ups!", "offer"),
    ("Use a loop. Hope this helps!", "offer"),
    ("Use a loop. Would you like an example?", "offer"),
    ("Use a loop. Which version do you run?", "question"),
    ("Use a loop.\n\nIn summary, loops work.", "summary"),
    ("Use a loop.\n\nOverall, loops are fine. They are fast.", "summary"),
    ("Use a loop.\n\n## Conclusion\n\nLoops are fine.", "summary"),
    ("Use a loop. It is fast.", "plain"),
    ("Use this:\n\n" + FENCE + "\nfor x in y: pass\n" + FENCE, "plain"),
    ("Let me know if you need anything.\n\n| a | b |\n|---|---|\n| 1 | 2 |", "plain"),
    ("Steps:\n\n- do this\n- let me know how it goes", "offer"),
])
def test_closing(text, label):
    assert label in CLOSINGS
    assert f(text)["shape_closing"] == label


@pytest.mark.parametrize("text,lang", [
    ("The weather was lovely yesterday, so we walked along the river and had lunch in the park.", "en"),
    ("Le temps était magnifique hier, alors nous nous sommes promenés le long de la rivière.", "fr"),
    ("Das Wetter war gestern wunderschön, also sind wir am Fluss entlang spazieren gegangen.", "de"),
    ("El tiempo estaba precioso ayer, así que paseamos por la orilla del río y comimos allí.", "es"),
])
def test_language(text, lang):
    out = f("## Resumen\n\n" + text if lang == "es" else text)
    assert out["shape_language"] == lang
    assert 0.5 < out["shape_language_confidence"] <= 1.0


def test_cjk_words_sentences_language():
    out = f("空が青いのはレイリー散乱のためです。短い波長の光がより強く散乱されます。")
    assert out["shape_words"] == 34  # one word per Han/kana character
    assert out["shape_sentences"] == 2
    assert out["shape_language"] == "ja"


def test_language_und():
    code_only = FENCE + "python\ndef f(x):\n    return x + 1\n" + FENCE
    assert f(code_only)["shape_language"] == "und"
    assert f("Hi there")["shape_language"] == "und"  # < 3 words
    assert f("Run `the quick brown fox jumps` ok")["shape_language"] == "und"  # inline code is not prose


def test_lexical_overlap():
    out = f("Paris is the capital of France.", prompt="What is the capital of France?")
    # content words: prompt {capital, france}; response {paris, capital, france} -> 2/3
    assert out["shape_lexical_overlap"] == round(2 / 3, 4)
    assert f("Totally unrelated words.", prompt="Capital of France?")["shape_lexical_overlap"] == 0.0


def test_markdown_stripped():
    text = ("# Title\n\n- **bold** item with `code`\n1. [link](http://x.y) and ![alt](p.png)\n> quoted\n\n"
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n---\n\n"
            + FENCE + "py\nx = 1\n" + FENCE + "\nescaped \\*star\\*")
    assert markdown_stripped(text) == ("Title\n\nbold item with code\nlink and alt\nquoted\n\n"
                                       "a  b\n1  2\n\n\n"
                                       "x = 1\nescaped *star*")
    assert "x = 1" not in markdown_stripped(text, keep_code=False)
    # shape_words counts exactly the words of the code-free stripped text
    from sharpset.text.shape import count_words
    assert f(text)["shape_words"] == count_words(markdown_stripped(text, keep_code=False))


def test_crlf_same_as_lf():
    text = "# H\n\n- a\n- b\n\n" + FENCE + "\nx\n" + FENCE + "\nDone. Let me know!"
    a, b = f(text), f(text.replace("\n", "\r\n"))
    a.pop("shape_chars"), b.pop("shape_chars")
    assert a == b


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab I.?!#-*_`~|>()[]:1\n \t\r•'\"é")), max_size=200)
       | st.text(max_size=200),
       st.one_of(st.none(), st.text(max_size=50)))
def test_never_crashes_and_counts_non_negative(text, prompt):
    out = f(text, prompt=prompt)
    json.dumps(out)
    for name, value in out.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert value >= 0, name
    assert 0.0 <= out["shape_markdown_density"] <= 1.0
    assert out["shape_opening"] in OPENINGS and out["shape_closing"] in CLOSINGS
    assert out["shape_questions_to_user"] <= out["shape_questions"] <= out["shape_sentences"]
    markdown_stripped(text)


def test_opening_and_closing_labels_are_reachable_alone():
    from sharpset.text.shape import TEXT, closing_label, opening_label

    assert opening_label(TEXT, "Sure, here is how.", None) == "acknowledge"
    assert opening_label(TEXT, "Boiling pasta water salt", {"boiling", "pasta", "water", "salt"}) == "restate"
    assert opening_label(TEXT, "Boil the water first.", {"pasta"}) == "direct"
    assert closing_label("Let me know if you need more.", "", None) == "offer"
    assert closing_label("Does that help?", "", None) == "question"
    assert closing_label("It works.", "In summary, it works.", None) == "summary"
    assert closing_label(None, "", "Summary") == "plain"  # ends in code/table: plain whatever came before


# Golden values: every column of four fixed texts, as the definitions above give them. A change to
# any column here is a definition change (bump FEATURE_VERSION), not a refactor.
GOLDEN_TEXTS = {
    "markdown_answer": (
        "Sure! Here's how to **reverse** a list in *Python*.\n\n## Options\n\n"
        "- Use `reversed(xs)` for an iterator\n  - nested: it is lazy\n"
        "- Use slicing, see [the docs](https://docs.python.org)\n1. first step\n2) second step\n\n"
        "| way | copies |\n|---|:-:|\n| slicing | yes |\n\n---\n\n> I quoted this.\n\n"
        + FENCE + "python\nxs[::-1]  # my way\n" + FENCE + "\n\n"
        "Do you need more? Let me know if you want an example!\n",
        "How do I reverse a list in Python?"),
    "prose_answer": (
        "You're asking why the sky is blue. Dr. Smith said \"I know\" in 1.5 min. No. 5 is fine.\n\n"
        "I think my view, e.g. mine, holds... Wait... what? Is this right?\r\n\r\n"
        "In summary, sunlight scatters. Does that make sense?",
        None),
    "unterminated_setext": (
        "Heading\n=======\n\nText with __bold__ and _it_ and <https://a.b>.\n(a) alpha item\n\n"
        "~~~\ncode line\n\n- not a bullet",
        "Heading text please"),
    "empty": ("", None),
}
_ZERO = dict.fromkeys(SHAPE_COLUMNS, 0) | {"shape_unterminated_fence": False, "shape_markdown_density": 0.0,
                                            "shape_has_first_person": False, "shape_opening": "none",
                                            "shape_closing": "none", "shape_language": "und",
                                            "shape_language_confidence": 0.0}
GOLDEN = {
    "markdown_answer": _ZERO | {
        "shape_words": 47, "shape_chars": 367, "shape_sentences": 10, "shape_paragraphs": 8, "shape_bullets": 3,
        "shape_numbered_items": 2, "shape_nested_items": 1, "shape_headings": 1, "shape_code_blocks": 1,
        "shape_code_lines": 1, "shape_inline_code": 1, "shape_tables": 1, "shape_rules": 1, "shape_quote_lines": 1,
        "shape_bold": 1, "shape_italic": 1, "shape_links": 1, "shape_markdown_density": 0.9375,
        "shape_first_person": 1, "shape_has_first_person": True, "shape_questions": 1, "shape_questions_to_user": 1,
        "shape_opening": "acknowledge", "shape_closing": "offer", "shape_language": "en",
        "shape_language_confidence": 0.9979, "shape_lexical_overlap": 0.1364},
    "prose_answer": _ZERO | {
        "shape_words": 39, "shape_chars": 208, "shape_sentences": 8, "shape_paragraphs": 3,
        "shape_first_person": 3, "shape_has_first_person": True, "shape_questions": 3, "shape_questions_to_user": 1,
        "shape_opening": "restate", "shape_closing": "question", "shape_language": "en",
        "shape_language_confidence": 0.9992},
    "unterminated_setext": _ZERO | {
        "shape_words": 10, "shape_chars": 109, "shape_sentences": 2, "shape_paragraphs": 3,
        "shape_numbered_items": 1, "shape_headings": 1, "shape_code_blocks": 1, "shape_code_lines": 3,
        "shape_unterminated_fence": True, "shape_bold": 1, "shape_italic": 1, "shape_links": 1,
        "shape_markdown_density": 1.0, "shape_opening": "direct", "shape_closing": "plain", "shape_language": "en",
        "shape_language_confidence": 0.9153, "shape_lexical_overlap": 0.2222},
    "empty": _ZERO,
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_values(name):
    text, prompt = GOLDEN_TEXTS[name]
    out = f(text, prompt=prompt)
    want = GOLDEN[name]
    assert list(out) == list(want)  # column order too
    # the detector's probability is numpy arithmetic: exact to 4 decimals on one build, not promised across
    assert out.pop("shape_language_confidence") == pytest.approx(want["shape_language_confidence"], abs=2e-3)
    assert out == {k: v for k, v in want.items() if k != "shape_language_confidence"}
