"""Pair two models' per-sample rows and compare them: the one place eval, sweep and report do it.

Rows pair by their ``item`` id (the items both models have). A suite row MAY carry ``"unit"``: the
independent unit it belongs to (invariance rows carry their question id: the 11 wrapper families of
one question hang on one plain answer). Without it a row is its own unit. The comparison resamples
units, not rows (:func:`sharpset.stats.paired_diff_ci` with ``groups``), so its ``n`` counts units
and ``n_rows`` the rows. A row MAY also carry ``"weight"`` (> 0; health: 1 / answers of its
generating suite, so each suite counts once): where every row has one, means are weighted.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence


def unit_of(row: Mapping[str, Any]) -> str:
    """The independent unit of a sample row: its ``unit`` field, else its item id."""
    u = row.get("unit")
    return str(row["item"] if u is None else u)


def weights_of(rows: Sequence[Mapping[str, Any]]) -> list[float] | None:
    """The rows' ``weight`` fields where every row has a number there, else None (unweighted)."""
    w = [r.get("weight") for r in rows]
    return [float(x) for x in w] if w and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w) \
        else None


def _by_item(rows: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return rows if isinstance(rows, Mapping) else {r["item"]: r for r in rows}


def compare_rows(base: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                 other: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                 metrics: Sequence[str], seed: int) -> dict[str, dict] | None:
    """metric -> :func:`sharpset.stats.paired_diff_ci` of ``other`` against ``base`` over the items both
    have (rows, or item id -> row), grouped by :func:`unit_of` the base row and weighted by its
    ``weight`` (:func:`weights_of`); None when no item is shared."""
    from ..stats import paired_diff_ci

    b, o = _by_item(base), _by_item(other)
    shared = sorted(set(b) & set(o))
    if not shared:
        return None
    groups = [unit_of(b[k]) for k in shared]
    weights = weights_of([b[k] for k in shared])
    return {m: paired_diff_ci([b[k].get(m) for k in shared], [o[k].get(m) for k in shared], seed, groups=groups,
                              weights=weights) for m in metrics}
