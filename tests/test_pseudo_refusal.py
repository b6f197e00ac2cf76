"""Pseudo-refusals (issue 20): an answer that declines or disclaims, then helps anyway."""

from __future__ import annotations

import pytest

from sharpset.text.degeneration import health, is_pseudo_refusal

PSEUDO = [
    # the shape issue 20 read in the quickstart's curated set
    "I'm sorry for any misunderstanding, but as an AI designed to assist with baking, I don't have the "
    "capability to taste food. However, I can certainly help with that! Here is a simple recipe.",
    "As an AI, I don't have personal opinions, but here are some points to consider: cost, time and risk.",
    "I don’t have the ability to browse the internet. That said, I’d be happy to summarise what I know.",
    "I'm sorry, but as an AI language model I cannot see your screen. Instead, let me explain the steps.",
    # an opening apology for a confusion nobody made, short and with no pivot: the quickstart's kept
    # constraint row (constrain VERSION 3 let it through; the tuned base opened 10 of 40 answers with it)
    "I'm sorry for the confusion. The problem is about finding a number that is divisible by 3 and 5.",
    "Apologies for any misunderstanding! Here are three ideas.",
    "I apologize for the mistake in my earlier answer: the sum is 4.",
]
NOT_PSEUDO = [
    "I'm sorry, but I can't help with that.",  # a refusal that does not help
    "I cannot assist with that request, but I can't offer an alternative either.",
    "Sure! Here are three ideas for a party: a picnic, a movie night and a board game evening.",
    "Paris is the capital of France. However, I can tell you more about Lyon if you like.",
    "I'm sorry to hear about your loss. Grief takes time; talking to friends can help.",  # sympathy, not an apology
    "The confusion comes from mixing units: convert both to metres first.",
    "",
]


@pytest.mark.parametrize("text", PSEUDO)
def test_pseudo_refusals_are_found(text):
    assert is_pseudo_refusal(text)


@pytest.mark.parametrize("text", NOT_PSEUDO)
def test_plain_answers_and_plain_refusals_are_not(text):
    assert not is_pseudo_refusal(text)


def test_long_answer_after_a_disclaimer_counts_without_a_pivot():
    text = "As an AI, I do not have personal experiences. " + "Gardening starts with good soil and water. " * 12
    assert is_pseudo_refusal(text)
    assert health(text)["pseudo_refusal"] is True
    assert health("The answer is 4.")["pseudo_refusal"] is False
