"""Pair two models' per-sample rows and compare them: the one place eval, sweep and report do it.

Rows pair by their ``item`` id (the items both models have). A suite row MAY carry ``"unit"``: the
independent unit it belongs to (invariance rows carry their question id: the 11 wrapper families of
one question hang on one plain answer). Without it a row is its own unit. The comparison resamples
units, not rows (:func:`sharpset.stats.paired_diff_ci` with ``groups``), so its ``n`` counts units
and ``n_rows`` the rows. A row MAY also carry ``"weight"`` (> 0; health: 1 / answers of its
generating suite, so each suite counts once): where every row has one, means are weighted.

Three models (proxy-tuning, issue 22): :func:`common_items` gives the items every model has a value
for, :func:`gap_share_rows` the share of the base -> tuned gap a proxy closed over them
(:func:`sharpset.stats.gap_share_ci`), grouped and weighted by the base's rows as above.
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


def common_items(*row_sets: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                 metric: str | None = None) -> list[str]:
    """The item ids every row set has (rows, or item id -> row), sorted; with ``metric``, only those
    where every set's row has a value for it (``flip`` is missing where the plain answer was wrong)."""
    sets = [_by_item(rs) for rs in row_sets]
    if not sets:
        return []
    shared = set(sets[0]).intersection(*sets[1:])
    if metric is not None:
        shared = {k for k in shared if all(s[k].get(metric) is not None for s in sets)}
    return sorted(shared)


def gap_share_rows(base: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                   proxy: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                   tuned: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                   metrics: Sequence[str], seed: int) -> dict[str, dict] | None:
    """metric -> :func:`sharpset.stats.gap_share_ci`: (proxy - base) / (tuned - base) over the items all
    three have, the three models' units resampled jointly, grouped by :func:`unit_of` the base row and
    weighted by its ``weight``; None when no item is shared."""
    from ..stats import gap_share_ci

    b, p, t = _by_item(base), _by_item(proxy), _by_item(tuned)
    shared = common_items(b, p, t)
    if not shared:
        return None
    groups = [unit_of(b[k]) for k in shared]
    weights = weights_of([b[k] for k in shared])
    return {m: gap_share_ci([b[k].get(m) for k in shared], [p[k].get(m) for k in shared],
                            [t[k].get(m) for k in shared], seed, groups=groups, weights=weights) for m in metrics}
