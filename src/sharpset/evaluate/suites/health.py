"""``health``: always on, cheap -- empty, truncated, looping and length of every answer the run made.

Computed over all answers generated for a model in this evaluation (every generating suite), with
:func:`sharpset.text.degeneration.health`: ``loop`` (a long repeated span, low distinct-3 or high
compression), ``truncated`` (hit the token limit), ``empty``, ``complete`` (ended by the model and
not empty), ``refusal`` and the answer length in words. No generation of its own.
"""

from __future__ import annotations

from typing import Any

from ..suite import Context, Suite


class HealthSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        return [{"id": f"{g['suite']}/{g['item']}", **g} for g in ctx.generated]

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ...text.degeneration import health

        rows = []
        for g in items:
            h = health(g["text"], prompt=g["prompt"], finish_reason=g["finish_reason"], token_ids=g["token_ids"])
            rows.append({"item": g["id"], "suite": g["suite"], "prompt": g["prompt"], "answer": g["text"],
                         "empty": float(not g["text"].strip()), "truncated": float(bool(g["truncated"])),
                         "loop": float(bool(h["loop"])), "complete": float(bool(h["complete"])),
                         "refusal": float(bool(h["refusal"])), "words": h["n_words"],
                         "repeat_share": h["repeat_share"], "distinct_3": h["distinct_3"]})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        import numpy as np

        w = [r["words"] for r in rows]
        return {"words_quantiles": {q: float(np.percentile(w, q)) for q in (10, 50, 90)} if w else {}}


SUITE = HealthSuite("health", 1, "empty / truncated / looping answers and their length (all answers)",
                    metrics=("empty", "truncated", "loop", "complete", "refusal", "words"),
                    lower_is_better=frozenset({"empty", "truncated", "loop"}), needs_generation=False)
