"""All loss maths, once (STYLE habit 6): masked token NLL, ACT, the counterfactual gap, alignment.

Every loss returns a SUM and a COUNT so that a caller can divide by the count of the whole
optimizer step: gradient accumulation over k micro-batches then equals one batch k times as big
(the HF/TRL grad-accumulation bug: averaging per micro-batch weights short rows too much).

- ``token_nll``: NLL_t = -log p(labels[t] | ids[<t]), predicted from logits[t-1]; positions with
  label -100 are masked. reduction "sum" | "mean" (sum / #label tokens) | "none" ([B, T-1]).
- ``act_loss`` (Activation Consistency Training, arXiv:2510.27062, METHODS §5):
  L = mean over blocks l = 1..L (not the embedding output) and over shared-suffix prompt
  positions t of  ||h_l,t(wrap(x)) - sg(h_l,t(x))||^2  summed over the hidden dimension. The clean
  side comes from the frozen starting model (the caller runs it with the adapter disabled, under
  no_grad). ``layer_norm=True`` divides layer l's term by sg(mean_t ||h_l,t(x)||^2), so deep
  layers with large activations cannot dominate (METHODS: "offer per-layer normalisation"; the
  exact form is our reconstruction).
- ``suffix_masks`` / ``common_suffix_len``: the shared suffix of two prompts, as boolean masks
  with the same number of True positions per row, so ``h[mask]`` on both sides lines up row-major.
- ``counterfactual_gap`` (ICR, arXiv:2510.22462, METHODS §6): per-token gap between the policy's
  log-probs of its own target tokens under the normal prompt and under the counterfactual prompt
  (the partner's intervention declared useless). Penalty = |lp_normal - sg(lp_cf)| ("l1", default)
  or its square ("l2"). Which side is detached and the L1 default are our reconstruction: the
  counterfactual side is the reference the normal prompt must not drift from.
"""

from __future__ import annotations

from typing import Sequence

import torch

IGNORE = -100


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p of each next label [B, T-1], mask [B, T-1]); logits [B, T, V], labels [B, T]."""
    tgt = labels[:, 1:]
    mask = tgt != IGNORE
    logp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    lp = logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return lp * mask, mask


def token_nll(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean"):
    """Masked next-token NLL. "mean": over all label tokens of the batch (not per row)."""
    lp, mask = token_logprobs(logits, labels)
    nll = -lp
    if reduction == "none":
        return nll
    total = nll.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / mask.sum().clamp(min=1)
    if reduction == "per_sequence":  # mean per row, then over rows (rows without labels skipped)
        n = mask.sum(-1)
        keep = n > 0
        return (nll.sum(-1)[keep] / n[keep]).mean()
    raise ValueError(f"reduction must be none, sum, mean or per_sequence, not {reduction!r}")


def n_label_tokens(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != IGNORE).sum())


def common_suffix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common suffix of two token lists."""
    k = 0
    for x, y in zip(reversed(a), reversed(b)):
        if x != y:
            break
        k += 1
    return k


def suffix_masks(ends_a: Sequence[int], ends_b: Sequence[int], lens: Sequence[int], width_a: int,
                 width_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks marking, per row r, the ``lens[r]`` positions ending at ``ends_a[r]`` (exclusive) in
    sequence a and at ``ends_b[r]`` in sequence b. Both masks hold the same number of True per row,
    so ``x_a[mask_a]`` and ``x_b[mask_b]`` are aligned position by position."""
    ma = torch.zeros((len(lens), width_a), dtype=torch.bool)
    mb = torch.zeros((len(lens), width_b), dtype=torch.bool)
    for r, (ea, eb, k) in enumerate(zip(ends_a, ends_b, lens)):
        if k:
            ma[r, ea - k:ea] = True
            mb[r, eb - k:eb] = True
    return ma, mb


def act_loss(h_wrapped: Sequence[torch.Tensor], h_clean: Sequence[torch.Tensor], mask_wrapped: torch.Tensor,
             mask_clean: torch.Tensor, *, layer_norm: bool = False, reduction: str = "mean"):
    """ACT over blocks: per layer ``[B, T, H]`` hidden states; returns mean (or (sum, count)).

    sum = sum over layers-mean of sum_t ||h_w - sg(h_c)||^2, count = number of positions, so
    sum / count is the mean over layers and positions.
    """
    if len(h_wrapped) != len(h_clean) or not h_wrapped:
        raise ValueError("act_loss: need the same, non-zero number of layers on both sides")
    n = int(mask_wrapped.sum())
    if n != int(mask_clean.sum()):
        raise ValueError("act_loss: masks select different numbers of positions")
    total = h_wrapped[0].new_zeros((), dtype=torch.float32)
    for hw, hc in zip(h_wrapped, h_clean):
        a = hw[mask_wrapped].float()
        b = hc[mask_clean].detach().float()
        sq = ((a - b) ** 2).sum(-1)  # [N]
        if layer_norm:
            sq = sq / (b.pow(2).sum(-1).mean().clamp(min=1e-6))
        total = total + sq.sum()
    total = total / len(h_wrapped)
    if reduction == "sum":
        return total, n
    if reduction == "mean":
        return total / max(n, 1)
    raise ValueError(f"reduction must be sum or mean, not {reduction!r}")


def counterfactual_gap(logits_normal: torch.Tensor, labels_normal: torch.Tensor, logits_cf: torch.Tensor,
                       labels_cf: torch.Tensor, *, norm: str = "l1", reduction: str = "mean"):
    """Per-token gap between log p(y_t | normal) and sg(log p(y_t | counterfactual)).

    Both label tensors must mark the same target tokens (same count per row, same order).
    """
    lp_n, m_n = token_logprobs(logits_normal, labels_normal)
    with torch.no_grad():
        lp_c, m_c = token_logprobs(logits_cf, labels_cf)
    a, b = lp_n[m_n], lp_c[m_c].detach()
    if a.shape != b.shape:
        raise ValueError("counterfactual_gap: the two sides mark different numbers of target tokens")
    gap = (a - b).abs() if norm == "l1" else (a - b) ** 2 if norm == "l2" else None
    if gap is None:
        raise ValueError(f"norm must be l1 or l2, not {norm!r}")
    if reduction == "sum":
        return gap.sum(), int(gap.numel())
    if reduction == "mean":
        return gap.sum() / max(gap.numel(), 1)
    raise ValueError(f"reduction must be sum or mean, not {reduction!r}")
