"""vLLM backend: the same `Engine` interface and records as the transformers engine, on vLLM.

Selected with ``get_engine("vllm", model=..., tokenizer=..., options={...})``. Requests carry
prompt token ids and go to vLLM as ``TokensPrompt`` (no re-tokenising, so a prompt keeps exactly
the BOS it was built with). ``options`` is passed through to ``vllm.LLM`` unchanged
(``tensor_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``, ...); vLLM's own docs
list them.

Mapping of `SamplingParams` (one to one):

    max_new_tokens -> max_tokens          temperature (0 = greedy) -> temperature
    top_p -> top_p    min_p -> min_p      seed -> seed (per request)
    stop_strings -> stop                  stop_token_ids -> stop_token_ids
    stop_at_eos=False -> ignore_eos=True
    repetition_penalty, no_repeat_ngram_size: not mapped; a request that sets either is refused
    (vLLM's repetition_penalty also penalises the stop tokens sharpset's exempts, and vLLM has no
    n-gram ban), rather than decoded without it

Results (`GenerationResult`) follow the transformers engine exactly: ``token_ids`` without a
terminating stop token, ``text`` = the tokenizer's decode of ``token_ids`` (special tokens kept,
no clean-up) cut before the first stop string, ``n_new_tokens`` counts the stop token.
vLLM's ``finish_reason``/``stop_reason`` map as: "length" -> "length"; "stop" with a string
stop_reason -> "stop_string"; "stop" with an int or no stop_reason (EOS) -> "stop_token". vLLM
checks EOS and stop ids before the length limit, as the transformers engine does.

Sampled outputs are NOT token-identical to the transformers engine even with the same seed (each
backend draws its own random numbers); greedy outputs agree up to fp32 near-ties
(bench/generate.py ``--vllm``).

Scoring with prompt log-probabilities, with the signatures of engine/scoring.py (the first
argument is a `VLLMEngine` or a ``vllm.LLM`` instead of a transformers model; ``tokenizer`` is
accepted for parity and unused):

* ``answer_nll`` -- mean NLL of the labelled tokens, from ``prompt_logprobs=0`` (vLLM returns the
  log-probability of each actual prompt token given its prefix);
* ``next_token_probs`` -- full-vocabulary probabilities of a fixed answer set as the next token,
  from ``logprob_token_ids`` (one forward, one sampled token that is discarded);
* ``choice_logliks`` -- multiple-choice log-likelihood, sum log p(continuation | context) per
  choice, as lm-evaluation-harness's ``loglikelihood`` requests;
* ``answer_token_nll`` -- the per-token values ``answer_nll`` averages.
The engine has the same methods without the first two arguments (``engine.answer_nll(sequences,
labels)``), as every registered engine does (sharpset.engine). Token ranks
(``answer_token_ranks``) are not offered: vLLM ranks a token among ties differently.
All three read vLLM's default ``logprobs_mode="raw_logprobs"`` (log-softmax of the raw logits,
before any temperature or penalty); an engine built with another mode is refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sharpset.engine.base import (FinishReason, GenerationRequest, GenerationResult, SamplingParams, check_request,
                                  choice_sequences)


def _require_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:  # the registry imports this module lazily, so only --engine vllm gets here
        from sharpset.errors import require_extra

        require_extra("vllm", "engine 'vllm'", exc=e)
    return vllm


def _model_path(model) -> str:
    """A folder or hub id vLLM can load: a str/Path as given, or a transformers model's
    ``name_or_path`` (sharpset's embedded models load from a cached safetensors folder)."""
    if isinstance(model, (str, Path)):
        return str(model)
    path = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", None)
    if not path:
        raise ValueError("engine vllm: model must be a folder path or hub id (or a transformers model loaded "
                         "from one); got an object without name_or_path")
    return str(path)


class VLLMEngine:
    """Generation (and scoring) on vLLM; see the module docstring.

    model: a local folder (safetensors), a hub id, or a transformers model loaded from a folder.
    tokenizer: used to decode result text exactly as the transformers engine does (default: vLLM's).
    batch_size: vLLM's ``max_num_seqs`` (rows decoded together) unless ``options`` sets it.
    stop_at_eos: also stop at the model's EOS (vLLM's default); False sets ``ignore_eos``.
    options: keyword arguments for ``vllm.LLM`` (e.g. ``{"tensor_parallel_size": 4}``); ``dtype``
    defaults to "float32", the dtype the transformers engine runs (vLLM's "auto" is bfloat16 on CPU:
    greedy answers then left the transformers engine's at the first token on 2 of 12 eval prompts,
    top-2 logit gaps 0.05-0.08; pass ``{dtype: bfloat16}`` for speed on GPUs).
    llm: an already built ``vllm.LLM`` (then model/options are not used).
    """

    LOADS_WEIGHTS = False  # built from a folder path or hub id (sharpset.engine: the backend contract)
    SCORES = frozenset({"answer_nll", "answer_token_nll", "next_token_probs", "choice_logliks"})
    UNSUPPORTED_PARAMS = ("repetition_penalty", "no_repeat_ngram_size")

    def __init__(self, model=None, tokenizer=None, *, batch_size: int | None = None, stop_at_eos: bool = True,
                 options: dict[str, Any] | None = None, llm=None, **ignored: Any):
        # `ignored`: transformers-engine knobs (strategy, linear_kernel, ...) that stages may pass
        # when they build either backend from the same config; vLLM schedules itself.
        vllm = _require_vllm()
        if llm is None:
            if model is None:
                raise ValueError("engine vllm: give model (a folder path or hub id) or llm")
            kwargs = dict(options or {})
            kwargs.setdefault("model", _model_path(model))
            if batch_size is not None:
                kwargs.setdefault("max_num_seqs", int(batch_size))
            kwargs.setdefault("seed", 0)
            kwargs.setdefault("dtype", "float32")  # as the transformers engine; see the docstring
            llm = vllm.LLM(**kwargs)
        self.llm = llm
        self.tokenizer = tokenizer if tokenizer is not None else llm.get_tokenizer()
        cfg = llm.llm_engine.model_config
        self.max_model_len = int(cfg.max_model_len)
        self._vocab = int(cfg.get_vocab_size())
        self.logprobs_mode = str(getattr(cfg, "logprobs_mode", "raw_logprobs"))
        self.stop_at_eos = stop_at_eos
        # vLLM stops at the tokenizer's EOS and at generation_config.json's eos_token_id(s).
        eos: set[int] = set()
        gen = cfg.try_get_generation_config() or {}
        for e in (gen.get("eos_token_id"), getattr(self.tokenizer, "eos_token_id", None)):
            if e is not None:
                eos |= {int(e)} if isinstance(e, int) else {int(x) for x in e}
        self.eos_token_ids = frozenset(eos) if stop_at_eos else frozenset()
        self.ignored_options = sorted(ignored)
        self.stats: dict[str, float] = {}

    def close(self) -> None:
        """Stop vLLM's engine-core process(es) now rather than at interpreter exit (where its
        shutdown logs to streams that may already be closed)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    # ------------------------------------------------------------------ generation
    def sampling_params(self, p: SamplingParams, **extra: Any):
        """The vLLM SamplingParams for one of ours (one to one; see the module docstring)."""
        from vllm import SamplingParams as VSP

        return VSP(
            n=1, max_tokens=p.max_new_tokens, temperature=p.temperature, top_p=p.top_p, min_p=p.min_p,
            top_k=0, seed=p.seed, stop=list(p.stop_strings), stop_token_ids=list(p.stop_token_ids),
            ignore_eos=not self.stop_at_eos, skip_special_tokens=False, spaces_between_special_tokens=False,
            include_stop_str_in_output=False, **extra)

    def generate(self, requests: Sequence[GenerationRequest], *, progress: bool = True) -> list[GenerationResult]:
        out: list[GenerationResult | None] = [None] * len(requests)
        for i, result in self.generate_iter(requests, progress=progress):
            out[i] = result
        return out  # type: ignore[return-value]

    def generate_iter(self, requests: Sequence[GenerationRequest], *,
                      progress: bool = True) -> Iterator[tuple[int, GenerationResult]]:
        """Yield (index, result) as vLLM finishes each request (LLMEngine add_request/step loop,
        the offline streaming pattern), so a caller can log every row the moment it exists."""
        from vllm.inputs import TokensPrompt

        from sharpset.engine.hf import _Bar

        for i, r in enumerate(requests):  # validate before any compute
            check_request(i, r, vocab=self._vocab, max_len=self.max_model_len, max_len_name="vLLM's max_model_len",
                          backend="vllm", unsupported=self.UNSUPPORTED_PARAMS)
        if not requests:
            return
        engine = self.llm.llm_engine
        tag = uuid.uuid4().hex[:8]  # request ids unique across calls on one engine
        ids = {f"{tag}-{i}": i for i in range(len(requests))}
        self.stats = dict(new_tokens=0, seconds=0.0, requests=len(requests))
        t0 = time.perf_counter()
        bar = _Bar(len(requests), progress)
        pending = set(ids)
        try:
            for rid, i in ids.items():
                r = requests[i]
                engine.add_request(rid, TokensPrompt(prompt_token_ids=list(r.prompt_ids)),
                                   self.sampling_params(r.params, detokenize=bool(r.params.stop_strings)))
            while pending:
                for out in engine.step():
                    if not out.finished or out.request_id not in pending:
                        continue
                    pending.discard(out.request_id)
                    i = ids[out.request_id]
                    result = self._result(requests[i], out)
                    self.stats["new_tokens"] += result.n_new_tokens
                    bar.update(1, result.n_new_tokens)
                    yield i, result
                if pending and not engine.has_unfinished_requests():
                    raise RuntimeError(f"engine vllm: {len(pending)} request(s) vanished without a final output")
        finally:
            if pending:  # the caller stopped early (or an error): free the engine for the next call
                engine.abort_request(sorted(pending))
            bar.close()
            self.stats["seconds"] = time.perf_counter() - t0

    def _decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _result(self, request: GenerationRequest, out) -> GenerationResult:
        c = out.outputs[0]
        raw = list(c.token_ids)
        reason: FinishReason
        if c.finish_reason == "length":
            reason = "length"
        elif c.finish_reason == "stop":
            reason = "stop_string" if isinstance(c.stop_reason, str) else "stop_token"
        else:
            raise RuntimeError(f"engine vllm: request {request.key!r} ended with finish_reason {c.finish_reason!r}")
        # A stop-token finish always ends on the stop token (EOS: stop_reason None; a stop id:
        # stop_reason is that id); it is not part of token_ids, as in the transformers engine.
        token_ids = raw[:-1] if reason == "stop_token" else raw
        text = self._decode_text(token_ids)
        if reason == "stop_string":
            hits = [j for j in (text.find(s) for s in request.params.stop_strings) if j >= 0]
            text = text[:min(hits)] if hits else (c.text or text)
        return GenerationResult(key=request.key, token_ids=token_ids, text=text, finish_reason=reason,
                                truncated=reason == "length", n_prompt_tokens=len(request.prompt_ids),
                                n_new_tokens=len(raw))

    # ------------------------------------------------------------------ scoring (the engine's methods)
    def answer_nll(self, sequences, labels, **kw) -> list[float | None]:
        return answer_nll(self, self.tokenizer, sequences, labels, **kw)

    def answer_token_nll(self, sequences, labels, **kw) -> list[list[float] | None]:
        return answer_token_nll(self, self.tokenizer, sequences, labels, **kw)

    def next_token_probs(self, prompts, candidate_ids, **kw):
        return next_token_probs(self, self.tokenizer, prompts, candidate_ids, **kw)

    def choice_logliks(self, contexts, choices, **kw) -> list[list[float]]:
        return choice_logliks(self, self.tokenizer, contexts, choices)

    # ------------------------------------------------------------------ scoring helpers
    def _run(self, prompts: Sequence[list[int]], params: Sequence) -> list:
        """One vLLM pass over token prompts (validated), outputs in input order."""
        from vllm.inputs import TokensPrompt

        if self.logprobs_mode != "raw_logprobs":
            raise ValueError(f"engine vllm: scoring needs logprobs_mode='raw_logprobs', this engine has "
                             f"{self.logprobs_mode!r}")
        if not prompts:
            return []
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ValueError(f"prompts[{i}]: empty")
            if len(p) + 1 > self.max_model_len:
                raise ValueError(f"prompts[{i}]: {len(p)} tokens + 1 exceeds vLLM's max_model_len ({self.max_model_len})")
        return self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompts], list(params),
                                 use_tqdm=False)


def _engine(model) -> VLLMEngine:
    if isinstance(model, VLLMEngine):
        return model
    return VLLMEngine(llm=model)  # a vllm.LLM


def _score_params(**kw):
    from vllm import SamplingParams as VSP

    return VSP(max_tokens=1, temperature=0.0, detokenize=False, **kw)


def prompt_token_logprobs(model, sequences: Sequence[list[int]]) -> list[list[float | None]]:
    """Per sequence, log p(token t | tokens < t) for every position (None at t = 0)."""
    eng = _engine(model)
    outs = eng._run(sequences, [_score_params(prompt_logprobs=0)] * len(sequences))
    res = []
    for seq, out in zip(sequences, outs):
        lp = out.prompt_logprobs
        row: list[float | None] = [None]
        for t in range(1, len(seq)):
            row.append(float(lp[t][seq[t]].logprob))
        res.append(row)
    return res


def answer_nll(model, tokenizer, sequences: Sequence[list[int]], labels: Sequence[list[int]], *,
               batch_size: int = 8, max_tokens: int = 8192) -> list[float | None]:
    """Mean NLL (nats/token) of the tokens whose label is not -100; None when a row has none.
    Same contract as engine.scoring.answer_nll; labels must equal the input token where set
    (prompt_logprobs scores the actual tokens). batch_size/max_tokens: vLLM batches itself."""
    per_token = answer_token_nll(model, tokenizer, sequences, labels)
    return [None if t is None else sum(t) / len(t) for t in per_token]


def answer_token_nll(model, tokenizer, sequences: Sequence[list[int]], labels: Sequence[list[int]], *,
                     batch_size: int = 8, max_tokens: int = 8192) -> list[list[float] | None]:
    """Per-token NLL (nats) of the tokens whose label is not -100, in order; None when a row has
    none; a row's first token is never scored. Same contract as engine.scoring.answer_token_nll."""
    for i, (s, lab) in enumerate(zip(sequences, labels)):
        if len(s) != len(lab):
            raise ValueError(f"labels[{i}]: length {len(lab)} != sequence length {len(s)}")
        bad = [t for t, (x, y) in enumerate(zip(s, lab)) if y != -100 and x != y]
        if bad:
            raise ValueError(f"labels[{i}]: position {bad[0]} labels token {lab[bad[0]]} but the input has {s[bad[0]]}; "
                             "the vLLM scorer scores the input tokens (use -100 or the input id)")
    out: list[list[float] | None] = []
    for lab, lps in zip(labels, prompt_token_logprobs(model, sequences)):
        picked = [-lps[t] for t in range(1, len(lab)) if lab[t] != -100]
        out.append(picked or None)
    return out


def next_token_probs(model, tokenizer, prompts: Sequence[list[int]], candidate_ids: Sequence[int], *,
                     batch_size: int = 8, max_tokens: int = 8192):
    """``[n_prompts, n_candidates]`` full-vocabulary probabilities of each candidate as the next
    token (torch float32 tensor, as engine.scoring.next_token_probs)."""
    import math

    import torch

    cands = [int(c) for c in candidate_ids]
    outs = _engine(model)._run(prompts, [_score_params(logprob_token_ids=cands)] * len(prompts))
    res = torch.empty((len(prompts), len(cands)), dtype=torch.float32)
    for r, out in enumerate(outs):
        first = out.outputs[0].logprobs[0]
        res[r] = torch.tensor([math.exp(first[c].logprob) for c in cands], dtype=torch.float32)
    return res


def choice_logliks(model, tokenizer, contexts: Sequence[list[int]], choices: Sequence[Sequence[list[int]]]
                   ) -> list[list[float]]:
    """Multiple-choice log-likelihood: for item i and choice j, sum_t log p(choice_j[t] | context_i,
    choice_j[<t]) (lm-evaluation-harness ``loglikelihood``; pick argmax, or normalise by length)."""
    seqs, where = choice_sequences(contexts, choices)
    lps = prompt_token_logprobs(model, seqs)
    out: list[list[float]] = [[] for _ in contexts]
    for (i, start), lp in zip(where, lps):
        out[i].append(float(sum(lp[start:])))
    return out
