"""CPU linear layers through oneDNN on prepacked weights, for the engine's inference forwards.

Decoding multiplies a few rows (1 to the batch size) by every weight matrix of the model once per
step. For that shape torch's ``F.linear`` on CPU runs far below the machine's fp32 peak: the GEMM
re-packs the weight into its blocked layout on every call. oneDNN's ``_linear_pointwise`` on a
weight reordered once ahead of time (``_reorder_linear_weight``; torch.compile's CPU freezing pass
does the same) skips that work: on 2 EPYC cores, 16 rows x SmolLM2's layers, 1.6-3x faster per
matrix (LM head 21.6 -> 6.9 ms), and the whole engine run of ``bench/generate.py`` 1.6x faster.

Same arithmetic (fp32 stays fp32, bf16 stays bf16); results differ from ``F.linear`` only by
summation order (~1e-6 relative in fp32), the same kind of difference a change of batch shape
already makes. Packed copies cost one extra copy of the packed weights' memory while the engine
holds them.

"auto" also stays on ``F.linear`` when the packed copies (about the size of the model's linear
weights) would take more than half of the memory the OS reports available (``MemAvailable``).

Use ``PrepackedLinears(model).active()`` as a context: inside it, every plain ``nn.Linear`` of the
model on CPU in fp32/bf16 routes through the packed weight. A call falls back to ``F.linear``
whenever the packed copy could be wrong or unusable: autograd is recording (training between
yields of a generator), the input's dtype or device differs, or the weight changed since it was
packed (its version counter moved; it is then repacked on the next ``active()``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

KERNELS = ("auto", "onednn", "torch")
_DTYPES = (torch.float32, torch.bfloat16)


def onednn_unavailable(model: nn.Module) -> str | None:
    """Why the oneDNN path cannot serve `model` here, or None when it can."""
    if not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN (mkldnn)"
    ops = torch.ops.mkldnn
    if not (hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise")):
        return f"torch {torch.__version__} lacks mkldnn._reorder_linear_weight/_linear_pointwise"
    p = next(model.parameters(), None)
    if p is None:
        return "the model has no parameters"
    if p.device.type != "cpu":
        return f"the model is on {p.device.type}, not cpu"
    if p.dtype not in _DTYPES:
        return f"the model's dtype is {p.dtype}; oneDNN linear serves float32 and bfloat16"
    return None


def _mem_available() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (Linux), else None (then no memory check)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def packed_bytes(model: nn.Module) -> int:
    """Bytes the packed copies of `model`'s eligible linear weights take (about their own size)."""
    return sum(m.weight.nbytes for m in _eligible(model))


def resolve_kernel(kernel: str, model: nn.Module) -> str:
    """'auto' -> 'onednn' where available, else 'torch'; an explicit 'onednn' that cannot run is an error."""
    if kernel not in KERNELS:
        raise ValueError(f"linear_kernel: must be one of {KERNELS}, got {kernel!r}")
    if kernel == "torch":
        return "torch"
    why = onednn_unavailable(model)
    if why is not None:
        if kernel == "onednn":
            raise ValueError(f"linear_kernel='onednn': {why}")
        return "torch"
    if kernel == "auto":
        avail = _mem_available()
        if avail is not None and packed_bytes(model) > avail // 2:
            return "torch"
    return "onednn"


def _eligible(model: nn.Module) -> list[nn.Linear]:
    out = []
    for m in model.modules():
        # Exactly nn.Linear: subclasses (quantized layers, ...) have their own forward; an
        # instance-level forward means someone (accelerate hooks, another engine) already wrapped
        # the layer, and we leave it alone.
        if type(m) is not nn.Linear or "forward" in m.__dict__:
            continue
        w = m.weight
        if w.device.type == "cpu" and w.dtype in _DTYPES and w.dim() == 2:
            out.append(m)
    return out


def _key(w: torch.Tensor) -> tuple:
    return (w.data_ptr(), w._version, tuple(w.shape), w.dtype)


class PrepackedLinears:
    """Packed weights for a model's plain ``nn.Linear`` layers, kept across ``active()`` uses and
    repacked only for weights that changed. `batch_hint`: the usual row count (oneDNN tunes the
    layout for it; any row count works)."""

    def __init__(self, model: nn.Module, batch_hint: int):
        self.model = model
        self.batch_hint = max(1, int(batch_hint))
        self._packed: dict[nn.Linear, tuple[tuple, torch.Tensor]] = {}

    @torch.no_grad()
    def _pack(self, m: nn.Linear) -> tuple[tuple, torch.Tensor]:
        key = _key(m.weight)
        have = self._packed.get(m)
        if have is None or have[0] != key:
            have = (key, torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), self.batch_hint))
            self._packed[m] = have
        return have

    @contextmanager
    def active(self) -> Iterator[int]:
        """Route eligible layers through their packed weights; yields how many layers that is."""
        mods = _eligible(self.model)
        for m in mods:
            m.forward = _packed_forward(m, *self._pack(m))
        try:
            yield len(mods)
        finally:
            for m in mods:
                m.__dict__.pop("forward", None)


def _packed_forward(m: nn.Linear, key: tuple, packed: torch.Tensor):
    version, dtype = key[1], key[3]

    def forward(x: torch.Tensor) -> torch.Tensor:
        w = m.weight
        if (x.dtype != dtype or x.device.type != "cpu" or w._version != version
                or (torch.is_grad_enabled() and (w.requires_grad or x.requires_grad))):
            return F.linear(x, w, m.bias)
        return torch.ops.mkldnn._linear_pointwise(x, packed, m.bias, "none", [], "")

    forward.__sharpset_packed__ = True  # type: ignore[attr-defined]
    return forward
