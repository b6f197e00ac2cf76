"""LESS's steps 1-2 on the selector model: the seeded LoRA warm-up (one checkpoint per epoch, resumed
when killed) and one row's gradient, plain or Adam-preconditioned with a checkpoint's moments.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ...errors import UserError
from ...run import derive_seed
from .less_fields import LessFields

STAGE = "curate"
LR_WARMUP_RATIO = 0.03  # the warm-up's learning-rate warm-up share (the reference's base_training_args)


@dataclass
class Checkpoint:
    name: str  # epoch-1, epoch-2, ...
    path: Path
    step: int  # optimizer steps done when it was saved
    mean_lr: float  # the mean learning rate of its epoch
    weight: float  # its normalised weight in the score (checkpoint_weights: a scoring field, not the datastore's)


@dataclass
class Selector:
    """The selector with its LoRA adapter, tokenizer and chat profile, and the warm-up's checkpoints."""

    model: Any
    tok: Any
    profile: Any
    train_cfg: Any
    checkpoints: list[Checkpoint]
    params: dict  # name -> parameter (the LoRA weights whose gradients are the features)
    head: Any
    pad_id: int
    warmup_ids: list[str]

    @property
    def grad_dim(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def examples(self, rows: Sequence[dict]) -> tuple[list[dict], list[str]]:
        """(encoded rows, ids of rows left out: longer than selector_max_length or no answer tokens)."""
        from ...train.sft import sft_example

        out, skipped = [], []
        for r in rows:
            ex = sft_example(r, self.profile, self.tok, self.train_cfg.max_length)
            (out.append(ex) if ex is not None else skipped.append(r["id"]))
        return out, skipped


def train_config(cfg: LessFields):
    from ...train import TrainConfig

    return TrainConfig(model=cfg.selector, objective="sft", lora_r=cfg.selector_lora_r,
                       lora_alpha=cfg.selector_lora_alpha, lora_dropout=cfg.selector_lora_dropout,
                       target_modules=list(cfg.selector_modules), trainable_tokens=[], lr=cfg.warmup_lr,
                       warmup_ratio=LR_WARMUP_RATIO, epochs=cfg.warmup_epochs, max_steps=0, min_steps=0,
                       batch_size=cfg.warmup_batch_size, grad_accum=1, max_length=cfg.selector_max_length,
                       seed=cfg.seed, save_every=1, save_merged=False)


def warmup_rows(rows: Sequence[dict], cfg: LessFields) -> list[dict]:
    """The seeded random warm-up subset: max(warmup_min_rows, ceil(fraction x N)) rows, at most N."""
    n = min(len(rows), max(cfg.warmup_min_rows, math.ceil(cfg.warmup_fraction * len(rows))))
    order = sorted(range(len(rows)), key=lambda i: (derive_seed(cfg.seed, STAGE, f"less-warmup:{rows[i]['id']}"), i))
    return [rows[i] for i in sorted(order[:n])]


def load_selector(cfg: LessFields, folder: Path, rows: Sequence[dict], log: Callable[[str], None]) -> Selector:
    """Load the selector with a fresh LoRA adapter and run (or resume, or find done) the warm-up in
    ``folder/warmup``: one checkpoint per epoch in ``warmup/checkpoints/epoch-<e>``."""
    from ...dataio import write_records
    from ...train import prepare_model
    from ...train.distributed import trainable
    from ...train.loop import lr_at, plain_head, step_plan, train_loop

    tcfg = train_config(cfg)
    model, tok, profile, _ = prepare_model(tcfg, log)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    sel = Selector(model, tok, profile, tcfg, [], trainable(model), None, pad_id, [])
    usable, _ = sel.examples(rows)
    if not usable:
        raise UserError(f"less: no pool row fits selector_max_length {cfg.selector_max_length} with an answer")
    by_id = {e["id"]: e for e in usable}
    warm = [by_id[r["id"]] for r in warmup_rows([r for r in rows if r["id"] in by_id], cfg)]
    sel.warmup_ids = [e["id"] for e in warm]
    wdir = folder / "warmup"
    wdir.mkdir(parents=True, exist_ok=True)
    if not (wdir / "warmup_ids.jsonl").exists():
        write_records([{"id": i} for i in sel.warmup_ids], wdir / "warmup_ids.jsonl")
    _, flat = step_plan(tcfg, warm)
    total = len(flat)
    ends = [max(g for g, (e, _) in enumerate(flat) if e == ep) + 1 for ep in range(cfg.warmup_epochs)]
    last = wdir / "checkpoints" / "last"
    for ep, end in enumerate(ends, 1):
        dst = wdir / "checkpoints" / f"epoch-{ep}"
        if (dst / "state.json").exists():
            continue
        done = json.loads((last / "state.json").read_text())["step"] if (last / "state.json").exists() else 0
        if done < end:
            log(f"less warm-up: epoch {ep}/{cfg.warmup_epochs} on {len(warm)} rows (steps {done + 1}-{end} of {total})")
            train_loop(tcfg, model, None, warm, {"sft"}, wdir, pad_id, log, stop_after=end - done)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(last, tmp)
        tmp.rename(dst)
    lrs = [[lr_at(g, total, tcfg.lr, tcfg.warmup_ratio) for g in range(s, e)]
           for s, e in zip([0] + ends[:-1], ends)]
    mean_lrs = [sum(l) / len(l) for l in lrs]
    raw = mean_lrs if cfg.checkpoint_weights == "lr" else [1.0] * len(lrs)
    sel.checkpoints = [Checkpoint(f"epoch-{ep}", wdir / "checkpoints" / f"epoch-{ep}", end, lr, w / sum(raw))
                       for ep, (end, lr, w) in enumerate(zip(ends, mean_lrs, raw), 1)]
    model.eval()  # gradients without dropout: a row's features are a function of the row
    sel.head = plain_head(model)
    return sel


def load_checkpoint_state(sel: Selector, ck: Checkpoint) -> dict[str, Any]:
    """Put checkpoint ``ck``'s LoRA weights into the selector; its Adam moments as flat vectors."""
    import torch
    from safetensors.torch import load_file

    from ...train.distributed import Single

    Single().load_state(sel.model, None, load_file(str(ck.path / "trainable.safetensors")), None)
    optim = torch.load(ck.path / "optimizer.pt", weights_only=True)
    state, group = optim["state"], optim["param_groups"][0]
    missing = [n for n in sel.params if n not in state]
    if missing:
        raise RuntimeError(f"{ck.path}: optimizer state lacks {missing[:3]}")
    m = torch.cat([state[n]["exp_avg"].reshape(-1).float() for n in sel.params])
    v = torch.cat([state[n]["exp_avg_sq"].reshape(-1).float() for n in sel.params])
    b1, b2 = group["betas"]
    return {"m": m, "v": v, "b1": float(b1), "b2": float(b2), "eps": float(group["eps"])}


def row_gradient(sel: Selector, ex: dict):
    """The LoRA gradient of one row's mean token NLL (the training loss, sharpset.train.loop)."""
    import torch

    from ...train.loop import micro_loss

    sel.model.zero_grad(set_to_none=True)
    loss, _, _ = micro_loss(sel.model, None, [ex], {"sft"}, {"nll": ex["n_label"], "act": 0, "cf": 0},
                            sel.train_cfg, sel.pad_id, contextlib.nullcontext, head=sel.head)
    loss.backward()
    g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                   for p in sel.params.values()])
    sel.model.zero_grad(set_to_none=True)
    return g


def second_moment(g, st: dict[str, Any]):
    """Adam's second moment after this gradient: ``v' = b2 v + (1 - b2) g^2``."""
    return st["b2"] * st["v"] + (1 - st["b2"]) * g * g


def adam_direction(g, st: dict[str, Any]):
    """The paper's Gamma: the update direction Adam would take from this gradient and the state."""
    m = st["b1"] * st["m"] + (1 - st["b1"]) * g
    return m / (second_moment(g, st).sqrt() + st["eps"])
