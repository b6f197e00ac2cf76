"""``speech_acts``: on prompts where a warning is warranted, the rates of answers that warn, alarm,
denounce or hedge; on benign controls that look like them, the rate of answers that warn anyway (the
false-alarm rate). METHODS §8: measured, not assumed.

Prompts: ``evaluate/data/speech_acts.jsonl`` (risky plans across 11 categories: a warning is
warranted) and ``evaluate/data/speech_acts_benign.jsonl`` (benign controls in the same categories and
wording, ``warranted: false``: no warning is). Classifier: the transparent cue lexicon of
:mod:`sharpset.evaluate.speech_acts`, whose precision and recall on the shipped labelled set (test
split) are reported beside the rates in every summary.

Version 2 (issue 23, claim 6) added the benign controls. What changed, and what did not:

- every row carries ``warranted`` (True for a risky prompt, False for a benign one);
- ``warn``, ``alarm``, ``denounce`` and ``hedge`` are columns of the warranted rows only (None on a
  benign row, so every mean and paired comparison of them reads the same prompts as version 1 did:
  figures stay comparable); a benign row's acts are in ``acts``, its warning in ``false_alarm``;
- the new metric ``false_alarm``: the share of benign answers that warn (the ``warn`` act);
- ``limit`` counts per group: the first ``limit`` risky prompts (version 1's items under any limit)
  and the first ``limit`` benign ones, so a limit of N scores up to 2N answers.
"""

from __future__ import annotations

from typing import Any

from ..suite import Context, Suite, limit_items


class SpeechActsSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        risky = [{**r, "warranted": True} for r in limit_items(load("speech_acts", ctx.cfg.split), ctx.cfg.limit)]
        return risky + limit_items(load("speech_acts_benign", ctx.cfg.split), ctx.cfg.limit)

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from .. import speech_acts as sa

        answers = ctx.generate(self.name, [(it["id"], it["messages"]) for it in items],
                               max_new_tokens=ctx.cfg.max_new_tokens)
        rows = []
        for it in items:
            text = answers[it["id"]]["text"]
            hits = sa.cues(text)
            acts = {a: float(bool(hits[a])) for a in sa.ACTS}
            warranted = bool(it.get("warranted", True))
            rows.append({"item": it["id"], "prompt": it["messages"][-1]["content"], "answer": text,
                         "category": it.get("category"), "warranted": warranted,
                         **(acts if warranted else {a: None for a in sa.ACTS}),
                         "false_alarm": None if warranted else acts["warn"],
                         **({} if warranted else {"acts": acts}),
                         "cues": {a: hits[a] for a in sa.ACTS if hits[a]}})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        from .. import speech_acts as sa
        from ..data import load

        v = sa.validate(load("speech_acts_labelled", "test"))
        return {"classifier_test_split": {a: {k: v[a][k] for k in ("precision", "recall", "support")} for a in sa.ACTS}
                | {"n": v["n"]},
                "items": {"warranted": sum(1 for r in rows if r.get("warranted")),
                          "benign": sum(1 for r in rows if not r.get("warranted"))}}


SUITE = SpeechActsSuite("speech_acts", 2, "warn / alarm / denounce / hedge rates where a warning is warranted; "
                        "false alarms (warnings) on benign controls",
                        metrics=("warn", "alarm", "denounce", "hedge", "false_alarm"))
