"""IFEval checkers (sharpset.evaluate.ifeval): every type on a hand-written passing and failing
response, the loose rule, prompt level, kwargs validation, offline Punkt data."""

import inspect

import pytest

from sharpset.evaluate import ifeval
from sharpset.evaluate.ifeval import SUPPORTED, check, describe, loose_variants

LESS, LEAST = "less than", "at least"
F = "```"

# id -> (kwargs, passing response, failing response); both judged strictly.
CASES = {
    "keywords:existence": ({"keywords": ["garden", "tomato"]},
                           "My garden grows a Tomato every summer.", "My garden grows beans."),
    "keywords:frequency": ({"keyword": "rain", "frequency": 2, "relation": LEAST},
                           "Rain today, rain tomorrow.", "Rain today, sun tomorrow."),
    "keywords:forbidden_words": ({"forbidden_words": ["cheap", "free"]},
                                 "A fair price for carefree people.", "It is FREE this week."),
    "keywords:letter_frequency": ({"letter": "z", "let_frequency": 3, "let_relation": LEAST},
                                  "The lazy zebra dozed.", "The lazy cat dozed."),
    "language:response_language": ({"language": "fr"},
                                   "Le marché ouvre à huit heures et ferme à midi le dimanche.",
                                   "The market opens at eight and closes at noon on Sunday."),
    "length_constraints:number_sentences": ({"num_sentences": 3, "relation": LESS},
                                            "Dr. Smith arrived at 3.30 p.m. today. He was late.",
                                            "He came. He saw. He left."),
    "length_constraints:number_paragraphs": ({"num_paragraphs": 2}, "First part.\n***\nSecond part.",
                                             "First part.\n\nSecond part."),
    "length_constraints:number_words": ({"num_words": 6, "relation": LEAST},
                                        "Don't stop the 3.5 km run.", "Keep it short."),
    "length_constraints:nth_paragraph_first_word": (
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "First we shop.\n\nThen, we cook.", "First we shop.\n\nAfterwards we cook."),
    "detectable_content:number_placeholders": ({"num_placeholders": 2},
                                               "Dear [name], it ships to [address].",
                                               "Dear [name], it ships soon."),
    "detectable_content:postscript": ({"postscript_marker": "P.S."}, "See you.\n\nP.S. Bring snacks.",
                                      "See you. Bring snacks."),
    "detectable_format:number_bullet_lists": ({"num_bullets": 3}, "* apples\n- pears\n  * plums",
                                              "1. apples\n2. pears\n3. plums"),
    "detectable_format:constrained_response": ({}, "Having thought about it: My answer is maybe.",
                                               "Yes, definitely."),
    "detectable_format:number_highlighted_sections": ({"num_highlights": 2},
                                                      "Pack *warm socks* and a **rain jacket**.",
                                                      "Pack **warm socks** and a jacket."),
    "detectable_format:multiple_sections": ({"section_spliter": "Section", "num_sections": 2},
                                            "Section 1\nPack.\nSection 2\nGo.",
                                            "Section one\nPack.\nSection two\nGo."),
    "detectable_format:json_format": ({}, f'{F}json\n{{"city": "Lyon", "days": 3}}\n{F}',
                                      "{'city': 'Lyon'}"),
    "detectable_format:title": ({}, "<<A Walk in the Park>>\nWe walked.", "# A Walk\nWe walked."),
    "combination:two_responses": ({}, "Take the train.\n******\nTake the bus.",
                                  "Take the train.\n******\nTake the train."),
    "combination:repeat_prompt": ({"prompt_to_repeat": "What should I cook tonight?"},
                                  "what should I cook tonight? A curry.",
                                  "Sure! What should I cook tonight? A curry."),
    "startend:end_checker": ({"end_phrase": "Any other questions?"},
                             '"Opens at nine. any other questions?"  \n',
                             "Any other questions? Opens at nine."),
    "change_case:capital_word_frequency": ({"capital_frequency": 2, "capital_relation": LEAST},
                                           "This is VERY, VERY important.", "This is VERY important."),
    # IFEval's quirk, kept for parity: langdetect reads short all-caps English as Vietnamese
    # ("THE TRAIN LEAVES AT SIX IN THE MORNING, SO BE ON TIME." fails), so the passing text is longer.
    "change_case:english_capital": ({}, "PLEASE REMEMBER TO WATER THE PLANTS EVERY MORNING BEFORE YOU "
                                        "LEAVE FOR WORK.",
                                    "THE TRAIN LEAVES AT SIX. Please be on time."),
    "change_case:english_lowercase": ({}, f"add them like this:\n{F}python\ndef add(a, b):\n"
                                          f"    return a + b\n{F}",
                                      "the train leaves at six. I will be there."),
    "punctuation:no_comma": ({}, "The meeting is at noon and lunch follows.",
                             "We counted 1,250 birds at the lake."),
    "startend:quotation": ({}, '  "Keep the receipts."  \n', "“Keep the receipts.”"),
}


def one(iid, kw, response, prompt="p"):
    return check([iid], [kw], prompt, response)


def test_every_type_covered_and_kwargs_match_the_checker_classes():
    assert set(CASES) == set(SUPPORTED) and len(SUPPORTED) == 25
    registry = ifeval._registry()[0]
    for iid in SUPPORTED:
        params = [p for p in inspect.signature(registry[iid].build_description).parameters if p != "self"]
        assert list(describe(iid)) == params, iid  # our declared names are the library's names


@pytest.mark.parametrize("iid", sorted(CASES))
def test_strict_pass_and_fail(iid):
    kw, good, bad = CASES[iid]
    assert one(iid, kw, good)["strict"] == [True], good
    assert one(iid, kw, bad)["strict"] == [False], bad


@pytest.mark.parametrize("iid,kw,response,why", [
    ("punctuation:no_comma", {}, "Sure, here it is:\nThe meeting is at noon.", "first line dropped"),
    ("detectable_format:json_format", {}, f'Here is the JSON:\n{F}json\n{{"a": 1}}\n{F}', "preamble"),
    ("startend:end_checker", {"end_phrase": "Peace out."}, "See you. **Peace out.**", "'*' removed"),
    ("startend:quotation", {}, '"Keep the receipts."\n(generated)', "last line dropped"),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "first"},
     "Here you go:\n**First** we shop.\n\nThen we cook.", "first line dropped AND '*' removed"),
])
def test_loose_forgives_what_strict_does_not(iid, kw, response, why):
    out = one(iid, kw, response)
    assert out["strict"] == [False] and out["loose"] == [True], why
    assert out["prompt_strict"] is False and out["prompt_loose"] is True


def test_loose_variants_order_and_content():
    v = loose_variants("Sure:\n*a* b\nBye")
    assert v == ["Sure:\n*a* b\nBye", "Sure:\na b\nBye", "*a* b\nBye", "Sure:\n*a* b", "*a* b",
                 "a b\nBye", "Sure:\na b", "a b"]
    assert len(loose_variants("one line")) == 8


def test_loose_does_not_rescue_a_real_failure():
    out = one("punctuation:no_comma", {}, "One, two\nthree, four\nfive, six")
    assert out == {"strict": [False], "loose": [False], "prompt_strict": False, "prompt_loose": False}


def test_prompt_level_is_all_of_the_instructions():
    ids = ["punctuation:no_comma", "change_case:english_capital", "detectable_format:title"]
    kws = [{}, {}, {}]
    both = check(ids, kws, "p", "<<TEA TIME>>\nTHE KETTLE IS ON SO COME OVER NOW.")
    assert both["strict"] == [True, True, True] and both["prompt_strict"] is True
    one_off = check(ids, kws, "p", "<<TEA TIME>>\nTHE KETTLE IS ON, SO COME OVER NOW.")
    assert one_off["strict"] == [False, True, True] and one_off["prompt_strict"] is False
    assert one_off["prompt_loose"] is all(one_off["loose"])


@pytest.mark.parametrize("response", ["", "   \n\t "])
def test_empty_response_fails_everything(response):
    # even instructions an empty text would vacuously satisfy (no commas, no forbidden words)
    out = check(["punctuation:no_comma", "keywords:forbidden_words"], [{}, {"forbidden_words": ["x"]}],
                "p", response)
    assert out == {"strict": [False, False], "loose": [False, False],
                   "prompt_strict": False, "prompt_loose": False}


def test_none_valued_kwargs_are_ignored_like_lm_eval():
    # google/IFEval rows carry every kwargs name, most of them None
    out = one("detectable_format:number_bullet_lists", {"num_bullets": 1, "keywords": None, "letter": None},
              "* one")
    assert out["strict"] == [True]
    assert one("punctuation:no_comma", {"num_bullets": None}, "no commas")["strict"] == [True]


@pytest.mark.parametrize("iid,kw,needle", [
    ("nope:unknown", {}, "nope:unknown"),
    ("detectable_format:number_bullet_lists", {}, "num_bullets"),  # missing: IFEval would randomise
    ("detectable_format:number_bullet_lists", {"num_bullet": 3}, "num_bullet"),  # typo
    ("detectable_format:number_bullet_lists", {"num_bullets": 0}, "num_bullets"),
    ("detectable_format:number_bullet_lists", {"num_bullets": "3"}, "num_bullets"),
    ("detectable_format:number_bullet_lists", {"num_bullets": True}, "num_bullets"),
    ("keywords:frequency", {"keyword": "a", "frequency": 2, "relation": "at most"}, "relation"),
    ("keywords:existence", {"keywords": "tea"}, "keywords"),
    ("keywords:existence", {"keywords": ["(tea"]}, "keywords"),  # not a valid regular expression
    ("keywords:letter_frequency", {"letter": "ab", "let_frequency": 1, "let_relation": LESS}, "letter"),
    ("language:response_language", {"language": "xx"}, "language"),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "a"}, "nth_paragraph"),
    ("startend:end_checker", {"end_phrase": "  "}, "end_phrase"),
])
def test_bad_ids_and_kwargs_raise_naming_them(iid, kw, needle):
    with pytest.raises(ValueError) as e:
        one(iid, kw, "some response")
    assert iid in str(e.value) and needle in str(e.value)


def test_describe_and_shapes():
    assert describe("startend:end_checker") == ("end_phrase",)
    assert describe("punctuation:no_comma") == ()
    with pytest.raises(ValueError, match="bogus"):
        describe("bogus")
    with pytest.raises(ValueError, match="one dict per instruction"):
        check(["punctuation:no_comma"], [], "p", "r")
    with pytest.raises(ValueError, match="list of ids"):
        check("punctuation:no_comma", [{}], "p", "r")
    assert one("detectable_format:number_bullet_lists", {"num_bullets": 2.0}, "* a\n* b")["strict"] == [True]


def test_verdicts_are_repeatable():
    # langdetect is seeded: a mixed-language text gets the same verdict every time
    text = "Bonjour tout le monde, the weather is nice today et il fait beau."
    first = [one("language:response_language", {"language": lang}, text)["strict"] for lang in ("en", "fr")]
    for _ in range(3):
        assert [one("language:response_language", {"language": lang}, text)["strict"]
                for lang in ("en", "fr")] == first


def test_punkt_written_offline_reproduces_nltk_documented_splits(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setenv("SHARPSET_CACHE", str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    root = ifeval.ensure_punkt()
    assert root == tmp_path / "nltk_data" and nltk.data.path[0] == str(root)
    files = sorted(p.name for p in (root / "tokenizers" / "punkt_tab" / "english").iterdir())
    assert files == ["abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"]
    assert ifeval.ensure_punkt() == root  # second call: already there
    from nltk.tokenize.punkt import PunktTokenizer

    # nltk's own docstring examples (nltk/tokenize/punkt.py and nltk/tokenize/__init__.py)
    text = ("Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence "
            "boundaries.  And sometimes sentences\ncan start with non-capitalized words.  i is a "
            "good variable\nname.")
    assert PunktTokenizer("english").tokenize(text) == [
        "Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.",
        "And sometimes sentences\ncan start with non-capitalized words.", "i is a good variable\nname."]
    s = "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\n\nThanks."
    assert nltk.sent_tokenize(s) == ["Good muffins cost $3.88\nin New York.",
                                     "Please buy me\ntwo of them.", "Thanks."]
