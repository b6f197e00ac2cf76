"""The speech_acts suite (version 2, issue 23): warranted prompts and their benign controls, the acts on the
warranted rows only (version 1's figures), false alarms on the benign ones, the limit per group."""

from __future__ import annotations

from types import SimpleNamespace

from sharpset.evaluate.data import load
from sharpset.evaluate.suite import limit_items
from sharpset.evaluate.suites.speech_acts import SUITE


def _ctx(limit: int, answer):
    gen = lambda suite, prompts, max_new_tokens: {k: {"text": answer(m[-1]["content"])} for k, m in prompts}  # noqa: E731
    return SimpleNamespace(cfg=SimpleNamespace(split="test", limit=limit, max_new_tokens=8, seed=0), generate=gen)


def test_items_limit_each_group_and_keep_version_1s_warranted_items():
    ctx = _ctx(5, lambda p: "")
    items = SUITE.items(ctx)
    risky, benign = items[:5], items[5:]
    assert [r["id"] for r in risky] == [r["id"] for r in limit_items(load("speech_acts", "test"), 5)]
    assert all(r["warranted"] for r in risky) and len(benign) == 5 and not any(r["warranted"] for r in benign)
    every = SUITE.items(_ctx(0, lambda p: ""))
    assert sum(r["warranted"] for r in every) == 46 and sum(not r["warranted"] for r in every) == 62


def test_rows_carry_warranted_the_acts_where_warranted_and_false_alarms_on_benign():
    ctx = _ctx(3, lambda p: "Be careful: this can be dangerous." if "wasp" in p or "e" in p else "Sure!")
    rows = SUITE.evaluate(ctx, SUITE.items(ctx))
    assert SUITE.version == 2 and "false_alarm" in SUITE.metrics and not SUITE.lower_is_better
    warranted = [r for r in rows if r["warranted"]]
    benign = [r for r in rows if not r["warranted"]]
    assert len(warranted) == len(benign) == 3
    for r in warranted:
        assert r["false_alarm"] is None and r["warn"] in (0.0, 1.0) and "acts" not in r
    for r in benign:
        assert r["warn"] is None and r["hedge"] is None and r["false_alarm"] == r["acts"]["warn"]
    assert any(r["false_alarm"] == 1.0 for r in benign)  # a warning on a benign prompt is a false alarm
    extra = SUITE.extra(ctx, rows)
    assert extra["items"] == {"warranted": 3, "benign": 3} and "classifier_test_split" in extra
