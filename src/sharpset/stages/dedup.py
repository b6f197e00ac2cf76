"""``sharpset dedup``: exact, MinHash and embedding near-duplicates; one stable row per cluster.

Three detectors, each giving a set of duplicate pairs; clusters are the connected components of
the union of the selected detectors' pairs (union-find), and each cluster keeps one row.

- **exact**: equal ``normalize(text)`` -- Unicode NFKC, casefold, whitespace runs collapsed to one
  space, punctuation (Unicode category P*) stripped at both ends. Compared through its sha256.
- **minhash**: word n-gram shingles (``shingle_n`` words, tokens = ``\\w+`` runs of the normalised
  text) -> datasketch ``MinHash`` (``num_perm``, seed 1) -> ``MinHashLSH`` candidates, each kept
  only if the estimated Jaccard ``|{k: h_k(a) = h_k(b)}| / num_perm >= minhash_threshold``. That
  estimate is symmetric, so the pair set is too. LSH banding can still miss a pair above the
  threshold (its false-negative rate); see datasketch's ``MinHashLSH`` for the band choice.
- **embedding**: ``cos(a, b) = e_a . e_b`` over L2-normalised embeddings (default the embedded
  ``minilm-l6``); every pair with ``cos >= embedding_threshold`` (default 0.975, the Magpie
  release's "cosine >= ~0.975", METHODS.md section 1). Found by blocked matrix products in
  float32 with a 1e-4 margin, then each candidate rescored in float64 from its two vectors alone,
  so a pair's fate never depends on where it sits in a block. MiniLM truncates at 256 tokens.

Order independence (METHODS.md section 1: "one stable representative per cluster independent of
input order"). The representative of a cluster is the member with the smallest
``records.content_id`` (recomputed, so a stale or hand-set ``id`` cannot sway it), ties --
rows with the same content -- broken by the row's canonical JSON; equal rows are interchangeable.
Texts are embedded once each, in sorted order, so batch composition (padding) never depends on
input order. Rows with the same shingle set (minhash) or the same raw text (embedding) are one
unit, computed once and always linked by that method, as their similarity is 1.

Attribution. Pairs are added method by method in the fixed order exact -> minhash -> embedding;
a removed row is credited to the first method after which it is no longer the representative of
its component. Each method's credit is thus the drop in the number of components it causes, and
the credits add up to the rows removed, whatever the input order.

Outputs (``run``): ``deduped.jsonl`` (kept rows, original relative order, each with flat columns
``dup_cluster`` = representative's id and ``dup_cluster_size``), ``clusters.jsonl`` (one line per
cluster of two or more rows: members, the method that removed each, and the pairs with their
scores), ``dedup_report.json`` (thresholds, cluster-size histogram, rows removed per method,
counts with read = written + dropped + rejected), plus ``rejected.jsonl`` under ``on_error: skip``.

``pairs`` (and the pair lists in ``clusters.jsonl``) hold every linked pair, so they grow with the
square of a cluster's size.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Callable, Sequence

import numpy as np

from ..config import field as _field  # a config key is named `field`: keep the helper's name free
from ..dataio import write_json
from ..embed import FIELDS, default_embedder, text_of  # noqa: F401 -- re-exported (sharpset.dedup.*)
from ..records import canonical_json, content_id, with_id

STAGE = "dedup"
VERSION = 1  # bump when the transform changes what it writes

METHODS = ("exact", "minhash", "embedding")  # also the attribution order
MINHASH_SEED = 1
_EMBED_MARGIN = 1e-4  # float32 screen margin before the exact float64 rescoring
_BLOCK_ELEMS = 1 << 22  # similarity-matrix elements per block (16 MiB in float32)


@dataclass
class DedupConfig:
    input: str = _field("", "input records: .jsonl, .parquet, a datasets folder, or a folder holding one")
    field: str = _field("instruction", "text compared: instruction (first user message), response "
                                      "(last assistant message) or conversation (all contents joined)")
    methods: list[str] = _field(list(METHODS), "detectors to use, any of: exact, minhash, embedding")
    # MinHash defaults: 0.8 is the Jaccard of Lee et al. 2022 (arXiv:2107.06499). Word 3-grams, and
    # 0.8 rather than our a-priori 0.7 on bigrams, were picked from experiments/dedup_fixture.py:
    # on short templated instructions ("Write a limerick about {topic}.") a one-word edit and a
    # one-word topic change look the same to any shingle set, and (2, 0.7) chained template siblings
    # into clusters of 16-21 rows (precision 0.51 over removals); (3, 0.8) removed no wrong row
    # there but catches few one-word edits. Paraphrases and most edits are left to the embedding.
    minhash_threshold: float = _field(0.8, "MinHash: estimated Jaccard of word shingles at or above which "
                                          "two texts are near-duplicates")
    shingle_n: int = _field(3, "MinHash: words per shingle")
    num_perm: int = _field(128, "MinHash: permutations (signature length)")
    embedding_threshold: float = _field(0.975, "embedding: cosine at or above which two texts are "
                                              "near-duplicates (Magpie: ~0.975)")
    embedder: str = _field("minilm-l6", "sentence embedder: embedded name or local sentence-transformers folder")
    batch_size: int = _field(64, "embedding batch size")
    on_error: str = _field("raise", "bad input rows: raise (stop at the first) or skip (to rejected.jsonl)")

    def key_inputs(self) -> dict[str, str]:
        """The embedder by fingerprint when the embedding method runs (run.config_reads)."""
        from ..run import models_read

        return models_read(self.embedder if "embedding" in self.methods else None)

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.input:
            problems.append(("input", "required: the records to deduplicate"))
        if self.field not in FIELDS:
            problems.append(("field", f"{self.field!r} is not one of {', '.join(FIELDS)}"))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            problems.append(("methods", f"unknown {', '.join(map(repr, unknown))}; choose from {', '.join(METHODS)}"))
        elif not self.methods:
            problems.append(("methods", "empty; choose at least one of " + ", ".join(METHODS)))
        elif len(set(self.methods)) != len(self.methods):
            problems.append(("methods", "lists a method twice"))
        if not 0 < self.minhash_threshold < 1:
            problems.append(("minhash_threshold", "must be in (0, 1)"))
        if self.shingle_n < 1:
            problems.append(("shingle_n", "must be >= 1"))
        if self.num_perm < 2:
            problems.append(("num_perm", "must be >= 2"))
        if not 0 < self.embedding_threshold <= 1:
            problems.append(("embedding_threshold", "must be in (0, 1]"))
        if self.batch_size < 1:
            problems.append(("batch_size", "must be >= 1"))
        if self.on_error not in ("raise", "skip"):
            problems.append(("on_error", f"{self.on_error!r} is not raise or skip"))
        if "minhash" in self.methods and not problems:
            try:
                _lsh(self.minhash_threshold, self.num_perm)
            except ValueError as e:  # datasketch finds no band split for this pair of settings
                problems.append(("minhash_threshold", f"{self.minhash_threshold} with num_perm "
                                 f"{self.num_perm}: no LSH band split ({e}); lower it or raise num_perm"))
        return problems


@dataclass
class DedupResult:
    kept: list[dict]  # representatives, in input order, with dup_cluster / dup_cluster_size
    clusters: list[list[str]]  # member ids of each cluster of 2+ rows, representative first
    pairs: dict[str, set[tuple[str, str]]]  # method -> sorted id pairs it linked
    report: dict[str, Any]
    cluster_rows: list[dict] = dc_field(default_factory=list)  # the clusters.jsonl lines


# ---------------------------------------------------------------- text


def normalize(text: str) -> str:
    """NFKC, casefold, collapse whitespace, strip punctuation (category P*) at both ends."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start])[0] == "P"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1])[0] == "P"):
        end -= 1
    return text[start:end]


def shingles(norm: str, n: int) -> set[str]:
    """Word n-grams of a normalised text (a text shorter than n words is one shingle)."""
    toks = re.findall(r"\w+", norm)
    if not toks:
        return set()
    return {" ".join(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))}


# ---------------------------------------------------------------- pair finders


def _units(keys: Sequence[str | None]) -> tuple[list[str], list[list[int]]]:
    """Distinct non-empty keys in sorted order, and the row indices holding each."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k:
            groups.setdefault(k, []).append(i)
    order = sorted(groups)
    return order, [groups[k] for k in order]


def _expand(members: list[list[int]], unit_pairs, scores) -> dict[tuple[int, int], float]:
    """Row-index pairs from unit pairs (every cross pair) and within units (similarity 1)."""
    out: dict[tuple[int, int], float] = {}
    for rows in members:
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                out[(rows[a], rows[b])] = 1.0
    for (u, v), s in zip(unit_pairs, scores):
        for i in members[u]:
            for j in members[v]:
                out[(min(i, j), max(i, j))] = float(s)
    return out


def exact_pairs(norms: Sequence[str]) -> dict[tuple[int, int], float]:
    hashes = [hashlib.sha256(t.encode("utf-8")).hexdigest() if t else None for t in norms]
    _, members = _units(hashes)
    return _expand(members, [], [])


def _lsh(threshold: float, num_perm: int):
    from datasketch import MinHashLSH

    return MinHashLSH(threshold=threshold, num_perm=num_perm)


def minhash_pairs(norms: Sequence[str], threshold: float, n: int, num_perm: int) -> dict[tuple[int, int], float]:
    from datasketch import MinHash

    sets = [shingles(t, n) for t in norms]
    keys = ["\x1f".join(sorted(s)) if s else None for s in sets]  # equal shingle sets: one unit
    order, members = _units(keys)
    if not order:
        return {}
    sigs = MinHash.bulk([[s.encode("utf-8") for s in sets[m[0]]] for m in members],
                        num_perm=num_perm, seed=MINHASH_SEED)
    lsh = _lsh(threshold, num_perm)
    for u, sig in enumerate(sigs):
        lsh.insert(u, sig)
    cand = sorted({(u, v) for u, sig in enumerate(sigs) for v in lsh.query(sig) if v > u})
    if not cand:
        return _expand(members, [], [])
    hv = np.stack([s.hashvalues for s in sigs])
    a, b = np.array(cand).T
    est = (hv[a] == hv[b]).mean(axis=1)  # estimated Jaccard: symmetric in (a, b)
    keep = est >= threshold
    return _expand(members, [c for c, k in zip(cand, keep) if k], est[keep])


def cosine_pairs(vectors: np.ndarray, threshold: float) -> tuple[list[tuple[int, int]], np.ndarray]:
    """All ``i < j`` with ``cos(v_i, v_j) >= threshold``, vectorised in blocks; rows of zeros never pair."""
    x64 = np.asarray(vectors, dtype=np.float64)
    if x64.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got shape {x64.shape}")
    norms = np.linalg.norm(x64, axis=1, keepdims=True)
    valid = norms[:, 0] > 0
    x64 = np.where(valid[:, None], x64 / np.where(norms > 0, norms, 1.0), 0.0)
    x32 = x64.astype(np.float32)
    n = len(x64)
    block = max(1, min(n, _BLOCK_ELEMS // max(n, 1)))
    ii, jj = [], []
    for s in range(0, n, block):
        sim = x32[s:s + block] @ x32[s:].T  # rows s.., columns s.. (upper triangle incl. block)
        r, c = np.nonzero(sim >= threshold - _EMBED_MARGIN)
        r, c = r + s, c + s
        upper = c > r
        ii.append(r[upper])
        jj.append(c[upper])
    i = np.concatenate(ii) if ii else np.zeros(0, int)
    j = np.concatenate(jj) if jj else np.zeros(0, int)
    score = (x64[i] * x64[j]).sum(axis=1)  # each pair from its own two vectors: position-free
    keep = (score >= threshold) & valid[i] & valid[j]
    return list(zip(i[keep].tolist(), j[keep].tolist())), score[keep]


def embedding_pairs(texts: Sequence[str], threshold: float,
                    embed: Callable[[list[str]], np.ndarray]) -> dict[tuple[int, int], float]:
    order, members = _units([t if t.strip() else None for t in texts])
    if not order:
        return {}
    vecs = np.asarray(embed(list(order)))
    if vecs.shape[0] != len(order):
        raise ValueError(f"embedder returned {vecs.shape[0]} vectors for {len(order)} texts")
    unit_pairs, scores = cosine_pairs(vecs, threshold)
    return _expand(members, unit_pairs, scores)


# ---------------------------------------------------------------- clustering


class _UnionFind:
    """Union by size with path halving; each root also tracks its best (lowest-rank) member."""

    def __init__(self, rank: Sequence[int]):
        n = len(rank)
        self.parent, self.size, self.best, self.rank = list(range(n)), [1] * n, list(range(n)), rank

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        if self.rank[self.best[rb]] < self.rank[self.best[ra]]:
            self.best[ra] = self.best[rb]


def _histogram(sizes) -> dict[str, int]:
    out: dict[int, int] = {}
    for s in sizes:
        out[s] = out.get(s, 0) + 1
    return {str(k): out[k] for k in sorted(out)}


def dedup_rows(rows: Sequence[dict], cfg: DedupConfig,
               embed: Callable[[list[str]], np.ndarray] | None = None) -> DedupResult:
    """Deduplicate ``rows`` (pure apart from loading the default embedder when ``embed`` is None).

    ``embed`` maps a list of texts to an array of shape (len, dim); it need not normalise.
    ``cfg.input`` and ``cfg.on_error`` are not used here (see :func:`run`).
    """
    problems = [p for p in cfg.check() if p[0] not in ("input", "on_error")]
    if problems:
        raise ValueError("; ".join(f"{f}: {p}" for f, p in problems))
    rows = [with_id(r) for r in rows]
    n = len(rows)
    ids = [r["id"] for r in rows]
    # representative order: content id, then the whole row (rows equal in both are interchangeable)
    sort_keys = [(content_id(r), canonical_json(r)) for r in rows]
    rank = [0] * n
    for pos, i in enumerate(sorted(range(n), key=sort_keys.__getitem__)):
        rank[i] = pos
    texts = [text_of(r, cfg.field) for r in rows]
    norms = [normalize(t) for t in texts]

    found: dict[str, dict[tuple[int, int], float]] = {}
    methods = [m for m in METHODS if m in cfg.methods]
    for m in methods:
        if m == "exact":
            found[m] = exact_pairs(norms)
        elif m == "minhash":
            found[m] = minhash_pairs(norms, cfg.minhash_threshold, cfg.shingle_n, cfg.num_perm)
        else:
            if embed is None:
                embed = default_embedder(cfg.embedder, cfg.batch_size)
            found[m] = embedding_pairs(texts, cfg.embedding_threshold, embed)

    uf = _UnionFind(rank)
    removed_by: list[str | None] = [None] * n
    for m in methods:
        for i, j in found[m]:
            uf.union(i, j)
        for i in range(n):
            if removed_by[i] is None and uf.best[uf.find(i)] != i:
                removed_by[i] = m
    comps: dict[int, list[int]] = {}
    for i in range(n):
        comps.setdefault(uf.find(i), []).append(i)

    kept = []
    for i in range(n):
        root = uf.find(i)
        if uf.best[root] == i:
            kept.append({**rows[i], "dup_cluster": ids[i], "dup_cluster_size": len(comps[root])})

    edges: dict[int, list] = {}
    for m in methods:
        for (i, j), s in sorted(found[m].items()):
            edges.setdefault(uf.find(i), []).append([*sorted((ids[i], ids[j])), m, round(s, 6)])
    clusters, cluster_rows = [], []
    for root, members in comps.items():
        if len(members) < 2:
            continue
        members = sorted(members, key=rank.__getitem__)
        clusters.append([ids[i] for i in members])
        cluster_rows.append({
            "cluster": ids[members[0]], "size": len(members),
            "members": [{"id": ids[i], "removed_by": removed_by[i], "text": texts[i]} for i in members],
            "pairs": sorted(edges.get(root, [])),
        })
    order = sorted(range(len(clusters)), key=lambda k: (clusters[k][0], clusters[k]))
    clusters = [clusters[k] for k in order]
    cluster_rows = [cluster_rows[k] for k in order]

    pairs = {m: {tuple(sorted((ids[i], ids[j]))) for i, j in found[m]} for m in methods}
    dropped = n - len(kept)
    report = {
        "field": cfg.field,
        "methods": methods,
        "thresholds": {
            **({"minhash": {"jaccard": cfg.minhash_threshold, "shingle_n": cfg.shingle_n,
                            "num_perm": cfg.num_perm, "seed": MINHASH_SEED}} if "minhash" in methods else {}),
            **({"embedding": {"cosine": cfg.embedding_threshold, "embedder": cfg.embedder}}
               if "embedding" in methods else {}),
        },
        "counts": {"read": n, "written": len(kept), "dropped": dropped, "rejected": 0},
        "rows_removed_by_method": {m: sum(r == m for r in removed_by) for m in methods},
        "pairs_by_method": {m: len(found[m]) for m in methods},
        "clusters": len(clusters),
        "rows_in_clusters": sum(len(c) for c in clusters),
        "cluster_size_histogram": _histogram(len(c) for c in comps.values()),
        "rows_without_text": sum(not t.strip() for t in texts),
        "representative": "smallest content_id in the cluster",
    }
    assert sum(report["rows_removed_by_method"].values()) == dropped
    return DedupResult(kept=kept, clusters=clusters, pairs=pairs, report=report, cluster_rows=cluster_rows)


# ---------------------------------------------------------------- stage


def run(cfg: DedupConfig, run, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Read ``cfg.input``, deduplicate, write the outputs into the run folder, finish the run."""
    from ..dataio import read_records, write_rejected, write_records
    from ..records import Counts

    res = read_records(cfg.input, on_error=cfg.on_error, require_response=cfg.field == "response")
    embed = None
    if "embedding" in cfg.methods:
        embed = default_embedder(cfg.embedder, cfg.batch_size)
        run.record_model("embedder", {"name": cfg.embedder})
    out = dedup_rows(res.rows, cfg, embed=embed)
    counts = Counts(read=res.n_read, written=len(out.kept), dropped=out.report["counts"]["dropped"],
                    rejected=len(res.rejected)).check()
    report = {**out.report, "input": cfg.input, "counts": counts.as_dict()}
    outputs = ["deduped.jsonl", "clusters.jsonl", "dedup_report.json"]
    write_records(out.kept, run.path / "deduped.jsonl")
    write_records(out.cluster_rows, run.path / "clusters.jsonl")
    if res.rejected:
        write_rejected(res.rejected, run.path / "rejected.jsonl")
        outputs.append("rejected.jsonl")
    write_json(run.path / "dedup_report.json", report)
    removed = ", ".join(f"{m} {k}" for m, k in report["rows_removed_by_method"].items())
    log(f"dedup: read {counts.read}, kept {counts.written}, removed {counts.dropped} ({removed}), "
        f"rejected {counts.rejected}; {report['clusters']} clusters")
    run.finish(counts=counts.as_dict(), outputs=outputs, metrics=report)
    return report
