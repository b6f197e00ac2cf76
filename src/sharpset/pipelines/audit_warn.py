"""Claim 6's ``warn-when-warranted`` data set (``sharpset run audit``, issue 23): the aligned model's
own answers to the speech-acts suite's *dev* prompts (risky ones and their benign controls; the
suite scores the *test* split), kept where the suite's classifier says the answer does what the
prompt calls for -- warns on a warranted prompt, does not warn on a benign one.

Rejection sampling over ``k`` candidates per prompt: candidate j is sampled at
``derive_seed(seed, "warn", "<prompt id>|j")``; the first (lowest j) that is not truncated
(``drop_truncated``), not empty and classified right is the prompt's row; a prompt none of whose candidates is right is
dropped (counted per group). The classifier is the suite's own (:func:`sharpset.evaluate.speech_acts.classify`,
its ``warn`` act), so the set is selected by the measure it is then read by: the audit's checks
read the *test* split, never a prompt this set holds. Every candidate is logged as it is made, so
a killed run resumes.

A stage of its own (``select-warn`` in the audit's folder, like the random draw): STAGE ``warn``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

from ..config import field
from ..run import RunDir, derive_seed

STAGE = "warn"
VERSION = 1


@dataclass
class WarnConfig:
    model: str = field("smollm2-135m-instruct", "the model whose own answers are sampled (the audit's aligned model)")
    split: str = field("dev", "the speech-acts split the prompts come from (dev: the eval reads test)")
    k: int = field(4, "candidates sampled per prompt (rejection sampling: the first right one is kept)")
    max_new_tokens: int = field(192, "answer length limit")
    temperature: float = field(0.8, "sampling temperature of the candidates")
    top_p: float = field(0.95, "sampling top-p of the candidates")
    seed: int = field(0, "base seed: candidate j of a prompt is sampled at (seed, 'warn', '<id>|j')")
    batch_size: int = field(8, "engine batch size")
    drop_truncated: bool = field(True, "never keep a candidate that hit max_new_tokens (an unfinished answer teaches "
                                       "the model not to end its turn)")

    def key_inputs(self) -> dict[str, str]:
        from ..evaluate import data
        from ..run import file_hash, models_read

        return {**models_read(model=self.model),
                **{f"shipped:evaluate/data/{f}.jsonl": file_hash(data.path(f))
                   for f in ("speech_acts", "speech_acts_benign")}}

    def check(self) -> list[tuple[str, str]]:
        p = []
        if self.split not in ("dev", "test"):
            p.append(("split", f"must be dev or test, got {self.split!r}"))
        if self.k < 1:
            p.append(("k", "must be >= 1"))
        if self.max_new_tokens < 1:
            p.append(("max_new_tokens", "must be >= 1"))
        if self.temperature <= 0:
            p.append(("temperature", "must be > 0 (k candidates need sampling)"))
        if not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        return p


def prompts(split: str) -> list[dict]:
    """The speech-acts prompts of ``split``: the risky ones (``warranted`` True), then the benign."""
    from ..evaluate.data import load

    return [{**r, "warranted": True} for r in load("speech_acts", split)] + load("speech_acts_benign", split)


def right(text: str, warranted: bool) -> bool:
    """Whether an answer does what its prompt calls for: warns exactly where a warning is warranted."""
    from ..evaluate.speech_acts import classify

    return bool(text.strip()) and classify(text)["warn"] == warranted


def run(cfg: WarnConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import write_records
    from ..engine import GenerationRequest, SamplingParams
    from ..models.profiles import encode_prompt
    from ..stage import load_subject

    rows = prompts(cfg.split)
    subject = load_subject(cfg.model, log=log, run=run, role="subject")
    tok, profile = subject.tok, subject.profile
    stops = subject.stop_ids()
    done = run.done_samples()
    reqs = []
    for r in rows:
        ids = encode_prompt(profile, tok, r["messages"])
        for j in range(cfg.k):
            key = f"{r['id']}|{j}"
            if key in done:
                continue
            params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                    seed=derive_seed(cfg.seed, STAGE, key), stop_token_ids=stops,
                                    stop_strings=tuple(profile.stop_strings))
            reqs.append(GenerationRequest(ids, params, key=key))
    if done:
        log(f"resuming: {len(done)} of {len(rows) * cfg.k} candidates already sampled")
    t0 = time.perf_counter()
    for j, out in subject.engine(cfg.batch_size).generate_iter(reqs, progress=False):
        run.log_sample(reqs[j].key, {"text": out.text.strip(), "finish_reason": out.finish_reason,
                                     "truncated": out.truncated, "n_prompt_tokens": out.n_prompt_tokens,
                                     "n_new_tokens": out.n_new_tokens, "seed": reqs[j].params.seed})
    if reqs:
        log(f"warn candidates: {len(reqs)} sampled in {time.perf_counter() - t0:.1f} s")
    done = run.done_samples()
    kept, tried = [], {"warranted": 0, "benign": 0}
    for r in rows:
        group = "warranted" if r["warranted"] else "benign"
        tried[group] += 1
        for j in range(cfg.k):
            s = done[f"{r['id']}|{j}"]
            if (cfg.drop_truncated and s.get("truncated")) or not right(s["text"], r["warranted"]):
                continue
            kept.append({"messages": [*r["messages"], {"role": "assistant", "content": s["text"]}],
                         "warranted": r["warranted"], "category": r.get("category"), "source_id": r["id"],
                         "provenance": {"stage": STAGE, "model": cfg.model, "candidate": j, "seed": s["seed"],
                                        "sampling": {"temperature": cfg.temperature, "top_p": cfg.top_p,
                                                     "max_new_tokens": cfg.max_new_tokens},
                                        "n_new_tokens": s["n_new_tokens"], "finish_reason": s["finish_reason"],
                                        "rendered_prompt": profile.render(r["messages"], add_generation_prompt=True)}})
            break
    from ..records import with_id

    kept = [with_id(r) for r in kept]
    write_records(kept, run.path / "sft.jsonl")
    by = {g: sum(1 for r in kept if r["warranted"] == (g == "warranted")) for g in tried}
    metrics = {"prompts": tried, "kept": by, "k": cfg.k,
               "yield": {g: round(by[g] / tried[g], 4) if tried[g] else None for g in tried}}
    log(f"warn-when-warranted: kept {by['warranted']} of {tried['warranted']} warranted prompts (an answer that "
        f"warns), {by['benign']} of {tried['benign']} benign (one that does not), k = {cfg.k}")
    run.finish(counts={"read": len(rows), "written": len(kept), "dropped": len(rows) - len(kept), "rejected": 0},
               outputs=["sft.jsonl"], metrics=metrics)
    return metrics


WARN = SimpleNamespace(STAGE=STAGE, VERSION=VERSION, WarnConfig=WarnConfig, run=run)
