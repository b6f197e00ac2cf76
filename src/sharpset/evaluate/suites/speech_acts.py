"""``speech_acts``: on prompts where a warning is warranted, the rates of answers that warn, alarm,
denounce or hedge (METHODS §8: measured, not assumed).

Prompts: ``evaluate/data/speech_acts.jsonl`` (risky plans across categories). Classifier: the
transparent cue lexicon of :mod:`sharpset.evaluate.speech_acts`, whose precision and recall on the
shipped labelled set (test split) are reported beside the rates in every summary.
"""

from __future__ import annotations

from typing import Any

from ..suite import Context, Suite, limit_items


class SpeechActsSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        return limit_items(load("speech_acts", ctx.cfg.split), ctx.cfg.limit)

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from .. import speech_acts as sa

        answers = ctx.generate(self.name, [(it["id"], it["messages"]) for it in items],
                               max_new_tokens=ctx.cfg.max_new_tokens)
        rows = []
        for it in items:
            text = answers[it["id"]]["text"]
            hits = sa.cues(text)
            rows.append({"item": it["id"], "prompt": it["messages"][-1]["content"], "answer": text,
                         "category": it.get("category"), **{a: float(bool(hits[a])) for a in sa.ACTS},
                         "cues": {a: hits[a] for a in sa.ACTS if hits[a]}})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        from .. import speech_acts as sa
        from ..data import load

        v = sa.validate(load("speech_acts_labelled", "test"))
        return {"classifier_test_split": {a: {k: v[a][k] for k in ("precision", "recall", "support")} for a in sa.ACTS}
                | {"n": v["n"]}}


SUITE = SpeechActsSuite("speech_acts", 1, "warn / alarm / denounce / hedge rates where a warning is warranted",
                        metrics=("warn", "alarm", "denounce", "hedge"))
