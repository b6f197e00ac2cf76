"""One training loop, one process or many: the few calls where `train_loop` differs under
``accelerate launch`` (``sharpset train --launch accelerate``).

Data parallelism with the same global batch. Every process builds the same plan of micro-batches
(a pure function of seed, epoch and data, loop.py). Under N processes rank r takes rows
``micro_batch[r::N]`` of every micro-batch, so a step sees exactly the rows a single process would.
Each loss is already a sum divided by the *global* count of its optimizer step (loop.py), so the
single-process gradient is the SUM over ranks of the local gradients. DDP (and FSDP) average
gradients over ranks, hence the local loss is multiplied by N before ``accelerator.backward``.
Logged losses are summed over ranks (``accelerator.reduce(..., "sum")``). What cannot match
exactly: dropout masks (each rank draws its own for its rows) and fp32 summation order.

A rank whose share of a micro-batch is empty still runs a forward and backward (on one row, loss
times zero): DDP needs every rank to join every gradient all-reduce.

Only the main process writes (curve, checkpoints, outputs, manifest); the others wait for it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


def launched() -> bool:
    """True inside a multi-process launch (accelerate launch / torchrun set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or os.environ.get("SHARPSET_LAUNCHED") == "accelerate"


class Single:
    """The plain one-process path: every call is the identity or the torch default."""

    world, rank, is_main, kind = 1, 0, True, "single"

    def prepare(self, model, opt):
        return model, opt

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


class AccelerateDist(Single):
    """Data-parallel ranks through an `accelerate.Accelerator` (DDP or FSDP per the launch config).
    Without a GPU it is built with ``cpu=True``: under torchrun that gives gloo MULTI_CPU ranks."""

    def __init__(self):
        import torch
        from accelerate import Accelerator

        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        self.is_main = self.acc.is_main_process
        self.kind = str(self.acc.distributed_type.value).lower()

    def prepare(self, model, opt):
        return self.acc.prepare(model, opt)

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


_CURRENT: Single | None = None


def current() -> Single:
    """The process's distributed context (built once; `Single` unless launched)."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = AccelerateDist() if launched() else Single()
    return _CURRENT


def summary(d: Single) -> dict[str, Any]:
    return {"processes": d.world, "distributed": d.kind}
