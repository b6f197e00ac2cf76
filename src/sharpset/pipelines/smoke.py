"""The ``smoke`` pipeline (the first quickstart): load the embedded models, render, generate, embed.

1. aligned model: load (GGUF converted once to safetensors), derive its chat profile from its own
   template, render one conversation, generate answers to a batch of prompts with the batched engine;
   each answer is logged as it finishes (a killed run resumes from the log);
2. base model: load, render the same conversation with its profile (it ships no template);
3. embedder: embed the answers; report their mean pairwise cosine similarity.
Outputs: ``answers.jsonl`` (TRL ``messages`` rows with provenance) in a run folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..config import field
from ..records import content_id, write_records
from ..run import RunDir, derive_seed, sha256_text

STAGE = "smoke"
VERSION = 1  # bump when the transform changes what it writes

PROMPTS = [
    "What causes the seasons on Earth?",
    "Write a haiku about autumn rain.",
    "Give me three tips for writing a clear email.",
    "Explain what a hash function is to a beginner.",
    "How do I reverse a list in Python?",
    "What is the difference between weather and climate?",
    "Suggest a name for a small bakery.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Why is the sky blue?",
    "List four fruits that are high in vitamin C.",
    "How can I improve my sleep?",
    "What is 17 times 23?",
    "Translate 'good morning' into French and Spanish.",
    "Explain photosynthesis in one paragraph.",
    "What should I pack for a weekend hiking trip?",
    "Describe the water cycle.",
    "Give an example of a metaphor.",
    "What are the benefits of regular exercise?",
    "How does a refrigerator keep food cold?",
    "Write a short thank-you note to a teacher.",
    "What is a prime number?",
    "Name three famous painters and one work by each.",
    "How do vaccines work?",
    "What is the capital of Australia?",
]


@dataclass
class SmokeConfig:
    aligned_model: str = field("smollm2-135m-instruct", "aligned chat model: embedded name, local HF folder or hub id")
    base_model: str | None = field("gemma3-270m", "base model to load and render with (null to skip)")
    embedder: str | None = field("minilm-l6", "sentence embedder for the answers (null to skip)")
    n_prompts: int = field(16, "how many built-in prompts to answer (the size dial)")
    max_new_tokens: int = field(128, "max tokens per answer")
    temperature: float = field(0.0, "sampling temperature (0 = greedy)")
    top_p: float = field(1.0, "nucleus sampling mass")
    seed: int = field(0, "base seed; each row's seed is derived from (seed, stage, row id)")
    batch_size: int = field(8, "engine batch size")

    def key_inputs(self) -> dict[str, str]:
        """The models it loads, by fingerprint (run.config_reads)."""
        from ..run import models_read

        return models_read(self.aligned_model, self.base_model, self.embedder)

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.n_prompts < 1:
            problems.append(("n_prompts", "must be >= 1"))
        if self.max_new_tokens < 1:
            problems.append(("max_new_tokens", "must be >= 1"))
        if self.temperature < 0:
            problems.append(("temperature", "must be >= 0"))
        if not 0 < self.top_p <= 1:
            problems.append(("top_p", "must be in (0, 1]"))
        if self.batch_size < 1:
            problems.append(("batch_size", "must be >= 1"))
        return problems


def prompts(n: int) -> list[str]:
    # cycle with a numbered suffix past the built-in list, so any n gives n distinct prompts
    return [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" (variant {i // len(PROMPTS)})")
            for i in range(n)]


def _model_info(name: str, model: Any, profile: Any) -> dict[str, Any]:
    return {
        "name": name,
        "class": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
        "chat_family": profile.family,
        "chat_template_hash": profile.template_hash,
        "pre_query": profile.pre_query,
    }


def run(cfg: SmokeConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..engine import get_engine
    from ..engine.base import GenerationRequest, SamplingParams
    from ..models import load_model
    from ..models.profiles import encode, encode_prompt, profile_for, stop_token_ids
    from ..models.registry import chat_family

    # 1. aligned model ------------------------------------------------------------------------
    t0 = time.perf_counter()
    model, tok = load_model(cfg.aligned_model, log=log)
    log(f"loaded {cfg.aligned_model} in {time.perf_counter() - t0:.1f} s")
    profile = profile_for(tok, chat_family(cfg.aligned_model))
    run.record_model("aligned", _model_info(cfg.aligned_model, model, profile))
    demo = [{"role": "user", "content": PROMPTS[0]}, {"role": "assistant", "content": "..."}]
    enc = encode(profile, tok, demo)
    log(f"chat profile: {profile.family}; rendered conversation ({len(enc.input_ids)} tokens, "
        f"{sum(l != -100 for l in enc.labels)} label tokens):\n{enc.text}")

    stops = tuple(stop_token_ids(profile, tok))
    rows_in = []
    for text in prompts(cfg.n_prompts):
        messages = [{"role": "user", "content": text}]
        rid = content_id({"messages": messages}, "sft")
        rows_in.append((rid, messages))
    done = run.done_samples()
    if done:
        log(f"resuming: {len(done)} of {len(rows_in)} answers already logged")
    requests, todo = [], []
    for rid, messages in rows_in:
        if rid in done:
            continue
        params = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                top_p=cfg.top_p, seed=derive_seed(cfg.seed, STAGE, rid),
                                stop_strings=profile.stop_strings, stop_token_ids=stops)
        requests.append(GenerationRequest(encode_prompt(profile, tok, messages), params, key=rid))
        todo.append((rid, messages))
    engine = get_engine("transformers", model=model, tokenizer=tok, batch_size=cfg.batch_size)
    t1 = time.perf_counter()
    n_tokens = 0
    for i, res in engine.generate_iter(requests):
        rid, messages = todo[i]
        n_tokens += res.n_new_tokens
        run.log_sample(rid, {
            "messages": messages + [{"role": "assistant", "content": res.text}],
            "finish_reason": res.finish_reason, "truncated": res.truncated,
            "n_prompt_tokens": res.n_prompt_tokens, "n_new_tokens": res.n_new_tokens,
            "seed": requests[i].params.seed,
        })
    gen_s = time.perf_counter() - t1
    done = run.done_samples()
    sampling = {"temperature": cfg.temperature, "top_p": cfg.top_p, "max_new_tokens": cfg.max_new_tokens}
    rows = []
    for rid, messages in rows_in:
        s = done[rid]
        rows.append({
            "id": rid,
            "messages": s["messages"],
            "truncated": s["truncated"],
            "finish_reason": s["finish_reason"],
            "n_prompt_tokens": s["n_prompt_tokens"],
            "n_new_tokens": s["n_new_tokens"],
            "provenance": {
                "stage": STAGE, "model": cfg.aligned_model,
                "prompt": profile.render(messages, add_generation_prompt=True),
                "sampling": sampling, "seed": s["seed"],
            },
        })
    write_records(rows, run.path / "answers.jsonl")
    metrics: dict[str, Any] = {
        "answers": len(rows),
        "generated_tokens_this_attempt": n_tokens,
        "tokens_per_s_this_attempt": round(n_tokens / gen_s, 1) if gen_s > 0 and n_tokens else None,
        "truncated": sum(r["truncated"] for r in rows),
        "mean_new_tokens": round(sum(r["n_new_tokens"] for r in rows) / len(rows), 1),
    }
    del model

    # 2. base model ---------------------------------------------------------------------------
    if cfg.base_model:
        t0 = time.perf_counter()
        base, btok = load_model(cfg.base_model, log=log)
        log(f"loaded {cfg.base_model} in {time.perf_counter() - t0:.1f} s")
        bprofile = profile_for(btok, chat_family(cfg.base_model))
        run.record_model("base", _model_info(cfg.base_model, base, bprofile))
        benc = encode(bprofile, btok, demo)
        log(f"base chat profile: {bprofile.family}; rendered ({len(benc.input_ids)} tokens):\n{benc.text}")
        metrics["base_rendered_tokens"] = len(benc.input_ids)
        del base

    # 3. embedder -----------------------------------------------------------------------------
    if cfg.embedder and len(rows) > 1:
        from ..models import load_embedder

        emb = load_embedder(cfg.embedder)
        vecs = emb.encode([r["messages"][-1]["content"] for r in rows], normalize_embeddings=True,
                          convert_to_tensor=True)
        sim = vecs @ vecs.T
        n = len(rows)
        mean_cos = (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))
        metrics["answers_mean_pairwise_cosine"] = round(float(mean_cos), 4)
        run.record_model("embedder", {"name": cfg.embedder, "dim": int(vecs.shape[1])})

    metrics["answers_sha256"] = sha256_text("\n".join(r["messages"][-1]["content"] for r in rows))
    run.finish(counts={"read": len(rows_in), "written": len(rows), "dropped": 0, "rejected": 0},
               outputs=["answers.jsonl"], metrics=metrics)
    return metrics
