"""Activation Consistency Training (ACT, arXiv:2510.27062, METHODS §5): block outputs via hooks.

The loss maths is :func:`sharpset.train.losses.act_loss`; this module only captures the residual
stream after every decoder block (not the embedding output) of the policy on the wrapped prompt and
of the frozen starting model on the clean prompt. With LoRA the frozen model is the same module
with the adapter disabled (``peft``'s ``disable_adapter``); with full fine-tuning it is a copy taken
before training.
"""

from __future__ import annotations

import contextlib

import torch


def decoder_blocks(model) -> torch.nn.ModuleList:
    """The ModuleList of transformer blocks (``model.layers`` / ``transformer.h``), through PEFT."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    best = None
    for name, mod in base.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and name.split(".")[-1] in ("layers", "h", "blocks") and len(mod):
            if best is None or len(mod) > len(best):
                best = mod
    if best is None:
        raise ValueError(f"{type(base).__name__}: cannot find its decoder blocks (layers / h)")
    return best


@contextlib.contextmanager
def capture_blocks(model):
    """Collect each block's output hidden states ``[B, T, H]`` (in layer order) during a forward."""
    out: list[torch.Tensor] = []

    def hook(_mod, _inp, output):
        out.append(output[0] if isinstance(output, tuple) else output)

    handles = [b.register_forward_hook(hook) for b in decoder_blocks(model)]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def frozen_blocks(model, reference, input_ids, attention_mask) -> list[torch.Tensor]:
    """Block outputs of the frozen starting model on the clean prompts (no gradient)."""
    ctx = model.disable_adapter() if reference is None else contextlib.nullcontext()
    net = model if reference is None else reference
    with ctx, capture_blocks(net) as hs:
        net(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=1)
    return [h.detach() for h in hs]
