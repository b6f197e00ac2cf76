"""``curate --strategy less``: target-aware selection by gradient similarity (LESS, Xia, Malladi,
Gururangan, Arora, Chen 2024, arXiv:2402.04333; reference code princeton-nlp/LESS; METHODS §9c).

Steps, as the paper (each a config field of :class:`LessFields`):

1. **Warm-up.** LoRA on a seeded random ``warmup_fraction`` (paper: 5%) of the candidate pool for
   ``warmup_epochs`` (paper: 4) epochs, one checkpoint at the end of each epoch (weights + AdamW
   moments). The training is sharpset's own (``train.prepare_model`` for PEFT LoRA,
   ``train.loop.train_loop`` for the loop, ``train.sft.sft_example`` for encode/labels).
2. **Gradient features.** For every pool row and checkpoint c, the LoRA gradient of the row's loss,
   computed one row at a time (batch size 1, dropout off) through the training loss
   (``train.loop.micro_loss``: the mean NLL over the row's assistant tokens -- the paper's loss,
   HF's token mean), Adam-preconditioned with checkpoint c's optimizer moments as the paper's
   Gamma: ``m' = b1 m + (1 - b1) g``, ``v' = b2 v + (1 - b2) g^2``, ``m' / (sqrt(v') + eps)``
   (betas and eps from the warm-up optimizer; the reference code puts eps inside the root,
   ``sqrt(v' + eps)``; we follow the paper's formula). Target rows get the plain (SGD) gradient.
3. **Projection.** A seeded Rademacher JL projection to ``proj_dim`` (paper: 8192) dimensions:
   ``x -> x M``, ``M[d, k] = +-1/sqrt(proj_dim)`` with equal odds, generated block by block from the
   seed, never held whole. ``projector: torch`` (default) is :class:`TorchProjector`, blocks of
   ``TORCH_BLOCK_ROWS`` gradient dims drawn as sign bits; ``projector: trak`` is the reference code's
   (``traker``'s ``BasicProjector``, blocks of 128 columns, entries +-1; LESS passes block size 128).
   Issue 25: on a CPU trak's projector regenerates the whole ``grad_dim x proj_dim`` matrix for
   every chunk, one float draw per entry (~45-70M entries/s on one core: 120-170 s per chunk at
   SmolLM2-135M's 921,600 x 8192); the torch one draws 64 signs per random word, so the chunk's
   matmul is most of its cost (~4x less per 128-row chunk, ``bench/less.py --projector-bench``). The two
   draw different matrices (same method; the features are unit length either way, so trak's scale
   does not matter). The same projection (``projector``, seed ``proj_seed``, recorded) for every
   checkpoint, pool and target.
4. **Length normalisation.** Each projected feature is scaled to unit length (the paper's cosine:
   short rows have larger gradient norms, and an inner product would favour them; §4.1 of the
   paper), on top of the per-token mean loss.
5. **Score.** ``score(z) = max_groups mean_{t in group} sum_c w_c cos(Gamma_c(z), g_c(t))``, with
   ``w_c`` the mean learning rate of checkpoint c's epoch, normalised to sum 1 (the reference's
   ``checkpoint_weights``). Groups: the target rows' ``target_task_column`` (the paper's per-task
   mean, max over subtasks); without it each target row is its own group (max over target examples).
   The top ``n`` rows by score are selected.

The **gradient datastore** (pool features per row per checkpoint) is a run folder of its own,
``<datastore>/less-<key>``: keyed by the selector model (fingerprint), the warm-up and projection
fields, the seed and the pool rows' ids -- the pool as read, before curate's gates and spec filter,
which only narrow the rows selected from -- never by the target -- so every target on the same
pool reuses it, and a second target computes only its own features (written in the curate run
folder, ``less_target/``). Rows are processed in chunks of ``chunk_rows`` (memory: ``chunk_rows x
checkpoints x gradient dims`` floats at once); each row's raw gradient is spilled to disk as soon as
it is computed, so a killed build resumes per row; a chunk is projected when all its rows are in,
always padded to ``chunk_rows`` rows (the same matrix shapes every time, so a resumed chunk is the
same bits as an uninterrupted one -- on the same machine and torch thread count: BLAS sums in an
order that may depend on them).

Layout: :mod:`.less_fields` (the config fields), :mod:`.less_selector` (steps 1-2: warm-up,
gradients), :mod:`.less_projection` (step 3), :mod:`.less_datastore` (the pool's features, built
and resumed); this module reads the target and scores and selects (steps 4-5 on the features), and
re-exports the others' public names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ...errors import UserError
from .less_datastore import (DATASTORE_STAGE, DATASTORE_VERSION, Datastore,  # noqa: F401 -- re-exported
                             DatastoreConfig, Stopped, featurize, open_datastore, read_features)
from .less_fields import PAPER_MODULES, PROJECTORS, LessFields  # noqa: F401 -- re-exported
from .less_projection import (PROJ_BLOCK, TORCH_BLOCK_ROWS, TorchProjector,  # noqa: F401 -- re-exported
                              projection_info, projector)
from .less_selector import (LR_WARMUP_RATIO, STAGE, Checkpoint, Selector,  # noqa: F401 -- re-exported
                            adam_direction, load_checkpoint_state, load_selector, row_gradient, train_config,
                            warmup_rows)

if TYPE_CHECKING:
    from .strategies import Selection


def read_target(path: str) -> list[dict]:
    """The target rows (sft records); a problem is an error naming file, line and field (exit 2)."""
    from ...dataio import read_records

    if not path:
        raise UserError("target: required with --strategy less: a file of rows showing the target behaviour")
    if not Path(path).exists():
        raise UserError(f"{path}: target: no such file or folder")
    rows = read_records(path, "sft").rows  # RecordError: file:line: field: problem
    if not rows:
        raise UserError(f"{path}: target: no rows")
    return rows


def groups_of(target: Sequence[dict], column: str) -> tuple[list[str], list[list[int]]]:
    """Target groups: (labels, member positions); without a column each row is its own group."""
    if not column:
        return [t["id"] for t in target], [[i] for i in range(len(target))]
    out: dict[str, list[int]] = {}
    for i, t in enumerate(target):
        out.setdefault(str(t.get(column, "")), []).append(i)
    labels = sorted(out)
    return labels, [out[l] for l in labels]


def score_pool(ds: Datastore, target_feats, weights: Sequence[float], groups: list[list[int]]):
    """Per pool row: the score (max over groups of the group-mean checkpoint-weighted cosine) and the
    group it came from. Returns (ids, scores, best group, mean direction) over the datastore's rows,
    chunk by chunk; mean direction: per checkpoint, the length of the mean of the unit-length pool
    features -- 0 when they spread, 1 when every row has the same feature (near 1 the scores may rank
    noise: see SHARED_DIRECTION_WARN)."""
    import torch

    w = torch.tensor(list(weights), dtype=torch.float32)
    ids, scores, best, total = [], [], [], None
    for part_ids, feats in read_features(ds.path, ds.index["chunks"]):
        sims = torch.einsum("rcd,tcd,c->rt", feats, target_feats, w)  # [rows, targets]
        per_group = torch.stack([sims[:, g].mean(dim=1) for g in groups], dim=1)
        s, arg = per_group.max(dim=1)
        ids += part_ids
        scores += s.tolist()
        best += arg.tolist()
        total = feats.sum(dim=0) if total is None else total + feats.sum(dim=0)
    mean_direction = [round(float(x), 4) for x in (total / len(ids)).norm(dim=-1)] if ids else []
    return ids, scores, best, mean_direction


# Above this mean-direction length (the largest over checkpoints) the pool rows' features are mostly
# one shared vector. Measured (issue 25, SmolLM2 selector, 543 rows, 90 of them verified-constraint
# rows, 8 constraint target rows): a 14-step warm-up gave 0.87 / 0.92 and the scores ranked the
# constraint rows below the rest (AUC 0.27; 0.47 with the shared direction removed) -- the Adam step
# m' = b1 m + (1 - b1) g of a short warm-up is mostly the stored momentum b1 m, the same for every
# row; a 112-step warm-up gave 0.86 / 0.84 / 0.80 / 0.80 and picked 12 constraint rows of 16. The
# line between is drawn from these two runs only: a value above it says to look, not that it failed.
SHARED_DIRECTION_WARN = 0.9


@dataclass
class LessContext:
    """Where ``--strategy less`` keeps its work: the datastore root and this run's own folder
    (target features), plus the log."""

    datastore_root: Path
    work: Path
    log: Callable[[str], None] = print
    stop_after_rows: int | None = None  # tests: simulate a kill
    # the pool before curate's gates and spec filter (canonical order): the datastore is built over it,
    # so one datastore serves every gate setting and spec, and the selection is made among ``rows``
    pool: Sequence[dict] | None = None


def s_less(rows: list[dict], x, cfg, ctx: LessContext | None = None) -> "Selection":
    """LESS selection over the candidate rows (canonical order): see the module docstring."""
    import torch

    from .strategies import Selection

    if ctx is None:
        raise UserError("less: needs a run folder for its gradient datastore (run it through `sharpset curate`)")
    target = read_target(cfg.target)
    if not rows:
        return Selection([], [], {"target": cfg.target})
    pool = list(ctx.pool) if ctx.pool is not None else rows
    ds, sel = open_datastore(cfg, pool, ctx.datastore_root, ctx.log, ctx.stop_after_rows)
    if sel is None:  # a finished datastore: its warm-up checkpoints are there, nothing retrains
        sel = load_selector(cfg, ds.path, pool, ctx.log)
    t_examples, t_skipped = sel.examples(target)
    if not t_examples:
        raise UserError(f"{cfg.target}: target: no row fits selector_max_length {cfg.selector_max_length} with an answer")
    tdir = ctx.work / "less_target"
    t_index = featurize(sel, t_examples, "sgd", tdir, cfg.chunk_rows, projector(sel.grad_dim, cfg), ctx.log)
    t_feats = torch.cat([f for _, f in read_features(tdir, t_index)])
    t_rows = [t for t in target if t["id"] in {e["id"] for e in t_examples}]
    labels, groups = groups_of(t_rows, cfg.target_task_column)
    weights = [c.weight for c in sel.checkpoints]
    ids, scores, best, mean_direction = score_pool(ds, t_feats, weights, groups)
    if mean_direction and max(mean_direction) > SHARED_DIRECTION_WARN:
        ctx.log(f"WARNING: less: the pool rows' features share one direction (mean unit feature length "
                f"{mean_direction} per checkpoint; 0 = spread, 1 = identical): the scores may rank little but "
                "noise. The Adam step of a short warm-up is mostly its stored momentum; a longer warm-up "
                "(warmup_min_rows / warmup_fraction, warmup_epochs) leaves more of each row's own gradient")
    pos = {r["id"]: i for i, r in enumerate(rows)}
    here = [j for j in range(len(ids)) if ids[j] in pos]  # the datastore's rows that passed the gates
    order = sorted(here, key=lambda j: (-scores[j], pos[ids[j]]))[: cfg.n]
    matched: dict[str, int] = {}
    for j in order:
        matched[labels[best[j]]] = matched.get(labels[best[j]], 0) + 1
    info = {"target": cfg.target, "target_rows": len(t_rows), "target_left_out_too_long": t_skipped,
            "groups": len(groups), "group_column": cfg.target_task_column or None,
            "selected_per_group": dict(sorted(matched.items())),
            "datastore": str(ds.path), "datastore_key": ds.key, "selector": cfg.selector,
            "checkpoints": [{"name": c.name, "step": c.step, "mean_lr": c.mean_lr, "weight": c.weight}
                            for c in sel.checkpoints], "checkpoint_weights": cfg.checkpoint_weights,
            "projection": ds.index["projection"],
            "warmup_rows": len(ds.index["warmup_ids"]), "excluded_too_long": len(ds.index["left_out_too_long"]),
            "score": "max over target groups of the group-mean, checkpoint-weighted cosine (arXiv:2402.04333)",
            "datastore_rows": len(ids), "candidates": len(here),
            "score_pool": {"min": min(scores), "max": max(scores), "mean": sum(scores) / len(scores)},
            "pool_mean_direction": mean_direction}
    return Selection([pos[ids[j]] for j in order], [scores[j] for j in order], info)


s_less.needs_context = True  # type: ignore[attr-defined] -- curate_rows passes the LessContext
