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
- ``chunked_kl`` (``sharpset derive --heal-*``, distillation of a derivative from its source): the
  forward KL(p_source || p_derived) summed over positions, over the full vocabulary, computed (and
  backpropagated) a chunk of positions at a time; ``head_logits``: the logits a causal-LM head makes
  from final hidden states (with gemma's soft cap).
"""

from __future__ import annotations

from typing import Sequence

import torch

IGNORE = -100
KL_CHUNK = 128  # positions whose [positions, vocab] log-probabilities are alive at once (gemma3: 262,144 tokens)


def logit_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions t whose logits some row needs (labels[:, t + 1] is not IGNORE in any row), ascending.

    Passed to a Hugging Face causal LM as ``logits_to_keep`` (a 1-D tensor keeps those sequence
    positions), the LM head runs on these positions only: prompt positions need no logits. With a
    262k vocabulary (gemma3) the logits of every position were most of a training step's memory."""
    return torch.nonzero((labels[:, 1:] != IGNORE).any(0), as_tuple=False).flatten()


def _targets(labels: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(next-token targets at ``positions`` [B, K], mask of the labelled ones)."""
    tgt = labels[:, positions + 1]
    return tgt, tgt != IGNORE


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor,
                   positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p of each next label, mask), both [B, K]; labels [B, T].

    ``positions`` None: logits [B, T, V] for every position, K = T - 1. Otherwise logits [B, K, V]
    were computed at ``positions`` only (``logit_positions``; HF ``logits_to_keep``). Either way the
    log-softmax runs over the labelled positions alone ([N, V], not [B, T, V]); values are the same."""
    if positions is None:
        positions = torch.arange(labels.shape[1] - 1, device=labels.device)
        logits = logits[:, :-1, :]
    if logits.shape[1] != positions.numel():
        raise ValueError(f"token_logprobs: logits cover {logits.shape[1]} positions, positions name {positions.numel()}")
    tgt, mask = _targets(labels, positions)
    logp = torch.log_softmax(logits[mask].float(), dim=-1)  # [N, V]: the labelled positions only
    lp = torch.zeros(tgt.shape, dtype=logp.dtype, device=logp.device)
    lp = lp.masked_scatter(mask, logp.gather(-1, tgt[mask].unsqueeze(-1)).squeeze(-1))
    return lp, mask


def token_nll(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean",
              positions: torch.Tensor | None = None):
    """Masked next-token NLL. "mean": over all label tokens of the batch (not per row).
    ``positions``: logits computed at those positions only (``token_logprobs``)."""
    lp, mask = token_logprobs(logits, labels, positions)
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


class _LinearNLL(torch.autograd.Function):
    """sum_i -log softmax(h_i W^T)[y_i] with its gradients computed chunk by chunk in the forward.

    Written here because no installed library does it on CPU: Liger-Kernel's fused linear
    cross-entropy and Apple's Cut Cross-Entropy are Triton (GPU) kernels. Same idea: per chunk of
    rows the logits [C, V] are made, turned into the gradient (softmax - one-hot) at once, and
    dropped, so [N, V] never exists; no recomputation (the backward only scales the stored
    gradients), and the weight's gradient is only summed when the weight trains.

    ``idx``/``rows``: the head's rows ``idx`` replaced by ``rows`` (PEFT's trainable tokens on a
    LoRA model: a few control-token rows train, the rest of the head is frozen). Their gradient is
    summed over those rows alone; PEFT's own forward makes the merged [V, H] weight a function of
    the rows, and autograd then forms the whole [V, H] weight gradient to pick a few rows from it
    (gemma3-270m, 4 x ~100 tokens: 14% of a training step, plus 9% copying the weight;
    bench/roofline.py --train)."""

    @staticmethod
    def forward(ctx, h, w, tgt, chunk, idx=None, rows=None):
        n = h.shape[0]
        gh = torch.empty(h.shape, dtype=torch.float32, device=h.device) if ctx.needs_input_grad[0] else None
        gw = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if ctx.needs_input_grad[1] else None
        replaced = rows is not None
        gr = torch.zeros(rows.shape, dtype=torch.float32, device=h.device) if replaced and ctx.needs_input_grad[5] \
            else None
        wf = w.float()
        if replaced:  # the merged weight is never made (a [V, H] copy): its rows are patched per chunk
            rf = rows.detach().float()
            diff = rf - wf[idx]
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for s in range(0, n, chunk):
            hc, tc = h[s:s + chunk].float(), tgt[s:s + chunk]
            # log_softmax, not logsumexp: on gemma3's peaked 262k-way logits torch's CPU logsumexp
            # was 7.6e-5 off per token where log_softmax agrees with fp64 to 1e-7
            logits = hc @ wf.T
            if replaced:
                logits[:, idx] = hc @ rf.T
            logp = torch.log_softmax(logits, dim=-1)  # [C, V]
            total -= logp.gather(-1, tc.unsqueeze(-1)).sum()
            if gh is None and gw is None:
                continue
            g = logp.exp_()  # softmax, in place: d(sum nll)/d logits = softmax - one-hot
            g[torch.arange(g.shape[0], device=g.device), tc] -= 1.0
            if gh is not None:
                gh[s:s + chunk] = g @ wf
                if replaced:
                    gh[s:s + chunk] += g[:, idx] @ diff
            if gw is not None:
                gw.addmm_(g.T, hc)
            if gr is not None:
                gr.addmm_(g[:, idx].T, hc)
        if gw is not None and replaced:
            gw[idx] = 0.0  # replaced rows of the base weight do not reach the loss
        ctx.save_for_backward(*(t for t in (gh, gw, gr) if t is not None))
        ctx.has = (gh is not None, gw is not None, gr is not None)
        ctx.dtypes = (h.dtype, w.dtype, rows.dtype if replaced else None)
        return total

    @staticmethod
    def backward(ctx, grad):
        saved = list(ctx.saved_tensors)
        gh = (saved.pop(0) * grad).to(ctx.dtypes[0]) if ctx.has[0] else None
        gw = (saved.pop(0) * grad).to(ctx.dtypes[1]) if ctx.has[1] else None
        gr = (saved.pop(0) * grad).to(ctx.dtypes[2]) if ctx.has[2] else None
        return gh, gw, None, None, None, gr


def linear_token_nll(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                     positions: torch.Tensor, chunk: int = 512,
                     rows: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Summed masked next-token NLL from the hidden states the LM head would read.

    ``hidden`` [B, K, H] at ``positions`` (``logit_positions``), ``weight`` the head's [V, H]
    (bias-free, nothing applied to its logits: the caller checks). Equals
    ``token_nll(hidden @ weight.T, labels, "sum", positions)`` without making the [B, K, V] logits:
    peak memory is ``chunk`` rows of logits, not all of them. ``rows``: (index [R], values [R, H]):
    the head is ``weight`` with those rows replaced by ``values`` (PEFT trainable tokens), and the
    gradient reaches ``values`` for them."""
    tgt, mask = _targets(labels, positions)
    idx, values = rows if rows is not None else (None, None)
    idx = idx.to(weight.device) if idx is not None else None
    return _LinearNLL.apply(hidden[mask], weight, tgt[mask], chunk, idx, values)


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
                       labels_cf: torch.Tensor, *, norm: str = "l1", reduction: str = "mean",
                       positions_normal: torch.Tensor | None = None, positions_cf: torch.Tensor | None = None):
    """Per-token gap between log p(y_t | normal) and sg(log p(y_t | counterfactual)).

    Both label tensors must mark the same target tokens (same count per row, same order).
    ``positions_*``: logits computed at those positions only (``token_logprobs``).
    """
    lp_n, m_n = token_logprobs(logits_normal, labels_normal, positions_normal)
    with torch.no_grad():
        lp_c, m_c = token_logprobs(logits_cf, labels_cf, positions_cf)
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


def head_logits(hidden, weight, softcap: float | None = None):
    """Logits as the causal-LM forward makes them from its final hidden states: ``hidden @ weight.T``,
    then the soft cap where there is one (in the forward's order of operations)."""
    logits = hidden @ weight.T
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def chunked_kl(h_source, h_derived, weight, softcap: float | None = None, chunk: int = KL_CHUNK,
               backward_scale: float | None = None):
    """sum over positions i of KL(p_s,i || p_d,i) = sum_v p_s(v) (log p_s(v) - log p_d(v)), with
    ``p = softmax(head_logits(h))`` over the full vocabulary, from the [N, H] final hidden states of
    the source and the derivative at the same N positions (a 0-d tensor, detached).

    Computed ``chunk`` positions at a time, so no more than a chunk's [chunk, vocab] logits of each
    model are alive at once. ``backward_scale``: also backpropagate ``backward_scale * sum`` into
    ``h_derived``'s graph -- chunk by chunk into a detached copy, whose gradient then goes back
    through the network once -- which is what keeps the training step's memory at one chunk too
    (plain autograd would keep every chunk's logits until the backward)."""
    grad = backward_scale is not None
    leaf = h_derived.detach().requires_grad_(grad)
    total = torch.zeros((), dtype=torch.float32, device=h_derived.device)
    for s in range(0, leaf.shape[0], chunk):
        with torch.no_grad():
            logp = torch.log_softmax(head_logits(h_source[s:s + chunk].float(), weight.float(), softcap), dim=-1)
        with torch.set_grad_enabled(grad):
            logq = torch.log_softmax(head_logits(leaf[s:s + chunk].float(), weight.float(), softcap), dim=-1)
            kl = (logp.exp() * (logp - logq)).sum()
        if grad:
            (kl * backward_scale).backward()
        total += kl.detach()
    if grad and leaf.shape[0]:
        h_derived.backward(leaf.grad)
    return total
