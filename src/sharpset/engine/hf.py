"""Batched generation over a transformers causal LM (the default backend; CPU or one GPU).

We drive the model ourselves, one forward per step, instead of calling `model.generate`:
`generate` keeps every row of a batch alive until the longest one ends, and Magpie-style work
(answers from 5 to 500 tokens) then spends most of its compute on rows that already finished.

Layout of the KV cache: one row per sequence, real tokens right-aligned and contiguous, padding
on the left. Each step appends one column. Rows that finish are dropped at once and the columns
that are padding for every remaining row are cut off. Two schedules:

* ``refill`` (default; continuous batching in the spirit of Orca, OSDI'22): when enough slots are
  free, waiting prompts are prefilled as a small batch and merged into the running one (the
  shorter side is left-padded), so slots do not sit idle.
* ``bucket``: prompts sorted by length, static batches, finished rows dropped, no refill.

Per step, a CPU decode of 16 rows is dominated by the weight matrices (~3/4 of the time in
``aten::mm`` under torch's ``F.linear``); on CPU in fp32/bf16 the engine therefore runs every
``nn.Linear`` through oneDNN on weights prepacked once (engine/linear.py, ``linear_kernel``),
which roughly halves the step. `bench/generate.py` separates the two gains (numbers in its
docstring): the schedule saves steps (refill 1062 vs HF's 1536 on its 64 prompts at 384 tokens),
the kernels make each step cheaper.

Masks are built here as 4-D tensors (plus a sliding-window variant for models such as Gemma 3
whose `layer_types` mix full and sliding attention), so the model never has to derive them from
the cache. The cache is a `DynamicCache` whose layers write in place into a buffer with spare
columns (DynamicLayer's `torch.cat` would copy the whole cache on every step). Restriction:
sliding-window layers keep the full history too (the window is applied by the mask), so their
memory grows with the sequence instead of stopping at the window; results are exact.

Sampling is vectorised over rows with per-row settings; randomness comes from one uniform draw
per generated token from a generator seeded with the row's own seed, so a row's output does not
depend on its neighbours in the batch (up to fp32 rounding differences between batch shapes).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from sharpset.engine.base import (FinishReason, GenerationRequest, GenerationResult, SamplingParams, check_request,
                                  choice_sequences)
from sharpset.engine.kvcache import _RESERVE, _KVCache
from sharpset.engine.linear import PrepackedLinears, resolve_kernel
from sharpset.engine.sampling import apply_repetition_controls, sample_next  # noqa: F401 (tests)

STRATEGIES = ("refill", "bucket")


# --------------------------------------------------------------------------- rows and batches
@dataclass(eq=False)
class _Row:
    index: int
    request: GenerationRequest
    stop_ids: frozenset[int]
    tail: int  # tokens decoded per step for the stop-string check (0: no stop strings)
    draws: list[float] | None  # one uniform per token that may be generated (sampling rows)
    out: list[int] = field(default_factory=list)
    n_new: int = 0
    seen: list[int] | None = None  # distinct prompt + generated ids (repetition_penalty != 1)
    ngrams: dict[tuple[int, ...], set[int]] | None = None  # generated (n-1)-gram -> next ids

    def append(self, tok: int) -> None:
        self.out.append(tok)
        if self.seen is not None and tok not in self._seen_set:
            self.seen.append(tok)
            self._seen_set.add(tok)
        n = self.params.no_repeat_ngram_size
        if n and len(self.out) >= n:
            self.ngrams.setdefault(tuple(self.out[len(self.out) - n:-1]), set()).add(tok)

    def __post_init__(self) -> None:
        if self.params.repetition_penalty != 1.0:
            # the row's stop tokens are never penalised: a chat prompt always holds the end-of-turn
            # token, and penalising it keeps the model from ending (SmolLM2, repetition penalty 1.2:
            # 68 % of Magpie answers ran to the token limit, against 23 % at 1.1; issue 13)
            self.seen = [t for t in dict.fromkeys(self.request.prompt_ids) if t not in self.stop_ids]
            self._seen_set = set(self.seen) | set(self.stop_ids)
        if self.params.no_repeat_ngram_size:
            self.ngrams = {}

    @property
    def params(self) -> SamplingParams:
        return self.request.params


@dataclass(eq=False)
class _Batch:
    rows: list[_Row]
    cache: _KVCache
    lens: torch.Tensor  # [B] tokens in the cache per row
    pending: torch.Tensor | None = None  # [B] last sampled token, fed at the next step


def _remaining(rows: Sequence[_Row]) -> int:
    return min(_RESERVE, max(r.params.max_new_tokens - r.n_new for r in rows) + 1)


class _Bar:
    """rich progress bar on stderr: rows finished and generated tokens/s."""

    def __init__(self, total: int, enabled: bool):
        self.progress = None
        self.tokens = 0
        self.t0 = time.perf_counter()
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("generate"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[tps]:.1f} tok/s"), TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task("generate", total=total, tps=0.0)
            self.progress.start()

    def update(self, finished: int, tokens: int) -> None:
        self.tokens += tokens
        if self.progress is not None:
            tps = self.tokens / max(time.perf_counter() - self.t0, 1e-9)
            self.progress.update(self.task, advance=finished, tps=tps)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


# --------------------------------------------------------------------------- engine
def _attention_layout(cfg) -> tuple[str, int | None]:
    """"full" (one causal mask), "sliding" (all layers windowed) or "dict" (mixed layer_types)."""
    if getattr(cfg, "use_bidirectional_attention", False):
        raise NotImplementedError("engine: models with bidirectional attention are not generative decoders")
    window = getattr(cfg, "sliding_window", None)
    types = getattr(cfg, "layer_types", None)
    if types:
        unknown = set(types) - {"full_attention", "sliding_attention"}
        if unknown:
            raise NotImplementedError(
                f"engine: layer types {sorted(unknown)} are not supported by the transformers engine "
                "(it supports full and sliding-window attention)")
        if "sliding_attention" in types:
            if not window:
                raise ValueError("engine: config has sliding_attention layers but no sliding_window")
            return "dict", int(window)
        return "full", None
    if window and getattr(cfg, "use_sliding_window", True) is not False:
        return "sliding", int(window)
    return "full", None


class TransformersScoring:
    """Forward-pass scores of a transformers causal LM: engine/scoring.py's functions bound to
    (model, tokenizer), as the methods every registered engine offers (sharpset.engine). Plain
    ``F.linear`` forwards (the engine's prepacked kernels are for decoding only), so the numbers
    are exactly engine/scoring.py's."""

    SCORES = frozenset({"answer_nll", "answer_token_nll", "next_token_probs", "choice_logliks",
                        "answer_token_ranks"})

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def answer_nll(self, sequences, labels, **kw) -> list[float | None]:
        from sharpset.engine import scoring

        return scoring.answer_nll(self.model, self.tokenizer, sequences, labels, **kw)

    def answer_token_nll(self, sequences, labels, **kw) -> list[list[float] | None]:
        from sharpset.engine import scoring

        return scoring.answer_token_nll(self.model, self.tokenizer, sequences, labels, **kw)

    def answer_token_ranks(self, sequences, labels, **kw) -> list[list[int] | None]:
        from sharpset.engine import scoring

        return scoring.answer_token_ranks(self.model, self.tokenizer, sequences, labels, **kw)

    def next_token_probs(self, prompts, candidate_ids, **kw) -> torch.Tensor:
        from sharpset.engine import scoring

        return scoring.next_token_probs(self.model, self.tokenizer, prompts, candidate_ids, **kw)

    def choice_logliks(self, contexts, choices, **kw) -> list[list[float]]:
        """Per item and choice, sum log p(choice | context) (lm-evaluation-harness ``loglikelihood``)."""
        seqs, where = choice_sequences(contexts, choices)
        labels = [[-100] * start + s[start:] for s, (_, start) in zip(seqs, where)]
        out: list[list[float]] = [[] for _ in contexts]
        for (i, _), nll in zip(where, self.answer_token_nll(seqs, labels, **kw)):
            out[i].append(-float(sum(nll)))
        return out


class TransformersEngine(TransformersScoring):
    """Batched generation with a transformers causal LM; see the module docstring.

    model: a causal LM (sdpa or eager attention). tokenizer: used to decode (stop strings, text).
    batch_size: rows decoded together. strategy: "refill" | "bucket". pad_token_id: filler id for
    left padding (masked out; defaults to the tokenizer's pad, then EOS, then 0).
    stop_at_eos: also stop every row at the model's EOS id(s) (generation_config.eos_token_id,
    else tokenizer.eos_token_id), as `model.generate` does.
    linear_kernel: "auto" (oneDNN on prepacked weights for a CPU model in fp32/bf16, else torch),
    "onednn" (required; error if unavailable) or "torch" (plain `F.linear`); see engine/linear.py.
    weights: None (default: the model's own dtype) | "bf16" | "int8": opt-in lower-precision
    weights for the linear layers (engine/linear.py; refused on a CPU without avx512_bf16/AMX or
    VNNI). fuse_projections: q/k/v and gate/up as one GEMM each (on the engine's own kernels).
    """

    LOADS_WEIGHTS = True  # built from a loaded model object (sharpset.engine: the backend contract)

    def __init__(self, model, tokenizer, *, batch_size: int = 16, strategy: str = "refill",
                 pad_token_id: int | None = None, stop_at_eos: bool = True, linear_kernel: str = "auto",
                 weights: str | None = None, fuse_projections: bool = True):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: must be one of {STRATEGIES}, got {strategy!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.strategy = batch_size, strategy
        cfg = model.config.get_text_config(decoder=True)
        self._attn = getattr(model.config, "_attn_implementation", None) or "eager"
        if self._attn not in ("sdpa", "eager"):
            raise NotImplementedError(
                f"engine: attention implementation {self._attn!r} is not supported; load the model with "
                "attn_implementation='sdpa' or 'eager'")
        self._layout, self._window = _attention_layout(cfg)
        self._n_layers = cfg.num_hidden_layers
        self._max_positions = getattr(cfg, "max_position_embeddings", None)
        self._vocab = model.get_input_embeddings().num_embeddings
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        self._logits_to_keep = "logits_to_keep" in params
        if pad_token_id is None:
            pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad_token_id) if pad_token_id is not None else 0
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        self.eos_token_ids = frozenset(int(e) for e in eos) if stop_at_eos else frozenset()
        # Refill once this many slots are free. Each refill costs one extra forward (all weights
        # re-read: ~70 ms for SmolLM2 on 2 CPU cores) plus a copy of the cache; simulated on the
        # bench's answer lengths, 1/8 of the batch beat 1 slot and 1/4 (bench/generate.py docstring).
        self.refill_min_free = max(1, batch_size // 8)
        self.max_prefill_tokens = 8192
        self.linear_kernel = linear_kernel
        self.weights = weights
        # also raises early for "onednn" or `weights` the machine cannot serve
        self.linear_kernel_used = resolve_kernel(linear_kernel, model, weights)
        self._linears = PrepackedLinears(model, batch_size, weights=weights, fuse=fuse_projections)
        self.stats: dict[str, float] = {}

    # ------------------------------------------------------------------ public API
    def generate(self, requests: Sequence[GenerationRequest], *, progress: bool = True) -> list[GenerationResult]:
        out: list[GenerationResult | None] = [None] * len(requests)
        for i, result in self.generate_iter(requests, progress=progress):
            out[i] = result
        return out  # type: ignore[return-value]

    def generate_iter(self, requests: Sequence[GenerationRequest], *,
                      progress: bool = True) -> Iterator[tuple[int, GenerationResult]]:
        rows = [self._make_row(i, r) for i, r in enumerate(requests)]  # validate before any compute
        if not rows:
            return
        self.stats = dict(prefill_calls=0, prefill_tokens=0, prefill_seconds=0.0, decode_steps=0, decode_rows=0,
                          decode_seconds=0.0, merges=0, cache_seconds=0.0, new_tokens=0, seconds=0.0)
        t0 = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        bar = _Bar(len(rows), progress)
        try:
            with self._kernels():
                schedule = self._refill if self.strategy == "refill" else self._bucket
                for item in schedule(rows, bar):
                    yield item
        finally:
            bar.close()
            self.model.train(was_training)
            self.stats["seconds"] = time.perf_counter() - t0

    def _kernels(self):
        """Context in which the model's linear layers run on the engine's kernels (engine/linear.py),
        resolved per call: the model may have moved device or dtype since __init__."""
        self.linear_kernel_used = resolve_kernel(self.linear_kernel, self.model, self.weights)
        return self._linears.active() if self.linear_kernel_used == "onednn" else contextlib.nullcontext()

    # ------------------------------------------------------------------ schedules
    def _refill(self, rows: list[_Row], bar: _Bar) -> Iterator[tuple[int, GenerationResult]]:
        waiting = deque(rows)
        running: _Batch | None = None
        while waiting or (running is not None and running.rows):
            n_run = len(running.rows) if running is not None else 0
            free = self.batch_size - n_run
            if waiting and free >= min(self.refill_min_free, len(waiting)) and free > 0:
                new, done = self._admit([waiting.popleft() for _ in range(min(free, len(waiting)))], bar)
                yield from done
                if new is not None:
                    if n_run == 0:
                        running = new
                    else:
                        self._merge(running, new)
                continue
            logits = self._decode(running)
            yield from self._advance(running, logits, bar)

    def _bucket(self, rows: list[_Row], bar: _Bar) -> Iterator[tuple[int, GenerationResult]]:
        order = sorted(rows, key=lambda r: len(r.request.prompt_ids))
        for start in range(0, len(order), self.batch_size):
            batch, done = self._admit(order[start:start + self.batch_size], bar)
            yield from done
            while batch is not None and batch.rows:
                logits = self._decode(batch)
                yield from self._advance(batch, logits, bar)

    def _admit(self, rows: list[_Row], bar: _Bar) -> tuple[_Batch | None, list[tuple[int, GenerationResult]]]:
        """Prefill `rows` (in chunks of at most `max_prefill_tokens` padded tokens, which bounds the
        [rows, len, len] mask and attention scores) and sample each row's first token."""
        rows = sorted(rows, key=lambda r: len(r.request.prompt_ids))
        batch: _Batch | None = None
        done: list[tuple[int, GenerationResult]] = []
        start = 0
        while start < len(rows):
            end = start + 1
            while end < len(rows) and (end + 1 - start) * len(rows[end].request.prompt_ids) <= self.max_prefill_tokens:
                end += 1
            new, logits = self._prefill(rows[start:end])
            done += self._advance(new, logits, bar)
            if new.rows:
                if batch is None:
                    batch = new
                else:
                    self._merge(batch, new)
            start = end
        return batch, done

    # ------------------------------------------------------------------ forward passes
    def _mask_arg(self, full: torch.Tensor, sliding: torch.Tensor | None):
        def fmt(m: torch.Tensor) -> torch.Tensor:
            if self._attn == "sdpa":
                return m
            dtype = self.model.dtype
            return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill_(~m, torch.finfo(dtype).min)

        if self._layout == "full":
            return fmt(full)
        if self._layout == "sliding":
            return fmt(sliding)
        return {"full_attention": fmt(full), "sliding_attention": fmt(sliding)}

    def _forward(self, ids: torch.Tensor, mask, positions: torch.Tensor, cache: _KVCache) -> torch.Tensor:
        kwargs = {self._cache_kw: cache}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1  # prefill: no full-vocabulary logits for every prompt position
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        return out.logits[:, -1, :]

    @torch.inference_mode()
    def _prefill(self, rows: list[_Row]) -> tuple[_Batch, torch.Tensor]:
        device = self.model.device
        lens = torch.tensor([len(r.request.prompt_ids) for r in rows], device=device)
        width = int(lens.max())
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            ids[i, width - len(r.request.prompt_ids):] = torch.tensor(r.request.prompt_ids, device=device)
        col = torch.arange(width, device=device)
        first = (width - lens)[:, None]  # first real column per row
        positions = (col[None, :] - first).clamp_(min=0)
        causal = col[:, None] >= col[None, :]
        # Padding queries attend to themselves only, so no query row is fully masked (NaN in sdpa).
        full = (causal[None] & (col[None, None, :] >= first[:, :, None])) | torch.eye(width, dtype=torch.bool,
                                                                                    device=device)
        sliding = None
        if self._window is not None:
            sliding = full & ((col[:, None] - col[None, :]) < self._window)[None]
            sliding = sliding[:, None]
        cache = _KVCache(self._n_layers, _remaining(rows))
        t0 = time.perf_counter()
        logits = self._forward(ids, self._mask_arg(full[:, None], sliding), positions, cache)
        self.stats["prefill_seconds"] += time.perf_counter() - t0
        self.stats["prefill_calls"] += 1
        self.stats["prefill_tokens"] += ids.numel()
        return _Batch(rows=list(rows), cache=cache, lens=lens), logits

    @torch.inference_mode()
    def _decode(self, batch: _Batch) -> torch.Tensor:
        width = batch.cache.width
        col = torch.arange(width + 1, device=batch.lens.device)
        full = col[None, :] >= (width - batch.lens)[:, None]  # the new token sits in column `width`
        sliding = None
        if self._window is not None:
            sliding = (full & (col > width - self._window)[None])[:, None, None, :]
        t0 = time.perf_counter()
        logits = self._forward(batch.pending[:, None], self._mask_arg(full[:, None, None, :], sliding),
                               batch.lens[:, None], batch.cache)
        self.stats["decode_seconds"] += time.perf_counter() - t0
        batch.lens += 1
        self.stats["decode_steps"] += 1
        self.stats["decode_rows"] += len(batch.rows)
        return logits

    @torch.inference_mode()
    def _merge(self, running: _Batch, new: _Batch) -> None:
        t0 = time.perf_counter()
        running.cache.merge(new.cache, _remaining(running.rows + new.rows))
        self.stats["cache_seconds"] += time.perf_counter() - t0
        running.rows += new.rows
        running.lens = torch.cat([running.lens, new.lens])
        running.pending = torch.cat([running.pending, new.pending])
        self.stats["merges"] += 1

    # ------------------------------------------------------------------ tokens, stops, results
    @torch.inference_mode()
    def _advance(self, batch: _Batch, logits: torch.Tensor, bar: _Bar) -> list[tuple[int, GenerationResult]]:
        """Sample one token per row, record it, finish rows that stop, drop them from the batch."""
        rows = batch.rows
        if any(r.seen is not None or r.ngrams is not None for r in rows):
            logits = apply_repetition_controls(logits.clone(), rows)
        if all(r.params.greedy for r in rows):
            tokens = logits.argmax(-1)
        else:
            dev = logits.device
            tokens = sample_next(
                logits,
                torch.tensor([r.params.temperature for r in rows], device=dev),
                torch.tensor([r.params.top_p for r in rows], device=dev),
                torch.tensor([r.params.min_p for r in rows], device=dev),
                torch.tensor([r.draws[r.n_new] if r.draws else 0.0 for r in rows], dtype=torch.float64, device=dev),
            )
        batch.pending = tokens
        done: list[tuple[int, GenerationResult]] = []
        keep: list[int] = []
        for b, (row, tok) in enumerate(zip(rows, tokens.tolist())):
            row.n_new += 1
            reason: FinishReason | None = None
            text = None
            if tok in row.stop_ids:
                reason = "stop_token"
            else:
                row.append(tok)
                if row.tail and (text := self._stop_string_cut(row)) is not None:
                    reason = "stop_string"
                elif row.n_new >= row.params.max_new_tokens:
                    reason = "length"
            if reason is None:
                keep.append(b)
                continue
            if text is None:
                text = self._decode_text(row.out)
            done.append((row.index, GenerationResult(
                key=row.request.key, token_ids=row.out, text=text, finish_reason=reason,
                truncated=reason == "length", n_prompt_tokens=len(row.request.prompt_ids), n_new_tokens=row.n_new)))
        self.stats["new_tokens"] += len(rows)
        if done:
            self._keep(batch, keep)
        bar.update(len(done), len(rows))
        return done

    def _keep(self, batch: _Batch, keep: list[int]) -> None:
        batch.rows = [batch.rows[i] for i in keep]
        if not keep:
            batch.cache = _KVCache(0, 0)
            return
        idx = torch.tensor(keep, device=batch.lens.device)
        batch.lens, batch.pending = batch.lens[idx], batch.pending[idx]
        # Columns left of the longest remaining row are padding for everyone: cut them off.
        t0 = time.perf_counter()
        batch.cache.keep(idx, int(batch.lens.max()), _remaining(batch.rows))
        self.stats["cache_seconds"] += time.perf_counter() - t0

    def _decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _stop_string_cut(self, row: _Row) -> str | None:
        """Text cut at the first stop string, or None. Per step only the last few tokens are
        decoded; the full text is decoded only when the tail shows a hit."""
        stops = row.params.stop_strings
        tail = self._decode_text(row.out[-row.tail:])
        if not any(s in tail for s in stops):
            return None
        text = self._decode_text(row.out)
        hits = [i for i in (text.find(s) for s in stops) if i >= 0]
        return text[:min(hits)] if hits else None

    def _make_row(self, i: int, request: GenerationRequest) -> _Row:
        check_request(i, request, vocab=self._vocab, max_len=self._max_positions,
                      max_len_name="the model's max_position_embeddings")
        p = request.params
        draws = None
        if not p.greedy:
            gen = torch.Generator().manual_seed(p.seed)
            draws = torch.rand(p.max_new_tokens, generator=gen, dtype=torch.float64).tolist()
        # A stop string of n characters spans at most 4n byte-level tokens (UTF-8), plus one token
        # that may straddle its start.
        tail = 4 * max((len(s) for s in p.stop_strings), default=0) + 1 if p.stop_strings else 0
        return _Row(index=i, request=request, stop_ids=self.eos_token_ids | frozenset(p.stop_token_ids),
                    tail=tail, draws=draws)
