"""One training loop, one process or many: the few calls where `train_loop` differs under
``accelerate launch`` (``sharpset train --launch accelerate``).

Data parallelism with the same global batch. Every process builds the same plan of micro-batches
(a pure function of seed, epoch and data, loop.py). Under N processes rank r takes rows
``micro_batch[r::N]`` of every micro-batch, so a step sees exactly the rows a single process would.
Each loss is already a sum divided by the *global* count of its optimizer step (loop.py), so the
single-process gradient is the SUM over ranks of the local gradients. DDP and FSDP average
gradients over ranks, hence the local loss is multiplied by N before the backward.
Logged losses are summed over ranks (``accelerator.reduce(..., "sum")``). What cannot match
exactly: dropout masks (each rank draws its own for its rows) and fp32 summation order.

A rank whose share of a micro-batch is empty still runs a forward and backward (on one row, loss
times zero): DDP needs every rank to join every gradient all-reduce, FSDP every all-gather.

FSDP (``--accelerate-config fsdp`` / ``cpu-2proc-fsdp``) is torch's FSDP2 ``fully_shard`` applied
here, per decoder layer (the model's ``_no_split_modules``, what accelerate's TRANSFORMER_BASED_WRAP
picks) and then the root, with the launch config's ``fsdp_reshard_after_forward``,
``fsdp_offload_params`` and ``mixed_precision`` read from the environment accelerate launch sets.
Not accelerate's own FSDP path: accelerate only enables it on an accelerator device (its state drops
FSDP on MULTI_CPU), so it could not run here; ``fully_shard`` is the same call accelerate makes and
runs on gloo and NCCL alike. Under FSDP every forward is a collective (all-gather), so every rank
must make the same forwards (``collective_forward``), and weights are DTensor shards: checkpoints
and the exported model gather them (``trainable_state``, ``optimizer_state``; every rank calls).

Checkpoints hold full (unsharded) tensors and the optimizer state keyed by parameter name
(torch.distributed.checkpoint's ``get_optimizer_state_dict``), so a run started in one process,
under DDP or under FSDP resumes under any of them.

Only the main process writes (curve, checkpoints, outputs, manifest); the others wait for it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


def launched() -> bool:
    """True inside a multi-process launch (accelerate launch / torchrun set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or os.environ.get("SHARPSET_LAUNCHED") == "accelerate"


def trainable(model) -> dict:
    """{name: parameter} of the weights that train (LoRA's, or all under full fine-tuning)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _env_flag(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes")


class Single:
    """The plain one-process path: every call is the identity or the torch default."""

    world, rank, is_main, kind = 1, 0, True, "single"
    collective_forward = False  # True when every forward must be made by every rank (FSDP)

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    def prepare_model(self, model):
        return model

    def prepare_optimizer(self, opt):
        return opt

    def shard(self, rows: list) -> list:
        return rows

    def backward(self, loss) -> None:
        loss.backward()

    def no_sync(self, model, last: bool):
        return contextlib.nullcontext()

    def clip_grad_norm_(self, params, max_norm: float) -> None:
        import torch

        torch.nn.utils.clip_grad_norm_(params, max_norm)

    def reduce_sum(self, values: dict[str, float]) -> dict[str, float]:
        return values

    def unwrap(self, model):
        return model

    def wait(self) -> None:
        pass

    def close(self) -> None:
        """End of the run, on every rank (nothing to do in one process)."""

    # -- state: full tensors on the CPU, named as in the unwrapped model ------------------------
    def trainable_state(self, model) -> dict:
        """{name: full CPU tensor} of the trainable weights (every rank calls; complete on the main one)."""
        return {n: p.detach().cpu().contiguous() for n, p in trainable(model).items()}

    def optimizer_state(self, model, opt) -> dict:
        """The optimizer state keyed by parameter name (complete on the main rank)."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(model, _inner(opt))

    def load_state(self, model, opt, weights: dict, optim: dict | None) -> None:
        import torch

        with torch.no_grad():
            for n, p in trainable(model).items():
                p.copy_(weights[n])
        if optim is not None:
            _load_optimizer(model, opt, optim, full=False)


def _inner(opt):
    return getattr(opt, "optimizer", opt)  # accelerate's AcceleratedOptimizer wraps the torch one


def _load_optimizer(model, opt, optim: dict, full: bool) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    if all(isinstance(k, int) for k in optim.get("state", {})) and optim.get("state"):
        _inner(opt).load_state_dict(optim)  # a checkpoint of train VERSION <= 2 (index-keyed)
        return
    set_optimizer_state_dict(model, _inner(opt), optim, options=StateDictOptions(full_state_dict=full))


class AccelerateDist(Single):
    """Data-parallel ranks through an `accelerate.Accelerator` (DDP per the launch config).
    Without a GPU it is built with ``cpu=True``: under torchrun that gives gloo MULTI_CPU ranks."""

    def __init__(self):
        import torch
        from accelerate import Accelerator

        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        self.is_main = self.acc.is_main_process
        self.kind = str(self.acc.distributed_type.value).lower()

    @property
    def device(self):
        return self.acc.device

    def prepare_model(self, model):
        return self.acc.prepare(model)

    def prepare_optimizer(self, opt):
        return self.acc.prepare(opt)

    def shard(self, rows: list) -> list:
        return rows[self.rank::self.world]

    def backward(self, loss) -> None:
        self.acc.backward(loss * self.world)  # DDP averages; the step needs the sum (module doc)

    def no_sync(self, model, last: bool):
        # Gradients are all-reduced once per optimizer step, on its last micro-batch.
        return contextlib.nullcontext() if last else self.acc.no_sync(model)

    def clip_grad_norm_(self, params, max_norm: float) -> None:
        self.acc.clip_grad_norm_(params, max_norm)

    def reduce_sum(self, values: dict[str, float]) -> dict[str, float]:
        import torch

        if not values:
            return values
        names = sorted(values)
        t = torch.tensor([values[n] for n in names], dtype=torch.float64, device=self.acc.device)
        t = self.acc.reduce(t, reduction="sum")
        return dict(zip(names, t.tolist()))

    def unwrap(self, model):
        return self.acc.unwrap_model(model)

    def wait(self) -> None:
        self.acc.wait_for_everyone()

    def close(self) -> None:
        """Every rank meets, then tears its process group down. Left to interpreter exit, gloo's
        threads outlived the group on a rank that finished first and it died of SIGABRT
        ("terminate called without an active exception") after a complete run: the CI flake of
        tests/test_accelerate.py (sixth and seventh sessions)."""
        self.acc.wait_for_everyone()
        self.acc.end_training()


class FSDPDist(AccelerateDist):
    """FSDP2 ranks: `fully_shard` per decoder layer and the root (module doc for why not accelerate's)."""

    collective_forward = True

    def __init__(self):
        # accelerate's FSDP state would refuse the CPU and wrap the model a second way on GPUs: it
        # gives the process group and device only; the sharding settings are read here.
        os.environ.pop("ACCELERATE_USE_FSDP", None)
        self.reshard = _env_flag("FSDP_RESHARD_AFTER_FORWARD", True)
        self.offload = _env_flag("FSDP_OFFLOAD_PARAMS", False)
        self.mixed = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
        super().__init__()
        self.kind = "fsdp"

    def prepare_model(self, model):
        import torch
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        kw: dict[str, Any] = {"mesh": init_device_mesh(self.device.type, (self.world,)),
                              "reshard_after_forward": self.reshard}
        if self.mixed in ("bf16", "fp16"):
            kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=getattr(torch, "bfloat16" if self.mixed == "bf16" else "float16"),
                                                   reduce_dtype=torch.float32)
        if self.offload and self.device.type != "cpu":
            kw["offload_policy"] = CPUOffloadPolicy()
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        names = set(getattr(base, "_no_split_modules", None) or ())
        if not names:
            from ..errors import UserError

            raise UserError(f"train: FSDP: {type(base).__name__} names no decoder-layer class (_no_split_modules) to shard by")
        for m in model.modules():
            if type(m).__name__ in names:
                fully_shard(m, **kw)
        fully_shard(model, **kw)
        return model

    def prepare_optimizer(self, opt):
        return opt  # built over the sharded (DTensor) parameters; nothing to wrap

    def backward(self, loss) -> None:
        (loss * self.world).backward()  # FSDP's reduce-scatter averages; the step needs the sum

    @contextlib.contextmanager
    def no_sync(self, model, last: bool):
        # reduce-scatter once per optimizer step, on its last micro-batch
        model.set_requires_gradient_sync(last)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)

    def clip_grad_norm_(self, params, max_norm: float) -> None:
        import torch

        torch.nn.utils.clip_grad_norm_(params, max_norm)  # DTensor-aware: the norm over all shards

    def unwrap(self, model):
        return model  # sharded in place

    def trainable_state(self, model) -> dict:
        from torch.distributed.tensor import DTensor

        out = {}
        for n, p in trainable(model).items():  # the same order on every rank: each gather is a collective
            full = p.full_tensor() if isinstance(p, DTensor) else p
            out[n] = full.detach().cpu().contiguous()
        return out if self.is_main else {}

    def optimizer_state(self, model, opt) -> dict:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, _inner(opt),
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_state(self, model, opt, weights: dict, optim: dict | None) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        # every rank read the full checkpoint (one machine, or a run folder on a shared file system)
        set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))
        if optim is not None:
            _load_optimizer(model, opt, optim, full=True)


_CURRENT: Single | None = None


def current() -> Single:
    """The process's distributed context (built once; `Single` unless launched)."""
    global _CURRENT
    if _CURRENT is None:
        if not launched():
            _CURRENT = Single()
        elif _env_flag("ACCELERATE_USE_FSDP", False):
            _CURRENT = FSDPDist()
        else:
            _CURRENT = AccelerateDist()
    return _CURRENT


def summary(d: Single) -> dict[str, Any]:
    return {"processes": d.world, "distributed": d.kind}
