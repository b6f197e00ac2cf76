"""Trainable token rows (PEFT's ``trainable_token_indices`` beside LoRA) without dense [V, H] work.

`sharpset train` trains a base model's chat-token rows (its end-of-turn token, say) beside the LoRA
adapter (TrainConfig.trainable_tokens). PEFT's TrainableTokensLayer makes the layer's weight
*with those rows replaced* as a full copy on every forward (``index_copy``) and lets autograd
form the gradient of that whole copy, then picks the few rows from it. On gemma3-270m, whose
262k x 640 embedding is tied to its head, that was 4 copies or zero-fills of 671 MB per step plus
a full head-weight gradient (2 x 262k x 640 x the labelled tokens in FLOPs): ~45% of a LoRA step of
4 x ~100 tokens on 2 cores (bench/roofline.py --train). The same functions here, row by row:

* ``head_weight``: the head's frozen weight and its replaced rows, for losses.linear_token_nll,
  which patches the logits of those rows and sums their gradient alone (``head_unmerged``: the
  head's own call on zero positions skips PEFT's merge);
* ``sparse_embeddings``: while active, the embedding's lookup is the base layer's own lookup with
  the hit positions replaced by the trained rows (times the layer's embed_scale, as PEFT does):
  the same values, and the gradient reaches the rows through the positions that use them, summed
  in a fixed order (a one-hot GEMM, so a trained model is the same bit for bit run to run).

Written here, not taken from PEFT, because PEFT (0.21) has no sparse path; both are checked
against PEFT's own forward and gradients (tests/test_losses.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _layer(module):
    """The single active, unmerged TrainableTokensLayer inside `module` (PEFT's wrapper), or None."""
    layer = getattr(module, "token_adapter", None)
    if layer is None or not hasattr(layer, "trainable_tokens_delta"):
        return None
    names = list(getattr(layer, "active_adapters", []))
    if len(names) != 1 or layer.merged or layer.disable_adapters:
        return None
    return layer, names[0]


def head_weight(head) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None] | None:
    """(weight, rows) for losses.linear_token_nll when `head` is a bias-free ``nn.Linear``, or
    PEFT's trainable-tokens wrapper around one with a single active, unmerged adapter (rows: its
    token indices and their trained values); None for any other head."""
    if type(head) is torch.nn.Linear:
        return (head.weight, None) if head.bias is None else None
    found = _layer(head)
    if found is None:
        return None
    layer, name = found
    base = layer.base_layer
    if type(base) is not torch.nn.Linear or base.bias is not None:
        return None
    idx = torch.as_tensor(layer.token_indices[name], dtype=torch.long)
    return base.weight, (idx, layer.trainable_tokens_delta[name])


@contextmanager
def head_unmerged(head) -> Iterator[None]:
    """Within: PEFT's trainable-tokens head (if `head` is one) runs as its frozen base layer. For the
    fused NLL's call on zero positions, whose output the loss never reads: PEFT would merge a [V, H]
    copy of the head for it. The adapter's flag itself is set, not ``enable_adapters(False)``: that
    also turns off ``requires_grad`` of the token rows, which a tied embedding shares."""
    found = _layer(head)
    if found is None:
        yield
        return
    layer = found[0]
    layer._disable_adapters = True
    try:
        yield
    finally:
        layer._disable_adapters = False


def _sparse_forward(layer, name: str):
    base = layer.base_layer

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = base(x, *args, **kwargs)  # the frozen lookup, with the base layer's own scaling
        idx = torch.as_tensor(layer.token_indices[name], dtype=torch.long, device=x.device)
        hit = x.unsqueeze(-1) == idx  # [..., R]
        if not bool(hit.any()):
            return out
        rows = layer.trainable_tokens_delta[name].to(out.dtype)
        scale = layer._get_embed_scale()
        if scale is not None:
            rows = rows * scale.to(out.dtype)
        # one-hot [..., R] @ rows [R, H], not rows[index]: the same values (1 x row + 0 x the others),
        # and a backward that is a GEMM. Indexing's backward is index_put_(accumulate=True), which on
        # CPU adds in parallel in no fixed order: gemma3-270m's trained rows then differed run to run
        # (~1e-8 in a step's gradient) and so did every trained model's answers (issue 24). Outside
        # autocast: under bf16 training the rows must keep their dtype, as indexing kept it.
        with torch.autocast(x.device.type, enabled=False):
            vals = hit.to(rows.dtype) @ rows
        if base.padding_idx is not None:
            # nn.Embedding: the padding row gets no gradient from its lookups, trained row or not
            # (a chat model's pad is often its end-of-turn token, which is also a trained row)
            vals = torch.where((x == base.padding_idx).unsqueeze(-1), vals.detach(), vals)
        return torch.where(hit.any(-1, keepdim=True), vals, out)

    return forward


@contextmanager
def sparse_embeddings(model) -> Iterator[int]:
    """Within: each PEFT trainable-tokens embedding of `model` (an ``nn.Embedding`` base without
    max_norm, scale_grad_by_freq or sparse gradients, one active adapter) looks its rows up sparsely
    (module docstring); yields how many. Layers of another kind keep PEFT's forward."""
    patched = []
    for module in model.modules():
        found = _layer(module)
        if found is None:
            continue
        layer, name = found
        base = layer.base_layer
        if (not isinstance(base, torch.nn.Embedding) or base.max_norm is not None or base.scale_grad_by_freq
                or base.sparse or "forward" in layer.__dict__):
            continue
        layer.forward = _sparse_forward(layer, name)
        patched.append(layer)
    try:
        yield len(patched)
    finally:
        for layer in patched:
            layer.__dict__.pop("forward", None)
