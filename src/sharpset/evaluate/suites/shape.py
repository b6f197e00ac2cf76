"""``shape``: conformance of answers to a response-shape spec, per criterion (sharpset.text.spec).

Prompts: ``evaluate/data/shape.jsonl`` (everyday requests with no format instruction), so the
answer's shape is the model's own habit. The spec is ``--shape-spec`` (a shipped name or a YAML
file); each criterion (opening, length band, structure, register, first person, closing, language)
is a 0/1 column, and ``conformance`` the share of criteria met.
"""

from __future__ import annotations

from typing import Any

from ..suite import Context, Suite, limit_items


class ShapeSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        return limit_items(load("shape", ctx.cfg.split), ctx.cfg.limit)

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ...text.shape import shape_features
        from ...text.spec import conformance, load_spec

        spec = load_spec(ctx.cfg.shape_spec)
        answers = ctx.generate(self.name, [(it["id"], it["messages"]) for it in items],
                               max_new_tokens=ctx.cfg.max_new_tokens)
        rows = []
        for it in items:
            a, prompt = answers[it["id"]], it["messages"][-1]["content"]
            f = shape_features(a["text"], prompt=prompt)
            c = conformance(spec, a["text"], prompt=prompt, features=f)
            rows.append({"item": it["id"], "prompt": prompt, "answer": a["text"], "spec": spec.name,
                         "words": f["shape_words"], "opening": f["shape_opening"], "closing": f["shape_closing"],
                         "conformance": c["conformance"],
                         **{k: float(v) for k, v in c.items() if k.startswith("conf_")}})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        from ...stats import mean_ci

        out: dict[str, Any] = {"spec": rows[0]["spec"] if rows else ctx.cfg.shape_spec}
        crit = sorted({k for r in rows for k in r if k.startswith("conf_")})
        out["criteria"] = {k[5:]: mean_ci([r.get(k) for r in rows], ctx.cfg.seed) for k in crit}
        out["words"] = mean_ci([r["words"] for r in rows], ctx.cfg.seed)
        for col in ("opening", "closing"):
            dist: dict[str, int] = {}
            for r in rows:
                dist[r[col]] = dist.get(r[col], 0) + 1
            out[f"{col}_distribution"] = dict(sorted(dist.items()))
        return out


SUITE = ShapeSuite("shape", 1, "conformance to a response-shape spec, per criterion", metrics=("conformance",))
