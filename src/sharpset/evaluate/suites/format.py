"""``format``: verifiable format instructions (METHODS §9; IFEval's 25 types, strict and loose).

Prompts are sharpset's own (``evaluate/data/format.jsonl``: everyday tasks with 1-3 instructions,
Apache-2.0, written for this project so no model was tuned on them). Checkers: IFEval's reference
classes through :mod:`sharpset.evaluate.ifeval`. Per sample: prompt-level strict/loose (all of the
item's instructions pass) and the item's instruction counts; instruction-level accuracy is the
pooled share over all instructions (as IFEval reports it), its interval a bootstrap over items.
"""

from __future__ import annotations

from typing import Any

from ...stats import boot_stat_ci
from ..suite import Context, Suite, limit_items


def _pooled(rows: list[dict], col: str) -> float:
    n = sum(r["n_instructions"] for r in rows)
    return sum(r[col] for r in rows) / n if n else float("nan")


class FormatSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        return limit_items(load("format", ctx.cfg.split), ctx.cfg.limit)

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ..ifeval import check

        answers = ctx.generate(self.name, [(it["id"], it["messages"]) for it in items],
                               max_new_tokens=ctx.cfg.max_new_tokens)
        rows = []
        for it in items:
            a = answers[it["id"]]
            prompt = it["messages"][-1]["content"]
            v = check(it["instruction_id_list"], it["kwargs"], prompt, a["text"])
            rows.append({"item": it["id"], "prompt": prompt, "answer": a["text"], "truncated": a["truncated"],
                         "instruction_ids": list(it["instruction_id_list"]), "task_type": it.get("task_type"),
                         "strict": v["strict"], "loose": v["loose"],
                         "prompt_strict": float(v["prompt_strict"]), "prompt_loose": float(v["prompt_loose"]),
                         "n_instructions": len(v["strict"]), "inst_strict_k": sum(v["strict"]),
                         "inst_loose_k": sum(v["loose"])})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col, name in (("inst_strict_k", "instruction_strict"), ("inst_loose_k", "instruction_loose")):
            out[name] = {"mean": round(_pooled(rows, col), 4),
                         "ci95": boot_stat_ci(rows, lambda rs, c=col: _pooled(rs, c), ctx.cfg.seed),
                         "n": sum(r["n_instructions"] for r in rows)}
        per: dict[str, list[int]] = {}
        for r in rows:
            for iid, ok in zip(r["instruction_ids"], r["strict"]):
                per.setdefault(iid, []).append(int(ok))
        out["by_instruction_strict"] = {k: {"rate": round(sum(v) / len(v), 4), "n": len(v)}
                                        for k, v in sorted(per.items())}
        return out


SUITE = FormatSuite("format", 1, "verifiable format instructions (IFEval types, own prompts): strict/loose",
                    metrics=("prompt_strict", "prompt_loose"))
