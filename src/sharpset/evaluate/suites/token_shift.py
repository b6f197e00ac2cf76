"""``token_shift``: where a tuned model's answers leave its base model (URIAL, arXiv:2312.01552; METHODS §4).

The tuned model answers the shape prompts greedily (o_1..o_T; the same answers the ``shape`` suite
scores). Each answer is fed, after the same prompt tokens, to the base model in ONE forward pass;
eta_t = rank of o_t under the base given the prefix (:func:`sharpset.engine.scoring.answer_token_ranks`).
unshifted: eta = 1; marginal: eta in {2, 3}; shifted: eta > 3.

One averaging everywhere, named **"share of tokens, pooled over answers"** (URIAL reports per-token
shares): a class's share = (tokens of that class in all answers) / (tokens in all answers), so a long
answer counts by its length, with a 95% interval from the bootstrap over answers (the answer is the
unit: its tokens are resampled together) -- :func:`pooled_share`, and ``extra["pooled_<class>"]``
(:func:`sharpset.stats.mean_ci` of the answers' shares weighted by their token counts, which is the
same ratio), also by position (token index bins). The rows keep each answer's own shares (``unshifted``,
``marginal``, ``shifted``) for paired comparisons, and carry ``weight`` = the answer's token count:
the weighted row mean sum(n_i s_i) / sum(n_i) is exactly the pooled share, which the summary's
table reports wherever it honours a row's ``weight``; the report's token-shift section shows the
pooled shares of ``extra``. Also the most often shifted tokens.

Beside it, **"share of tokens, per answer"** (:data:`PER_ANSWER`): each answer's own share of
unshifted / marginal / shifted tokens, averaged over answers with every answer counting once --
``extra["per_answer_<class>"]`` (:func:`sharpset.stats.mean_ci` of the rows' shares, unweighted, one
unit per answer). It is the measure a decision reads (the audit's claim 8): the answers are the
independent draws, so its intervals and paired comparisons resample answers, and a long answer
does not outweigh a short one. A share of the pooled kind weights each answer by its length.

The base is ``--base`` (a model name or folder) or, when several models are evaluated, the first
one; it must share the tuned model's vocabulary (else the suite says so and scores nothing). A model
against itself is 100% unshifted (tests check it). The base's own row is skipped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..suite import Context, Suite, limit_items

BINS = (0, 5, 10, 20, 40, 80, 160, 320, 10 ** 9)


AVERAGING = "share of tokens, pooled over answers"
PER_ANSWER = "share of tokens, per answer (answers the units, each counted once)"


def classify(rank: int) -> str:
    return "unshifted" if rank == 1 else "marginal" if rank <= 3 else "shifted"


def pooled_share(rows: list[dict], cls: str) -> float:
    """Share of tokens of class ``cls``, pooled over answers: sum over rows of the tokens classed
    ``cls`` / sum of ``n_tokens`` (NaN when there are no tokens). Rows: ``classes`` and ``n_tokens``."""
    tot = sum(r["n_tokens"] for r in rows)
    return sum(r["classes"].count(cls) for r in rows) / tot if tot else float("nan")


class TokenShiftSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        if ctx.base() is None:
            return []
        return limit_items(load("shape", ctx.cfg.split), ctx.cfg.limit)

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        base = ctx.base()
        if base is None or not items:
            return []
        answers = ctx.generate("shape", [(it["id"], it["messages"]) for it in items], max_new_tokens=ctx.cfg.max_new_tokens)

        def compute(idx: list[int]) -> list[Any]:
            seqs, labs = [], []
            for i in idx:
                a = answers[items[i]["id"]]
                seqs.append(list(a["prompt_ids"]) + list(a["token_ids"]))
                labs.append([-100] * len(a["prompt_ids"]) + list(a["token_ids"]))
            return base.scorer("answer_token_ranks", why="the token_shift suite").answer_token_ranks(
                seqs, labs, batch_size=ctx.cfg.batch_size)

        ranks = ctx.cached(self.name, [it["id"] for it in items], compute)
        rows = []
        tok = ctx.subject.tok
        for it, rk in zip(items, ranks):
            a = answers[it["id"]]
            rk = rk or []
            classes = [classify(r) for r in rk]
            n = len(classes)
            rows.append({"item": it["id"], "unit": it["id"], "weight": float(n),
                         "prompt": it["messages"][-1]["content"], "answer": a["text"], "n_tokens": n, "unshifted": classes.count("unshifted") / n if n else None,
                         "marginal": classes.count("marginal") / n if n else None,
                         "shifted": classes.count("shifted") / n if n else None,
                         "tokens": [tok.decode([t]) for t in a["token_ids"][:n]], "ranks": rk, "classes": classes})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        from ...stats import mean_ci

        if not rows:
            return {"skipped": ctx.base_problem or "no base model"}
        seed = ctx.cfg.seed
        out: dict[str, Any] = {"base": ctx.base_name(), "averaging": AVERAGING,
                               "tokens": sum(r["n_tokens"] for r in rows), "answers": len(rows)}
        units, weights = [r["item"] for r in rows], [r["n_tokens"] for r in rows]
        for cls in ("unshifted", "marginal", "shifted"):
            # the answers' shares weighted by their tokens: the pooled share, bootstrapped over answers
            out[f"pooled_{cls}"] = mean_ci([r[cls] for r in rows], seed, groups=units, weights=weights)
        out["per_answer"] = PER_ANSWER
        for cls in ("unshifted", "marginal", "shifted"):  # each answer once: the mean of the answers' own shares
            out[f"per_answer_{cls}"] = mean_ci([r[cls] for r in rows], seed, groups=units)
        hist = []
        for lo, hi in zip(BINS, BINS[1:]):
            cl = [c for r in rows for i, c in enumerate(r["classes"]) if lo <= i < hi]
            if cl:
                hist.append({"positions": f"{lo}-{min(hi, 10 ** 4) - 1}", "tokens": len(cl),
                             "shifted": round(cl.count("shifted") / len(cl), 4),
                             "marginal": round(cl.count("marginal") / len(cl), 4)})
        out["by_position"] = hist
        shifted = Counter(t for r in rows for t, c in zip(r["tokens"], r["classes"]) if c == "shifted")
        out["most_shifted_tokens"] = [[t, k] for t, k in shifted.most_common(25)]
        return out


SUITE = TokenShiftSuite("token_shift", 2, "URIAL token distribution shift of a tuned model vs its base "
                        f"({AVERAGING})",
                        metrics=("unshifted", "marginal", "shifted"))
