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
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..run import RunDir, derive_seed
from ..stage import BackendFields

STAGE = "constrain"
VERSION = 3  # 3: gates (a candidate that loops or declines-then-helps never wins: issue 20's quickstart copied one
# kept row's "I'm sorry for the confusion." into 10 of 40 answers); 2: answer_check (a row with a known answer keeps
# only a candidate that states it)

DROP_REASONS = ("no_constraint", "no_pass", "only_truncated", "wrong_answer", "gated")
GATES = ("loop", "pseudo_refusal")  # of text.degeneration.GATE_COLUMNS; truncated candidates have their own rule
TIE_BREAKS = ("quality_lm", "shortest")
REPAIR_TEXT = ("Rewrite your answer so that it also follows {these}: {rules} Keep what it says otherwise, "
               "and reply with the rewritten answer only.")


@dataclass
class ConstrainConfig(BackendFields):
    input: str = field("", "the pool: SFT rows (Magpie messages, e.g. a synth run folder), prompt/completion rows, "
                           "or an IFEval-format file (prompt, instruction_id_list, kwargs: constraints used as given)")
    model: str = field("smollm2-135m-instruct", "aligned model that writes the candidates (and repairs)")
    types: list = field(["train"], "constraint types to draw: ids or groups (train, heldout, ifeval, ifbench, all); "
                                   "`sharpset.constraints` lists them")
    heldout_types: list = field(["heldout"], "types held out for evaluation (default IFBench's): never drawn unless "
                                             "allow_heldout")
    allow_heldout: bool = field(False, "allow `types` to include held-out types")
    count_weights: list = field([0.2, 0.4, 0.4], "weights of 1, 2, 3 constraints per prompt")
    k: int = field(8, "candidates per prompt")
    temperature: float = field(0.8, "candidate sampling temperature")
    top_p: float = field(0.95, "candidate top-p")
    max_new_tokens: int = field(256, "max tokens of a candidate")
    repetition_penalty: float = field(1.1, "candidate repetition penalty (1.0 = off; synth's default, issue 13)")
    keep_truncated: bool = field(False, "let a candidate cut at max_new_tokens win (default: it cannot)")
    answer_check: bool = field(True, "a pool row with a known `answer` keeps only a candidate that states it "
                                     "(the constraints check the form, this the content)")
    gates: list = field(list(GATES), "health gates a winning candidate must pass (as curate's: "
                                     "empty, loop, incomplete, refusal, pseudo_refusal, language_mismatch); a "
                                     "candidate that fails one never wins; [] = none")
    tie_break: str = field("quality_lm", "among passing candidates: quality_lm (then shortest) or shortest")
    repair: bool = field(False, "rewrite the best failing candidate once with the unmet constraints restated")
    pairs: bool = field(False, "also write pairs.jsonl: chosen (passing) / rejected (failing) in TRL's preference format")
    limit: int = field(0, "use only the first N pool rows (0 = all)")
    seed: int = field(0, "base seed: constraints and sampling keyed by (seed, 'constrain', row id)")
    batch_size: int = field(16, "engine batch size")

    def key_inputs(self) -> dict[str, str]:
        """The subject model by fingerprint (run.config_reads)."""
        from ..run import models_read

        return models_read(model=self.model)

    def draw_types(self) -> list[str]:
        from ..constraints import resolve_types

        return resolve_types(self.types, "types")

    def held_out(self) -> set[str]:
        from ..constraints import resolve_types

        return set(resolve_types(self.heldout_types, "heldout_types"))

    def weights(self) -> list[float]:
        return [float(w) for w in self.count_weights]

    def check(self) -> list[tuple[str, str]]:
        p = []
        if not self.input:
            p.append(("input", "give the pool: a file or folder of instructions (e.g. a synth run folder)"))
        if self.k < 1:
            p.append(("k", "must be >= 1"))
        if self.temperature < 0:
            p.append(("temperature", "must be >= 0"))
        if not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        if self.max_new_tokens < 1:
            p.append(("max_new_tokens", "must be >= 1"))
        if self.repetition_penalty <= 0:
            p.append(("repetition_penalty", "must be > 0"))
        from ..text.degeneration import GATE_COLUMNS

        bad = [g for g in self.gates if g not in GATE_COLUMNS]
        if bad:
            p.append(("gates", f"unknown {bad}; choose from {', '.join(GATE_COLUMNS)}"))
        if self.tie_break not in TIE_BREAKS:
            p.append(("tie_break", f"must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break!r}"))
        try:
            w = self.weights()
            if not w or any(x < 0 for x in w) or sum(w) <= 0:
                p.append(("count_weights", "give one weight >= 0 per count (1, 2, 3, ...), not all 0"))
        except (TypeError, ValueError):
            p.append(("count_weights", f"must be numbers, got {self.count_weights!r}"))
        try:
            types, held = self.draw_types(), self.held_out()
        except ValueError as e:
            name, _, why = str(e).partition(": ")
            p.append((name, why))
            return p
        if not types:
            p.append(("types", "no constraint type selected"))
        bad = [t for t in types if t in held]
        if bad and not self.allow_heldout:
            p.append(("types", f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} held out (heldout_types): "
                               "drawing them would leave eval no unseen types; set allow_heldout to draw them"))
        return p

    def scoring_needs(self) -> dict[str, str]:
        return {"answer_token_nll": "tie_break=quality_lm"} if self.tie_break == "quality_lm" else {}

    def decoding(self) -> dict[str, tuple[str, Any]]:
        return {"repetition_penalty": ("repetition_penalty", self.repetition_penalty)}


# ------------------------------------------------------------------ pure transforms

def row_constraints(row: dict, instruction: str, cfg: ConstrainConfig, types: list[str], where: str
                    ) -> tuple[list[dict], bool]:
    """(constraints, given) for one pool row: the row's own ``instruction_id_list``/``kwargs``
    (validated; a UserError naming ``where`` and the field) or a draw keyed by the row id."""
    from ..constraints import draw, rng_for, validate_kwargs

    if row.get("instruction_id_list") is not None:
        out = []
        kws = row.get("kwargs") or [None] * len(row["instruction_id_list"])
        for i, (t, kw) in enumerate(zip(row["instruction_id_list"], kws)):
            try:
                out.append({"id": t, "kwargs": validate_kwargs(t, kw), "phrasing": None})
            except ValueError as e:
                field_ = "instruction_id_list" if str(e).startswith(("unknown constraint", f"{t}: excluded")) \
                    else "kwargs"
                raise UserError(f"{where}: {field_}[{i}]: {e}") from None
        return out, True
    return draw(rng_for(cfg.seed, STAGE, row["id"]), instruction, types, cfg.weights()), False


def prompt_text(instruction: str, constraints: list[dict], given: bool) -> str:
    from ..constraints import user_turn

    return instruction if given else user_turn(instruction, constraints)


def verdicts(constraints: list[dict], prompt: str, text: str) -> list[bool]:
    """Strict verdict per constraint for one candidate."""
    from ..constraints import check

    return check([c["id"] for c in constraints], [c["kwargs"] for c in constraints], prompt, text)["strict"]


def pick_winner(passing: list[int], cands: list[dict], quality: dict[int, float | None] | None
                ) -> tuple[int, str]:
    """(index, how) of the winner among ``passing`` candidate indices: the highest quality_lm
    (compared at 4 decimals; None ranks last), then the fewest generated tokens, then the lowest
    index. ``how``: "only" (one passing), "quality_lm" (a unique best score), else "shortest"."""
    if len(passing) == 1:
        return passing[0], "only"
    q = {j: round(v, 4) for j, v in (quality or {}).items() if v is not None and j in passing}
    best = min(passing, key=lambda j: (-q[j] if j in q else float("inf"), cands[j]["n_new_tokens"], j))
    unique = best in q and list(q.values()).count(q[best]) == 1
    return best, "quality_lm" if unique else "shortest"


def gated(cfg: ConstrainConfig, prompt: str, cand: dict) -> bool:
    """True when the candidate fails one of ``cfg.gates`` (its health columns: text.degeneration.health)."""
    from ..text.degeneration import failed_gates, health

    if not cfg.gates:
        return False
    lang = "language_mismatch" in cfg.gates  # the only gate that reads the prompt (a language detection)
    h = health(cand["text"], prompt=prompt if lang else None, truncated=cand.get("truncated"))
    return bool(failed_gates(h, cfg.gates))


def right_answer(cfg: ConstrainConfig, row: dict, text: str) -> bool:
    """True unless ``answer_check`` is on, the pool row has a known ``answer`` and ``text`` does not state it."""
    from ..invariance import mentions

    answer = row.get("answer")
    return not (cfg.answer_check and isinstance(answer, str) and answer.strip()) or mentions(text, answer)


def repair_prompt(constraints: list[dict], unmet: list[int]) -> str:
    from ..constraints import render

    rules = " ".join(render(constraints[i]["id"], constraints[i]["kwargs"], constraints[i]["phrasing"] or 0)
                     for i in unmet)
    return REPAIR_TEXT.format(these="this instruction" if len(unmet) == 1 else "these instructions", rules=rules)


def _hash(obj: Any) -> str:
    from ..records import canonical_json

    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def type_summary(plans: list[dict], types: list[str]) -> dict[str, dict]:
    """Per type: prompts holding it (n), pass@1, pass@k and rows kept, each a Wilson 95% interval."""
    from ..stats import wilson

    out = {}
    for t in types:
        n = p1 = pk = kept = 0
        frac = 0.0
        for pl in plans:
            for i, c in enumerate(pl["constraints"]):
                if c["id"] != t or not pl["cands"]:
                    continue
                col = [v[i] for v in pl["verdicts"]]
                n += 1
                p1 += col[0]
                pk += any(col)
                frac += sum(col) / len(col)
                kept += pl["kept"]
        out[t] = {"n": n, "pass@1": wilson(p1, n), "pass@k": wilson(pk, n), "kept": wilson(kept, n),
                  "pass_mean": round(frac / n, 4) if n else None}
    return out


# ------------------------------------------------------------------ stage

def read_pool(cfg: ConstrainConfig) -> tuple[Any, list[dict], list[str]]:
    from ..dataio import read_records
    from ..records import instruction_of

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
    from ..stage import load_subject

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


def _plan_rows(cfg: ConstrainConfig, rows: list[dict], wheres: list[str], types: list[str]) -> list[dict]:
    """One plan per pool row: its instruction, its constraints (given or drawn) and the constrained
    prompt. The later steps add candidates, verdicts and the decision to the same dict."""
    from ..records import instruction_of

    plans: list[dict] = []
    for r, w in zip(rows, wheres):
        ins = instruction_of(r)
        cons, given = row_constraints(r, ins, cfg, types, w)
        plans.append({"row": r, "where": w, "instruction": ins, "constraints": cons, "given": given,
                      "prompt": prompt_text(ins, cons, given)})
    return plans


class _Sampler:
    """The aligned model's sampling as candidates and repairs use it: the config's settings with one
    seed a request, every output logged the moment it exists (so a killed run resumes)."""

    def __init__(self, cfg: ConstrainConfig, subject: Any, run: RunDir, log: Callable[[str], None]):
        from ..stage import prompt_room

        self.cfg, self.subject, self.run, self.log = cfg, subject, run, log
        self.tok, self.profile = subject.tok, subject.profile
        self.engine = subject.engine(cfg.batch_size)
        self.stops = subject.stop_ids()
        self.room = prompt_room(subject.config, cfg.max_new_tokens)

    def params(self, seed: int) -> Any:
        """SamplingParams for one request."""
        from ..engine import SamplingParams

        cfg = self.cfg
        return SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              seed=seed, stop_token_ids=self.stops, stop_strings=tuple(self.profile.stop_strings),
                              repetition_penalty=cfg.repetition_penalty)

    def generate(self, reqs: list, what: str) -> None:
        """Generate ``reqs`` in one batched stream, logging each output under its request key."""
        t0 = time.perf_counter()
        for j, out in self.engine.generate_iter(reqs, progress=False):
            self.run.log_sample(reqs[j].key, {"text": out.text.strip(), "finish_reason": out.finish_reason,
                                              "truncated": out.truncated, "n_prompt_tokens": out.n_prompt_tokens,
                                              "n_new_tokens": out.n_new_tokens, "seed": reqs[j].params.seed})
        dt = time.perf_counter() - t0
        if reqs:
            self.log(f"{what}: {len(reqs)} generated in {dt:.1f} s")


def _candidate_requests(cfg: ConstrainConfig, plans: list[dict], sampler: _Sampler, done: dict) -> list:
    """The k candidate requests of every row with constraints, less those already logged. Every
    prompt is encoded first, so one that leaves no room for ``max_new_tokens`` is a UserError naming
    its row before anything is generated."""
    from ..engine import GenerationRequest
    from ..models.profiles import encode_prompt

    profile, room = sampler.profile, sampler.room
    reqs = []
    for pl in plans:
        rid = pl["row"]["id"]
        if not pl["constraints"]:
            continue
        msgs = [{"role": "user", "content": pl["prompt"]}]
        ids = encode_prompt(profile, sampler.tok, msgs)
        if room is not None and len(ids) > room:  # before any generation, naming the row
            raise UserError(f"{pl['where']}: messages: the constrained prompt is {len(ids)} tokens; {cfg.model}'s "
                            f"context leaves {max(room, 0)} with max_new_tokens {cfg.max_new_tokens}: shorten "
                            "the instruction or lower max_new_tokens")
        pl["rendered"] = profile.render(msgs, add_generation_prompt=True)
        for j in range(cfg.k):
            key = f"cand:{rid}:{j}"
            if key not in done:
                reqs.append(GenerationRequest(ids, sampler.params(derive_seed(cfg.seed, STAGE, f"{rid}:{j}")),
                                              key=key))
    return reqs


def _check_candidates(cfg: ConstrainConfig, plans: list[dict], done: dict) -> None:
    """Each row's candidates from the log, checked against all its constraints; ``eligible``: those
    that pass all, are not cut at max_new_tokens (unless keep_truncated) and state a known answer."""
    for pl in plans:
        rid = pl["row"]["id"]
        pl["cands"] = [done[f"cand:{rid}:{j}"] for j in range(cfg.k)] if pl["constraints"] else []
        pl["verdicts"] = [verdicts(pl["constraints"], pl["prompt"], c["text"]) for c in pl["cands"]]
        pl["pass_all"] = [all(v) for v in pl["verdicts"]]
        pl["eligible"] = [j for j, c in enumerate(pl["cands"]) if pl["pass_all"][j] and
                          (cfg.keep_truncated or not c["truncated"]) and right_answer(cfg, pl["row"], c["text"])
                          and not gated(cfg, pl["prompt"], c)]


def _score_quality(cfg: ConstrainConfig, plans: list[dict], subject: Any, run: RunDir, done: dict) -> dict:
    """quality_lm of the eligible candidates of rows with two or more (the tie-break), logged per row
    so a resumed run reuses it; returns the sample log, re-read when anything was added."""
    need = [pl for pl in plans if len(pl["eligible"]) > 1 and f"qlm:{pl['row']['id']}" not in done]
    if not (cfg.tie_break == "quality_lm" and need):
        return done
    from ..signals import lm_signals

    items = [(pl, j) for pl in need for j in pl["eligible"]]
    cols = lm_signals(subject.scores, subject.tok, subject.profile,
                      [{"messages": [{"role": "user", "content": pl["prompt"]},
                                     {"role": "assistant", "content": pl["cands"][j]["text"]}],
                        "truncated": pl["cands"][j]["truncated"]} for pl, j in items],
                      batch_size=cfg.batch_size)
    by: dict[str, dict[str, Any]] = {}
    for (pl, j), c in zip(items, cols):
        by.setdefault(pl["row"]["id"], {})[str(j)] = c["quality_lm"]
    for rid, q in by.items():
        run.log_sample(f"qlm:{rid}", {"quality_lm": q})
    return run.done_samples()


def _repair_requests(cfg: ConstrainConfig, plans: list[dict], sampler: _Sampler, done: dict) -> list:
    """For each row with candidates but none eligible: the non-empty candidate meeting the most
    constraints, sent back once with the unmet ones restated (``pl["repair"]``); requests for those
    not logged yet."""
    from ..engine import GenerationRequest
    from ..models.profiles import encode_prompt

    reqs = []
    for pl in plans:
        rid = pl["row"]["id"]
        if pl["eligible"] or not pl["cands"]:
            continue
        usable = [j for j, c in enumerate(pl["cands"]) if c["text"]]
        if not usable:
            continue
        j = max(usable, key=lambda x: (sum(pl["verdicts"][x]), -x))
        unmet = [i for i, ok in enumerate(pl["verdicts"][j]) if not ok] or list(range(len(pl["constraints"])))
        ask = repair_prompt(pl["constraints"], unmet)
        msgs = [{"role": "user", "content": pl["prompt"]}, {"role": "assistant", "content": pl["cands"][j]["text"]},
                {"role": "user", "content": ask}]
        pl["repair"] = {"of": j, "unmet": [pl["constraints"][i]["id"] for i in unmet], "request": ask}
        key = f"rep:{rid}"
        if key not in done:
            reqs.append(GenerationRequest(encode_prompt(sampler.profile, sampler.tok, msgs),
                                          sampler.params(derive_seed(cfg.seed, STAGE, f"{rid}:repair")), key=key))
    return reqs


def _decide(cfg: ConstrainConfig, plans: list[dict], done: dict
            ) -> tuple[list[dict], list[dict], dict[str, int], dict[str, int]]:
    """(kept rows, preference pairs, drops by reason, kept rows by how the winner was decided).
    Sets ``pl["kept"]`` (the per-type summary reads it)."""
    kept_rows, pairs, drops = [], [], {k: 0 for k in DROP_REASONS}
    hows = {"only": 0, "quality_lm": 0, "shortest": 0, "repair": 0}
    for pl in plans:
        pl["kept"] = False
        if not pl["constraints"]:
            drops["no_constraint"] += 1
            continue
        text, winner, how, quality = _answer(cfg, pl, done)
        if text is None:
            drops[_drop_reason(cfg, pl)] += 1
            continue
        pl["kept"] = True
        hows[how] += 1
        row = _kept_row(cfg, pl, text, winner, how, quality)
        kept_rows.append(row)
        pair = _preference_pair(pl, row) if cfg.pairs else None
        if pair is not None:
            pairs.append(pair)
    return kept_rows, pairs, drops, hows


def _answer(cfg: ConstrainConfig, pl: dict, done: dict) -> tuple[str | None, int | None, str | None, float | None]:
    """(text, winner, how, quality_lm) of a row's answer: the best eligible candidate (pick_winner),
    else its repair when that passes (winner -1); text None when there is neither."""
    rid = pl["row"]["id"]
    if pl["eligible"]:
        q = done.get(f"qlm:{rid}", {}).get("quality_lm") if cfg.tie_break == "quality_lm" else None
        qual = {int(j): v for j, v in q.items()} if q else None
        winner, how = pick_winner(pl["eligible"], pl["cands"], qual)
        return pl["cands"][winner]["text"], winner, how, (qual or {}).get(winner)
    if pl.get("repair") and _repair_passes(cfg, pl, done[f"rep:{rid}"]):
        return pl["repair"]["text"], -1, "repair", None
    return None, None, None, None


def _repair_passes(cfg: ConstrainConfig, pl: dict, rep: dict) -> bool:
    """Check a logged repair by the candidates' bar, recording it (and the verdict) in ``pl["repair"]``."""
    ok = all(verdicts(pl["constraints"], pl["prompt"], rep["text"])) and \
        (cfg.keep_truncated or not rep["truncated"]) and right_answer(cfg, pl["row"], rep["text"]) and \
        not gated(cfg, pl["prompt"], rep)
    pl["repair"].update(text=rep["text"], passed=ok, n_new_tokens=rep["n_new_tokens"],
                        truncated=rep["truncated"], seed=rep["seed"])
    return ok


def _drop_reason(cfg: ConstrainConfig, pl: dict) -> str:
    """Why a row with constraints has no answer: gated (every whole candidate that passed every check
    and stated a known answer failed a health gate), wrong_answer (a whole candidate passed every check
    but did not state the known answer), only_truncated (only cut candidates passed), else no_pass."""
    whole = [j for j, c in enumerate(pl["cands"]) if pl["pass_all"][j] and (cfg.keep_truncated or not c["truncated"])]
    if any(right_answer(cfg, pl["row"], pl["cands"][j]["text"]) for j in whole):
        return "gated"
    return "wrong_answer" if whole else "only_truncated" if any(pl["pass_all"]) else "no_pass"


def _kept_row(cfg: ConstrainConfig, pl: dict, text: str, winner: int, how: str, quality: float | None) -> dict:
    """The output row: TRL messages, IFEval's own fields, the tag columns and the provenance."""
    from ..records import content_id

    msgs = [{"role": "user", "content": pl["prompt"]}, {"role": "assistant", "content": text}]
    ids_list = [c["id"] for c in pl["constraints"]]
    sampling = {"k": cfg.k, "temperature": cfg.temperature, "top_p": cfg.top_p, "max_new_tokens": cfg.max_new_tokens,
                "repetition_penalty": cfg.repetition_penalty}
    return {"id": content_id({"messages": msgs}, "sft"), "messages": msgs, "prompt": pl["prompt"],
            "instruction_id_list": ids_list, "kwargs": [c["kwargs"] for c in pl["constraints"]],
            "source_id": pl["row"]["id"], "k": cfg.k, "n_pass": sum(pl["pass_all"]), "winner": winner,
            "repaired": how == "repair", "tie_break": how, "quality_lm": quality, "n_constraints": len(ids_list),
            "provenance": {"stage": STAGE, "model": cfg.model, **cfg.backend_info(cluster=False),
                           "seed": cfg.seed, "sampling": sampling, "constraints_given": pl["given"],
                           "constraints": pl["constraints"], "instruction": pl["instruction"],
                           "rendered_prompt": pl["rendered"],
                           "candidates": [{"strict": v, "n_new_tokens": c["n_new_tokens"],
                                           "finish_reason": c["finish_reason"], "seed": c["seed"]}
                                          for v, c in zip(pl["verdicts"], pl["cands"])],
                           **({"repair": pl["repair"]} if how == "repair" else {})}}


def _preference_pair(pl: dict, row: dict) -> dict | None:
    """TRL's preference format for a kept row: chosen = its answer, rejected = the non-empty failing
    candidate meeting the fewest constraints; None when no candidate failed."""
    failing = [j for j, c in enumerate(pl["cands"]) if not pl["pass_all"][j] and c["text"]]
    if not failing:
        return None
    rej = min(failing, key=lambda j: (sum(pl["verdicts"][j]), j))
    msgs = row["messages"]
    pair = {"prompt": [msgs[0]], "chosen": [msgs[1]],
            "rejected": [{"role": "assistant", "content": pl["cands"][rej]["text"]}]}
    return {"id": _hash(pair), **pair, "instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"],
            "source_id": row["source_id"], "chosen_candidate": row["winner"], "rejected_candidate": rej,
            "rejected_passed": sum(pl["verdicts"][rej]), "chosen_repaired": row["repaired"]}


def _write_outputs(cfg: ConstrainConfig, run: RunDir, kept_rows: list[dict], pairs: list[dict]) -> list[str]:
    """constrain.jsonl, and pairs.jsonl when asked for; returns their names."""
    from ..dataio import write_records

    write_records(kept_rows, run.path / "constrain.jsonl")
    outputs = ["constrain.jsonl"]
    if cfg.pairs:
        write_records(pairs, run.path / "pairs.jsonl")
        outputs.append("pairs.jsonl")
    return outputs


def _metrics(cfg: ConstrainConfig, plans: list[dict], types: list[str], kept_rows: list[dict], pairs: list[dict],
             drops: dict[str, int], hows: dict[str, int], rows_new: int, n_new: int, elapsed: float
             ) -> dict[str, Any]:
    """The run's summary: kept and pass rates over the attempted prompts (Wilson 95%), per-type
    pass@1 / pass@k / kept, the types never drawn, never met or never kept, and throughput."""
    from ..stats import wilson

    tried = [pl for pl in plans if pl["cands"]]
    per_type = type_summary(plans, types)
    drawn = [t for t in types if per_type[t]["n"]]
    metrics = {
        "prompts": len(plans), "attempted": len(tried), "kept": len(kept_rows),
        "kept_rate": wilson(len(kept_rows), len(tried)),  # x100: kept rows per 100 attempts
        "dropped": sum(drops.values()), "drop_reasons": drops, "decided_by": hows,
        "candidates": sum(len(pl["cands"]) for pl in tried),
        "truncated_candidates": sum(c["truncated"] for pl in tried for c in pl["cands"]),
        "empty_candidates": sum(not c["text"] for pl in tried for c in pl["cands"]),
        "prompt_pass@1": wilson(sum(pl["pass_all"][0] for pl in tried), len(tried)),
        "prompt_pass@k": wilson(sum(any(pl["pass_all"]) for pl in tried), len(tried)),
        "per_type": {t: v for t, v in per_type.items() if v["n"]},  # the others: types_not_drawn
        "types_not_drawn": [t for t in types if not per_type[t]["n"]],
        "types_never_met": [t for t in drawn if per_type[t]["pass@k"]["k"] == 0],
        "types_zero_kept": [t for t in drawn if per_type[t]["kept"]["k"] == 0],
        # prompts whose candidates this invocation generated (k each, checked, tie-broken, repaired)
        "rows_per_min": round(60 * rows_new / elapsed, 2) if rows_new and elapsed > 0 else None,
        "generated_this_attempt": n_new,
    }
    if cfg.repair:
        repairs = [pl["repair"] for pl in plans if "repair" in pl]
        metrics["repairs"] = {"tried": len(repairs), "passed": sum(r["passed"] for r in repairs)}
    if cfg.pairs:
        metrics["pairs"] = len(pairs)
    return metrics


def _fmt(w: dict) -> str:
    return "   -" if w["rate"] is None else f"{w['rate']:.2f} [{w['ci95'][0]:.2f}, {w['ci95'][1]:.2f}]"


def _table(per_type: dict, k: int) -> str:
    """Per-type summary lines for the log: n, pass@1, pass@k, kept (Wilson 95%)."""
    lines = [f"{'type':46s} {'n':>4s}  {'pass@1':19s} {f'pass@{k}':19s} kept"]
    for t, s in per_type.items():
        lines.append(f"{t:46s} {s['n']:4d}  {_fmt(s['pass@1']):19s} {_fmt(s['pass@k']):19s} {_fmt(s['kept'])}")
    return "\n".join(lines)


def show(path: str, n: int = 5) -> str:
    """n kept rows: the constrained prompt, its constraints, the pass count and the winning answer."""
    from ..dataio import read_records

    out = []
    for r in read_records(path, "sft").rows[:n]:
        out.append(f"--- {r['id']}  k={r['k']} pass={r['n_pass']} winner={r['winner']} ({r['tie_break']})")
        for t, kw in zip(r["instruction_id_list"], r["kwargs"]):
            out.append(f"  {t} {kw}")
        out.append(f"[user] {r['messages'][0]['content']}")
        out.append(f"[assistant] {r['messages'][-1]['content']}")
    return "\n".join(out)
