"""``sharpset curate``: pick a small set from a tagged pool, report it against baselines, build controls.

Strategies (METHODS §2; a registry, :data:`STRATEGIES`). All work on the pool in *canonical order*
(rows sorted by content id, then canonical JSON), break every tie by that order, and draw
randomness from ``derive_seed(seed, "curate", row id)``: the selection and its order depend on
the rows' content and the seed only, never on input order.

- ``quality-diversity`` (DEITA, arXiv:2312.15685): quality gate ``quality >= min_quality``; score
  ``s = complexity x quality`` (``complexity_column``, default tag's ``difficulty``, its
  instruction-complexity analogue); sort by s descending; walk the list and keep a row only if
  ``max_j cos(e_row, e_kept_j) <= max_cosine`` (0.9) over the rows already kept, until n.
  Embeddings: ``minilm-l6`` of the instruction by default. :func:`greedy_diverse` is the
  vectorised walk (blocked float32 matrix products, pairs within 1e-4 of the bound rescored in
  float64, survivors of a block resolved in order): exactly the sequential rule, checked against a
  plain loop in ``bench/curate.py`` and the tests.
- ``ifd`` (Cherry LLM, arXiv:2308.12032; Superfiltering, arXiv:2402.00530): quality gate first
  (DEITA's study: IFD alone picked noisy rows), drop ``IFD > max_ifd`` (1: the answer is no
  easier to predict given the question, Q and A unrelated), take the highest. ``ifd_column``
  says which: ``ifd_loss`` = mean NLL(A|Q)/mean NLL(A) or ``ifd_ppl`` = PPL(A|Q)/PPL(A); recorded.
- ``k-center`` (greedy farthest point; Sener & Savarese, arXiv:1708.00489): first centre = the
  seed's first row in random order; then repeatedly the row farthest (``1 - cos``) from its nearest
  centre. Uses no scores (pure coverage; it will happily pick outliers).
- ``quota`` (Magpie, arXiv:2406.08464: "classify and fill per-category quotas"): per-category
  shares (``quotas``; empty = equal shares over the categories present), allotted by largest
  remainder; a category short of rows gives its remainder to the others in proportion. Category
  from tag's ``category`` or synth's ``steer_category`` (``category_column: auto`` takes the first
  that any row fills). Within a category: ``quota_within`` = random | score | longest.
- ``less`` (LESS, arXiv:2402.04333; :mod:`.less`): target-aware. ``--target FILE`` holds a few rows
  showing the wanted behaviour; a LoRA warm-up of the ``--selector`` model on a random 5% of the
  pool, per-row Adam-preconditioned LoRA gradients projected to 8192 dims (the pool: a gradient
  datastore reused across targets), plain gradients for the target rows; score = max over target
  rows of the learning-rate-weighted cosine over warm-up checkpoints; the top n.
- baselines: ``random`` (seeded), ``longest`` (response characters, "Long is More",
  arXiv:2402.04833), ``all``.

Failed scores. A score that is None (tag failed it: ``<score>_status``) is never filled with a
default (DEITA#36 filled 3.0): the row is left out of every strategy that needs that score and
counted in the report (``excluded``).

Shape filter. ``--spec NAME_OR_FILE --min-conformance X`` scores every row against a response-shape
spec (spec.py) and keeps only rows with ``conformance >= X`` before any strategy runs (counted).

Selection report (``curate_report.json`` + a printed table): category coverage, response length
(words) and shape distributions, near-duplicate rate (share of rows with another row of the same
set at ``cos >= near_dup_cosine``), mean scores (with bootstrap 95% CIs) and spec conformance -- for
the selection, random-N and longest-N (same N = the number selected, same seed, drawn from the same
candidate pool) and the pool.

Controls (Kung & Peng, arXiv:2305.11383, METHODS §3), ``--control`` on the selection:
- ``simplified``: the last user turn reduced to its output-space information. Closed-label rows:
  "Answer with one of: <labels>." (after the row's ``input`` column, if it has one: the task
  instance without its instruction, as in Super-NaturalInstructions). Open rows (our
  reconstruction: their output space is the answer's form): "Answer in about W words[, as a
  bulleted list / numbered list / with headings / including a code block]." System turns dropped.
- ``delusive``: correct input and output spaces, wrong mapping -- closed-label rows only: the
  answer label is replaced through a seeded derangement of the task's label set (every answer
  wrong, consistently; the label space is kept exactly). Other rows are left out (counted).
- ``empty``: no instruction: the last user turn becomes the row's ``input`` column or ``""``;
  system turns dropped.
Closed-label rows: the answer (stripped) is in a known label set -- ``labels``, or detected per task
(``task_column`` if rows carry it): 2 <= |distinct answers| <= ``max_labels`` and at least two rows
per label on average. Every closed-label dataset (the selection and each control) gets its
random-guess accuracy (mean over tasks of 1/|labels|), the expected accuracy of guessing from the
label prior (sum_l p_l^2) and the majority-label accuracy (max_l p_l).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from ...config import field
from ...embed import default_embedder, embed_rows  # noqa: F401 -- re-exported (sharpset.curate.embed_rows)
from ...stats import mean_ci  # noqa: F401 -- re-exported (sharpset.curate.mean_ci)
from ...records import canonical_json, content_id, with_id
from ...records import instruction_of, response_of
from ...text.degeneration import GATE_COLUMNS  # one definition, shared with constrain
from .controls import CONTROLS, build_control, label_baselines, label_spaces
from .less import LessContext, LessFields
from .strategies import (  # noqa: F401 -- re-exported (sharpset.stages.curate.*)
    STRATEGIES, Selection, _deita_scores, _greedy_diverse, _num, _rand_key, _require_column, allot,
    category_column, greedy_diverse, k_center, s_all, s_ifd, s_k_center, s_longest, s_quality_diversity,
    s_quota, s_random)

STAGE = "curate"
VERSION = 7  # 7: gates compute a missing column from the row's text (gates_untagged text; issue 25: an
# untagged pool skipped every gate and LESS picked two pseudo-refusal template rows)
# 6: 6: --strategy less warms up on at least 100 rows (warmup_min_rows was 16; issue 25: a ~14-step
# warm-up's features ranked the target-like rows last)
# 5: --strategy less projects with sharpset's TorchProjector by default (issue 25: projector
# torch; a new field whose default draws another matrix than trak's, the only projector before)
# 4: the pseudo_refusal gate by default (issue 20: answers that decline, then help anyway)
# 3: degeneration / completeness gates by default (issue 13)
# 2: the selection is the run folder's first output (was the control set; issue 10)

# degeneration / completeness gates (issue 13): text.degeneration.GATE_COLUMNS, gate -> (column, value that fails it)
GATES = ("empty", "loop", "incomplete", "pseudo_refusal")
STRATEGY_NAMES = ("quality-diversity", "ifd", "k-center", "quota", "less", "random", "longest", "all")
EMBED_FIELDS = ("instruction", "response", "conversation")


@dataclass
class CurateFields:
    """curate's own fields (``CurateConfig`` adds ``--strategy less``'s after them)."""

    input: str = field("", "input records (a tagged pool): .jsonl, .parquet, a datasets folder or a run folder")
    n: int = field(300, "rows to select")
    strategy: str = field("quality-diversity", f"selection strategy: {', '.join(STRATEGY_NAMES)}")
    seed: int = field(0, "seed for random order (random baseline, k-center start, quota draws, delusive maps)")
    control: str | None = field(None, f"also build a control set from the selection: {', '.join(CONTROLS)}")
    spec: str | None = field(None, "response-shape spec (shipped name or .yaml): filter rows by conformance")
    min_conformance: float = field(1.0, "with --spec: keep rows whose conformance (criteria passed / checked) is >= this")
    min_quality: float | None = field(3.5, "quality gate for quality-diversity and ifd (null: no gate). "
                                           "3.5 = midpoint of tag's 1-6 scale (our reconstruction)")
    quality_column: str = field("quality", "quality score column (tag: expected judge rating 1-6)")
    complexity_column: str = field("difficulty", "complexity score column for DEITA's complexity x quality")
    ifd_column: str = field("ifd_loss", "IFD column for --strategy ifd: ifd_loss (Cherry) or ifd_ppl (Superfiltering)")
    max_ifd: float = field(1.0, "ifd: drop rows with IFD above this (> 1: Q does not help predict A)")
    max_cosine: float = field(0.9, "quality-diversity: keep a row only if its max cosine to kept rows is <= this (DEITA: 0.9)")
    near_dup_cosine: float = field(0.9, "report: a row is a near-duplicate if another row of its set is at cosine >= this")
    category_column: str = field("auto", "quota/report category column: auto (category, else steer_category) or a column")
    quotas: dict = field({}, "quota: {category: share}; empty = equal shares over the categories present")
    quota_within: str = field("random", "quota: order within a category: random, score (complexity x quality) or longest")
    embed_field: str = field("instruction", "text embedded for diversity: instruction, response or conversation")
    embedder: str = field("minilm-l6", "sentence embedder: embedded name or local sentence-transformers folder")
    batch_size: int = field(64, "embedding batch size")
    labels: list = field([], "closed label set for controls (empty: detect per task from the answers)")
    task_column: str = field("task", "column naming a row's task (label spaces are per task); absent = one task")
    max_labels: int = field(20, "label detection: at most this many distinct answers make a closed label space")
    gates: list = field(list(GATES), f"drop rows flagged by tag's lm signals before selecting, any of {', '.join(GATES)} "
                                     "(a row without a gate's column: gates_untagged)")
    gates_untagged: str = field("text", "a row lacking a gate's column (a pool not tagged with lm): text = compute "
                                        "the column from the row's answer as tag does (model-free); skip = let the "
                                        "row pass (a gate no row has a column for is skipped and said so)")
    on_error: str = field("raise", "bad input rows: raise (exit 2) or skip (to rejected.jsonl)")

    def key_inputs(self) -> dict[str, str]:
        """The embedder by fingerprint, the spec file by content (run.config_reads)."""
        from ...run import models_read, spec_key

        return {**models_read(self.embedder), **({"file:spec": spec_key(self.spec)} if self.spec else {})}

    def check(self) -> list[tuple[str, str]]:
        p = []
        if not self.input:
            p.append(("input", "required: the pool to select from"))
        if self.n < 1:
            p.append(("n", "must be >= 1"))
        if self.strategy not in STRATEGY_NAMES:
            p.append(("strategy", f"{self.strategy!r} is not one of {', '.join(STRATEGY_NAMES)}"))
        if self.control is not None and self.control not in CONTROLS:
            p.append(("control", f"{self.control!r} is not one of {', '.join(CONTROLS)}"))
        if not 0 <= self.min_conformance <= 1:
            p.append(("min_conformance", "must be in [0, 1]"))
        if self.ifd_column not in ("ifd_loss", "ifd_ppl"):
            p.append(("ifd_column", "must be ifd_loss or ifd_ppl"))
        for name in ("max_cosine", "near_dup_cosine"):
            if not -1 <= getattr(self, name) <= 1:
                p.append((name, "must be in [-1, 1]"))
        if self.quota_within not in ("random", "score", "longest"):
            p.append(("quota_within", "must be random, score or longest"))
        for k, v in self.quotas.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                p.append(("quotas", f"{k}: share must be a number >= 0, got {v!r}"))
        if self.quotas and not sum(float(v) for v in self.quotas.values() if isinstance(v, (int, float))) > 0:
            p.append(("quotas", "shares sum to 0"))
        if self.embed_field not in EMBED_FIELDS:
            p.append(("embed_field", f"must be one of {', '.join(EMBED_FIELDS)}"))
        if self.batch_size < 1:
            p.append(("batch_size", "must be >= 1"))
        bad_gates = [g for g in self.gates if g not in GATE_COLUMNS]
        if bad_gates:
            p.append(("gates", f"unknown {bad_gates}; choose from {', '.join(GATE_COLUMNS)}"))
        if self.gates_untagged not in ("text", "skip"):
            p.append(("gates_untagged", "must be text or skip"))
        if self.max_labels < 2:
            p.append(("max_labels", "must be >= 2"))
        if self.labels and (len(set(map(str, self.labels))) < 2):
            p.append(("labels", "a closed label set needs at least two distinct labels"))
        if self.on_error not in ("raise", "skip"):
            p.append(("on_error", "must be raise or skip"))
        return p


@dataclass
class CurateConfig(LessFields, CurateFields):
    """curate's config: its own fields, then ``--strategy less``'s (less.LessFields)."""

    def key_inputs(self) -> dict[str, str]:
        return {**CurateFields.key_inputs(self), **(self.less_reads() if self.strategy == "less" else {})}

    def check(self) -> list[tuple[str, str]]:
        return CurateFields.check(self) + self.less_check()


# ---------------------------------------------------------------- pool


def canonical_order(rows: Sequence[dict]) -> list[dict]:
    """Rows with ids, sorted by (content id, canonical JSON): the order every strategy works in."""
    rows = [with_id(r, "sft") for r in rows]
    keys = [(content_id(r, "sft"), canonical_json(r)) for r in rows]
    return [rows[i] for i in sorted(range(len(rows)), key=keys.__getitem__)]


# ---------------------------------------------------------------- report


def near_dup_rate(x: np.ndarray, threshold: float, block: int = 2048) -> float | None:
    """Share of rows with another row of the set at cosine >= threshold (float64, blocked)."""
    n = len(x)
    if n < 2:
        return 0.0 if n else None
    x = np.asarray(x, dtype=np.float64)
    hit = np.zeros(n, bool)
    for s in range(0, n, block):
        sim = x[s:s + block] @ x.T
        sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        hit[s:s + block] = sim.max(axis=1) >= threshold
    return round(float(hit.mean()), 6)


def _shape(row: dict) -> dict:
    if "shape_words" in row and "shape_opening" in row:
        return row
    from ...text.shape import shape_features

    return shape_features(response_of(row), prompt=instruction_of(row))


def summarize(rows: Sequence[dict], x: np.ndarray, cfg: CurateConfig, cat_col: str | None,
              pool_categories: Sequence[str]) -> dict[str, Any]:
    """The report's figures for one set of rows (x: their embeddings)."""
    shapes = [_shape(r) for r in rows]
    words = [s["shape_words"] for s in shapes]
    out: dict[str, Any] = {"n": len(rows)}
    if cat_col:
        counts: dict[str, int] = {}
        for r in rows:
            c = r.get(cat_col)
            key = "<none>" if c is None else str(c)
            counts[key] = counts.get(key, 0) + 1
        covered = [c for c in pool_categories if c in counts]
        out["categories"] = {"column": cat_col, "covered": len(covered), "of": len(pool_categories),
                             "counts": dict(sorted(counts.items()))}
    out["words"] = {**mean_ci(words, cfg.seed),
                    **({"p10": float(np.percentile(words, 10)), "median": float(np.median(words)),
                        "p90": float(np.percentile(words, 90))} if words else {})}
    share = (lambda k: round(sum(1 for s in shapes if s[k]) / len(shapes), 4)) if shapes else (lambda k: None)
    dist = lambda key: {v: sum(1 for s in shapes if s[key] == v) for v in sorted({s[key] for s in shapes})}
    out["shape"] = {"opening": dist("shape_opening"), "closing": dist("shape_closing"),
                    "with_bullets": share("shape_bullets"), "with_numbered": share("shape_numbered_items"),
                    "with_headings": share("shape_headings"), "with_code": share("shape_code_blocks"),
                    "first_person": share("shape_has_first_person")}
    out["near_dup_rate"] = near_dup_rate(x, cfg.near_dup_cosine)
    scores = {}
    for col in (cfg.quality_column, cfg.complexity_column, "input_quality", "ifd_loss", "ifd_ppl"):
        if any(col in r for r in rows):
            scores[col] = mean_ci([_num(r, col) for r in rows], cfg.seed)
            scores[col]["failed"] = sum(_num(r, col) is None for r in rows)
    if any(cfg.quality_column in r for r in rows) and any(cfg.complexity_column in r for r in rows):
        prod = [(_num(r, cfg.quality_column) or math.nan) * (_num(r, cfg.complexity_column) or math.nan)
                for r in rows]
        scores["complexity_x_quality"] = mean_ci([p for p in prod if not math.isnan(p)], cfg.seed)
    out["scores"] = scores
    if rows and "conformance" in rows[0]:
        out["conformance"] = mean_ci([r.get("conformance") for r in rows], cfg.seed)
    return out


# ---------------------------------------------------------------- the stage


@dataclass
class CurateResult:
    selected: list[dict]
    report: dict[str, Any]
    control: list[dict] | None = None


def apply_gates(rows: list[dict], gates: Sequence[str],
                untagged: str = "text") -> tuple[list[dict], dict[str, Any], dict[str, int]]:
    """Rows passing every gate, what each gate did (``{gate: dropped count}``, or the reason it was
    skipped), and ``{gate: rows whose column was computed from their text}``.

    A row without a gate's column (a pool not tagged with ``lm``): ``untagged="text"`` computes the
    health columns from the row's answer exactly as ``tag`` does (:func:`text.degeneration.health`,
    model-free, a few ms a row; ``incomplete`` only where the row says whether it was ``truncated``:
    from the text alone it cannot be known); ``"skip"`` lets the row pass, and a gate whose column no row has
    is skipped and said so. Issue 25: an untagged pool's two "I'm sorry for your loss, but as an AI
    ..." template rows passed the skipped gates, LESS picked both, and a third of the tuned model's
    answers opened with them."""
    from ...text.degeneration import health

    info: dict[str, Any] = {}
    from_text: dict[str, int] = {}
    derived: dict[int, dict] = {}
    lang = "language_mismatch" in gates

    def knowable(r: dict, col: str) -> bool:
        # whether an answer was cut is known only from its generation (the row's `truncated`); from
        # the text alone (does it end cleanly?) every code block, list or unpunctuated human answer
        # would fail, so such a row passes the incomplete gate
        return col != "complete" or r.get("truncated") is not None

    def value(i: int, r: dict, col: str):
        """The row's column; else, under ``untagged="text"``, computed from its text where knowable."""
        if col in r:
            return r[col]
        if untagged == "skip" or not knowable(r, col):
            return None
        if i not in derived:
            derived[i] = health(response_of(r), prompt=instruction_of(r) if lang else None,
                                truncated=r.get("truncated"))
        return derived[i].get(col)

    keep = list(enumerate(rows))
    for g in gates:
        col, bad = GATE_COLUMNS[g]
        missing = 0 if untagged == "skip" else sum(col not in r and knowable(r, col) for _, r in keep)
        if not missing and not any(col in r for r in rows):
            info[g] = f"skipped: no '{col}' column (tag with scores including lm)"
            continue
        if missing:
            from_text[g] = missing
        before = len(keep)
        keep = [(i, r) for i, r in keep if value(i, r, col) != bad]
        info[g] = before - len(keep)
    return [r for _, r in keep], info, from_text


def curate_rows(rows: Sequence[dict], cfg: CurateConfig,
                embed: Callable[[list[str]], np.ndarray] | None = None,
                less: LessContext | None = None) -> CurateResult:
    """Select from ``rows`` (pure apart from loading the default embedder when ``embed`` is None;
    ``--strategy less`` reads and writes its gradient datastore and target features where ``less`` says)."""
    problems = [p for p in cfg.check() if p[0] not in ("input", "on_error")]
    if problems:
        raise ValueError("; ".join(f"{f}: {p}" for f, p in problems))
    ordered = canonical_order(rows)
    pool, gate_info, gates_from_text = apply_gates(ordered, cfg.gates, cfg.gates_untagged)
    if less is not None:  # LESS's datastore covers the pool as read: one build for any gates or spec
        less = replace(less, pool=ordered)
    spec_info = None
    if cfg.spec:
        from ...text.spec import conformance, load_spec

        spec = load_spec(cfg.spec)
        scored = [{**r, **conformance(spec, response_of(r), prompt=instruction_of(r))} for r in pool]
        cand = [r for r in scored if r["conformance"] >= cfg.min_conformance]
        spec_info = {"spec": spec.name, "source": spec.source, "criteria": spec.criteria(),
                     "min_conformance": cfg.min_conformance, "pool_rows": len(scored),
                     "kept": len(cand), "filtered_out": len(scored) - len(cand),
                     "pool_mean_conformance": mean_ci([r["conformance"] for r in scored], cfg.seed)}
    else:
        cand = pool
    if embed is None:

        embed = default_embedder(cfg.embedder, cfg.batch_size)
    x = embed_rows(cand, cfg.embed_field, embed) if cand else np.zeros((0, 1))
    fn = STRATEGIES[cfg.strategy]
    sel = fn(cand, x, cfg, less) if getattr(fn, "needs_context", False) else fn(cand, x, cfg)
    assert len(set(sel.idx)) == len(sel.idx), "a strategy selected a row twice"
    selected = []
    for rank, (i, s) in enumerate(zip(sel.idx, sel.scores), 1):
        r = dict(cand[i])
        prov = r.pop("provenance", None)
        r.update(curate_strategy=cfg.strategy, curate_rank=rank,
                 curate_score=None if s is None else round(float(s), 6))
        if prov is not None:
            r["provenance"] = prov
        selected.append(r)

    # baselines: same N (what was selected), same seed, same candidate pool
    n_sel = len(sel.idx)
    base_cfg = CurateConfig(**{**cfg.__dict__, "n": max(n_sel, 1)})
    sets = {"selection": sel.idx, "random_n": s_random(cand, x, base_cfg).idx[:n_sel],
            "longest_n": s_longest(cand, x, base_cfg).idx[:n_sel], "pool": list(range(len(cand)))}
    cat_col = category_column(cand, cfg.category_column)
    pool_cats = sorted({str(r[cat_col]) for r in cand if r.get(cat_col) is not None}) if cat_col else []
    figures = {name: summarize([cand[i] for i in idx], x[idx] if len(idx) else x[:0], cfg, cat_col, pool_cats)
               for name, idx in sets.items()}
    report: dict[str, Any] = {
        "strategy": cfg.strategy, "n_requested": cfg.n, "n_selected": n_sel, "seed": cfg.seed,
        "embedder": cfg.embedder, "embed_field": cfg.embed_field, "candidates": len(cand),
        "strategy_info": sel.info, "gates": gate_info, "gates_from_text": gates_from_text, "spec_filter": spec_info, "sets": figures,
        "baselines": "random_n / longest_n: same N as selected, same seed, same candidate pool",
    }
    if n_sel < cfg.n:
        report["shortfall"] = f"selected {n_sel} of {cfg.n} requested: the eligible pool ran out"
    spaces = label_spaces(selected, cfg)
    report["label_baselines"] = label_baselines(selected, spaces, cfg.task_column) if spaces else None
    control = None
    if cfg.control:
        control, report["control"] = build_control(selected, cfg.control, cfg)
    return CurateResult(selected, report, control)


def format_report(report: dict[str, Any]) -> str:
    """The printed summary: one line per figure, the selection beside random-N, longest-N and the pool."""
    sets = report["sets"]
    names = ("selection", "random_n", "longest_n", "pool")
    lines = [f"curate: strategy {report['strategy']}, selected {report['n_selected']} of "
             f"{report['candidates']} candidates (requested {report['n_requested']}, seed {report['seed']})"]
    info = report.get("strategy_info") or {}
    excl = {k: v for k, v in info.items() if k in ("failed_scores", "below_quality_gate", "ifd_above_max",
                                                   "missing_category", "rejected_as_similar") and v}
    if excl:
        lines.append("  excluded: " + ", ".join(f"{k} {v}" for k, v in excl.items()))
    if report.get("spec_filter"):
        sf = report["spec_filter"]
        lines.append(f"  spec {sf['spec']}: kept {sf['kept']} of {sf['pool_rows']} rows with conformance >= "
                     f"{sf['min_conformance']}")
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
    rows = [("n", lambda s: s["n"]),
            ("near-dup rate", lambda s: s["near_dup_rate"]),
            ("words mean", lambda s: s["words"]["mean"]),
            ("words median", lambda s: s["words"].get("median"))]
    first = sets["selection"]
    if "categories" in first:
        rows.append(("categories covered", lambda s: f"{s['categories']['covered']}/{s['categories']['of']}"))
    for col in first["scores"]:
        rows.append((f"mean {col}", lambda s, c=col: s["scores"].get(c, {}).get("mean")))
    if "conformance" in first:
        rows.append(("mean conformance", lambda s: s["conformance"]["mean"]))
    for key in ("with_bullets", "with_headings", "with_code", "first_person"):
        rows.append((key.replace("_", " "), lambda s, k=key: s["shape"][k]))
    lines.append(f"  {'':26s}" + "".join(f"{n:>12s}" for n in names))
    for label, get in rows:
        lines.append(f"  {label:26s}" + "".join(f"{fmt(get(sets[n])):>12s}" for n in names))
    q = report["sets"]["selection"]["scores"].get("quality", {}).get("mean")
    qr = report["sets"]["random_n"]["scores"].get("quality", {}).get("mean")
    nd, ndr = sets["selection"]["near_dup_rate"], sets["random_n"]["near_dup_rate"]
    if q is not None and qr is not None:
        lines.append(f"  selection vs random-N: mean quality {q:.3f} vs {qr:.3f} "
                     f"({'higher' if q > qr else 'NOT higher'}); near-dup rate {fmt(nd)} vs {fmt(ndr)} "
                     f"({'lower' if nd is not None and ndr is not None and nd < ndr else 'NOT lower'})")
    lb = report.get("label_baselines")
    if lb:
        lines.append(f"  closed-label selection: random guess {lb['random_guess']:.3f}, label prior "
                     f"{lb['label_prior']:.3f}, majority {lb['majority']:.3f}")
    if report.get("control"):
        c = report["control"]
        lines.append(f"  control {c['kind']}: {c['rows']} rows ({c['left_out_not_closed_label']} left out as "
                     f"not closed-label)")
        if c.get("label_baselines"):
            b = c["label_baselines"]
            lines.append(f"    control label baselines: random guess {b['random_guess']:.3f}, label prior "
                         f"{b['label_prior']:.3f}, majority {b['majority']:.3f}")
    if report.get("shortfall"):
        lines.append("  " + report["shortfall"])
    return "\n".join(lines)


def run(cfg: CurateConfig, run, log: Callable[[str], None] = print,
        embed: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, Any]:
    """Read ``cfg.input``, select, write ``selected.jsonl`` (+ ``control_<kind>.jsonl``) and the report."""
    from ...dataio import read_records, write_records, write_rejected
    from ...dataio import write_json
    from ...records import Counts

    res = read_records(cfg.input, "sft", on_error=cfg.on_error)
    less = None
    if cfg.strategy == "less":
        from pathlib import Path

        from .less import read_target

        read_target(cfg.target)  # a bad target file stops here, before any model loads (file:line: field)
        less = LessContext(Path(cfg.datastore) if cfg.datastore else run.path.parent / "less-datastores",
                           run.path, log)
    if embed is None:

        embed = default_embedder(cfg.embedder, cfg.batch_size)
        run.record_model("embedder", {"name": cfg.embedder})
    out = curate_rows(res.rows, cfg, embed=embed, less=less)
    counts = Counts(read=res.n_read, written=len(out.selected), dropped=len(res.rows) - len(out.selected),
                    rejected=len(res.rejected)).check()
    report = {**out.report, "input": cfg.input, "counts": counts.as_dict()}
    # the selection is listed first, so the run folder reads as the selection (`sharpset wrap
    # curated/` after `curate --control`); a control set is read by its own file name
    write_records(out.selected, run.path / "selected.jsonl")
    outputs = ["selected.jsonl"]
    if out.control is not None:
        write_records(out.control, run.path / f"control_{cfg.control}.jsonl")
        outputs.append(f"control_{cfg.control}.jsonl")
    if res.rejected:
        write_rejected(res.rejected, run.path / "rejected.jsonl")
        outputs.append("rejected.jsonl")
    write_json(run.path / "curate_report.json", report)
    outputs.append("curate_report.json")
    log(format_report(report))
    run.finish(counts=counts.as_dict(), outputs=outputs, metrics={
        "n_selected": report["n_selected"], "candidates": report["candidates"],
        "near_dup_rate": report["sets"]["selection"]["near_dup_rate"],
        "near_dup_rate_random_n": report["sets"]["random_n"]["near_dup_rate"],
        "mean_quality": report["sets"]["selection"]["scores"].get(cfg.quality_column, {}).get("mean"),
        "mean_quality_random_n": report["sets"]["random_n"]["scores"].get(cfg.quality_column, {}).get("mean"),
        "report": "curate_report.json"})
    return {"n_selected": report["n_selected"], "report": str(run.path / "curate_report.json")}


def show(path: str, n: int = 5) -> str:
    from pathlib import Path

    from ...dataio import read_records

    p = Path(path)
    src = p / "selected.jsonl" if (p / "selected.jsonl").exists() else p
    out = []
    for r in read_records(src, "sft").rows[:n]:
        out.append(f"--- #{r.get('curate_rank')} {r['id']} score={r.get('curate_score')} "
                   f"quality={r.get('quality')} category={r.get('category', r.get('steer_category'))}")
        out.append(f"[user] {instruction_of(r)[:300]}\n[assistant] {response_of(r)[:300]}")
    for c in sorted(p.glob("control_*.jsonl")) if p.is_dir() else []:
        for r in read_records(c, "sft").rows[:n]:
            out.append(f"--- control {r['control']} of {r['source_id']}\n[user] {instruction_of(r)[:300]!r}\n"
                       f"[assistant] {response_of(r)[:200]}")
    return "\n".join(out)
