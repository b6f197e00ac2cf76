"""``knowledge``: is what the model knew still there? (retention probe; METHODS §3 baselines)

- Closed-label multiple choice by log-likelihood (``evaluate/data/knowledge_mc.jsonl``): the
  question as a user turn, each choice as the assistant's answer; the choice with the highest summed
  log-probability of its tokens (end-of-turn excluded) is the model's pick (``mc_correct``), and with
  the highest mean per token (``mc_correct_norm``, a length-normalised variant). Beside it, always:
  random guess (mean of 1/|choices|), the label-prior guess (sum of squared answer-position
  frequencies) and the majority-position baseline (Kung & Peng: a closed label space must show
  its random-guess baseline).
- Short closed-book QA by generation (``knowledge_qa.jsonl``): correct when the answer or an alias
  appears as whole words (numbers as digits or words), 32 new tokens at most.
These questions share nothing with ``data/questions.jsonl`` (which builds invariance training
pairs); the data builder fails on any overlap. The split used is recorded in the summary.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..suite import Context, Suite, limit_items


class KnowledgeSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        from ..data import load

        mc = [{**r, "kind": "mc"} for r in limit_items(load("knowledge_mc", ctx.cfg.split), ctx.cfg.limit)]
        qa = [{**r, "kind": "qa"} for r in limit_items(load("knowledge_qa", ctx.cfg.split), ctx.cfg.limit)]
        return mc + qa

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ...invariance import mentions

        mc = [it for it in items if it["kind"] == "mc"]
        qa = [it for it in items if it["kind"] == "qa"]
        rows = []
        scores = ctx.cached(self.name, [it["id"] for it in mc], lambda idx: self._choice_scores(ctx, [mc[i] for i in idx]))
        for it, s in zip(mc, scores):
            total, mean = s["sum"], s["mean"]
            pick = max(range(len(total)), key=lambda k: (total[k], -k))
            pick_n = max(range(len(mean)), key=lambda k: (mean[k], -k))
            rows.append({"item": it["id"], "kind": "mc", "prompt": it["question"], "answer": it["choices"][pick],
                         "gold": it["choices"][it["answer_index"]], "n_choices": len(it["choices"]),
                         "answer_index": it["answer_index"], "mc_correct": float(pick == it["answer_index"]),
                         "mc_correct_norm": float(pick_n == it["answer_index"]), "choice_logprobs": total})
        answers = ctx.generate(self.name, [(it["id"], [{"role": "user", "content": it["question"]}]) for it in qa],
                               max_new_tokens=32)
        for it in qa:
            text = answers[it["id"]]["text"]
            ok = any(mentions(text, a) for a in [it["answer"], *it.get("aliases", [])])
            rows.append({"item": it["id"], "kind": "qa", "prompt": it["question"], "answer": text,
                         "gold": it["answer"], "qa_correct": float(ok)})
        return rows

    def _choice_scores(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ...models.profiles import encode

        s = ctx.subject
        eot = set(s.tok(s.profile.end_of_turn, add_special_tokens=False)["input_ids"])
        seqs, labs, owner = [], [], []
        for j, it in enumerate(items):
            for choice in it["choices"]:
                enc = encode(s.profile, s.tok, [{"role": "user", "content": it["question"]},
                                                {"role": "assistant", "content": choice}], train_on="last")
                seqs.append(enc.input_ids)
                labs.append([(-100 if t in eot else lab) for t, lab in zip(enc.input_ids, enc.labels)])
                owner.append(j)
        nll = s.scorer("answer_token_nll", why="the knowledge suite").answer_token_nll(
            seqs, labs, batch_size=ctx.cfg.batch_size)
        out = [{"sum": [], "mean": []} for _ in items]
        for j, t in zip(owner, nll):
            t = t or [float("inf")]
            out[j]["sum"].append(round(-sum(t), 6))
            out[j]["mean"].append(round(-sum(t) / len(t), 6))
        return out

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        mc = [r for r in rows if r["kind"] == "mc"]
        if not mc:
            return {}
        pos = Counter(r["answer_index"] for r in mc)
        n = len(mc)
        return {"split": ctx.cfg.split, "mc_baselines": {
            "random_guess": round(sum(1 / r["n_choices"] for r in mc) / n, 4),
            "label_prior": round(sum((c / n) ** 2 for c in pos.values()), 4),
            "majority_position": round(max(pos.values()) / n, 4), "n": n}}


SUITE = KnowledgeSuite("knowledge", 1, "retention: closed-label MC by log-likelihood (with baselines), closed-book QA",
                       metrics=("mc_correct", "mc_correct_norm", "qa_correct"))
