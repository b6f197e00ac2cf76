"""``dimensions``: lexical and emotional alignment with the user turn, reported apart (METHODS §8).

Lexical: content-word reuse and Jaccard, bigram overlap (:func:`sharpset.evaluate.dimensions.lexical_alignment`).
Emotional: VADER compound concordance and sign agreement (:func:`...emotional_alignment`). Never
merged into one number. Prompts: ``evaluate/data/dimensions.jsonl`` (tones: sad, angry, excited,
anxious, neutral).
"""

from __future__ import annotations

from typing import Any

from ..suite import Context, Suite, limit_items


class DimensionsSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        return limit_items(load("dimensions", ctx.cfg.split), ctx.cfg.limit)

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ..dimensions import emotional_alignment, lexical_alignment

        answers = ctx.generate(self.name, [(it["id"], it["messages"]) for it in items],
                               max_new_tokens=ctx.cfg.max_new_tokens)
        rows = []
        for it in items:
            user, text = it["messages"][-1]["content"], answers[it["id"]]["text"]
            lex, emo = lexical_alignment(user, text), emotional_alignment(user, text)
            rows.append({"item": it["id"], "prompt": user, "answer": text, "tone": it.get("tone"),
                         "lexical_content_reuse": lex["content_reuse"], "lexical_content_jaccard": lex["content_jaccard"],
                         "lexical_bigram_reuse": lex["bigram_reuse"],
                         "emotional_concordance": emo["concordance"], "emotional_sign_agreement": float(emo["sign_agreement"]),
                         "user_compound": emo.get("user_compound"), "answer_compound": emo.get("response_compound")})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        from ...stats import mean_ci

        by: dict[str, dict[str, Any]] = {}
        for tone in sorted({r["tone"] for r in rows if r.get("tone")}):
            sub = [r for r in rows if r.get("tone") == tone]
            by[tone] = {"emotional_concordance": mean_ci([r["emotional_concordance"] for r in sub], ctx.cfg.seed),
                        "lexical_content_reuse": mean_ci([r["lexical_content_reuse"] for r in sub], ctx.cfg.seed)}
        return {"by_tone": by}


SUITE = DimensionsSuite("dimensions", 1, "lexical and emotional alignment with the user turn (never merged)",
                        metrics=("lexical_content_reuse", "lexical_content_jaccard", "lexical_bigram_reuse",
                                 "emotional_concordance", "emotional_sign_agreement"))
