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

Two further levers, each measured alone by ``bench/generate.py --roofline``:

* fused projections (``fuse=True``, the default): sibling layers that read the same input -- an
  attention's q/k/v projections, an MLP's gate/up -- run as one GEMM over their concatenated
  weights (3 + 2 calls become 1 + 1 per layer; the output is split into views). The first member
  called computes all and hands the others their part when they are called with the same tensor;
  any other call order or input falls back to the member's own computation. Each output element
  is the same dot product as before; only oneDNN's blocking may differ (fp32 rounding).
* lower-precision weights, opt-in (``weights``): "bf16" -- weights packed as bfloat16, each
  input cast to bf16 for the GEMM and the output cast back (norms, attention, KV cache and
  sampling stay in the model's dtype); needs avx512_bf16 or AMX, where oneDNN runs bf16 at twice
  the fp32 rate. "int8" -- weights quantised per output channel (symmetric, scale = max|w| / 127)
  and activations per row at each call (symmetric, per token: a row's result never depends on its
  neighbours in the batch), int8 x int8 -> int32 through ``torch._int_mm`` (oneDNN; VNNI's
  ``vpdpbusd``), rescaled in fp32; needs VNNI. These are torchao's
  ``Int8DynamicActivationInt8WeightConfig`` numerics; torchao itself is not used because its CPU
  kernels in eager mode (0.18, torch 2.13) ran slower than fp32 here (16 x 576 x 3072: int8
  weight-only 1.02 ms, dynamic int8 1.03 ms, against 0.53 ms for fp32 oneDNN and 0.24 ms for
  ``_int_mm``); they are built for torch.compile. Both change the numbers: the bench prints greedy
  agreement with fp32.

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

from sharpset.errors import UserError

KERNELS = ("auto", "onednn", "torch")
WEIGHTS = ("bf16", "int8")  # opt-in lower-precision weights; None = the model's own dtype
_DTYPES = (torch.float32, torch.bfloat16)
# Sibling layers fused into one GEMM (they read the same input): llama/gemma/qwen/mistral naming.
FUSE_GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
# CPU features that make each `weights` option pay (any one of them)
_NEEDS = {"bf16": ("avx512_bf16", "amx_bf16"), "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}


class WeightsRefused(UserError, ValueError):
    """engine_options weights that this machine or configuration cannot serve: a config error for
    the CLI (exit 2, the message only), a ValueError for library callers."""


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo (Linux x86), or None when unreadable."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def weights_unavailable(weights: str | None, model: nn.Module) -> str | None:
    """Why `weights` cannot serve `model` here, or None when it can (None = model's dtype: always)."""
    if weights is None:
        return None
    if weights not in WEIGHTS:
        return f"must be one of {WEIGHTS} (or unset: the model's own dtype), got {weights!r}"
    why = onednn_unavailable(model)
    if why is not None:
        return why
    flags = cpu_flags()
    need = _NEEDS[weights]
    if flags is None or not flags & set(need):
        what = "could not read the CPU's flags (/proc/cpuinfo)" if flags is None else "this CPU has none of them"
        return (f"{weights!r} needs a CPU with {' or '.join(need)} ({what}); without it {weights} weights run "
                "no faster than the default, so leave weights unset")
    return None


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


def packed_bytes(model: nn.Module, weights: str | None = None) -> int:
    """Bytes the packed copies of `model`'s eligible linear weights take (about their own size in
    the model's dtype; half of fp32 for bf16, a quarter for int8)."""
    per = {None: None, "bf16": 2, "int8": 1}[weights]
    return sum(m.weight.nbytes if per is None else m.weight.numel() * per for m in _eligible(model))


def resolve_kernel(kernel: str, model: nn.Module, weights: str | None = None) -> str:
    """'auto' -> 'onednn' where available, else 'torch'; an explicit 'onednn' that cannot run is an
    error, and so is a `weights` option the CPU cannot serve (or one asked of 'torch')."""
    if kernel not in KERNELS:
        raise ValueError(f"linear_kernel: must be one of {KERNELS}, got {kernel!r}")
    if weights is not None:
        if kernel == "torch":
            raise WeightsRefused(f"weights={weights!r} runs on the engine's own kernels; it needs linear_kernel "
                             "'auto' or 'onednn', not 'torch'")
        why = weights_unavailable(weights, model)
        if why is not None:
            raise WeightsRefused(f"engine_options weights: {why}")
        return "onednn"  # asked for explicitly: the smaller packed copies are used whatever memory says
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


class _Packed:
    """One weight matrix (or several concatenated along the output dimension) ready for a kernel."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, weights: str | None, batch_hint: int):
        self.weights = weights
        self.bias = bias
        w = weight.detach()
        if weights == "int8":
            w = w.float()
            self.scale = (w.abs().amax(1).clamp_(min=1e-12) / 127.0).contiguous()  # [N], per output channel
            # [N, K] int8; ``.t()`` is the [K, N] operand of _int_mm (a view, as oneDNN wants it)
            self.q = torch.round(w / self.scale[:, None]).clamp_(-127, 127).to(torch.int8).contiguous()
        else:
            dtype = torch.bfloat16 if weights == "bf16" else w.dtype
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w.to(dtype), batch_hint)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        if self.weights == "bf16":
            y = torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self.packed, None, "none", [], "").to(x.dtype)
        else:
            x2 = x.reshape(-1, x.shape[-1]).float()
            sx = x2.abs().amax(1, keepdim=True).clamp_(min=1e-12) / 127.0  # [M, 1], per row (token)
            xq = torch.round(x2 / sx).clamp_(-127, 127).to(torch.int8)
            y = (torch._int_mm(xq, self.q.t()).float() * sx * self.scale).reshape(*x.shape[:-1], -1).to(x.dtype)
        return y if self.bias is None else y + self.bias


class _Group:
    """Layers computed by one kernel call: a single layer, or fused siblings (FUSE_GROUPS)."""

    def __init__(self, mods: list[nn.Linear]):
        self.mods = mods
        self.sizes = [m.out_features for m in mods]
        self.key: tuple | None = None
        self.kernel: _Packed | None = None
        self.stash: tuple | None = None  # (input, its version, outputs not yet handed out)

    def keys(self) -> tuple:
        return tuple(_key(m.weight) for m in self.mods)

    @torch.no_grad()
    def pack(self, weights: str | None, batch_hint: int) -> None:
        if self.kernel is not None and self.key == self.keys():
            return
        w = torch.cat([m.weight for m in self.mods]) if len(self.mods) > 1 else self.mods[0].weight
        b = None
        if self.mods[0].bias is not None:
            b = torch.cat([m.bias for m in self.mods]) if len(self.mods) > 1 else self.mods[0].bias
            b = b.detach()
        self.kernel, self.key, self.stash = _Packed(w, b, weights, batch_hint), self.keys(), None

    def forward_for(self, i: int):
        m, version, dtype = self.mods[i], self.key[i][1], self.mods[i].weight.dtype

        def forward(x: torch.Tensor) -> torch.Tensor:
            # A member whose own weight moved falls back; a sibling's stale part is never used,
            # since that sibling checks its own version before looking at the stash.
            if (x.dtype != dtype or x.device.type != "cpu" or m.weight._version != version
                    or (torch.is_grad_enabled() and (m.weight.requires_grad or x.requires_grad))):
                return F.linear(x, m.weight, m.bias)
            if len(self.mods) == 1:
                return self.kernel(x)
            st = self.stash
            ver = -1 if x.is_inference() else x._version  # inference tensors keep no version counter
            if st is not None and st[0] is x and st[1] == ver and st[2][i] is not None:
                out, st[2][i] = st[2][i], None
                if all(p is None for p in st[2]):
                    self.stash = None
                return out
            parts = list(self.kernel(x).split(self.sizes, dim=-1))
            out, parts[i] = parts[i], None
            self.stash = (x, ver, parts)
            return out

        forward.__sharpset_packed__ = True  # type: ignore[attr-defined]
        return forward


def _groups(model: nn.Module, fuse: bool) -> list[_Group]:
    """Eligible layers in kernel groups: FUSE_GROUPS siblings together when they share input size,
    dtype and bias presence, every other layer alone."""
    mods = _eligible(model)
    ok = set(mods)
    grouped: set[nn.Linear] = set()
    out = []
    if fuse:
        for parent in model.modules():
            for names in FUSE_GROUPS:
                ms = [getattr(parent, n, None) for n in names]
                if not all(m in ok for m in ms):
                    continue
                if (len({m.in_features for m in ms}) == 1 and len({m.weight.dtype for m in ms}) == 1
                        and len({m.bias is None for m in ms}) == 1):
                    out.append(_Group(ms))
                    grouped.update(ms)
    out += [_Group([m]) for m in mods if m not in grouped]
    return out


class PrepackedLinears:
    """Packed weights for a model's plain ``nn.Linear`` layers, kept across ``active()`` uses and
    repacked only for weights that changed. `batch_hint`: the usual row count (oneDNN tunes the
    layout for it; any row count works). `weights`: None (the model's dtype) | "bf16" | "int8";
    `fuse`: run FUSE_GROUPS siblings as one GEMM (module docstring)."""

    def __init__(self, model: nn.Module, batch_hint: int, *, weights: str | None = None, fuse: bool = True):
        if weights is not None and weights not in WEIGHTS:
            raise ValueError(f"weights: must be one of {WEIGHTS} or None, got {weights!r}")
        self.model = model
        self.batch_hint = max(1, int(batch_hint))
        self.weights, self.fuse = weights, fuse
        self._groups: dict[tuple[nn.Linear, ...], _Group] = {}

    @contextmanager
    def active(self) -> Iterator[int]:
        """Route eligible layers through their packed weights; yields how many layers that is."""
        patched = []
        for g in _groups(self.model, self.fuse):
            g = self._groups.setdefault(tuple(g.mods), g)  # reuse packs across uses
            g.pack(self.weights, self.batch_hint)
            for i, m in enumerate(g.mods):
                m.forward = g.forward_for(i)
                patched.append(m)
        try:
            yield len(patched)
        finally:
            for g in self._groups.values():
                g.stash = None
            for m in patched:
                m.__dict__.pop("forward", None)
