"""LESS's step 3, the projection: a seeded Rademacher JL projection of gradients to ``proj_dim``
dimensions, sharpset's :class:`TorchProjector` or the reference code's (trak's ``BasicProjector``),
and the record of what drew it (:func:`projection_info`).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from ...errors import UserError
from ...run import derive_seed
from .less_fields import PROJECTORS, LessFields

PROJ_BLOCK = 128  # trak's projector block size; the reference code passes 128
TORCH_BLOCK_ROWS = 128  # gradient dims per TorchProjector block (32-512 measured alike at proj_dim 8192)


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
