"""Alignment dimensions between a user turn and the response (METHODS.md §8), never merged.

Two separate measurements, each its own dict, because they answer different questions and a sum or
mean of them would hide which one moved:

* :func:`lexical_alignment` -- how much of the user's wording the response reuses (local lexical
  alignment between adjacent turns, as in the interactive-alignment literature: Pickering & Garrod
  2004; measured as turn-to-turn token/n-gram overlap by Fusaroli et al. 2012 and the ALIGN package,
  Duran, Paxton & Fusaroli 2019). Set-based, so a word repeated ten times counts once; surface
  forms, no stemming or lemmas ("dog" and "dogs" differ), so nothing needs a tagger or its data.
* :func:`emotional_alignment` -- whether the response's sentiment matches the user's, by VADER
  (Hutto & Gilbert 2014), a rule-and-lexicon scorer whose lexicon ships inside the
  ``vaderSentiment`` wheel (read from the package folder; nothing is downloaded).

Both read the text after ``markdown_stripped`` (list markers, ``**``, link syntax removed), so a
reply is not more or less "aligned" for being formatted.
"""

from __future__ import annotations

import functools
import re

from ..text.shape import STOPWORDS, content_words, jaccard, markdown_stripped, split_sentences

# The token rule of sharpset.shape.content_words (its _TOKEN), repeated because the bigrams need
# the tokens in order and content_words returns a set; tests/test_dimensions.py checks that the
# two agree, so unigram and bigram figures always see the same words.
_WORD = re.compile(r"[^\W_]+(?:'(?!s\b)[^\W_]+)*")

# VADER's README: compound >= 0.05 is positive, <= -0.05 negative, in between neutral.
NEUTRAL_BAND = 0.05


def _tokens(text: str) -> list[str]:
    return _WORD.findall(markdown_stripped(text).lower().replace("’", "'"))


def content_bigrams(text: str) -> set[tuple[str, str]]:
    """Adjacent token pairs of the markdown-stripped, lower-cased text, except pairs of two
    stopwords ("of the", "it is"), which any two English texts share and say nothing of reuse."""
    toks = _tokens(text)
    return {(a, b) for a, b in zip(toks, toks[1:]) if not (a in STOPWORDS and b in STOPWORDS)}


def _share(user: set, response: set) -> float | None:
    return len(user & response) / len(user) if user else None


def lexical_alignment(user: str, response: str) -> dict:
    """Overlap of the response's wording with the user turn.

    With U, R the content-word sets (:func:`sharpset.shape.content_words`: tokens of length >= 2,
    stopwords removed) and Bu, Br the :func:`content_bigrams` sets:

    * ``content_jaccard`` = |U & R| / |U | R| (0.0 when both are empty)
    * ``content_reuse`` = |U & R| / |U|, the share of the user's content words the response reuses
      (None when the user turn has no content word: undefined, not zero)
    * ``bigram_jaccard`` = |Bu & Br| / |Bu | Br|; ``bigram_reuse`` = |Bu & Br| / |Bu| (None if Bu is
      empty)
    * ``user_content_words``, ``response_content_words``, ``shared_content_words``: |U|, |R|, |U & R|

    Jaccard falls as the response grows (the union grows); the reuse shares do not, which is why
    both are reported.
    """
    u, r = content_words(user), content_words(response)
    bu, br = content_bigrams(user), content_bigrams(response)
    reuse, b_reuse = _share(u, r), _share(bu, br)
    return {
        "content_jaccard": round(jaccard(u, r), 4),
        "content_reuse": None if reuse is None else round(reuse, 4),
        "bigram_jaccard": round(jaccard(bu, br), 4),
        "bigram_reuse": None if b_reuse is None else round(b_reuse, 4),
        "user_content_words": len(u),
        "response_content_words": len(r),
        "shared_content_words": len(u & r),
    }


@functools.lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()  # reads vader_lexicon.txt from its own package folder


def sentences_for_sentiment(text: str) -> list[str]:
    """Sentences of ``text``: markdown stripped with fenced code dropped (code carries no affect),
    then each line split by :func:`sharpset.shape.split_sentences`. Per line, because once the
    markers are gone a list item or heading is only recognisable as its own line ("- too slow" and
    "- works well" must not fuse into one sentence); a sentence hard-wrapped over two lines counts
    as two, a small price in chat text, which rarely hard-wraps."""
    out = []
    for line in markdown_stripped(text, keep_code=False).split("\n"):
        line = " ".join(line.split())
        if line:
            out.extend(split_sentences(line))
    return out


def compound(text: str) -> float:
    """Mean VADER compound score over the sentences of ``text``, in [-1, 1]; 0.0 for no sentence.

    Per sentence, not the whole text at once: VADER's compound is s / sqrt(s^2 + 15) of the summed
    valences s, so a long answer saturates towards +-1 whatever its balance; the package's own demo
    averages sentence scores for a paragraph ("VADER works best when analysis is done at the
    sentence level").
    """
    sents = sentences_for_sentiment(text)
    if not sents:
        return 0.0
    vader = _analyzer()
    return sum(vader.polarity_scores(s)["compound"] for s in sents) / len(sents)


def polarity(c: float) -> int:
    """+1, 0 or -1 for a compound score, with VADER's +-0.05 neutral band."""
    return 1 if c >= NEUTRAL_BAND else -1 if c <= -NEUTRAL_BAND else 0


def emotional_alignment(user: str, response: str) -> dict:
    """Sentiment concordance between the user turn and the response.

    With c_u, c_r the :func:`compound` scores of user and response:

    * ``concordance`` = 1 - |c_u - c_r| / 2, in [0, 1] (1: same score; 0: +1 against -1)
    * ``sign_agreement`` = polarity(c_u) == polarity(c_r), polarities in {-1, 0, +1} with VADER's
      +-0.05 neutral band (a neutral reply to a neutral question agrees)
    * ``user_compound``, ``response_compound``, ``user_polarity``, ``response_polarity``
    """
    cu, cr = compound(user), compound(response)
    pu, pr = polarity(cu), polarity(cr)
    return {
        "concordance": round(1.0 - abs(cu - cr) / 2.0, 4),
        "sign_agreement": pu == pr,
        "user_compound": round(cu, 4),
        "response_compound": round(cr, 4),
        "user_polarity": pu,
        "response_polarity": pr,
    }
