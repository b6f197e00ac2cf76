"""Token choice for the transformers engine: per-row temperature / top-p / min-p sampling from one
uniform draw per token (so a row's output does not depend on its batch neighbours), and the
repetition controls (repetition_penalty, no_repeat_ngram_size; SamplingParams gives the formulas).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from sharpset.engine.hf import _Row


def _inverse_cdf(weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index i with cdf[i-1] <= u * total < cdf[i] for each row (weights need not sum to 1).
    Deterministic given u, and never picks a zero-weight entry."""
    cdf = weights.cumsum(-1)
    total = cdf[:, -1:]
    x = (u.to(cdf.dtype)[:, None] * total).minimum(torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, x, right=True).squeeze(1).clamp_(max=weights.shape[-1] - 1)


def _nucleus_sample(probs: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Top-p sampling without sorting the whole vocabulary: look at the top k (k = 64, 512, ...)
    until that prefix reaches top_p. Keep token r iff the mass ranked strictly before it is
    < top_p (the descending form of transformers' TopPLogitsWarper); the top token is always kept."""
    n, vocab = probs.shape
    out = torch.empty(n, dtype=torch.long, device=probs.device)
    todo = torch.arange(n, device=probs.device)
    k = 64
    while todo.numel():
        kk = min(k, vocab)
        vals, idx = probs[todo].topk(kk, dim=-1)
        cum = vals.cumsum(-1)
        tp = top_p[todo]
        done = (cum[:, -1] >= tp) | (vals[:, -1] == 0) | (kk == vocab)
        if done.any():
            d = done.nonzero().squeeze(1)
            keep = (cum[d] - vals[d]) < tp[d, None]
            keep[:, 0] = True
            pick = _inverse_cdf(vals[d] * keep, u[todo[d]])
            out[todo[d]] = idx[d].gather(1, pick[:, None]).squeeze(1)
        todo = todo[~done]
        k *= 8
    return out


def sample_next(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor,
                min_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Next token per row. logits [B, V]; per-row temperature (0 = greedy), top_p, min_p, and a
    uniform draw u in [0, 1). Sampling rows: p = softmax(logits / T); drop p < min_p * max p;
    keep the top-p nucleus; pick by inverse CDF at u (vocabulary order, or rank order when the
    nucleus is used)."""
    tokens = logits.argmax(-1)
    rows = (temperature > 0).nonzero().squeeze(1)
    if rows.numel() == 0:
        return tokens
    probs = (logits[rows].float() / temperature[rows, None].float()).softmax(-1)
    mp = min_p[rows]
    if bool((mp > 0).any()):
        probs = probs.masked_fill(probs < mp[:, None] * probs.amax(-1, keepdim=True), 0.0)
    tp, uu = top_p[rows], u[rows]
    nucleus = tp < 1.0
    chosen = torch.empty_like(rows)
    if bool((~nucleus).any()):
        chosen[~nucleus] = _inverse_cdf(probs[~nucleus], uu[~nucleus])
    if bool(nucleus.any()):
        chosen[nucleus] = _nucleus_sample(probs[nucleus], tp[nucleus], uu[nucleus])
    tokens[rows] = chosen
    return tokens


def apply_repetition_controls(logits: torch.Tensor, rows: Sequence[_Row]) -> torch.Tensor:
    """Logits [B, V] after each row's repetition_penalty and no_repeat_ngram_size (SamplingParams
    gives the formulas); rows with neither are left untouched. Modifies and returns ``logits``."""
    b_idx, t_idx = [], []
    for b, r in enumerate(rows):
        if r.seen is not None:
            b_idx += [b] * len(r.seen)
            t_idx += r.seen
    if b_idx:
        bi = torch.tensor(b_idx, device=logits.device)
        ti = torch.tensor(t_idx, device=logits.device)
        pen = torch.tensor([rows[b].params.repetition_penalty for b in b_idx], dtype=logits.dtype,
                           device=logits.device)
        old = logits[bi, ti]
        logits[bi, ti] = torch.where(old > 0, old / pen, old * pen)
    for b, r in enumerate(rows):
        n = r.params.no_repeat_ngram_size
        if n and len(r.out) >= n - 1:
            banned = r.ngrams.get(tuple(r.out[len(r.out) - n + 1:]))
            if banned:
                logits[b, list(banned)] = float("-inf")
    return logits
