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
fields, the seed and the candidate rows' ids -- never by the target -- so every target on the same
pool reuses it, and a second target computes only its own features (written in the curate run
folder, ``less_target/``). Rows are processed in chunks of ``chunk_rows`` (memory: ``chunk_rows x
checkpoints x gradient dims`` floats at once); each row's raw gradient is spilled to disk as soon as
it is computed, so a killed build resumes per row; a chunk is projected when all its rows are in,
always padded to ``chunk_rows`` rows (the same matrix shapes every time, so a resumed chunk is the
same bits as an uninterrupted one -- on the same machine and torch thread count: BLAS sums in an
order that may depend on them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ...config import field
from ...errors import UserError
from ...run import derive_seed

if TYPE_CHECKING:
    from .strategies import Selection

STAGE = "curate"
DATASTORE_STAGE = "less-datastore"
DATASTORE_VERSION = 1
PAPER_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
PROJ_BLOCK = 128  # trak's projector block size; the reference code passes 128
TORCH_BLOCK_ROWS = 128  # gradient dims per TorchProjector block (32-512 measured alike at proj_dim 8192)
PROJECTORS = ("torch", "trak")
LR_WARMUP_RATIO = 0.03  # the warm-up's learning-rate warm-up share (the reference's base_training_args)


@dataclass
class LessFields:
    """The config fields of ``--strategy less`` (mixed into ``CurateConfig``)."""

    target: str = field("", "less: rows showing the target behaviour (a few to a few dozen sft rows: .jsonl, "
                            ".parquet, a folder or a run folder), e.g. verified-constraint rows or rows of a shape spec")
    selector: str = field("smollm2-135m-instruct", "less: the model whose gradients select (embedded name, local "
                                                    "folder or hub id); may differ from the model trained later "
                                                    "(the paper's transfer result)")
    warmup_fraction: float = field(0.05, "less: share of the pool the LoRA warm-up trains on (paper: 5%)")
    warmup_min_rows: int = field(16, "less: at least this many warm-up rows (ours: 5% of a 120-row pool is 6 rows)")
    warmup_epochs: int = field(4, "less: warm-up epochs, one checkpoint at the end of each (paper: 4)")
    warmup_lr: float = field(2e-4, "less: warm-up peak learning rate. Paper: 2e-5 over ~1,700 steps (4 epochs of 5% "
                                   "of 270k rows at batch 32); here a warm-up is ~16-60 steps, so the project's "
                                   "measured small-set rate (issue 14)")
    warmup_batch_size: int = field(4, "less: warm-up rows per step. Paper: 32; at 5% of a few hundred rows that is "
                                      "under one step per epoch")
    selector_lora_r: int = field(8, "less: LoRA rank of the selector. Paper: 128 on 7B; the projection costs "
                                    "gradient dims x proj_dim per row, and r 8 on q,k,v,o is ~0.9M dims for "
                                    "SmolLM2-135M (r 128: ~15M)")
    selector_lora_alpha: int = field(32, "less: LoRA alpha (paper: alpha / r = 4)")
    selector_lora_dropout: float = field(0.1, "less: LoRA dropout during the warm-up (paper: 0.1; off for gradients)")
    selector_modules: list = field(list(PAPER_MODULES), "less: LoRA target modules (paper: q,k,v,o projections)")
    selector_max_length: int = field(2048, "less: longer rows get no features and are left out, counted (paper: 2048)")
    proj_dim: int = field(8192, "less: random-projection dimension (paper: 8192; for N pool rows a JL projection keeps "
                                "cosines within ~sqrt(8 ln N / d): 0.09 at N = 5000)")
    proj_seed: int = field(0, "less: seed of the Rademacher projection (paper: 0); recorded in the datastore")
    projector: str = field("torch", "less: who draws the projection: torch (sharpset's TorchProjector: sign bits "
                                    "in blocks of 128 gradient dims, several times faster on a CPU, issue 25) or "
                                    "trak (the reference code's BasicProjector); the two draw different matrices")
    checkpoint_weights: str = field("lr", "less: weight of each warm-up checkpoint in the score: lr (the mean "
                                          "learning rate of its epoch, the paper's) or equal")
    target_task_column: str = field("", "less: target rows grouped by this column (mean within a group, max over "
                                        "groups: the paper's subtasks); '' = each target row its own group")
    chunk_rows: int = field(32, "less: rows whose gradients are held and projected together (memory: chunk_rows x "
                                "checkpoints x gradient dims floats)")
    datastore: str = field("", "less: folder holding gradient datastores (one per selector + warm-up + pool key); "
                               "'' = less-datastores/ beside the curate run folder", in_key=False)

    def less_reads(self) -> dict[str, str]:
        """What ``--strategy less`` reads besides the pool: the target file by content, the selector."""
        from ...run import file_hash, models_read

        out = dict(models_read(self.selector))
        p = Path(self.target) if self.target else None
        out["file:target"] = file_hash(p) if p is not None and p.exists() else f"missing:{self.target}"
        return out

    def less_check(self) -> list[tuple[str, str]]:
        p = []
        if getattr(self, "strategy", "less") == "less":
            if not self.target:
                p.append(("target", "required with --strategy less: a file of rows showing the target behaviour"))
            elif not Path(self.target).exists():
                p.append(("target", f"{self.target}: no such file or folder"))
            if not self.selector:
                p.append(("selector", "required with --strategy less"))
        if not 0 < self.warmup_fraction <= 1:
            p.append(("warmup_fraction", "must be in (0, 1]"))
        for name in ("warmup_min_rows", "warmup_epochs", "warmup_batch_size", "selector_lora_r", "selector_lora_alpha",
                     "selector_max_length", "proj_dim", "chunk_rows"):
            if getattr(self, name) < 1:
                p.append((name, "must be >= 1"))
        if self.warmup_lr <= 0:
            p.append(("warmup_lr", "must be > 0"))
        if not 0 <= self.selector_lora_dropout < 1:
            p.append(("selector_lora_dropout", "must be in [0, 1)"))
        if not self.selector_modules:
            p.append(("selector_modules", "name at least one module (paper: q_proj,k_proj,v_proj,o_proj)"))
        if self.checkpoint_weights not in ("lr", "equal"):
            p.append(("checkpoint_weights", "must be lr or equal"))
        if self.projector not in PROJECTORS:
            p.append(("projector", f"must be one of {', '.join(PROJECTORS)}"))
        return p


# ---------------------------------------------------------------- the datastore's identity


@dataclass
class DatastoreConfig:
    """What a gradient datastore depends on (its run key): the selector, the warm-up, the projection
    and the pool's rows -- not the target, not the scoring."""

    selector: str
    seed: int
    warmup_fraction: float
    warmup_min_rows: int
    warmup_epochs: int
    warmup_lr: float
    warmup_batch_size: int
    selector_lora_r: int
    selector_lora_alpha: int
    selector_lora_dropout: float
    selector_modules: list
    selector_max_length: int
    proj_dim: int
    proj_seed: int
    chunk_rows: int
    pool_ids: str  # sha256 over the candidate rows' ids in canonical order
    # trak here (torch in LessFields): the key omits a field at its default, so a datastore built
    # before issue 25 (all trak) keeps its key and meaning, and a torch one gets a key of its own
    projector: str = "trak"

    def key_inputs(self) -> dict[str, str]:
        from ...run import models_read

        return models_read(self.selector)

    @classmethod
    def of(cls, cfg: LessFields, rows: Sequence[dict]) -> "DatastoreConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"pool_ids"}
        ids = hashlib.sha256("\n".join(r["id"] for r in rows).encode()).hexdigest()
        return cls(**{n: getattr(cfg, n) for n in names}, pool_ids=ids)


# ---------------------------------------------------------------- target rows


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


# ---------------------------------------------------------------- the selector model


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


def adam_direction(g, st: dict[str, Any]):
    """The paper's Gamma: the update direction Adam would take from this gradient and the state."""
    m = st["b1"] * st["m"] + (1 - st["b1"]) * g
    v = st["b2"] * st["v"] + (1 - st["b2"]) * g * g
    return m / (v.sqrt() + st["eps"])


class TorchProjector:
    """A seeded Rademacher JL projection in plain torch (issue 25): ``project(G) = G M`` with
    ``M[d, k] = +1/sqrt(proj_dim)`` or ``-1/sqrt(proj_dim)`` with equal odds, so
    ``E[<xM, yM>] = <x, y>``.

    ``M`` is drawn in blocks of ``block_rows`` gradient dims (rows of ``M``); block ``b`` (rows
    ``b * block_rows ...``) comes from its own ``torch.Generator`` (mt19937) seeded
    ``derive_seed(seed, "less-projection", "block-<b>")``, so any block is regenerated alone
    (:meth:`block`) and ``M`` depends on (seed, grad_dim, proj_dim, block_rows) only -- never on how
    many rows are projected at once, in which chunks, or the thread count (the generator fills
    serially). Each block row is ``ceil(proj_dim / 64)`` full-range int64 draws (``random_(-2**63,
    None)``); bit ``i`` of byte ``j`` of word ``w`` (little-endian bytes) is column ``64 w + 8 j + i``,
    1 -> +, 0 -> -; bytes become eight floats through a 256 x 8 table. trak's CPU projector instead
    draws one float per entry (``bernoulli_``), ~50-70M entries/s on one core here.

    Memory per block: ``block_rows x ceil(proj_dim/64) x 8`` bytes of bits, ``block_rows x proj_dim / 2``
    of int32 byte indices and ``block_rows x 64 ceil(proj_dim/64) x 4`` of float32 block (128 rows at
    proj_dim 8192: 128 KiB + 512 KiB + 4 MiB), plus the output's ``rows x proj_dim`` floats. The
    projected values equal ``G @ M`` to float32 rounding; the blocks are summed in a fixed order, but
    BLAS may pick another kernel for another row count, so the last bits can differ between
    projecting rows together and one by one (the datastore pads every chunk to the same shape).
    """

    SEED_SCHEME = ("block b = gradient dims [b * block_size, (b + 1) * block_size): torch.Generator (mt19937) "
                   "seeded derive_seed(proj_seed, 'less-projection', 'block-<b>'); per row ceil(proj_dim / 64) "
                   "int64 random_(-2**63, None); bit i of little-endian byte j of word w -> column 64 w + 8 j + i, "
                   "1 -> +1/sqrt(proj_dim), 0 -> -1/sqrt(proj_dim)")

    def __init__(self, grad_dim: int, proj_dim: int, seed: int, block_rows: int = TORCH_BLOCK_ROWS):
        import torch

        if sys.byteorder != "little":  # the bit -> column map reads the int64 words as little-endian bytes
            raise RuntimeError("TorchProjector: the projection is defined on a little-endian machine")
        self.grad_dim, self.proj_dim, self.seed, self.block_rows = grad_dim, proj_dim, seed, block_rows
        self.words = -(-proj_dim // 64)
        self.n_blocks = -(-grad_dim // block_rows)
        bits = (torch.arange(256)[:, None] >> torch.arange(8)) & 1  # [byte, bit i]
        self.table = (bits * 2 - 1).float() * (1 / math.sqrt(proj_dim))  # exactly +-float32(1/sqrt(k))
        self.generator = torch.Generator()

    def block(self, b: int, out=None):
        """Rows ``b * block_rows ...`` of M as float32 ``[rows, proj_dim]`` (into ``out``, a float32
        ``[>= rows, 64 * ceil(proj_dim / 64)]`` buffer, when given)."""
        import torch

        rows = min(self.block_rows, self.grad_dim - b * self.block_rows)
        self.generator.manual_seed(derive_seed(self.seed, "less-projection", f"block-{b}"))
        words = torch.empty(rows, self.words, dtype=torch.int64).random_(-2**63, None, generator=self.generator)
        full = torch.empty(rows, self.words * 64) if out is None else out[:rows]
        torch.index_select(self.table, 0, words.view(torch.uint8).reshape(-1).int(), out=full.view(-1, 8))
        return full[:, :self.proj_dim]

    def project(self, grads, model_id: int = 0):
        """``grads [rows, grad_dim] @ M`` in float32, block by block (``model_id``: trak's interface; 0)."""
        import torch

        if model_id != 0:
            raise ValueError("TorchProjector: one projection per seed (model_id 0)")
        if grads.dim() != 2 or grads.shape[1] != self.grad_dim:
            raise ValueError(f"TorchProjector: grads of shape {tuple(grads.shape)}, expected [rows, {self.grad_dim}]")
        grads = grads.float()
        out = torch.zeros(grads.shape[0], self.proj_dim)
        buf = torch.empty(self.block_rows, self.words * 64)
        for b in range(self.n_blocks):
            m = self.block(b, buf)
            start = b * self.block_rows
            out.addmm_(grads[:, start:start + m.shape[0]], m)
        return out


def projector(grad_dim: int, cfg: LessFields):
    """The projection ``cfg.projector`` names: :class:`TorchProjector`, or trak's Rademacher
    ``BasicProjector`` (the reference code's: blocks of PROJ_BLOCK columns regenerated from the
    seed on every call, so its memory is grad_dim x PROJ_BLOCK floats)."""
    import torch

    if cfg.projector == "torch":
        return TorchProjector(grad_dim, cfg.proj_dim, cfg.proj_seed)
    if cfg.projector != "trak":
        raise UserError(f"projector: must be one of {', '.join(PROJECTORS)}, not {cfg.projector!r}")
    from trak.projectors import BasicProjector, ProjectionType

    return BasicProjector(grad_dim=grad_dim, proj_dim=cfg.proj_dim, seed=cfg.proj_seed,
                          proj_type=ProjectionType.rademacher, device=torch.device("cpu"),
                          block_size=PROJ_BLOCK, dtype=torch.float32)


class Stopped(Exception):
    """Raised by :func:`featurize` after ``stop_after_rows`` rows (tests: a kill mid-build)."""


def featurize(sel: Selector, examples: Sequence[dict], kind: str, folder: Path, chunk_rows: int, proj,
              log: Callable[[str], None] = print, on_chunk: Callable[[int, list[str]], None] | None = None,
              stop_after_rows: int | None = None) -> list[dict]:
    """Features of ``examples`` (kind ``adam``: pool rows, ``sgd``: target rows) for every checkpoint,
    in ``folder/chunks/<k>.safetensors`` (tensor ``features`` [rows, checkpoints, proj_dim], unit
    rows; ids in the metadata). Resumes: chunks already written are kept, rows whose raw gradient was
    spilled (``folder/spill``) are not recomputed. Returns the chunk index ``[{file, ids}]``."""
    import torch
    from safetensors.torch import load_file, save

    from ...dataio import atomic_write

    n_ck, dim = len(sel.checkpoints), sel.grad_dim
    index, done_rows = [], 0
    for k in range(0, len(examples), chunk_rows):
        part = examples[k:k + chunk_rows]
        name = f"chunks/{k // chunk_rows:05d}.safetensors"
        index.append({"file": name, "ids": [e["id"] for e in part]})
        if (folder / name).exists():
            continue
        grads = torch.zeros(n_ck * chunk_rows, dim)  # padded: every projection has the same shapes
        for c, ck in enumerate(sel.checkpoints):
            state = None
            for i, ex in enumerate(part):
                spill = folder / "spill" / ck.name / f"{ex['id']}.safetensors"
                if spill.exists():
                    grads[c * chunk_rows + i] = load_file(str(spill))["g"]
                    continue
                if state is None:
                    state = load_checkpoint_state(sel, ck)
                g = row_gradient(sel, ex)
                if kind == "adam":
                    g = adam_direction(g, state)
                grads[c * chunk_rows + i] = g
                atomic_write(spill, lambda f, g=g: f.write(save({"g": g.contiguous()})))
                done_rows += 1
                if stop_after_rows is not None and done_rows >= stop_after_rows:
                    raise Stopped(f"stopped after {done_rows} rows")
        proj_out = proj.project(grads, model_id=0).reshape(n_ck, chunk_rows, -1)[:, :len(part)]
        feats = torch.nn.functional.normalize(proj_out.transpose(0, 1).contiguous(), dim=-1)
        # one metadata key: safetensors writes a multi-key metadata map in hash order, not byte-stable
        meta = {"less": json.dumps({"ids": index[-1]["ids"], "kind": kind,
                                    "checkpoints": [c.name for c in sel.checkpoints]}, sort_keys=True)}
        atomic_write(folder / name, lambda f: f.write(save({"features": feats}, metadata=meta)))
        if on_chunk is not None:
            on_chunk(k // chunk_rows, index[-1]["ids"])
        for ck in sel.checkpoints:
            for ex in part:
                (folder / "spill" / ck.name / f"{ex['id']}.safetensors").unlink(missing_ok=True)
        log(f"less {kind} features: {min(k + chunk_rows, len(examples))}/{len(examples)} rows")
    shutil.rmtree(folder / "spill", ignore_errors=True)
    return index


def read_features(folder: Path, index: Sequence[dict]):
    """Yield (ids, features [rows, checkpoints, dim]) chunk by chunk (memory: one chunk)."""
    from safetensors.torch import load_file

    for entry in index:
        yield entry["ids"], load_file(str(folder / entry["file"]))["features"]


# ---------------------------------------------------------------- the datastore


@dataclass
class Datastore:
    path: Path
    key: str
    index: dict[str, Any]  # index.json


def open_datastore(cfg: LessFields, rows: Sequence[dict], root: Path, log: Callable[[str], None] = print,
                   stop_after_rows: int | None = None) -> tuple[Datastore, Selector | None]:
    """Find or build (resuming a killed build) the pool's gradient datastore under ``root``.
    Returns it, with the loaded selector when this call had to load it (else None)."""
    from ...dataio import write_json
    from ...run import RunDir

    dcfg = DatastoreConfig.of(cfg, rows)
    run = RunDir.open(None, DATASTORE_STAGE, DATASTORE_VERSION, dcfg, seeds={"seed": cfg.seed, "proj_seed": cfg.proj_seed},
                      runs_root=root, name="less")
    if run.complete:
        log(f"less datastore: {run.path} (cached)")
        return Datastore(run.path, run.key, json.loads((run.path / "index.json").read_text())), None
    try:
        log(f"less datastore: {run.path}")
        sel = load_selector(cfg, run.path, rows, log)
        run.record_model("selector", {"name": cfg.selector, "lora_r": cfg.selector_lora_r,
                                      "modules": list(cfg.selector_modules), "grad_dim": sel.grad_dim})
        examples, skipped = sel.examples(rows)
        logged = set(run.done_samples())

        def on_chunk(k: int, ids: list[str]) -> None:
            for i in ids:
                if i not in logged:
                    run.log_sample(i, {"chunk": k})
                    logged.add(i)

        proj = projector(sel.grad_dim, cfg)
        chunks = featurize(sel, examples, "adam", run.path, cfg.chunk_rows, proj, log, on_chunk, stop_after_rows)
        index = {"ids_order": "candidate rows in canonical order", "chunks": chunks, "rows": len(examples),
                 "left_out_too_long": skipped, "warmup_ids": sel.warmup_ids, "grad_dim": sel.grad_dim,
                 "checkpoints": [{"name": c.name, "step": c.step, "mean_lr": c.mean_lr} for c in sel.checkpoints],
                 "projection": projection_info(cfg, sel.grad_dim), "selector": cfg.selector}
        write_json(run.path / "index.json", index)
        run.finish(counts={"read": len(rows), "written": len(examples), "dropped": len(skipped), "rejected": 0},
                   outputs=["index.json", *[c["file"] for c in chunks]],
                   metrics={"rows": len(examples), "grad_dim": sel.grad_dim, "proj_dim": cfg.proj_dim,
                            "checkpoints": len(sel.checkpoints)})
    finally:
        run.close()
    return Datastore(run.path, run.key, index), sel


def projection_info(cfg: LessFields, grad_dim: int) -> dict[str, Any]:
    """What drew the projection, recorded in the datastore's index.json (and the curate report)."""
    import importlib.metadata

    common = {"projector": cfg.projector, "type": "rademacher", "seed": cfg.proj_seed, "proj_dim": cfg.proj_dim,
              "grad_dim": grad_dim, "normalised": "unit length per row and checkpoint"}
    if cfg.projector == "trak":
        return {**common, "library": f"traker=={importlib.metadata.version('traker')}", "class": "BasicProjector",
                "model_id": 0, "block_size": PROJ_BLOCK, "block": "columns", "entries": "+-1",
                "seed_scheme": "column block i: torch.Generator seeded proj_seed + 1000 i + 100000 model_id, "
                               "float32 bernoulli_(0.5) * 2 - 1"}
    return {**common, "library": f"torch=={importlib.metadata.version('torch')}", "class": "TorchProjector",
            "block_size": TORCH_BLOCK_ROWS, "block": "rows (gradient dims)", "entries": "+-1/sqrt(proj_dim)",
            "seed_scheme": TorchProjector.SEED_SCHEME}


# ---------------------------------------------------------------- scoring


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
    group it came from. Returns (ids, scores, best group) over the datastore's rows, chunk by chunk."""
    import torch

    w = torch.tensor(list(weights), dtype=torch.float32)
    ids, scores, best = [], [], []
    for part_ids, feats in read_features(ds.path, ds.index["chunks"]):
        sims = torch.einsum("rcd,tcd,c->rt", feats, target_feats, w)  # [rows, targets]
        per_group = torch.stack([sims[:, g].mean(dim=1) for g in groups], dim=1)
        s, arg = per_group.max(dim=1)
        ids += part_ids
        scores += s.tolist()
        best += arg.tolist()
    return ids, scores, best


@dataclass
class LessContext:
    """Where ``--strategy less`` keeps its work: the datastore root and this run's own folder
    (target features), plus the log."""

    datastore_root: Path
    work: Path
    log: Callable[[str], None] = print
    stop_after_rows: int | None = None  # tests: simulate a kill


def s_less(rows: list[dict], x, cfg, ctx: LessContext | None = None) -> "Selection":
    """LESS selection over the candidate rows (canonical order): see the module docstring."""
    import torch

    from .strategies import Selection

    if ctx is None:
        raise UserError("less: needs a run folder for its gradient datastore (run it through `sharpset curate`)")
    target = read_target(cfg.target)
    if not rows:
        return Selection([], [], {"target": cfg.target})
    ds, sel = open_datastore(cfg, rows, ctx.datastore_root, ctx.log, ctx.stop_after_rows)
    if sel is None:  # a finished datastore: its warm-up checkpoints are there, nothing retrains
        sel = load_selector(cfg, ds.path, rows, ctx.log)
    t_examples, t_skipped = sel.examples(target)
    if not t_examples:
        raise UserError(f"{cfg.target}: target: no row fits selector_max_length {cfg.selector_max_length} with an answer")
    tdir = ctx.work / "less_target"
    t_index = featurize(sel, t_examples, "sgd", tdir, cfg.chunk_rows, projector(sel.grad_dim, cfg), ctx.log)
    t_feats = torch.cat([f for _, f in read_features(tdir, t_index)])
    t_rows = [t for t in target if t["id"] in {e["id"] for e in t_examples}]
    labels, groups = groups_of(t_rows, cfg.target_task_column)
    weights = [c.weight for c in sel.checkpoints]
    ids, scores, best = score_pool(ds, t_feats, weights, groups)
    pos = {r["id"]: i for i, r in enumerate(rows)}
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], pos[ids[j]]))[: cfg.n]
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
            "score_pool": {"min": min(scores), "max": max(scores), "mean": sum(scores) / len(scores)}}
    return Selection([pos[ids[j]] for j in order], [scores[j] for j in order], info)


s_less.needs_context = True  # type: ignore[attr-defined] -- curate_rows passes the LessContext
