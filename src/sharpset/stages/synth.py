"""Magpie self-synthesis (arXiv:2406.08464): an aligned model writes its own instruction data.

For each attempt i (seed derived from (seed, "synth", i)):
1. instruction: prompt the model with ONLY its pre-query prefix -- exactly what its chat template
   renders before the first user message's content, including any default system turn (SmolLM2's
   "You are a helpful AI assistant named SmolLM..."), or an explicit steering system prompt drawn by
   weight. It writes a user turn; we stop at the end-of-turn token (and, with ``single_line``, at the
   first newline). The prefix is built explicitly by the chat profile; never by rendering with
   add_generation_prompt=True and appending (distilabel's empty-assistant-header bug).
2. clean: drop empty, too short, ending with ':', starting with a markdown header, repeating the
   template, truncated (hit the token limit), or an exact repeat of an earlier instruction; every
   drop counted by reason.
3. response: render the conversation properly (profile.encode_prompt) and generate the answer
   (authors: greedy or T~0.7). With ``turns > 1`` the model then writes the next user turn from
   the rendered conversation followed by the next user header, and so on.

Steering (Magpie alone cannot be steered: its issues #2, #5, #7): ``system_prompts`` is a weighted
list ``[{text, weight, category}]``; the category is kept as ``steer_category``. ``quotas``
(``{category: rows}``) then fills per-category quotas: after the n attempts, each row is classified --
by its steering category, or (``quota_by: judge``) by the judge's Magpie task category exactly as
``sharpset tag`` scores it -- and extra rounds of attempts steered with a short category's prompts
run (at most ``quota_rounds``), sized by the clean-row yield seen so far. Rows keep
``quota_category`` and ``quota_round``; ``curate --strategy quota`` can then take exact shares.

Every row records the model, the exact rendered prompts, sampling settings, seed, token counts and
``truncated`` flags. Each generation is logged as it finishes, so a killed run resumes.
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..records import content_id, write_records
from ..run import RunDir, derive_seed
from ..stage import BackendFields

STAGE = "synth"
VERSION = 2  # 2: responses decoded with repetition_penalty 1.1 by default (issue 13)

DROP_REASONS = ("empty", "too_short", "ends_with_colon", "markdown_header", "repeats_template",
                "instruction_truncated", "duplicate", "response_empty")
_HEADER = re.compile(r"^\s*#{1,6}\s")


@dataclass
class SynthConfig(BackendFields):
    model: str = field("smollm2-135m-instruct", "aligned chat model: embedded name, local HF folder or hub id")
    n: int = field(200, "instruction attempts (clean rows are those that survive the cleaner)")
    instruction_temperature: float = field(1.0, "instruction sampling temperature (authors: 1.0, range 0.6-1.2)")
    instruction_top_p: float = field(1.0, "instruction top-p (authors: 1.0)")
    instruction_max_tokens: int = field(96, "max tokens of an instruction; a longer one is dropped as truncated")
    single_line: bool = field(False, "stop instructions at the first newline (Magpie's single-line mode)")
    response_temperature: float = field(0.0, "response temperature (0 = greedy; authors: greedy or ~0.7)")
    response_top_p: float = field(1.0, "response top-p")
    response_max_tokens: int = field(384, "max tokens of a response (rows that hit it are kept, flagged truncated)")
    # Default chosen by measurement on the embedded SmolLM2 (issue 13; experiments/decoding_sweep.py on
    # 40 instructions, then `sharpset synth --n 200`): greedy answers looped in 51 % of rows and ran to
    # the token limit in 60 %; with 1.1 (stop tokens exempt) loops fell to 3 % and truncation to 20 %
    # on the screen. 1.2 gave the same clean rate with more drift in wording; a no-repeat 6-gram ban
    # alone left 33 % truncated.
    response_repetition_penalty: float = field(1.1, "response repetition penalty (CTRL/transformers convention: "
                                                    "logits of prompt and generated tokens, stop tokens "
                                                    "exempt, divided by it; 1 = off)")
    response_no_repeat_ngram: int = field(0, "ban a response token that would repeat a generated n-gram of "
                                             "this many tokens (0 = off)")
    turns: int = field(1, "user/assistant turns per conversation")
    system_prompts: list = field([], "steering: list of {text, weight, category} (or plain strings); empty = template default")
    min_instruction_words: int = field(3, "instructions with fewer words are dropped as too_short")
    seed: int = field(0, "base seed; attempt i uses a seed derived from (seed, 'synth', i)")
    batch_size: int = field(16, "engine batch size")
    quotas: dict = field({}, "per-category quotas {category: rows}: after the n attempts, extra rounds steered "
                             "with that category's system prompts run until every quota is met")
    quota_by: str = field("steer", "what decides a row's category for quotas: steer (its system prompt's "
                                   "category) or judge (the judge's Magpie task category, as `sharpset tag` scores it)")
    quota_judge: str | None = field(None, "judge model for quota_by=judge (default: the synth model)")
    quota_rounds: int = field(3, "at most this many extra rounds to fill the quotas")

    def key_inputs(self) -> dict[str, str]:
        """The models it runs, by fingerprint (run.config_reads): a changed model folder resynthesises."""
        from ..run import models_read

        judge = (self.quota_judge or self.model) if self.quotas and self.quota_by == "judge" else None
        return models_read(self.model, judge)

    def check(self) -> list[tuple[str, str]]:
        p = []
        if self.n < 1:
            p.append(("n", "must be >= 1"))
        if self.turns < 1:
            p.append(("turns", "must be >= 1"))
        for name in ("instruction_temperature", "response_temperature"):
            if getattr(self, name) < 0:
                p.append((name, "must be >= 0"))
        if not self.response_repetition_penalty > 0:
            p.append(("response_repetition_penalty", "must be > 0"))
        if self.response_no_repeat_ngram < 0:
            p.append(("response_no_repeat_ngram", "must be >= 0"))
        for name in ("instruction_top_p", "response_top_p"):
            if not 0 < getattr(self, name) <= 1:
                p.append((name, "must be in (0, 1]"))
        for i, sp in enumerate(self.system_prompts):
            if isinstance(sp, str):
                continue
            if not isinstance(sp, dict) or not isinstance(sp.get("text"), str) or not sp["text"].strip():
                p.append((f"system_prompts", f"item {i}: expected a string or {{text, weight, category}}"))
            elif float(sp.get("weight", 1.0)) <= 0:
                p.append(("system_prompts", f"item {i}: weight must be > 0"))
        if self.quota_by not in ("steer", "judge"):
            p.append(("quota_by", "must be steer or judge"))
        if self.quota_rounds < 0:
            p.append(("quota_rounds", "must be >= 0"))
        if self.quotas:
            if not isinstance(self.quotas, dict):
                p.append(("quotas", "expected a mapping {category: rows}"))
            else:
                cats = {sp.get("category") for sp in self.system_prompts if isinstance(sp, dict)}
                for c, k in self.quotas.items():
                    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
                        p.append(("quotas", f"{c}: expected a row count >= 0, got {k!r}"))
                    elif c not in cats:
                        p.append(("quotas", f"{c}: no system_prompts entry has this category, so no round "
                                            "can be steered towards it"))
                if self.quota_by == "judge":
                    from ..judge import CATEGORIES

                    bad = sorted(set(self.quotas) - set(CATEGORIES))
                    if bad:
                        p.append(("quotas", f"{bad}: with quota_by=judge, categories must be Magpie's: {CATEGORIES}"))
        return p

    def scoring_needs(self) -> dict[str, str]:
        if self.quotas and self.quota_by == "judge":
            return {"next_token_probs": "quota_by=judge (the judge's task category)"}
        return {}

    def decoding(self) -> dict[str, tuple[str, Any]]:
        return {"response_repetition_penalty": ("repetition_penalty", self.response_repetition_penalty),
                "response_no_repeat_ngram": ("no_repeat_ngram_size", self.response_no_repeat_ngram)}

    def steering(self) -> list[dict[str, Any]]:
        out = []
        for sp in self.system_prompts:
            sp = {"text": sp} if isinstance(sp, str) else sp
            out.append({"text": sp["text"], "weight": float(sp.get("weight", 1.0)), "category": sp.get("category")})
        return out


def clean_instruction(text: str, finish_reason: str, profile: Any, min_words: int) -> str | None:
    """The drop reason for an instruction, or None when it is kept (METHODS §1 cleaners)."""
    t = text.strip()
    if finish_reason == "length":
        return "instruction_truncated"
    if not t:
        return "empty"
    markers = [m for m in (profile.end_of_turn, profile.bos, "<|im_start|>", "<|start_header_id|>",
                           "<start_of_turn>", "<|user|>", "<|assistant|>", "[INST]") if m]
    if any(m in t for m in markers) or re.match(r"^(user|assistant|system)\s*\n", t):
        return "repeats_template"
    if len(t.split()) < min_words:
        return "too_short"
    if t.endswith(":"):
        return "ends_with_colon"
    if _HEADER.match(t):
        return "markdown_header"
    return None


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def run(cfg: SynthConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..engine import GenerationRequest, SamplingParams
    from ..models.profiles import encode_prompt, encode_text
    from ..stage import load_subject

    subject = load_subject(cfg.model, log=log, run=run, role="subject", backend=cfg)
    tok, profile = subject.tok, subject.profile
    engine = subject.engine(cfg.batch_size)
    stops = subject.stop_ids()
    steer = cfg.steering()
    inst_params = dict(max_new_tokens=cfg.instruction_max_tokens, temperature=cfg.instruction_temperature,
                       top_p=cfg.instruction_top_p, stop_token_ids=stops,
                       stop_strings=tuple(profile.stop_strings) + (("\n",) if cfg.single_line else ()))
    resp_params = dict(max_new_tokens=cfg.response_max_tokens, temperature=cfg.response_temperature,
                       top_p=cfg.response_top_p, stop_token_ids=stops, stop_strings=tuple(profile.stop_strings),
                       repetition_penalty=cfg.response_repetition_penalty,
                       no_repeat_ngram_size=cfg.response_no_repeat_ngram)

    # conversation state per attempt; rebuilt identically on resume from the sample log
    convs: dict[int, dict[str, Any]] = {}

    def new_attempt(i: int, pool: list[dict[str, Any]]) -> None:
        seed = derive_seed(cfg.seed, STAGE, str(i))
        sp = random.Random(seed).choices(pool, weights=[s["weight"] for s in pool])[0] if pool else None
        convs[i] = {"seed": seed, "system": sp["text"] if sp else None,
                    "category": sp["category"] if sp else None, "messages": [], "turns": [], "drop": None}

    done = run.done_samples()
    if done:
        log(f"resuming: {len(done)} generations already logged")
    counts = {r: 0 for r in DROP_REASONS}
    seen: dict[str, int] = {}
    t_start, n_tokens = time.perf_counter(), 0

    def phase(kind: str, turn: int, items: list[tuple[int, str, list[int], dict]]) -> dict[int, dict]:
        """Generate (or take from the log) one phase; returns sample payload per attempt."""
        nonlocal n_tokens
        out, reqs, todo = {}, [], []
        for i, key, ids, params in items:
            if key in done:
                out[i] = done[key]
            else:
                reqs.append(GenerationRequest(ids, SamplingParams(**params), key=key))
                todo.append((i, key))
        t0, tok0 = time.perf_counter(), n_tokens
        for j, res in engine.generate_iter(reqs):
            i, key = todo[j]
            payload = {"text": res.text, "finish_reason": res.finish_reason, "truncated": res.truncated,
                       "n_prompt_tokens": res.n_prompt_tokens, "n_new_tokens": res.n_new_tokens,
                       "seed": reqs[j].params.seed}
            run.log_sample(key, payload)
            out[i] = payload
            n_tokens += res.n_new_tokens
        dt = time.perf_counter() - t0
        if reqs and dt > 0:
            log(f"{kind} turn {turn}: {len(reqs)} generated in {dt:.1f} s "
                f"({60 * len(reqs) / dt:.0f} rows/min, {(n_tokens - tok0) / dt:.0f} tokens/s)")
        return out

    def attempt(indices: list[int]) -> None:
        """Run attempts `indices` through every turn (each phase batched over all of them)."""
        for turn in range(cfg.turns):
            live = [i for i in indices if convs[i]["drop"] is None]
            items = []
            for i in live:
                c = convs[i]
                prefix = _query_prefix(profile, c["system"], c["messages"])
                ids = encode_text(profile, tok, prefix)
                items.append((i, f"inst:{i}:{turn}", ids,
                              dict(inst_params, seed=derive_seed(c["seed"], "instruction", str(turn)))))
                c["turns"].append({"instruction_prompt": prefix})
            got = phase("instructions", turn + 1, items)
            for i in live:
                c, s = convs[i], got[i]
                reason = clean_instruction(s["text"], s["finish_reason"], profile, cfg.min_instruction_words)
                if reason is None and turn == 0:
                    key = _norm(s["text"])
                    if key in seen:
                        reason = "duplicate"
                    else:
                        seen[key] = i
                if reason:
                    c["drop"] = reason
                    counts[reason] += 1
                    continue
                c["messages"].append({"role": "user", "content": s["text"].strip()})
                c["turns"][-1].update(instruction_tokens=s["n_new_tokens"], instruction_seed=s["seed"])

            live = [i for i in indices if convs[i]["drop"] is None]
            items = []
            for i in live:
                c = convs[i]
                msgs = ([{"role": "system", "content": c["system"]}] if c["system"] else []) + c["messages"]
                items.append((i, f"resp:{i}:{turn}", encode_prompt(profile, tok, msgs),
                              dict(resp_params, seed=derive_seed(c["seed"], "response", str(turn)))))
                c["turns"][-1]["response_prompt"] = profile.render(msgs, add_generation_prompt=True)
            got = phase("responses", turn + 1, items)
            for i in live:
                c, s = convs[i], got[i]
                if not s["text"].strip():
                    c["drop"] = "response_empty"
                    counts["response_empty"] += 1
                    continue
                c["messages"].append({"role": "assistant", "content": s["text"].strip()})
                c["turns"][-1].update(response_tokens=s["n_new_tokens"], response_truncated=s["truncated"],
                                      response_finish_reason=s["finish_reason"], response_seed=s["seed"])

    for i in range(cfg.n):
        new_attempt(i, steer)
    attempt(list(range(cfg.n)))

    # Quotas (METHODS §1: Magpie alone cannot be steered; steer with system prompts, then classify and
    # fill per-category quotas). Each round plans, per category short of its quota, enough new attempts
    # steered with that category's prompts to cover the deficit at the clean-row yield seen so far.
    # Planning is a pure function of logged results, so a resumed run plans the same rounds.
    quota_cat: dict[int, str | None] = {}
    judge = None
    rounds = 0
    round_of: dict[int, int] = {}

    def categorise(indices: list[int]) -> None:
        nonlocal judge
        todo = [i for i in indices if convs[i]["drop"] is None and i not in quota_cat]
        if cfg.quota_by == "steer":
            quota_cat.update({i: convs[i]["category"] for i in todo})
            return
        need = [i for i in todo if f"cat:{i}" not in done]
        if need:
            if judge is None:
                judge = _quota_judge(cfg, subject, run, log)
            res = judge.score("category", [{"instruction": convs[i]["messages"][0]["content"]} for i in need])
            for i, r in zip(need, res):
                run.log_sample(f"cat:{i}", r)
                done[f"cat:{i}"] = r
        quota_cat.update({i: done[f"cat:{i}"].get("category") for i in todo})

    next_i = cfg.n
    while cfg.quotas:
        categorise(list(range(next_i)))
        got = {c: sum(1 for v in quota_cat.values() if v == c) for c in cfg.quotas}
        short = {c: k - got[c] for c, k in cfg.quotas.items() if got[c] < k}
        if not short or rounds >= cfg.quota_rounds:
            break
        rounds += 1
        clean_so_far = sum(1 for i in range(next_i) if convs[i]["drop"] is None)
        yield_ = max(clean_so_far / next_i, 0.25)
        new: list[int] = []
        for c in sorted(short):
            # yield of the category's own steered attempts when there were any, else the overall yield
            own = [i for i in range(next_i) if convs[i]["category"] == c]
            y = max(sum(quota_cat.get(i) == c for i in own) / len(own), 0.25) if own else yield_
            pool = [sp for sp in steer if sp["category"] == c]
            for _ in range(math.ceil(short[c] / y)):
                new_attempt(next_i, pool)
                round_of[next_i] = rounds
                new.append(next_i)
                next_i += 1
        log(f"quota round {rounds}: short {short}; {len(new)} steered attempts")
        attempt(new)

    rows = []
    sampling = {k: getattr(cfg, k) for k in ("instruction_temperature", "instruction_top_p",
                                              "instruction_max_tokens", "single_line", "response_temperature",
                                              "response_top_p", "response_max_tokens",
                                              "response_repetition_penalty", "response_no_repeat_ngram")}
    for i in range(next_i):
        c = convs[i]
        if c["drop"] is not None:
            continue
        row = {"messages": c["messages"]}
        row = {
            "id": content_id(row, "sft"),
            "messages": c["messages"],
            "steer_category": c["category"],
            "truncated": any(t.get("response_truncated") for t in c["turns"]),
            "instruction_tokens": sum(t["instruction_tokens"] for t in c["turns"]),
            "response_tokens": sum(t["response_tokens"] for t in c["turns"]),
            "provenance": {"stage": STAGE, "model": cfg.model, **cfg.backend_info(cluster=False),
                           "attempt": i, "seed": c["seed"],
                           "system_prompt": c["system"], "sampling": sampling, "turns": c["turns"]},
        }
        if cfg.quotas:
            row["quota_category"] = quota_cat.get(i)
            row["quota_round"] = round_of.get(i, 0)
        rows.append(row)
    write_records(rows, run.path / "synth.jsonl")
    dropped = sum(counts.values())
    elapsed = time.perf_counter() - t_start
    metrics = {"attempts": next_i, "clean": len(rows), "dropped": dropped, "drop_reasons": counts,
               "truncated_responses": sum(r["truncated"] for r in rows),
               "generated_tokens_this_attempt": n_tokens,
               "tokens_per_s_this_attempt": round(n_tokens / elapsed, 1) if n_tokens else None}
    if cfg.quotas:
        metrics["quota_rounds"] = rounds
        metrics["quota_fill"] = {c: f"{sum(1 for r in rows if r['quota_category'] == c)}/{k}"
                                 for c, k in cfg.quotas.items()}
    if len(rows) + dropped != next_i:
        raise AssertionError(f"counts do not add up: {len(rows)} + {dropped} != {next_i}")
    run.finish(counts={"read": next_i, "written": len(rows), "dropped": dropped, "rejected": 0},
               outputs=["synth.jsonl"], metrics=metrics)
    return metrics


def _quota_judge(cfg: SynthConfig, subject, run: RunDir, log):
    """The judge that classifies rows for quota_by=judge, exactly as `sharpset tag` builds it (on
    the same backend as the synth model)."""
    from ..judge import JUDGE_BATCH_SIZE, JUDGE_MAX_LENGTH, JUDGE_MIN_MASS, Judge
    from ..stage import load_subject

    name = cfg.quota_judge or cfg.model
    j = subject if name == cfg.model else load_subject(name, log=log, run=run, role="quota_judge", backend=cfg)
    return Judge(j.scorer("next_token_probs", why="quota_by=judge"), j.tok, j.profile, batch_size=JUDGE_BATCH_SIZE,
                 max_length=JUDGE_MAX_LENGTH, min_mass=JUDGE_MIN_MASS)


def _query_prefix(profile: Any, system: str | None, history: list[dict]) -> str:
    """Text the model continues to write the next user turn.

    First turn: the explicit Magpie prefix (profile.query_prefix). Later turns: the rendered
    conversation so far, followed by the user header, cut from a rendering with a sentinel so the
    header is exactly what the template puts there.
    """
    if not history:
        return profile.query_prefix(system)
    msgs = ([{"role": "system", "content": system}] if system else []) + history
    sentinel = "\x00SHARPSET\x00"
    text = profile.render(msgs + [{"role": "user", "content": sentinel}])
    if sentinel not in text:
        raise UserError(f"chat profile {profile.family}: cannot place a next user turn")
    return text[: text.index(sentinel)]


def show(path: str, n: int = 5) -> str:
    """Five (or n) rendered rows of a synth output, for a person to read."""
    from ..records import read_records

    rows = read_records(path).rows[:n]
    out = []
    for r in rows:
        out.append(f"--- {r['id']}  (category: {r.get('steer_category')}, truncated: {r.get('truncated')})")
        out.append(f"prompt used for the instruction:\n{r['provenance']['turns'][0]['instruction_prompt']!r}")
        for m in r["messages"]:
            out.append(f"[{m['role']}] {m['content']}")
    return "\n".join(out)
