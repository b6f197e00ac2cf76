"""Selection strategies of ``curate`` (see the package docstring): each ``s_<name>(rows, x, cfg)``
returns a :class:`Selection` of row indices with their scores, over rows in canonical order and
their L2-normalised embeddings ``x``; plus the greedy diversity filter (DEITA) and k-center."""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ...errors import UserError
from ...records import response_of
from ...run import derive_seed
from .less import s_less

if TYPE_CHECKING:
    from . import CurateConfig

STAGE = "curate"
_MARGIN = 1e-4  # float32 screen margin; pairs this close to the bound are rescored in float64


def _num(row: dict, col: str) -> float | None:
    v = row.get(col)
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _require_column(rows: Sequence[dict], col: str, strategy: str) -> None:
    if rows and not any(col in r for r in rows):
        raise UserError(f"{strategy}: no row has a '{col}' column (run `sharpset tag` first, or set the column)")


def category_column(rows: Sequence[dict], setting: str) -> str | None:
    if setting != "auto":
        return setting
    for col in ("category", "steer_category"):
        if any(r.get(col) is not None for r in rows):
            return col
    return None


# ---------------------------------------------------------------- greedy diversity filter


def greedy_diverse(x: np.ndarray, threshold: float, n: int, block: int = 1024) -> list[int]:
    """Indices of rows kept by the sequential rule, in order: walk rows 0, 1, ... and keep row i iff
    ``max_{j kept} x_i . x_j <= threshold`` (DEITA's repr filter), stopping at ``n`` kept.

    ``x`` must be L2-normalised (rows of zeros are never similar to anything). Vectorised, and
    exactly the sequential rule:

    1. a block of candidates is screened against the rows kept so far (a rejection is final: the
       kept set only grows). The kept rows are taken in chunks of doubling size, oldest first, and
       candidates rejected by a chunk are not scored against later chunks: in real pools the
       popular topics are met (and kept) early, so most rejections happen against the first chunk;
       a candidate that survives is scored against every kept row.
    2. scores come from float32 matrix products; any within 1e-4 of the threshold is rescored in
       float64, so every decision is the float64 one.
    3. the block's survivors are resolved in order against each other from their own similarity
       matrix (a survivor kept removes the later ones too similar to it).
    """
    # The products here are small (a block of <= 1024 rows against <= 1024 kept ones), where BLAS
    # threads cost more than they give: bench/curate.py on 2 shared cores, 100k x 384, measured
    # 0.20 s with one BLAS thread against 2.0 s with two (load average ~4). So one thread, when
    # threadpoolctl is there to say so (it restores the setting on exit).
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover -- optional
        return _greedy_diverse(x, threshold, n, block)
    with threadpool_limits(1, user_api="blas"):
        return _greedy_diverse(x, threshold, n, block)


def _greedy_diverse(x: np.ndarray, threshold: float, n: int, block: int) -> list[int]:
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    if x64.ndim != 2:
        raise ValueError(f"embeddings must be 2-d, got shape {x64.shape}")
    x32 = x64.astype(np.float32)
    N, d = x64.shape
    cap = min(n, N)
    k32 = np.empty((cap, d), np.float32)
    kept: list[int] = []

    def over(rows: np.ndarray, sims: np.ndarray, against: np.ndarray) -> np.ndarray:
        """sims (len(rows) x len(against)) -> does any entry exceed the threshold (float64 at the border)."""
        hit = (sims > threshold + _MARGIN).any(axis=1)
        near = np.nonzero(~hit & (np.abs(sims - threshold) <= _MARGIN).any(axis=1))[0]
        if len(near):
            hit[near] = (x64[rows[near]] @ x64[against].T > threshold).any(axis=1)
        return hit

    s = 0
    while s < N and len(kept) < n:
        e = min(N, s + block)
        cand = np.arange(s, e)
        k, lo, size = len(kept), 0, 64
        kept_idx = np.asarray(kept, dtype=np.int64)
        while lo < k and len(cand):
            hi = min(k, lo + size)
            cand = cand[~over(cand, x32[cand] @ k32[lo:hi].T, kept_idx[lo:hi])]
            lo, size = hi, size * 2
        if len(cand):
            sub = x32[cand] @ x32[cand].T
            alive = np.ones(len(cand), bool)
            for i in range(len(cand)):
                if not alive[i]:
                    continue
                r = int(cand[i])
                k32[len(kept)] = x32[r]
                kept.append(r)
                if len(kept) >= n:
                    break
                later = cand[i + 1:]
                alive[i + 1:] &= ~over(later, sub[i + 1:, i:i + 1], np.asarray([r]))
        s = e
    return kept


def k_center(x: np.ndarray, n: int, first: int) -> tuple[list[int], list[float]]:
    """Greedy farthest-point selection with cosine distance; returns (indices, distance when picked)."""
    x = np.asarray(x, dtype=np.float64)
    N = len(x)
    if N == 0:
        return [], []
    picked, dist_at = [first], [float("nan")]
    mind = 1.0 - x @ x[first]
    mind[first] = -np.inf
    while len(picked) < min(n, N):
        i = int(np.argmax(mind))  # first maximum: ties go to the earlier canonical row
        picked.append(i)
        dist_at.append(float(mind[i]))
        mind = np.minimum(mind, 1.0 - x @ x[i])
        mind[picked] = -np.inf
    return picked, dist_at


# ---------------------------------------------------------------- strategies


@dataclass
class Selection:
    idx: list[int]  # positions in the candidate pool, in rank order
    scores: list[float | None]
    info: dict[str, Any] = dc_field(default_factory=dict)


def _rand_key(cfg: CurateConfig, row: dict) -> int:
    return derive_seed(cfg.seed, STAGE, row["id"])


def _deita_scores(rows, cfg) -> tuple[list[int], list[float], dict]:
    """(eligible positions, their scores, exclusion counts) for complexity x quality with the gate."""
    _require_column(rows, cfg.quality_column, "quality score")
    _require_column(rows, cfg.complexity_column, "complexity score")
    elig, scores = [], []
    failed = gated = 0
    for i, r in enumerate(rows):
        q, c = _num(r, cfg.quality_column), _num(r, cfg.complexity_column)
        if q is None or c is None:
            failed += 1
        elif cfg.min_quality is not None and q < cfg.min_quality:
            gated += 1
        else:
            elig.append(i)
            scores.append(c * q)
    return elig, scores, {"failed_scores": failed, "below_quality_gate": gated}


def s_quality_diversity(rows, x, cfg) -> Selection:
    elig, scores, info = _deita_scores(rows, cfg)
    order = sorted(range(len(elig)), key=lambda j: (-scores[j], elig[j]))
    cand = [elig[j] for j in order]
    keep = greedy_diverse(x[cand], cfg.max_cosine, cfg.n) if cand else []
    info.update(score="complexity x quality", columns=[cfg.complexity_column, cfg.quality_column],
                max_cosine=cfg.max_cosine, scanned=(keep[-1] + 1 if keep else 0),
                rejected_as_similar=(keep[-1] + 1 - len(keep) if keep else 0))
    return Selection([cand[k] for k in keep], [scores[order[k]] for k in keep], info)


def s_ifd(rows, x, cfg) -> Selection:
    _require_column(rows, cfg.ifd_column, "ifd")
    if cfg.min_quality is not None:
        _require_column(rows, cfg.quality_column, "ifd quality gate")
    elig, vals = [], []
    info = {"failed_scores": 0, "below_quality_gate": 0, "ifd_above_max": 0, "ifd_column": cfg.ifd_column,
            "max_ifd": cfg.max_ifd}
    for i, r in enumerate(rows):
        v = _num(r, cfg.ifd_column)
        q = _num(r, cfg.quality_column) if cfg.min_quality is not None else 0.0
        if v is None or q is None:
            info["failed_scores"] += 1
        elif cfg.min_quality is not None and q < cfg.min_quality:
            info["below_quality_gate"] += 1
        elif v > cfg.max_ifd:
            info["ifd_above_max"] += 1
        else:
            elig.append(i)
            vals.append(v)
    order = sorted(range(len(elig)), key=lambda j: (-vals[j], elig[j]))[: cfg.n]
    return Selection([elig[j] for j in order], [vals[j] for j in order], info)


def s_k_center(rows, x, cfg) -> Selection:
    if not rows:
        return Selection([], [], {})
    first = min(range(len(rows)), key=lambda i: (_rand_key(cfg, rows[i]), i))
    idx, dist = k_center(x, cfg.n, first)
    return Selection(idx, [None if math.isnan(d) else round(d, 6) for d in dist],
                     {"distance": "1 - cosine to the nearest earlier centre", "first": rows[first]["id"]})


def allot(counts: dict[str, int], shares: dict[str, float], n: int) -> dict[str, int]:
    """Largest-remainder allotment of n over categories, capped by what each has; a shortfall is
    re-allotted to categories with rows left, in proportion to their shares."""
    take = {c: 0 for c in counts}
    active = {c for c in counts if shares.get(c, 0) > 0 and counts[c] > 0}
    left = min(n, sum(counts[c] for c in active))
    while left > 0 and active:
        total = sum(shares[c] for c in active)
        exact = {c: left * shares[c] / total for c in active}
        add = {c: int(math.floor(exact[c])) for c in active}
        rest = left - sum(add.values())
        for c in sorted(active, key=lambda c: (-(exact[c] - add[c]), c))[:rest]:
            add[c] += 1
        for c in active:
            room = counts[c] - take[c]
            take[c] += min(add[c], room)
        left = min(n, sum(counts[c] for c in counts if shares.get(c, 0) > 0)) - sum(take.values())
        active = {c for c in active if take[c] < counts[c]}
    return take


def s_quota(rows, x, cfg) -> Selection:
    col = category_column(rows, cfg.category_column)
    if col is None:
        raise UserError("quota: no row has a category (tag's 'category' or synth's 'steer_category'); "
                        "set --category-column")
    info: dict[str, Any] = {"category_column": col, "missing_category": 0, "failed_scores": 0}
    if cfg.quota_within == "score":
        elig, scores, ex = _deita_scores(rows, cfg)
        info.update(ex)
        score_of = dict(zip(elig, scores))
    else:
        score_of = {i: None for i in range(len(rows))}
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if i not in score_of:
            continue
        c = r.get(col)
        if c is None:
            info["missing_category"] += 1
            continue
        groups.setdefault(str(c), []).append(i)
    if cfg.quotas:
        shares = {str(k): float(v) for k, v in cfg.quotas.items()}
        info["categories_without_quota"] = sorted(set(groups) - set(shares))
    else:
        shares = {c: 1.0 for c in groups}
    for c, members in groups.items():
        if cfg.quota_within == "random":
            members.sort(key=lambda i: (_rand_key(cfg, rows[i]), i))
        elif cfg.quota_within == "longest":
            members.sort(key=lambda i: (-len(response_of(rows[i])), i))
        else:
            members.sort(key=lambda i: (-score_of[i], i))
    take = allot({c: len(m) for c, m in groups.items()}, shares, cfg.n)
    info["allotted"] = {c: take[c] for c in sorted(take) if take[c]}
    info["shares"] = {c: shares[c] for c in sorted(shares)}
    chosen = [(c, j, i) for c, members in groups.items() for j, i in enumerate(members[: take[c]])]
    # interleave categories: rank j of every category before rank j + 1 of any (categories by name)
    chosen.sort(key=lambda t: (t[1], t[0]))
    return Selection([i for _, _, i in chosen], [score_of[i] for _, _, i in chosen], info)


def s_random(rows, x, cfg) -> Selection:
    order = sorted(range(len(rows)), key=lambda i: (_rand_key(cfg, rows[i]), i))[: cfg.n]
    return Selection(order, [None] * len(order), {"seed": cfg.seed})


def s_longest(rows, x, cfg) -> Selection:
    order = sorted(range(len(rows)), key=lambda i: (-len(response_of(rows[i])), i))[: cfg.n]
    return Selection(order, [float(len(response_of(rows[i]))) for i in order], {"length": "response characters"})


def s_all(rows, x, cfg) -> Selection:
    return Selection(list(range(len(rows))), [None] * len(rows), {})


STRATEGIES: dict[str, Callable[[list[dict], np.ndarray, "CurateConfig"], Selection]] = {
    "quality-diversity": s_quality_diversity, "ifd": s_ifd, "k-center": s_k_center, "quota": s_quota,
    "less": s_less,  # target-aware (arXiv:2402.04333): less.py; takes the run's LessContext too
    "random": s_random, "longest": s_longest, "all": s_all,
}
