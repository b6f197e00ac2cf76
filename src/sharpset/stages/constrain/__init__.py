"""Verified-constraint examples: instruction + checkable constraints -> k answers -> keep the ones
that pass every check (METHODS §9b: AutoIF arXiv:2406.13542, Tulu 3 arXiv:2411.15124, IFBench
arXiv:2507.02833; issue 20).

For each instruction of the pool (Magpie ``messages`` rows, prompt/completion rows, or an
IFEval-format file):

1. **constraints**: 1-3 compatible constraints drawn from the registry's *train* types
   (:mod:`sharpset.constraints`; weights ``count_weights`` towards 2-3, conflicts blocked by its
   table), randomness keyed by (seed, "constrain", row id). A row that already carries
   ``instruction_id_list`` + ``kwargs`` (an IFEval-format item) keeps them as given, and its
   prompt is used as written (it is assumed to state them). Held-out types are never drawn
   unless ``allow_heldout`` is set, so they stay unseen for eval.
2. **k candidates** from the aligned model (sampled, ``temperature``/``top_p``, one seed per
   (row, candidate)), the user turn being the instruction followed by the constraints' text; all
   rows' candidates go through the engine in one batched stream, each logged as it finishes.
3. **checks**: every candidate against every constraint, strictly (IFEval's and IFBench's own
   checkers; :func:`sharpset.constraints.check`). A row is **kept only when a candidate passes
   all its constraints** -- the bar is never lowered for a type the model rarely meets. A candidate
   cut at ``max_new_tokens`` never wins unless ``keep_truncated`` (an answer that does not end
   would teach a model not to end its turn; issue 20), nor one failing a health gate (``gates``,
   default loop and pseudo_refusal: an answer that apologises or declines, then helps anyway --
   one such kept row's "I'm sorry for the confusion." opened 10 of 40 answers of the quickstart's
   tuned base; issue 20).
4. **winner**: among passing candidates, the highest ``quality_lm`` (sharpset.signals: the
   subject's own likelihood signals, computed only for rows with two or more passing candidates,
   compared at 4 decimals), then the shortest (fewest generated tokens), then the lowest index;
   ``tie_break: shortest`` skips quality_lm. AutoIF also gates on a relevance judge; a checker can
   be met by an answer that ignores the task, which ``quality_lm`` only partly catches.
   With ``answer_check`` (default), a pool row that carries a known ``answer`` (the shipped
   questions; a user's QA file) also needs the answer stated in the candidate
   (:func:`sharpset.invariance.mentions`, whole words, number words as digits): the checkers verify
   the form, this the content. Without it the embedded SmolLM2's kept rows on the shipped questions
   were 4 of 11 right (7 format-valid but wrong or nonsense, e.g. "A) Toronto" for Canada's capital).
5. ``repair`` (optional): for a row with no passing candidate, the candidate meeting the most
   constraints is sent back to the model with the unmet constraints restated, once; the rewrite is
   checked against all constraints and, if it passes, kept with ``repaired: true``.

Output ``constrain.jsonl``: kept rows, TRL ``messages`` (user: the constrained prompt, assistant:
the winner) plus IFEval's own fields -- ``prompt``, ``instruction_id_list``, ``kwargs`` -- so a kept
row is also an IFEval-format item; tag columns ``k``, ``n_pass`` (candidates passing all),
``winner`` (candidate index, -1 for a repair), ``repaired``, ``tie_break``, ``quality_lm``,
``n_constraints``, ``source_id``; ``provenance`` with the constraints' phrasings, each candidate's
verdicts, tokens and seed, the rendered prompt and sampling settings. ``pairs.jsonl``
(``pairs``): for each kept row with a failing candidate, TRL's preference format --
``prompt`` / ``chosen`` / ``rejected`` as message lists; rejected = the failing candidate meeting
the fewest constraints.

Summary (the run's metrics): per type, pass@1 (candidate 0 meets it), pass@k (some candidate meets
it) and rows kept (rows holding the type that were kept), each with a Wilson 95% interval
(sharpset.stats.wilson) over the prompts holding the type; every type of ``types`` is listed, the
ones never drawn and the ones with 0 kept rows by name. Rows/min is prompts (k candidates each,
checked) per minute of this invocation's work.

Layout: :mod:`.config` (STAGE, VERSION, the fields and their checks), :mod:`.checks` (the pure
per-row decisions), :mod:`.steps` (the run's steps over the row plans), :mod:`.summary` (the
metrics); this module runs them in order and re-exports their public names.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ...errors import UserError
from ...run import RunDir
from .checks import (REPAIR_TEXT, gated, pick_winner, prompt_text, repair_prompt,  # noqa: F401 -- re-exported
                     right_answer, row_constraints, verdicts)
from .config import DROP_REASONS, GATES, STAGE, TIE_BREAKS, VERSION, ConstrainConfig  # noqa: F401 -- re-exported
from .steps import (_candidate_requests, _check_candidates, _decide, _plan_rows, _repair_requests, _Sampler,
                    _score_quality, _write_outputs)
from .summary import _metrics, _table, type_summary  # noqa: F401 -- re-exported


def read_pool(cfg: ConstrainConfig) -> tuple[Any, list[dict], list[str]]:
    from ...dataio import read_records
    from ...records import instruction_of

    res = read_records(cfg.input, require_response=False)
    rows = res.rows[: cfg.limit] if cfg.limit else res.rows
    wheres = [res.where(i) for i in range(len(rows))]
    for r, w in zip(rows, wheres):
        if not instruction_of(r).strip():
            field_ = "messages" if "messages" in r else "prompt"
            raise UserError(f"{w}: {field_}: no instruction (no non-empty user turn)")
    return res, rows, wheres


def run(cfg: ConstrainConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The stage (module docstring, steps 1-5): plan every row, generate and check the candidates,
    tie-break with quality_lm, repair, decide each row, then write the rows and the summary."""
    from ...stage import load_subject

    types = cfg.draw_types()
    res, rows, wheres = read_pool(cfg)
    plans = _plan_rows(cfg, rows, wheres, types)  # bad given constraints fail here, before a model loads
    subject = load_subject(cfg.model, log=log, run=run, role="subject", backend=cfg)
    sampler = _Sampler(cfg, subject, run, log)
    done = run.done_samples()
    if done:
        log(f"resuming: {len(done)} samples already logged")
    t_work = time.perf_counter()
    reqs = _candidate_requests(cfg, plans, sampler, done)
    n_new, rows_new = len(reqs), len({r.key.rsplit(":", 1)[0] for r in reqs})
    sampler.generate(reqs, "candidates")
    done = run.done_samples()
    _check_candidates(cfg, plans, done)
    done = _score_quality(cfg, plans, subject, run, done)
    if cfg.repair:
        reqs = _repair_requests(cfg, plans, sampler, done)
        n_new += len(reqs)
        sampler.generate(reqs, "repairs")
        done = run.done_samples()
    elapsed = time.perf_counter() - t_work

    kept_rows, pairs, drops, hows = _decide(cfg, plans, done)
    outputs = _write_outputs(cfg, run, kept_rows, pairs)
    metrics = _metrics(cfg, plans, types, kept_rows, pairs, drops, hows, rows_new, n_new, elapsed)
    log(_table(metrics["per_type"], cfg.k))
    filtered = res.n_read - len(res.rejected) - len(plans)
    run.finish(counts={"read": res.n_read, "written": len(kept_rows), "dropped": sum(drops.values()) + filtered,
                       "rejected": len(res.rejected)}, outputs=outputs, metrics=metrics)
    return metrics


def show(path: str, n: int = 5) -> str:
    """n kept rows: the constrained prompt, its constraints, the pass count and the winning answer."""
    from ...dataio import read_records

    out = []
    for r in read_records(path, "sft").rows[:n]:
        out.append(f"--- {r['id']}  k={r['k']} pass={r['n_pass']} winner={r['winner']} ({r['tie_break']})")
        for t, kw in zip(r["instruction_id_list"], r["kwargs"]):
            out.append(f"  {t} {kw}")
        out.append(f"[user] {r['messages'][0]['content']}")
        out.append(f"[assistant] {r['messages'][-1]['content']}")
    return "\n".join(out)
