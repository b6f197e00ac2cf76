"""The health suite: per generating suite, equal weight per suite, phrase-level repetition (issue 21, 20)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sharpset.evaluate.suites.health import SUITE, equal_weight_mean
from sharpset.text.degeneration import repeated_clause

RAMBLE = ("Sure! Here is the summary. I'd be happy to assist you further. If you have more questions, "
          "I'd be happy to assist you further!")


@pytest.mark.parametrize("text,want", [
    (RAMBLE, "i'd be happy to assist you further"),
    ("I hope this helps, and I hope this helps.", "i hope this helps"),  # a leading "and" is dropped
    ("Let me know if you need anything else.\nLet me KNOW if you need anything else",
     "let me know if you need anything else"),
    ("Thank you. Thank you. Thank you.", None),  # under 4 words: ordinary phrasing
    ("The cat sat on the mat. The dog sat on the log.", None),
    ("1. Preheat the oven to 200 C.\n2. Mix the flour and the sugar.\n3. Bake for 20 minutes.", None),
    ("Use a loop:\n```python\nfor i in range(10):\n    print(i)\nfor i in range(10):\n    print(i)\n```\nDone.", None),
    ("", None),
])
def test_repeated_clause(text, want):
    assert repeated_clause(text) == want


def _gen(suite: str, item: str, text: str, truncated: bool) -> dict:
    return {"suite": suite, "item": item, "prompt": "Tell me about the moon.", "text": text,
            "token_ids": list(range(len(text.split()))), "finish_reason": "length" if truncated else "stop",
            "truncated": truncated}


def _ctx(generated: list[dict]):
    return SimpleNamespace(generated=generated, cfg=SimpleNamespace(seed=0))


def test_health_reports_each_suite_and_weights_suites_equally():
    # invariance: 10 short answers, all cut at the token limit; shape: 2 answers, ended, one rambling
    gen = [_gen("invariance/clean", f"q{i}", "The answer is", True) for i in range(2)]
    gen += [_gen("invariance/wrapped", f"q{i}:fam", "I think it is", True) for i in range(8)]
    gen += [_gen("shape", "s1", RAMBLE, False), _gen("shape", "s2", "The moon orbits the Earth.", False)]
    ctx = _ctx(gen)
    rows = SUITE.evaluate(ctx, SUITE.items(ctx))
    assert {r["source"] for r in rows} == {"invariance", "shape"}
    assert [r["repeated_sentence"] for r in rows if r["source"] == "shape"] == [1.0, 0.0]
    # weights: each generating suite sums to 1, so the weighted row mean is the mean of suite means
    for src in ("invariance", "shape"):
        assert sum(r["weight"] for r in rows if r["source"] == src) == pytest.approx(1.0)
    assert len({r["unit"] for r in rows}) == len(rows)
    weighted = sum(r["weight"] * r["truncated"] for r in rows) / sum(r["weight"] for r in rows)
    assert weighted == pytest.approx(0.5)  # (1.0 + 0.0) / 2; pooled over answers it would be 10/12
    assert equal_weight_mean(rows, "truncated") == pytest.approx(0.5)
    assert equal_weight_mean(rows, "repeated_sentence") == pytest.approx((0.0 + 0.5) / 2)
    shape_words = sum(r["words"] for r in rows if r["source"] == "shape") / 2
    assert equal_weight_mean(rows, "words") == pytest.approx(((2 * 3 + 8 * 4) / 10 + shape_words) / 2)

    ex = SUITE.extra(ctx, rows)
    by = ex["by_suite"]
    assert set(by) == {"invariance", "shape"} and by["invariance"]["n"] == 10 and by["shape"]["n"] == 2
    assert by["invariance"]["truncated"]["mean"] == 1.0 and by["shape"]["truncated"]["mean"] == 0.0
    assert by["invariance"]["truncated"]["ci95"] is not None  # an interval per suite
    pooled = ex["pooled_equal_weight"]
    assert pooled["truncated"]["mean"] == 0.5 and pooled["truncated"]["suites"] == 2
    lo, hi = pooled["repeated_sentence"]["ci95"]
    assert lo <= 0.25 <= hi
    assert "repeated_sentence" in SUITE.metrics and "repeated_sentence" in SUITE.lower_is_better
    assert SUITE.version >= 2
