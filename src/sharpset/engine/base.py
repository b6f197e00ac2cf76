"""Backend-neutral generation types: what a stage asks for and what it gets back.

Every generation stage (Magpie synthesis, judging, invariance targets, evaluation) builds
`GenerationRequest`s and reads `GenerationResult`s, so swapping the transformers backend for
vLLM or a Ray fan-out changes one line. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop_token", "stop_string", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How one row is decoded.

    temperature == 0 means greedy (argmax). Otherwise the next token is drawn from
    softmax(logits / temperature), restricted to the top-p nucleus (the smallest set of most
    likely tokens whose mass reaches top_p) and to tokens with p >= min_p * max(p)
    (min-p, arXiv:2407.01082). Both filters are applied to the same distribution, as
    transformers' TopP then MinP warpers do.

    seed is per row: the same seed, settings and prompt give the same output whatever the
    batch it runs in (one uniform draw per generated token from a generator seeded with it).
    stop_strings end a row at the first occurrence in the generated text (the text is cut
    before it); stop_token_ids end it at that token (which is not included in token_ids).

    Repetition controls act on the logits before everything above (greedy included), for small
    models that loop (issue 13). repetition_penalty r (CTRL, arXiv:1909.05858; the convention of
    transformers' RepetitionPenaltyLogitsProcessor and vLLM): every token id present in the prompt
    or generated so far has its logit l replaced by l / r if l > 0, else l * r; 1.0 = off. Unlike
    theirs, the row's stop tokens (stop_token_ids and the engine's EOS) are exempt: every chat prompt
    holds the end-of-turn token, and penalising it keeps a model from ending its answer.
    no_repeat_ngram_size n: a token that would complete an n-gram already present in the *generated*
    tokens gets logit -inf; 0 = off. Unlike transformers' NoRepeatNGramLogitsProcessor the prompt is
    not searched, so an answer may still repeat the question's own phrases.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int = 0
    stop_strings: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0

    def __post_init__(self) -> None:
        # Accept lists (YAML, JSON) but store tuples so the object stays hashable.
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p: must be in [0, 1], got {self.min_p}")
        if not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty: must be > 0, got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0 or int(self.no_repeat_ngram_size) != self.no_repeat_ngram_size:
            raise ValueError(f"no_repeat_ngram_size: must be an integer >= 0, got {self.no_repeat_ngram_size}")
        if any(not s for s in self.stop_strings):
            raise ValueError("stop_strings: empty string would stop before the first token")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    params: SamplingParams
    key: str | None = None


@dataclass
class GenerationResult:
    key: str | None
    token_ids: list[int]  # generated ids, without a terminating stop token
    text: str  # decoded token_ids, cut at the first stop string
    finish_reason: FinishReason
    truncated: bool  # finish_reason == "length"
    n_prompt_tokens: int
    n_new_tokens: int  # tokens actually generated, the stop token included


def check_request(i: int, request: GenerationRequest, *, vocab: int, max_len: int | None = None,
                  max_len_name: str = "the model's context", backend: str = "", unsupported: Sequence[str] = ()
                  ) -> None:
    """The checks every backend makes on ``requests[i]`` before any compute: params are a
    `SamplingParams`; the prompt is non-empty, its ids lie in ``[0, vocab)``; prompt plus
    ``max_new_tokens`` fit in ``max_len`` positions (None: no limit), named ``max_len_name`` in the
    message; the `SamplingParams` fields named in ``unsupported`` (ones ``backend`` cannot apply)
    are at their defaults, so no setting is dropped silently. Raises TypeError / ValueError naming
    the request."""
    ids, p = request.prompt_ids, request.params
    if not isinstance(p, SamplingParams):
        raise TypeError(f"requests[{i}].params: expected SamplingParams, got {type(p).__name__}")
    for name in unsupported:
        default = SamplingParams.__dataclass_fields__[name].default
        if getattr(p, name) != default:
            raise ValueError(f"requests[{i}].params.{name}: {getattr(p, name)!r}: engine {backend or '?'} does not "
                             f"apply it; use {default!r} with this engine")
    if len(ids) == 0:
        raise ValueError(f"requests[{i}].prompt_ids: empty (a prompt needs at least one token, e.g. BOS)")
    if min(ids) < 0 or max(ids) >= vocab:
        raise ValueError(f"requests[{i}].prompt_ids: ids must be in [0, {vocab}), got min {min(ids)} max {max(ids)}")
    if max_len and len(ids) + p.max_new_tokens > max_len:
        raise ValueError(f"requests[{i}]: prompt ({len(ids)}) + max_new_tokens ({p.max_new_tokens}) exceeds "
                         f"{max_len_name} ({max_len})")


def choice_sequences(contexts: Sequence[Sequence[int]], choices: Sequence[Sequence[Sequence[int]]]
                     ) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Multiple-choice log-likelihood requests (lm-evaluation-harness ``loglikelihood``), as every
    backend's ``choice_logliks`` builds them: one sequence context + choice per choice, and per
    sequence (item index, context length). Empty contexts or choices are a ValueError naming them."""
    seqs, where = [], []
    for i, (ctx, chs) in enumerate(zip(contexts, choices)):
        if not ctx:
            raise ValueError(f"contexts[{i}]: empty (needs at least a BOS)")
        for j, ch in enumerate(chs):
            if not ch:
                raise ValueError(f"choices[{i}][{j}]: empty continuation")
            seqs.append(list(ctx) + list(ch))
            where.append((i, len(ctx)))
    return seqs, where


@runtime_checkable
class Engine(Protocol):
    """A generation backend. Results come back in input order (`generate`) or as rows finish
    (`generate_iter`, yielding (index into requests, result)) so a caller can log each sample
    the moment it exists and resume after a kill."""

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: bool = True
    ) -> list[GenerationResult]: ...

    def generate_iter(
        self, requests: Sequence[GenerationRequest], *, progress: bool = True
    ) -> Iterator[tuple[int, GenerationResult]]: ...
