"""``health``: always on, cheap -- empty, truncated, looping, repeating and length of every answer the run made.

Computed over all answers generated for a model in this evaluation (every generating suite), with
:func:`sharpset.text.degeneration.health`: ``loop`` (a long repeated span, low distinct-3 or high
compression), ``repeated_sentence`` (a clause of >= 4 words said twice in one answer,
:func:`sharpset.text.degeneration.repeated_clause`: "I'd be happy to assist you further" again and
again, issue 20), ``truncated`` (hit the token limit), ``empty``, ``echo`` (begins by repeating the
request), ``complete`` (ended by the model and not empty), ``refusal`` and the answer length in
words. No generation of its own.

Per generating suite, equal weight per suite. The suites generate very different answers in
number and length (invariance ~480 answers capped at 32 tokens, the others ~40 at 192), so a mean
over all answers would mostly describe invariance. Each row carries ``source`` (the generating
suite: ``invariance`` for both its plain and wrapped answers), ``unit`` (``suite/item``, the row's
own answer) and ``weight`` = 1 / (answers of its source), so the weights of each source sum to 1:

- the headline metrics (the summary's means and the paired comparisons) are the **equal-weight
  mean over generating suites** -- the weighted row mean, sum(w x) / sum(w) = the mean of the
  per-suite means -- wherever the summary honours a row's ``weight``; the per-row columns stay
  0/1 (or a word count) per answer, so paired comparisons still pair answers;
- ``extra["by_suite"]``: each generating suite's own figures (mean, 95% interval, n);
- ``extra["pooled_equal_weight"]``: the same equal-weight mean computed here
  (:func:`sharpset.stats.mean_ci` with the rows' weights: :func:`equal_weight_mean` as its point,
  a bootstrap over answers as its interval), plus the number of suites, whatever the summary does
  with weights.

Version 3: ``echo`` also flags a garbled repetition of the request (:func:`echoes_prompt`). Version 2:
``repeated_sentence``, per-suite figures and equal suite weights (version 1 pooled
every answer with equal weight).
"""

from __future__ import annotations

from typing import Any

from ..suite import Context, Suite

ECHO_WORDS = 8  # an answer that starts with this many words of the request (fewer for short requests)
# the garbled echo: the answer's first ECHO_CHARS letters and digits (ECHO_SLACK more allowed for a prefix such as
# "1." or "Answer:") copy at least ECHO_SHARE of them from the request, in order, in runs of >= ECHO_RUN characters
ECHO_CHARS, ECHO_SLACK, ECHO_SHARE, ECHO_RUN = 64, 12, 0.8, 4


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z0-9']+", text.casefold())


def _letters(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "", text.casefold())


def echoes_prompt(prompt: str, answer: str) -> bool:
    """Does the answer begin by repeating the request? Either rule says so:

    - **verbatim**: its first k words (k = 8, or the request's length if shorter, at least 3) occur as a
      contiguous run in the request -- the failure issue 14 saw in a base model trained on too few steps
      (25 of 32 answers began by repeating);
    - **garbled** (requests of at least 64 letters and digits): with case, spaces and punctuation ignored,
      at least 80% of the answer's first 64 characters (after a prefix of up to 12) are copied in order from
      the request in runs of 4 or more. A model that repeats the request with words merged, recased or
      swapped ("Write a descripción of a yoga mat in lowercase letters ONLY", "coffeemug,separated") escaped
      the verbatim rule and had its answer's trivially-kept instructions (no commas, keywords the request
      carries) scored as followed: a 12-layer derivative that decodes noise scored 0.140 strict-without-echo
      on the format suite, above gemma3-270m tuned on 64 constraint rows (0.112). Short requests keep the
      verbatim rule alone: "The hardest natural material is ..." restates "What is the hardest natural
      material?" as plain answers do.

    difflib is the standard library's matcher; no kept library offers a copied-text test of this shape."""
    from difflib import SequenceMatcher

    p, a = _words(prompt), _words(answer)
    k = min(ECHO_WORDS, len(p))
    if k >= 3 and len(a) >= k and any(p[i:i + k] == a[:k] for i in range(len(p) - k + 1)):
        return True
    pc, ac = _letters(prompt), _letters(answer)
    if len(pc) < ECHO_CHARS or len(ac) < ECHO_CHARS:
        return False
    head = ac[:ECHO_CHARS + ECHO_SLACK]
    blocks = SequenceMatcher(None, head, pc, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks if b.size >= ECHO_RUN) >= ECHO_SHARE * ECHO_CHARS


class HealthSuite(Suite):
    def items(self, ctx: Context) -> list[dict]:
        return [{"id": f"{g['suite']}/{g['item']}", **g} for g in ctx.generated]

    def evaluate(self, ctx: Context, items: list[dict]) -> list[dict]:
        from ...text.degeneration import health, repeated_clause

        per_source: dict[str, int] = {}
        for g in items:
            per_source[source(g["suite"])] = per_source.get(source(g["suite"]), 0) + 1
        rows = []
        for g in items:
            h = health(g["text"], prompt=g["prompt"], finish_reason=g["finish_reason"], token_ids=g["token_ids"])
            src = source(g["suite"])
            rows.append({"item": g["id"], "unit": g["id"], "suite": g["suite"], "source": src,
                         "weight": 1.0 / per_source[src], "prompt": g["prompt"], "answer": g["text"],
                         "empty": float(not g["text"].strip()), "truncated": float(bool(g["truncated"])),
                         "loop": float(bool(h["loop"])),
                         "repeated_sentence": float(repeated_clause(g["text"]) is not None),
                         "complete": float(bool(h["complete"])),
                         "refusal": float(bool(h["refusal"])), "words": h["n_words"],
                         "echo": float(echoes_prompt(g["prompt"], g["text"])),
                         "repeat_share": h["repeat_share"], "distinct_3": h["distinct_3"]})
        return rows

    def extra(self, ctx: Context, rows: list[dict]) -> dict[str, Any]:
        import numpy as np

        from ...stats import mean_ci

        seed = ctx.cfg.seed
        by_source: dict[str, list[dict]] = {}
        for r in rows:
            by_source.setdefault(r.get("source") or source(r["suite"]), []).append(r)
        by_suite = {}
        for src, rs in sorted(by_source.items()):
            w = [r["words"] for r in rs]
            by_suite[src] = {"n": len(rs), **{m: mean_ci([r[m] for r in rs], seed) for m in self.metrics},
                             "words_quantiles": {q: float(np.percentile(w, q)) for q in (10, 50, 90)}}
        units, weights = [r.get("unit") or r["item"] for r in rows], [r["weight"] for r in rows]
        pooled = {m: {**mean_ci([r[m] for r in rows], seed, groups=units, weights=weights), "suites": len(by_source)}
                  for m in self.metrics}
        w = [r["words"] for r in rows]
        return {"by_suite": by_suite, "pooled_equal_weight": pooled,
                "words_quantiles": {q: float(np.percentile(w, q)) for q in (10, 50, 90)} if w else {}}


def source(gen_suite: str) -> str:
    """The generating suite of a ``ctx.generate`` tag: ``invariance/wrapped`` -> ``invariance``."""
    return gen_suite.split("/")[0]


def equal_weight_mean(rows: list[dict], metric: str) -> float | None:
    """The mean over generating suites (``source``) of each suite's mean of ``metric`` over its
    rows (None values left out; a suite with no value is left out); None when no suite has one."""
    sums: dict[str, list[float]] = {}
    for r in rows:
        v = r.get(metric)
        if v is not None:
            sums.setdefault(r.get("source") or source(r["suite"]), []).append(float(v))
    means = [sum(v) / len(v) for v in sums.values()]
    return sum(means) / len(means) if means else None


SUITE = HealthSuite("health", 3, "empty / truncated / looping / repeating answers and their length "
                    "(every answer, equal weight per generating suite)",
                    metrics=("empty", "truncated", "loop", "repeated_sentence", "echo", "complete", "refusal",
                             "words"),
                    lower_is_better=frozenset({"empty", "truncated", "loop", "repeated_sentence", "echo"}),
                    needs_generation=False)
