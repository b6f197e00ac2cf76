"""The steps of a ``sharpset constrain`` run over its row plans (the package docstring's 1-5): plan
each row, sample the candidates and repairs (every output logged as it exists, so a killed run
resumes), check them, score the quality_lm tie-break, decide each row, build the kept rows and
preference pairs, write them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable

from ...errors import UserError
from ...run import RunDir, derive_seed
from .checks import gated, pick_winner, prompt_text, repair_prompt, right_answer, row_constraints, verdicts
from .config import DROP_REASONS, STAGE, ConstrainConfig

def _plan_rows(cfg: ConstrainConfig, rows: list[dict], wheres: list[str], types: list[str]) -> list[dict]:
    """One plan per pool row: its instruction, its constraints (given or drawn) and the constrained
    prompt. The later steps add candidates, verdicts and the decision to the same dict."""
    from ...records import instruction_of

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
        from ...stage import prompt_room

        self.cfg, self.subject, self.run, self.log = cfg, subject, run, log
        self.tok, self.profile = subject.tok, subject.profile
        self.engine = subject.engine(cfg.batch_size)
        self.stops = subject.stop_ids()
        self.room = prompt_room(subject.config, cfg.max_new_tokens)

    def params(self, seed: int) -> Any:
        """SamplingParams for one request."""
        from ...engine import SamplingParams

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
    from ...engine import GenerationRequest
    from ...models.profiles import encode_prompt

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
    from ...signals import lm_signals

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
    from ...engine import GenerationRequest
    from ...models.profiles import encode_prompt

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
    from ...records import content_id

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
    from ...dataio import write_records

    write_records(kept_rows, run.path / "constrain.jsonl")
    outputs = ["constrain.jsonl"]
    if cfg.pairs:
        write_records(pairs, run.path / "pairs.jsonl")
        outputs.append("pairs.jsonl")
    return outputs


def _hash(obj: Any) -> str:
    from ...records import canonical_json

    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]
