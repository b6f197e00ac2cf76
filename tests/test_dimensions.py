"""Alignment dimensions (sharpset.evaluate.dimensions): hand-made user/response pairs."""

import math

import pytest

from sharpset.evaluate.dimensions import (compound, content_bigrams, emotional_alignment,
                                          lexical_alignment, polarity, sentences_for_sentiment)
from sharpset.evaluate import dimensions
from sharpset.shape import STOPWORDS, content_words

SAD = "My old dog died yesterday and I feel terrible. I keep looking at his empty basket."
UPBEAT = "Awesome! That sounds like a fantastic day, enjoy every minute of it!!"
KIND = "I am so sorry your old dog died. It is terrible to see his empty basket; grief hurts."


def test_echoing_reply_has_high_lexical_alignment_and_unrelated_reply_none():
    user = "How do I repot a root-bound fern without killing it?"
    echo = "To repot a root-bound fern without killing it, loosen the roots and use a bigger pot."
    other = "Paris is the capital of France."
    hi, lo = lexical_alignment(user, echo), lexical_alignment(user, other)
    assert hi["content_reuse"] == 1.0  # every user content word comes back
    assert hi["bigram_reuse"] >= 0.75 and hi["bigram_jaccard"] > 0.2
    assert hi["shared_content_words"] == hi["user_content_words"] == len(content_words(user))
    assert lo["content_jaccard"] == lo["content_reuse"] == lo["bigram_reuse"] == 0.0
    assert hi["content_jaccard"] > lo["content_jaccard"]


def test_lexical_formulas_on_a_counted_case():
    # U = {green, tea, brew}; R = {brew, green, tea, three, minutes, water}
    user = "How should I brew green tea?"
    resp = "Brew green tea for three minutes in hot water."
    assert content_words(user) == {"brew", "green", "tea"}
    out = lexical_alignment(user, resp)
    r = content_words(resp)
    assert out["shared_content_words"] == 3 and out["response_content_words"] == len(r)
    assert out["content_reuse"] == 1.0
    assert out["content_jaccard"] == round(3 / len(r), 4)
    # bigrams keep a pair with at least one content word ("i brew") and drop stopword pairs
    assert ("i", "brew") in content_bigrams(user)
    assert ("green", "tea") in content_bigrams(user) & content_bigrams(resp)
    assert ("how", "should") not in content_bigrams(user)  # two stopwords: dropped


def test_jaccard_falls_with_length_but_reuse_does_not():
    user = "Recommend a sci-fi novel about first contact."
    short = "Try a first contact novel: Arrival's source story."
    long = short + " " + " ".join(f"Extra{i} filler{i} words{i}." for i in range(30))
    a, b = lexical_alignment(user, short), lexical_alignment(user, long)
    assert b["content_reuse"] == a["content_reuse"] > 0
    assert b["content_jaccard"] < a["content_jaccard"]


def test_markdown_does_not_change_lexical_alignment():
    user = "List three uses of baking soda."
    plain = "Baking soda cleans ovens. Baking soda deodorises fridges. Baking soda softens water."
    md = "- **Baking soda** cleans ovens.\n- *Baking soda* deodorises fridges.\n- `Baking soda` softens water."
    assert lexical_alignment(user, plain) == lexical_alignment(user, md)


def test_undefined_reuse_is_none_not_zero():
    out = lexical_alignment("Is it?", "Yes, it is.")  # the user turn is all stopwords
    assert out["user_content_words"] == 0
    assert out["content_reuse"] is None and out["bigram_reuse"] is None
    assert out["content_jaccard"] == 0.0
    both_empty = lexical_alignment("", "")
    assert both_empty["content_jaccard"] == 0.0 and both_empty["content_reuse"] is None


def test_bigram_tokens_are_content_words_tokens():
    # dimensions repeats shape's token rule for ordered tokens: the two must not drift apart
    for text in ["Smith's café — naïve coöperation, e-mail & 3.5 km!", "Don't *stop*; it’s O'Neil's `x_y`.",
                 "## Heading\n1. first item\n> quoted line", "日本語のテキスト and English words"]:
        toks = {t for t in dimensions._tokens(text) if len(t) >= 2 and t not in STOPWORDS}
        assert toks == content_words(text), text


def test_upbeat_reply_to_sad_message_has_low_emotional_concordance():
    cheer, kind = emotional_alignment(SAD, UPBEAT), emotional_alignment(SAD, KIND)
    assert cheer["user_compound"] < -0.05 < 0.05 < cheer["response_compound"]
    assert cheer["sign_agreement"] is False and cheer["user_polarity"] == -1 and cheer["response_polarity"] == 1
    assert kind["sign_agreement"] is True and kind["response_polarity"] == -1
    assert cheer["concordance"] < 0.6 < 0.85 < kind["concordance"]
    want = 1 - abs(cheer["user_compound"] - cheer["response_compound"]) / 2  # from rounded parts
    assert cheer["concordance"] == pytest.approx(want, abs=1e-4)


def test_concordance_bounds_and_symmetry():
    same = emotional_alignment(UPBEAT, UPBEAT)
    assert same["concordance"] == 1.0 and same["sign_agreement"] is True
    a, b = emotional_alignment(SAD, UPBEAT), emotional_alignment(UPBEAT, SAD)
    assert a["concordance"] == b["concordance"]
    for out in (a, b, same):
        assert 0.0 <= out["concordance"] <= 1.0


def test_neutral_pairs_agree_and_empty_text_is_neutral():
    out = emotional_alignment("What is the boiling point of water at sea level?",
                              "Water boils at 100 degrees Celsius at sea level.")
    assert out["user_polarity"] == out["response_polarity"] == 0 and out["sign_agreement"] is True
    assert compound("") == 0.0 and polarity(0.0) == 0
    assert polarity(0.05) == 1 and polarity(-0.05) == -1 and polarity(0.0499) == 0


def test_compound_is_a_sentence_mean_and_ignores_code_and_markup():
    assert sentences_for_sentiment("# Title\n**Great** job!\n\n- too slow\n- works well\n\n"
                                   "```py\nprint('awful')\n```\nThanks. Bye now.") == [
        "Title", "Great job!", "too slow", "works well", "Thanks.", "Bye now."]
    vader = dimensions._analyzer()
    one = "I love this."
    long = " ".join([one] * 12)
    # whole-text VADER saturates with length; the sentence mean does not
    assert vader.polarity_scores(long)["compound"] > vader.polarity_scores(one)["compound"]
    assert math.isclose(compound(long), compound(one))
    assert compound("```\nterrible horrible awful\n```") == 0.0
    assert compound("**I love this.**") == pytest.approx(compound("I love this."))


def test_dimensions_are_reported_apart():
    # never merged: the two dicts share no key, and neither carries a combined score
    lex, emo = lexical_alignment(SAD, KIND), emotional_alignment(SAD, KIND)
    assert not set(lex) & set(emo)
