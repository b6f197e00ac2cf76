"""The one training loop behind SFT, BCT, ACT and the counterfactual regulariser.

- Batches: each kind (sft rows, pairs) is shuffled by a generator keyed by (seed, "train", epoch),
  sorted by length inside chunks of ``64 * batch_size`` (length grouping: little padding without
  packing, so no cross-sequence attention mask is needed), cut into micro-batches, and the
  micro-batch order is shuffled again with the same keyed generator. The order is a pure function
  of (seed, epoch, data): a resumed run sees exactly the same batches.
- Gradient accumulation is exact: every loss is a sum divided by the count of its optimizer step
  (label tokens, ACT positions, counterfactual tokens), computed before the step starts.
- Dropout randomness is re-seeded per micro-batch from (seed, "train", micro index).
- Learning rate: linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0 (a pure
  function of the step; nothing to checkpoint).
- Checkpoints every ``save_every`` optimizer steps into ``checkpoints/last`` (trainable weights as
  safetensors, AdamW state, step), written to a temp folder and renamed; ``losses.jsonl`` gets one
  line per optimizer step and is cut back to the checkpoint on resume.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..run import derive_seed
from . import losses
from .act import capture_blocks, frozen_blocks
from .token_rows import head_unmerged, head_weight, sparse_embeddings


# How the NLL gets its log-probabilities (bench/train_memory.py compares them; the loss is the same):
# "fused": no logits (losses.linear_token_nll) where plain_head allows, else "labelled"; "labelled":
# logits at the labelled positions only; "full": logits at every position (the old path).
LOGITS = "fused"


def plain_head(model, dist=None):
    """The model's LM head if the NLL may be computed from its input and weight (a bias-free
    ``nn.Linear``, or PEFT's trainable-tokens wrapper around one: token_rows.head_weight, whose
    output the model returns unchanged -- checked on a 3-token input, since some models soft-cap
    or scale their logits); None otherwise, or under FSDP (sharded weight)."""
    if LOGITS != "fused" or (dist is not None and dist.collective_forward):
        return None
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if head_weight(head) is None:
        return None
    seen: dict[str, torch.Tensor] = {}
    hook = head.register_forward_hook(lambda _m, _a, out: seen.update(out=out))
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([[1, 2, 3]], device=head.weight.device), logits_to_keep=2).logits
    finally:
        hook.remove()
    return head if "out" in seen and torch.equal(logits, seen["out"]) else None


def plan_batches(examples: list[dict], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Micro-batches (lists of example indices) for one epoch: keyed shuffle + length grouping."""
    rng = random.Random(derive_seed(seed, "train", f"epoch{epoch}"))
    batches: list[list[int]] = []
    for kind in sorted({e["kind"] for e in examples}):
        idx = [i for i, e in enumerate(examples) if e["kind"] == kind]
        rng.shuffle(idx)
        chunk = 64 * batch_size
        for s in range(0, len(idx), chunk):
            part = sorted(idx[s:s + chunk], key=lambda i: len(examples[i]["ids"]))
            batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for r, s in enumerate(seqs):
        out[r, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(exs: list[dict], pad_id: int, ids_key: str = "ids", labels_key: str = "labels"):
    ids = _pad([e[ids_key] for e in exs], pad_id)
    labels = _pad([e[labels_key] for e in exs], losses.IGNORE)
    mask = _pad([[1] * len(e[ids_key]) for e in exs], 0)
    return ids, labels, mask


@torch.no_grad()
def _step_counts(exs: list[dict]) -> dict[str, int]:
    return {"nll": sum(e["n_label"] for e in exs),
            "act": sum(e.get("suffix", 0) for e in exs if e["kind"] == "pair"),
            "cf": sum(e.get("n_cf", 0) for e in exs if e["kind"] == "pair")}


def lr_at(step: int, total: int, lr: float, warmup_ratio: float) -> float:
    warm = max(1, int(round(warmup_ratio * total)))
    if step < warm:
        return lr * (step + 1) / warm
    return lr * max(0.0, (total - step) / max(1, total - warm))


def _device(model) -> torch.device:
    return next(model.parameters()).device  # a DTensor shard's too (its local device)


def micro_loss(model, reference, exs: list[dict], parts: set[str], norms: dict[str, int], cfg, pad_id: int,
               autocast, cf_forward: bool = False, head=None,
               sparse_rows: bool = True) -> tuple[torch.Tensor, dict[str, float], int]:
    """Loss of one micro-batch, already divided by its optimizer step's counts (see module doc).
    ``cf_forward``: make the counterfactual forward even without counterfactual rows here (under
    FSDP a forward is a collective that every rank must join; the result is discarded).
    ``head``: the model's LM head when `plain_head` vouched for it (the NLL then skips the logits).
    ``sparse_rows``: trainable token rows of the embedding looked up row by row in the training
    forward (token_rows.sparse_embeddings; off under FSDP, where it is untested)."""
    kind = exs[0]["kind"]
    dev = _device(model)
    ids, labels, mask = (t.to(dev) for t in collate(exs, pad_id))
    terms: dict[str, float] = {}
    total = torch.zeros(())
    n_tokens = int(mask.sum())
    want_nll = (kind == "sft" and "sft" in parts) or (kind == "pair" and "bct" in parts)
    want_act = kind == "pair" and "act" in parts and norms["act"] > 0
    want_cf = kind == "pair" and "cf" in parts and norms["cf"] > 0
    inner = getattr(model, "module", model)  # under DDP: the wrapped model (hooks, disable_adapter)
    ctx = capture_blocks(inner) if want_act else contextlib.nullcontext([])
    # Logits at the labelled positions only (losses.logit_positions); none for ACT alone. Plain
    # NLL with a plain head (``head``, see plain_head) makes no logits at all: the head's input is
    # taken by a pre-hook (the head then runs on zero positions) and losses.linear_token_nll
    # works through it in chunks.
    need = want_nll or want_cf
    keep = losses.logit_positions(labels) if need and LOGITS != "full" else None
    fused = head is not None and want_nll and not want_cf and keep is not None
    hidden: dict[str, torch.Tensor] = {}
    if fused:
        def take(_mod, args):
            hidden["h"] = args[0]
            return (args[0][:, :0],)
        hook = head.register_forward_pre_hook(take)
    rows_ctx = sparse_embeddings(inner) if sparse_rows else contextlib.nullcontext()
    head_ctx = head_unmerged(head) if fused else contextlib.nullcontext()
    try:
        with ctx as h_w, autocast(), rows_ctx, head_ctx:
            out = model(input_ids=ids, attention_mask=mask,
                        logits_to_keep=keep if keep is not None else 0 if need else 1)
    finally:
        if fused:
            hook.remove()
    logits = out.logits
    if want_nll:
        if fused:
            weight, rows = head_weight(head)
            s = losses.linear_token_nll(hidden.pop("h"), weight, labels, keep, rows=rows)
        else:
            s = losses.token_nll(logits, labels, reduction="sum", positions=keep)
        total = total + s / max(norms["nll"], 1)
        terms["nll_sum"] = float(s.detach())
    if want_act:
        c_ids = _pad([e["clean_ids"] for e in exs], pad_id).to(dev)
        c_mask = _pad([[1] * len(e["clean_ids"]) for e in exs], 0).to(dev)
        with autocast():
            h_c = frozen_blocks(inner, reference, c_ids, c_mask)
        m_w, m_c = losses.suffix_masks([e["w_end"] for e in exs], [len(e["clean_ids"]) for e in exs],
                                       [e["suffix"] for e in exs], ids.shape[1], c_ids.shape[1])
        s, _ = losses.act_loss(list(h_w), h_c, m_w, m_c, layer_norm=cfg.act_layer_norm, reduction="sum")
        total = total + cfg.act_weight * s / max(norms["act"], 1)
        terms["act_sum"] = float(s.detach())
    if want_cf:
        rows = [r for r, e in enumerate(exs) if "cf_ids" in e]
        if rows:
            sub = [exs[r] for r in rows]
            cf_ids, cf_labels, cf_mask = (t.to(dev) for t in collate(sub, pad_id, "cf_ids", "cf_labels"))
            cf_keep = losses.logit_positions(cf_labels) if LOGITS != "full" else None
            with torch.no_grad(), autocast():
                # no gradient here, so the unwrapped model: a DDP forward is a collective (buffer
                # broadcast) and only ranks holding counterfactual rows make this one
                cf_logits = inner(input_ids=cf_ids, attention_mask=cf_mask,
                                  logits_to_keep=cf_keep if cf_keep is not None else 0).logits
            n_tokens += int(cf_mask.sum())
            s, _ = losses.counterfactual_gap(logits[rows], labels[rows], cf_logits, cf_labels,
                                             norm=cfg.counterfactual_norm, reduction="sum",
                                             positions_normal=keep, positions_cf=cf_keep)
            total = total + cfg.counterfactual_weight * s / max(norms["cf"], 1)
            terms["cf_sum"] = float(s.detach())
        elif cf_forward:
            with torch.no_grad(), autocast():
                inner(input_ids=ids[:1], attention_mask=mask[:1], logits_to_keep=1)  # join the all-gathers
    return total, terms, n_tokens


def save_checkpoint(path: Path, weights: dict, optim: dict, state: dict) -> None:
    """Write full trainable weights, the name-keyed optimizer state and the step (main rank only)."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "trainable.safetensors"))
    torch.save(optim, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    old = path.with_name(path.name + ".old")
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(path: Path, model, opt, dist=None) -> dict | None:
    """Load ``checkpoints/last`` (or ``.old``, if killed between the renames) into the prepared
    model and optimizer; every rank calls. Returns the saved state, or None without a checkpoint."""
    from safetensors.torch import load_file

    from .distributed import Single, trainable

    if not (path / "state.json").exists():
        old = path.with_name(path.name + ".old")  # killed between the two renames
        if (old / "state.json").exists():
            path = old
        else:
            return None
    weights = load_file(str(path / "trainable.safetensors"))
    missing = set(trainable(model)) ^ set(weights)
    if missing:
        raise RuntimeError(f"{path}: checkpoint does not match the model's trainable parameters: {sorted(missing)[:5]}")
    (dist or Single()).load_state(model, opt, weights, torch.load(path / "optimizer.pt", weights_only=True))
    return json.loads((path / "state.json").read_text())


def step_plan(cfg, examples: list[dict]) -> tuple[list[list[list[list[int]]]], list[tuple[int, int]]]:
    """Optimizer steps as (epoch, step-in-epoch), each step a list of micro-batches of example indices.

    ``cfg.epochs`` passes, or with a step budget (``max_steps`` > 0) as many fresh shuffles as the
    budget needs, the last one cut short: sets of different sizes then get the same number of
    optimizer steps (issue 14: 8 steps on 64 rows moved no weight by more than 7e-4). Without a
    budget, ``min_steps`` extends the epochs of a small set with fresh shuffles up to that many steps.
    """
    max_steps = getattr(cfg, "max_steps", 0)
    min_steps = getattr(cfg, "min_steps", 0)
    steps: list[list[list[list[int]]]] = []
    flat: list[tuple[int, int]] = []

    def more() -> bool:
        if max_steps:
            return len(flat) < max_steps
        return len(steps) < cfg.epochs or len(flat) < min_steps

    while more():
        e = len(steps)
        plan = plan_batches(examples, cfg.batch_size, cfg.seed, e)
        steps.append([plan[i:i + cfg.grad_accum] for i in range(0, len(plan), cfg.grad_accum)])
        flat += [(e, k) for k in range(len(steps[e]))]
        if not plan:
            break
    if max_steps:
        return steps, flat[:max_steps]
    epoch_steps = sum(len(s) for s in steps[:cfg.epochs])
    return steps, flat[:max(epoch_steps, min_steps)]


TOKEN_ROWS = "trainable_tokens_delta"  # PEFT's name for the token rows trained beside LoRA


def param_groups(cfg, params: dict[str, torch.Tensor]) -> list[dict]:
    """AdamW parameter groups: everything at ``lr``, and the chat token rows (PEFT trainable tokens)
    at ``trainable_tokens_lr`` -- ``lr_scale`` is their ratio, applied to the schedule's lr each step.
    A group that would be empty is left out (torch refuses empty groups)."""
    rows = [p for n, p in params.items() if TOKEN_ROWS in n]
    rest = [p for n, p in params.items() if TOKEN_ROWS not in n]
    scale = (getattr(cfg, "trainable_tokens_lr", 0.0) or cfg.lr) / cfg.lr if cfg.lr else 1.0
    groups = [{"params": rest, "lr_scale": 1.0}] if rest else []
    if rows:
        groups.append({"params": rows, "lr_scale": scale})
    return groups


def train_loop(cfg, model, reference, examples: list[dict], parts: set[str], run_path: Path, pad_id: int,
               log: Callable[[str], None] = print, stop_after: int | None = None, dist=None) -> dict[str, Any]:
    """Train in place; returns summary metrics. ``stop_after``: stop after that many optimizer steps
    of this call (benchmarks). ``dist``: one process or data-parallel ranks (train/distributed.py;
    default: whatever this process was launched as)."""
    from ..dataio import append_jsonl, iter_jsonl, write_records
    from .distributed import current, trainable

    dist = dist or current()
    if not dist.is_main:
        log = lambda m: None  # noqa: E731 -- one voice: rank 0 logs
    if reference is not None:
        reference.to(dist.device)
    # wrap (DDP) or shard in place (FSDP) before the optimizer is built: FSDP replaces the parameters
    wmodel = dist.prepare_model(model)
    params = list(trainable(model).values())
    opt = dist.prepare_optimizer(torch.optim.AdamW(param_groups(cfg, trainable(model)), lr=cfg.lr,
                                                   weight_decay=cfg.weight_decay))
    steps, flat = step_plan(cfg, examples)
    total_steps = len(flat)
    ckpt = run_path / "checkpoints" / "last"
    curve = run_path / "losses.jsonl"
    state = load_checkpoint(ckpt, model, opt, dist) or {"step": 0}
    start = state["step"]
    if start:
        log(f"resuming from checkpoint at step {start}/{total_steps}")
    if dist.is_main:
        kept = [r for r in iter_jsonl(curve) if r["step"] < start]  # cut the curve back to the checkpoint
        write_records(kept, curve) if curve.exists() else None
    dist.wait()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if cfg.bf16 else contextlib.nullcontext
    head = plain_head(model, dist)
    model.train()
    t0, n_tok, done_here = time.perf_counter(), 0, 0
    micro = sum(len(steps[e][s]) for e, s in flat[:start])
    for g in range(start, total_steps):
        e, s = flat[g]
        batches = [[examples[i] for i in b] for b in steps[e][s]]
        norms = _step_counts([x for b in batches for x in b])
        lr = lr_at(g, total_steps, cfg.lr, cfg.warmup_ratio)
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        loss_val = 0.0
        for j, b in enumerate(batches):
            torch.manual_seed(derive_seed(cfg.seed, "train", f"micro{micro}"))
            micro += 1
            mine = dist.shard(b)  # this rank's rows of the micro-batch (all of them in one process)
            with dist.no_sync(wmodel, last=j == len(batches) - 1):
                loss, terms, nt = micro_loss(wmodel, reference, mine or b[:1], parts, norms, cfg, pad_id, autocast,
                                             cf_forward=dist.collective_forward and any("cf_ids" in x for x in b),
                                             head=head, sparse_rows=not dist.collective_forward)
                if not mine:  # nothing here for this rank: join the all-reduce with a zero gradient
                    # (same term names as the other ranks: the logged sums are all-reduced by name)
                    loss, terms, nt = loss * 0, {k: 0.0 for k in terms}, 0
                if loss.requires_grad:
                    dist.backward(loss)
            loss_val += float(loss.detach())
            n_tok += nt
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
        if cfg.max_grad_norm:
            dist.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        # Every rank holds part of the step: sum over ranks. Fixed names (a term may be missing on a
        # rank whose rows lack it, e.g. no counterfactual note), so every rank reduces the same vector.
        names = ("nll_sum", "act_sum", "cf_sum")
        totals = dist.reduce_sum({"loss": loss_val, **{k: sums.get(k, 0.0) for k in names},
                                  **{f"has_{k}": float(k in sums) for k in names}})
        loss_val, sums = totals["loss"], {k: totals[k] for k in names if totals[f"has_{k}"] > 0}
        rec = {"step": g, "epoch": e, "lr": lr, "loss": round(loss_val, 6)}
        for k, n in (("nll", "nll"), ("act", "act"), ("cf", "cf")):
            if f"{k}_sum" in sums:
                rec[k] = round(sums[f"{k}_sum"] / max(norms[n], 1), 6)
        rec["elapsed_s"] = round(time.perf_counter() - t0, 3)
        if dist.is_main:
            append_jsonl(curve, rec)
        done_here += 1
        if cfg.save_every and ((g + 1) % cfg.save_every == 0 or g + 1 == total_steps):
            weights, optim = dist.trainable_state(model), dist.optimizer_state(model, opt)  # every rank: FSDP gathers
            if dist.is_main:
                save_checkpoint(ckpt, weights, optim, {"step": g + 1, "total_steps": total_steps})
            del weights, optim
            dist.wait()
        if g % max(1, total_steps // 10) == 0 or g + 1 == total_steps:
            log(f"step {g + 1}/{total_steps} loss {rec['loss']:.4f} lr {lr:.2e}")
        if stop_after is not None and done_here >= stop_after:
            break
    model.eval()
    dt = time.perf_counter() - t0
    n_tok = int(dist.reduce_sum({"n": float(n_tok)})["n"])
    out = {"optimizer_steps": total_steps, "steps_this_call": done_here, "tokens_this_call": n_tok,
           "tokens_per_s_this_call": round(n_tok / dt, 1) if dt > 0 and n_tok else None}
    if dist.world > 1:
        out.update(processes=dist.world, distributed=dist.kind)
    return out


def curve_summary(curve: Path) -> dict[str, Any]:
    from ..dataio import iter_jsonl

    rows = list(iter_jsonl(curve))
    if not rows:
        return {}
    k = max(1, len(rows) // 10)
    first = sum(r["loss"] for r in rows[:k]) / k
    last = sum(r["loss"] for r in rows[-k:]) / k
    return {"loss_first": round(first, 6), "loss_last": round(last, 6), "steps_logged": len(rows),
            "loss_fell": last < first and math.isfinite(last)}
