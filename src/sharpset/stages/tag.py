"""Tagging: flat score columns on every row, so later stages can choose (METHODS §1, §2, §10).

Judge scores come from token probabilities over a fixed answer set, never from parsing text:
- ``quality`` (1-6) of the response to the instruction, ``difficulty`` (1-6) of the instruction and
  ``input_quality`` (1-6, clarity/specificity of the instruction): the expected value
  sum_i i * p(i) over the judge's probabilities of the digit tokens 1..6 renormalised over that set
  (DEITA, arXiv:2312.15685). ``<score>_mass`` keeps the raw mass the judge put on the digits.
- ``category``: Magpie's 12 task categories as lettered options A..L; the label with the highest
  probability, ``category_p`` its renormalised probability.
- A score fails -- value None, ``<score>_status`` says why -- when the judge puts less than
  ``min_mass`` of its probability on the answer set or the prompt exceeds ``max_length``. Never a
  default value (DEITA#36 filled 3.0 silently).
- Untrusted text sits between clear markers, with any marker text inside it defused. It comes first;
  the question, the scale and the note to ignore instructions inside the data come after it, next to
  the answer (an injection at the end of a response then no longer sits right before the answer).
- Validity (experiments/judge_validity.py): the embedded 135M judge barely separates good responses
  from truncated, off-topic, garbled or empty ones (held-out ROC AUC 0.61, below the 0.70 of response
  length alone; 0.54 where the corruption keeps the length). Treat its ``quality`` as weak evidence and
  use a larger judge (``--judge``) where a quality gate matters.
- IFD, both definitions (they rank differently; record which): ``ifd_loss`` =
  mean NLL(A|Q) / mean NLL(A) (Cherry LLM, arXiv:2308.12032) and ``ifd_ppl`` = PPL(A|Q)/PPL(A)
  (Superfiltering, arXiv:2402.00530), with a configurable scorer model. A|Q is the answer inside the
  scorer's chat template after the instruction; A is the answer text alone (one BOS if the model
  uses one), as in Cherry's code.
- ``lm``: what a small model measures well (issue 13; :mod:`sharpset.signals`): answer fluency
  (``lm_nll``, ``lm_nll_std``), relevance (``lm_ifd``, ``lm_pmi``), degeneration and completeness
  (``loop``, ``complete``, ``repeat_share``, ``distinct_*``, ``compression_ratio``), ``refusal``,
  language match, the composite ``quality_lm`` (a logistic model fitted on the judge fixture's dev
  half; ROC AUC on its test half in signals.py) and ``flag_reason`` for rows it would reject.
- ``shape_*``: response shape features and language (text/shape.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config import field
from ..judge import (CATEGORIES, JUDGE_BATCH_SIZE, JUDGE_MAX_LENGTH, JUDGE_MIN_MASS,  # noqa: F401
                     LETTERS, PROMPTS, Judge, defuse)
from ..records import instruction_of, response_of
from ..run import RunDir
from ..stage import BackendFields

STAGE = "tag"
VERSION = 4  # 4: pseudo_refusal also marks an opening apology for a confusion or mistake (APOLOGY_OPENINGS); 3: pseudo_refusal column (issue 20); 2: the "lm" score set (likelihood + degeneration signals, quality_lm, flag_reason)

SCORES = ("quality", "difficulty", "input_quality", "category", "ifd", "lm", "shape")

@dataclass
class TagConfig(BackendFields):
    input: str = field("", "input data: a file, folder or run folder of SFT rows (messages)")
    judge: str = field("smollm2-135m-instruct", "judge chat model: embedded name, local HF folder or hub id")
    scorer: str | None = field(None, "IFD and lm-signal scorer model (default: the judge)")
    scores: list = field(list(SCORES), f"which scores to compute, any of {', '.join(SCORES)}")
    min_mass: float = field(JUDGE_MIN_MASS, "a judge score fails when its answer set holds less probability than this")
    max_length: int = field(JUDGE_MAX_LENGTH, "judge/scorer prompts longer than this many tokens fail as too_long")
    batch_size: int = field(JUDGE_BATCH_SIZE, "rows per forward pass")
    chunk: int = field(32, "rows scored between log writes (resume granularity)")
    on_error: str = field("raise", "bad input rows: raise (exit 2) or skip (written to rejected.jsonl)")

    def key_inputs(self) -> dict[str, str]:
        """The judge and scorer it loads, by fingerprint (run.config_reads); none for shape-only scores."""
        from ..run import models_read

        if not set(self.scores) & {"quality", "difficulty", "input_quality", "category", "ifd", "lm"}:
            return {}
        scorer = self.scorer if self.scorer and self.scorer != self.judge and {"ifd", "lm"} & set(self.scores) else None
        return models_read(self.judge, scorer)

    def check(self) -> list[tuple[str, str]]:
        p = []
        if not self.input:
            p.append(("input", "required"))
        bad = [s for s in self.scores if s not in SCORES]
        if bad:
            p.append(("scores", f"unknown {bad}; choose from {list(SCORES)}"))
        if self.on_error not in ("raise", "skip"):
            p.append(("on_error", "must be raise or skip"))
        if not 0 <= self.min_mass < 1:
            p.append(("min_mass", "must be in [0, 1)"))
        return p

    def scoring_needs(self) -> dict[str, str]:
        needs = {}
        if {"quality", "difficulty", "input_quality", "category"} & set(self.scores):
            needs["next_token_probs"] = "the judge scores"
        if {"ifd", "lm"} & set(self.scores):
            needs["answer_token_nll"] = "ifd and the lm signals"
        return needs


def ifd_scores(model, tok, profile, rows: list[dict], *, batch_size: int, max_length: int,
               pairs: list | None = None) -> list[dict[str, Any]]:
    """IFD by loss ratio and by perplexity ratio on the same answer tokens (see module doc).
    ``pairs``: signals.answer_pair_nll of these rows when the caller has it already (the lm scores
    read the same two passes)."""
    import math

    from ..signals import answer_pair_nll

    if pairs is None:
        pairs = answer_pair_nll(model, tok, profile, rows, batch_size=batch_size, max_length=max_length)
    out = []
    for pair in pairs:
        if isinstance(pair, str):
            why = "no answer tokens" if pair == "no answer tokens" else "too_long or empty response"
            out.append({"ifd_loss": None, "ifd_ppl": None, "ifd_status": f"failed: {why}"})
            continue
        c, a = (float(sum(t) / len(t)) for t in pair)  # scoring.answer_nll's mean
        if a <= 0:
            out.append({"ifd_loss": None, "ifd_ppl": None, "ifd_status": "failed: no answer tokens"})
            continue
        out.append({"nll_answer_given_q": round(c, 6), "nll_answer_alone": round(a, 6),
                    "ifd_loss": round(c / a, 6), "ifd_ppl": round(math.exp(c - a), 6), "ifd_status": "ok"})
    return out


def tag_rows(rows: list[dict], cfg: TagConfig, judge: Judge | None, scorer: tuple | None) -> list[dict]:
    """Pure over rows given loaded models: returns new rows with the score columns added."""
    from ..text.shape import shape_features

    fields = [{"instruction": instruction_of(r), "response": response_of(r)} for r in rows]
    cols: list[dict[str, Any]] = [{} for _ in rows]
    for kind in ("quality", "difficulty", "input_quality", "category"):
        if kind in cfg.scores:
            for c, s in zip(cols, judge.score(kind, fields)):
                c.update(s)
    if {"ifd", "lm"} & set(cfg.scores):
        from ..signals import answer_pair_nll, lm_signals

        model, tok, profile = scorer
        # both read the same two passes (A|Q and A): run them once
        pairs = answer_pair_nll(model, tok, profile, rows, batch_size=cfg.batch_size, max_length=cfg.max_length)
        if "ifd" in cfg.scores:
            for c, s in zip(cols, ifd_scores(model, tok, profile, rows, batch_size=cfg.batch_size,
                                             max_length=cfg.max_length, pairs=pairs)):
                c.update(s)
        if "lm" in cfg.scores:
            for c, s in zip(cols, lm_signals(model, tok, profile, rows, batch_size=cfg.batch_size,
                                             max_length=cfg.max_length, pairs=pairs)):
                c.update(s)
    if "shape" in cfg.scores:
        for c, f in zip(cols, fields):
            c.update(shape_features(f["response"], prompt=f["instruction"]))
    out = []
    for r, c in zip(rows, cols):
        new = {k: v for k, v in r.items() if k != "provenance"}
        new.update(c)
        if "provenance" in r:
            new["provenance"] = r["provenance"]
        out.append(new)
    return out


def run(cfg: TagConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import read_records, write_records, write_rejected
    from ..stage import load_subject

    res = read_records(cfg.input, "sft", on_error=cfg.on_error)
    rows = res.rows
    judge = scorer = None
    if any(k in cfg.scores for k in ("quality", "difficulty", "input_quality", "category", "ifd", "lm")):
        # the judge and the scorer score on the configured backend (engine, cluster): subject.scores
        j = load_subject(cfg.judge, log=log, run=run, role="judge", backend=cfg)
        judge = Judge(j.scores, j.tok, j.profile, batch_size=cfg.batch_size, max_length=cfg.max_length,
                      min_mass=cfg.min_mass)
        scorer = (j.scores, j.tok, j.profile)
        if cfg.scorer and cfg.scorer != cfg.judge and {"ifd", "lm"} & set(cfg.scores):
            s = load_subject(cfg.scorer, log=log, run=run, role="ifd_scorer", backend=cfg)
            scorer = (s.scores, s.tok, s.profile)
    done = run.done_samples()
    if done:
        log(f"resuming: {len(done)} of {len(rows)} rows already tagged")
    todo = [r for r in rows if r["id"] not in done]
    t0 = time.perf_counter()
    for start in range(0, len(todo), cfg.chunk):
        part = todo[start:start + cfg.chunk]
        for r in tag_rows(part, cfg, judge, scorer):
            run.log_sample(r["id"], {"row": r})
        n = start + len(part)
        dt = time.perf_counter() - t0
        log(f"tagged {n}/{len(todo)} ({60 * n / dt:.0f} rows/min)")
    done = run.done_samples()
    tagged = [done[r["id"]]["row"] for r in rows]
    write_records(tagged, run.path / "tagged.jsonl")
    outputs = ["tagged.jsonl"]
    if res.rejected:
        write_rejected(res.rejected, run.path / "rejected.jsonl")
        outputs.append("rejected.jsonl")
    counts = res.counts().check().as_dict()
    metrics: dict[str, Any] = {"rows": len(tagged)}
    for kind in ("quality", "difficulty", "input_quality", "category", "ifd"):
        if kind in cfg.scores:
            status = [t.get(f"{kind}_status", "") for t in tagged]
            metrics[f"{kind}_failed"] = sum(s != "ok" for s in status)
    if "lm" in cfg.scores:
        reasons: dict[str, int] = {}
        for t in tagged:
            for why in (t.get("flag_reason") or "").split(","):
                if why:
                    reasons[why] = reasons.get(why, 0) + 1
        metrics["flag_reasons"] = reasons
        metrics["lm_failed"] = sum(t.get("lm_status") != "ok" for t in tagged)
    for kind in ("quality", "difficulty", "input_quality", "ifd_loss", "quality_lm"):
        vals = [t[kind] for t in tagged if t.get(kind) is not None]
        if vals:
            metrics[f"mean_{kind}"] = round(sum(vals) / len(vals), 4)
    run.finish(counts=counts, outputs=outputs, metrics=metrics)
    return metrics


def show(path: str, n: int = 5) -> str:
    from ..dataio import read_records

    out = []
    for r in read_records(path, "sft").rows[:n]:
        cols = {k: v for k, v in r.items() if k not in ("messages", "provenance") and not k.startswith("shape_")}
        out.append(f"--- {r['id']}\n[user] {instruction_of(r)[:300]}\n[assistant] {response_of(r)[:300]}\n{cols}")
    return "\n".join(out)
