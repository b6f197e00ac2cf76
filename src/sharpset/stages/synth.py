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
    """The stage (module docstring): n attempts through every turn, then the quota rounds, then the
    clean conversations written as rows."""
    from ..stage import load_subject

    subject = load_subject(cfg.model, log=log, run=run, role="subject", backend=cfg)
    synth = _Synthesis(cfg, subject, run, log)
    for i in range(cfg.n):
        synth.new_attempt(i, synth.steer)
    synth.attempt(list(range(cfg.n)))
    synth.fill_quotas()
    rows = synth.rows()
    write_records(rows, run.path / "synth.jsonl")
    metrics = synth.metrics(rows)
    n = synth.n_attempts
    dropped = metrics["dropped"]
    if len(rows) + dropped != n:
        raise AssertionError(f"counts do not add up: {len(rows)} + {dropped} != {n}")
    run.finish(counts={"read": n, "written": len(rows), "dropped": dropped, "rejected": 0},
               outputs=["synth.jsonl"], metrics=metrics)
    return metrics


class _Synthesis:
    """One synth run's attempts: each attempt's conversation state (rebuilt identically on resume
    from the sample log), the drop counts, the quota categories and rounds. Every generation goes
    through :meth:`phase`, which logs it the moment it finishes, so a killed run resumes."""

    def __init__(self, cfg: SynthConfig, subject: Any, run: RunDir, log: Callable[[str], None]):
        self.cfg, self.subject, self.run, self.log = cfg, subject, run, log
        self.tok, self.profile = subject.tok, subject.profile
        self.engine = subject.engine(cfg.batch_size)
        stops = subject.stop_ids()
        self.steer = cfg.steering()
        profile = self.profile
        self.inst_params = dict(max_new_tokens=cfg.instruction_max_tokens, temperature=cfg.instruction_temperature,
                                top_p=cfg.instruction_top_p, stop_token_ids=stops,
                                stop_strings=tuple(profile.stop_strings) + (("\n",) if cfg.single_line else ()))
        self.resp_params = dict(max_new_tokens=cfg.response_max_tokens, temperature=cfg.response_temperature,
                                top_p=cfg.response_top_p, stop_token_ids=stops,
                                stop_strings=tuple(profile.stop_strings),
                                repetition_penalty=cfg.response_repetition_penalty,
                                no_repeat_ngram_size=cfg.response_no_repeat_ngram)
        self.convs: dict[int, dict[str, Any]] = {}  # conversation state per attempt
        self.done = run.done_samples()
        if self.done:
            log(f"resuming: {len(self.done)} generations already logged")
        self.counts = {r: 0 for r in DROP_REASONS}
        self.seen: dict[str, int] = {}  # normalised first instruction -> attempt (the duplicate check)
        self.t_start, self.n_tokens = time.perf_counter(), 0
        self.n_attempts = cfg.n
        self.quota_cat: dict[int, str | None] = {}
        self.judge = None
        self.rounds = 0
        self.round_of: dict[int, int] = {}

    def new_attempt(self, i: int, pool: list[dict[str, Any]]) -> None:
        """Start attempt ``i``: its seed, and a system prompt drawn by weight from ``pool`` (none when
        the pool is empty: the template's default)."""
        seed = derive_seed(self.cfg.seed, STAGE, str(i))
        sp = random.Random(seed).choices(pool, weights=[s["weight"] for s in pool])[0] if pool else None
        self.convs[i] = {"seed": seed, "system": sp["text"] if sp else None,
                         "category": sp["category"] if sp else None, "messages": [], "turns": [], "drop": None}

    def phase(self, kind: str, turn: int, items: list[tuple[int, str, list[int], dict]]) -> dict[int, dict]:
        """Generate (or take from the log) one phase; returns sample payload per attempt."""
        from ..engine import GenerationRequest, SamplingParams

        out, reqs, todo = {}, [], []
        for i, key, ids, params in items:
            if key in self.done:
                out[i] = self.done[key]
            else:
                reqs.append(GenerationRequest(ids, SamplingParams(**params), key=key))
                todo.append((i, key))
        t0, tok0 = time.perf_counter(), self.n_tokens
        for j, res in self.engine.generate_iter(reqs):
            i, key = todo[j]
            payload = {"text": res.text, "finish_reason": res.finish_reason, "truncated": res.truncated,
                       "n_prompt_tokens": res.n_prompt_tokens, "n_new_tokens": res.n_new_tokens,
                       "seed": reqs[j].params.seed}
            self.run.log_sample(key, payload)
            out[i] = payload
            self.n_tokens += res.n_new_tokens
        dt = time.perf_counter() - t0
        if reqs and dt > 0:
            self.log(f"{kind} turn {turn}: {len(reqs)} generated in {dt:.1f} s "
                     f"({60 * len(reqs) / dt:.0f} rows/min, {(self.n_tokens - tok0) / dt:.0f} tokens/s)")
        return out

    def attempt(self, indices: list[int]) -> None:
        """Run attempts `indices` through every turn (each phase batched over all of them)."""
        for turn in range(self.cfg.turns):
            self._instructions(indices, turn)
            self._responses(indices, turn)

    def _live(self, indices: list[int]) -> list[int]:
        return [i for i in indices if self.convs[i]["drop"] is None]

    def _instructions(self, indices: list[int], turn: int) -> None:
        """The model writes the next user turn of every live attempt from its query prefix; each is
        cleaned (a drop ends the attempt) or appended to the conversation."""
        from ..models.profiles import encode_text

        live = self._live(indices)
        items = []
        for i in live:
            c = self.convs[i]
            prefix = _query_prefix(self.profile, c["system"], c["messages"])
            ids = encode_text(self.profile, self.tok, prefix)
            items.append((i, f"inst:{i}:{turn}", ids,
                          dict(self.inst_params, seed=derive_seed(c["seed"], "instruction", str(turn)))))
            c["turns"].append({"instruction_prompt": prefix})
        got = self.phase("instructions", turn + 1, items)
        for i in live:
            c, s = self.convs[i], got[i]
            reason = self._instruction_drop(i, turn, s)
            if reason:
                c["drop"] = reason
                self.counts[reason] += 1
                continue
            c["messages"].append({"role": "user", "content": s["text"].strip()})
            c["turns"][-1].update(instruction_tokens=s["n_new_tokens"], instruction_seed=s["seed"])

    def _instruction_drop(self, i: int, turn: int, s: dict) -> str | None:
        """The cleaner's drop reason for attempt ``i``'s instruction, or ``duplicate`` for a first
        instruction seen before (case and spacing folded); None when it is kept."""
        reason = clean_instruction(s["text"], s["finish_reason"], self.profile, self.cfg.min_instruction_words)
        if reason is None and turn == 0:
            key = _norm(s["text"])
            if key in self.seen:
                reason = "duplicate"
            else:
                self.seen[key] = i
        return reason

    def _responses(self, indices: list[int], turn: int) -> None:
        """The model answers the last user turn of every live attempt, the conversation rendered by
        the chat profile; an empty answer drops the attempt."""
        from ..models.profiles import encode_prompt

        live = self._live(indices)
        items = []
        for i in live:
            c = self.convs[i]
            msgs = ([{"role": "system", "content": c["system"]}] if c["system"] else []) + c["messages"]
            items.append((i, f"resp:{i}:{turn}", encode_prompt(self.profile, self.tok, msgs),
                          dict(self.resp_params, seed=derive_seed(c["seed"], "response", str(turn)))))
            c["turns"][-1]["response_prompt"] = self.profile.render(msgs, add_generation_prompt=True)
        got = self.phase("responses", turn + 1, items)
        for i in live:
            c, s = self.convs[i], got[i]
            if not s["text"].strip():
                c["drop"] = "response_empty"
                self.counts["response_empty"] += 1
                continue
            c["messages"].append({"role": "assistant", "content": s["text"].strip()})
            c["turns"][-1].update(response_tokens=s["n_new_tokens"], response_truncated=s["truncated"],
                                  response_finish_reason=s["finish_reason"], response_seed=s["seed"])

    def fill_quotas(self) -> None:
        """Quotas (METHODS §1: Magpie alone cannot be steered; steer with system prompts, then
        classify and fill per-category quotas). Each round plans, per category short of its quota,
        enough new attempts steered with that category's prompts to cover the deficit at the
        clean-row yield seen so far. Planning is a pure function of logged results, so a resumed run
        plans the same rounds."""
        cfg = self.cfg
        while cfg.quotas:
            self._categorise(list(range(self.n_attempts)))
            got = {c: sum(1 for v in self.quota_cat.values() if v == c) for c in cfg.quotas}
            short = {c: k - got[c] for c, k in cfg.quotas.items() if got[c] < k}
            if not short or self.rounds >= cfg.quota_rounds:
                break
            self.rounds += 1
            new = self._plan_round(short)
            self.log(f"quota round {self.rounds}: short {short}; {len(new)} steered attempts")
            self.attempt(new)

    def _categorise(self, indices: list[int]) -> None:
        """The quota category of every clean attempt not classified yet: its steering category, or
        (quota_by judge) the judge's task category, logged so a resumed run reuses it."""
        todo = [i for i in indices if self.convs[i]["drop"] is None and i not in self.quota_cat]
        if self.cfg.quota_by == "steer":
            self.quota_cat.update({i: self.convs[i]["category"] for i in todo})
            return
        done = self.done
        need = [i for i in todo if f"cat:{i}" not in done]
        if need:
            if self.judge is None:
                self.judge = _quota_judge(self.cfg, self.subject, self.run, self.log)
            res = self.judge.score("category", [{"instruction": self.convs[i]["messages"][0]["content"]}
                                                for i in need])
            for i, r in zip(need, res):
                self.run.log_sample(f"cat:{i}", r)
                done[f"cat:{i}"] = r
        self.quota_cat.update({i: done[f"cat:{i}"].get("category") for i in todo})

    def _plan_round(self, short: dict[str, int]) -> list[int]:
        """New attempts for one round: per short category, its deficit over the yield of its own
        steered attempts when there were any, else the overall clean yield (both floored at 0.25)."""
        convs, next_i = self.convs, self.n_attempts
        clean_so_far = sum(1 for i in range(next_i) if convs[i]["drop"] is None)
        yield_ = max(clean_so_far / next_i, 0.25)
        new: list[int] = []
        for c in sorted(short):
            # yield of the category's own steered attempts when there were any, else the overall yield
            own = [i for i in range(next_i) if convs[i]["category"] == c]
            y = max(sum(self.quota_cat.get(i) == c for i in own) / len(own), 0.25) if own else yield_
            pool = [sp for sp in self.steer if sp["category"] == c]
            for _ in range(math.ceil(short[c] / y)):
                self.new_attempt(next_i, pool)
                self.round_of[next_i] = self.rounds
                new.append(next_i)
                next_i += 1
        self.n_attempts = next_i
        return new

    def rows(self) -> list[dict[str, Any]]:
        """The clean conversations as SFT rows, in attempt order, with their provenance."""
        cfg = self.cfg
        rows = []
        sampling = {k: getattr(cfg, k) for k in ("instruction_temperature", "instruction_top_p",
                                                  "instruction_max_tokens", "single_line", "response_temperature",
                                                  "response_top_p", "response_max_tokens",
                                                  "response_repetition_penalty", "response_no_repeat_ngram")}
        for i in range(self.n_attempts):
            c = self.convs[i]
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
                row["quota_category"] = self.quota_cat.get(i)
                row["quota_round"] = self.round_of.get(i, 0)
            rows.append(row)
        return rows

    def metrics(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Attempts, clean rows, drops by reason, truncation, this invocation's throughput, quota fill."""
        cfg, n_tokens = self.cfg, self.n_tokens
        dropped = sum(self.counts.values())
        elapsed = time.perf_counter() - self.t_start
        metrics = {"attempts": self.n_attempts, "clean": len(rows), "dropped": dropped, "drop_reasons": self.counts,
                   "truncated_responses": sum(r["truncated"] for r in rows),
                   "generated_tokens_this_attempt": n_tokens,
                   "tokens_per_s_this_attempt": round(n_tokens / elapsed, 1) if n_tokens else None}
        if cfg.quotas:
            metrics["quota_rounds"] = self.rounds
            metrics["quota_fill"] = {c: f"{sum(1 for r in rows if r['quota_category'] == c)}/{k}"
                                     for c, k in cfg.quotas.items()}
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
