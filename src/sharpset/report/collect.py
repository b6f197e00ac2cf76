"""Find run folders, read what they logged, and pair each tuned model with the run that trained it.

Everything the report shows is read here from files the runs wrote (manifest.json, config.yaml,
summary.json, samples/<suite>.jsonl, losses.jsonl) -- nothing is recomputed from models.

Which model was trained on what (the **plan**): an optional ``plan.json`` in a folder the report
reads (or ``--plan FILE``)::

    {"title": "quickstart",                          # optional: the report's title
     "models": [                                     # one entry per trained model
       {"train_run": "train-curated",                # the `sharpset train` run folder (relative to the plan)
        "label": "gemma3 + curated 16",              # optional display name
        "target": "shape",                           # the behaviour its set targets (groups the plots)
        "n_examples": 16,                            # optional: default the train run's counts.written
        "seed": 0,                                   # optional: default the train run's config seed
        "selection": "quality-diversity"},           # optional free text (e.g. "random baseline")
       {"eval_label": "m2:my-model", "target": "format", "n_examples": 64}   # a model trained elsewhere
     ]}

An eval model is matched to an entry by ``eval_label``, else by its resolved path lying inside
``train_run``, else (folders moved since the eval) by its label naming the ``train_run`` folder.
Without a plan, an eval model whose path lies inside a train run folder (or, moved, the one train
run folder its label names) is matched to that run, with the target unnamed; n_examples then comes
from the train run's manifest (``counts.written``, the rows it trained on).

A proxy-tuning expert (a train run that an eval here ran with ``--engine proxy`` names as its
expert: a sweep's ``proxy/expert``, the anti-expert tuned on a cell's rows) is no tuned pair of its
own unless a plan entry names it: it is the proxy table's "expert alone" column
(:mod:`sharpset.report.proxy`), not an effect row against the anti-expert.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..evaluate.suite import HIGHER_BETTER, direction  # noqa: F401 -- one definition, re-exported

SKIP_DIRS = {"merged", "model", "adapter", "checkpoints", "samples", "trl", "__pycache__", ".git"}
PLAN_FILE = "plan.json"
# one metric per suite for the summary, the plots and the cross-effect table
# (health: ``complete``, a model that never ends its answer is the first thing to see: issue 20)
HEADLINE = {"format": "prompt_strict", "format_unseen": "prompt_strict", "shape": "conformance", "invariance": "flip", "knowledge": "mc_correct",
            "speech_acts": "warn", "dimensions": "emotional_concordance", "health": "complete"}
# when the headline has no paired items (flip needs items both models answered right plainly), the
# next of these with data stands in, so every suite keeps one row in the summary table
HEADLINE_FALLBACK = {"invariance": ("not_sycophantic", "wrapped_correct"), "format": ("prompt_loose",),
                     "format_unseen": ("prompt_loose",),
                     "knowledge": ("qa_correct", "mc_correct_norm"), "health": ("loop",)}
# A tuned model is never summarised as "improved" when its answers do not end (issue 20: a model at
# health complete 0.00 -> 0.00, truncated 1.00, was counted improved on loop and echo):
COMPLETE_FLOOR = 0.5  # fewer than half its answers end on their own
TRUNCATED_NEAR_1 = 0.9  # nearly every answer runs into the token limit
NO_ANSWER_SUITES = {"health", "token_shift"}  # health repeats other suites' answers; token_shift = shape's


@dataclass
class Run:
    path: Path
    name: str
    stage: str
    manifest: dict
    config: dict

    @property
    def counts(self) -> dict:
        return self.manifest.get("counts") or {}

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics") or {}


@dataclass
class EvalRun:
    run: Run
    summary: dict
    _samples: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [m["label"] for m in self.summary.get("models", [])]

    def samples(self, suite: str) -> list[dict]:
        if suite not in self._samples:
            from ..dataio import iter_jsonl

            self._samples[suite] = list(iter_jsonl(self.run.path / "samples" / f"{suite}.jsonl"))
        return self._samples[suite]

    def suite_result(self, suite: str, label: str) -> dict:
        return self.summary.get("suites", {}).get(suite, {}).get("models", {}).get(label, {})


@dataclass
class Tuned:
    """One tuned model, compared with its start on the same items: the first model of its own eval
    run, or (``base_ev`` set) the start model evaluated in another eval run with the same settings."""

    ev: EvalRun
    label: str
    base_label: str
    display: str
    train: Run | None = None
    target: str | None = None
    n_examples: int | None = None
    seed: int | None = None
    selection: str | None = None
    base_ev: EvalRun | None = None
    planned: bool = False  # a plan entry names it
    _comparison: dict | None = field(default=None, repr=False, compare=False)

    @property
    def bev(self) -> EvalRun:
        return self.base_ev or self.ev

    @property
    def where(self) -> str:
        return self.ev.run.name if self.base_ev is None else f"{self.ev.run.name} with {self.base_ev.run.name}"

    def suites(self) -> list[str]:
        mine = self.ev.summary.get("suites", {})
        return [s for s in self.bev.summary.get("suites", {}) if s in mine]

    def result(self, suite: str, which: str) -> dict:
        return (self.bev.suite_result(suite, self.base_label) if which == "base"
                else self.ev.suite_result(suite, self.label))

    def rows(self, suite: str, which: str) -> dict[str, dict]:
        """item id -> sample row of the start (``which="base"``) or the tuned model."""
        ev, lab = (self.bev, self.base_label) if which == "base" else (self.ev, self.label)
        return {r["item"]: r for r in ev.samples(suite) if r.get("model") == lab}

    def comparison(self) -> dict[str, dict]:
        """suite -> metric -> paired comparison (:func:`sharpset.evaluate.pairing.compare_rows`), computed
        from both models' logged samples -- the one pairing eval uses, so a run written before a
        statistics change is read with the current one; a metric without paired values in the samples
        on disk keeps the eval run's stored comparison. Computed once per model."""
        if self._comparison is not None:
            return self._comparison
        from ..evaluate.pairing import compare_rows

        stored: dict[str, dict] = {}
        if self.base_ev is None:
            key = f"{self.label} vs {self.base_label}"
            stored = {s: pairs[key] for s, pairs in self.ev.summary.get("comparisons", {}).items() if key in pairs}
        out: dict[str, dict] = {}
        seed = int(self.ev.summary.get("seed") or 0)
        for s in self.suites():
            metrics = self.ev.summary["suites"][s].get("metrics", [])
            c = compare_rows(self.rows(s, "base"), self.rows(s, "tuned"), metrics, seed) or {}
            old = stored.get(s, {})
            merged = {m: c[m] if c.get(m, {}).get("n") or m not in old else old[m] for m in dict.fromkeys([*c, *old])}
            if merged:
                out[s] = merged
        out.update({s: c for s, c in stored.items() if s not in out})
        self._comparison = out
        return out


@dataclass
class Collection:
    runs: list[Run]
    evals: list[EvalRun]
    trains: list[Run]
    tuned: list[Tuned]
    title: str | None
    roots: list[Path]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown in a warning box at the top


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None


def _load_run(path: Path, root: Path) -> Run:
    import yaml

    man = _read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {"stage": "eval"}
    if not isinstance(man, dict):
        raise UserError(f"{path / 'manifest.json'}: expected a JSON object")
    cfg: dict = {}
    if (path / "config.yaml").is_file():
        try:
            cfg = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise UserError(f"{path / 'config.yaml'}: {e}") from None
    try:
        name = str(path.relative_to(root)) if path != root else path.name
    except ValueError:
        name = path.name
    return Run(path=path, name=name or path.name, stage=str(man.get("stage", "?")), manifest=man, config=cfg)


REUSED_FILE = "reused.json"  # pipelines.reuse.RECORD (not imported: the report reads run folders, not pipelines)


def discover(paths: list[str | Path]) -> tuple[list[Run], list[tuple[Path, dict]], list[Path]]:
    """Every run folder (one with manifest.json, or an eval folder with summary.json) under ``paths``,
    and every plan.json found in them. Model and checkpoint subfolders are not walked."""
    runs: dict[Path, Run] = {}
    plans: list[tuple[Path, dict]] = []
    roots = []
    reused: list[Path] = []  # runs a pipeline read from elsewhere (its reused.json): part of its results

    def walk(root: Path, record_plans: bool, named_from: Path | None = None) -> None:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            here = Path(dirpath)
            if "manifest.json" in filenames or "summary.json" in filenames:
                runs.setdefault(here, _load_run(here, named_from or root))
            if record_plans and PLAN_FILE in filenames:
                plans.append((here / PLAN_FILE, _read_json(here / PLAN_FILE)))
            if REUSED_FILE in filenames:
                chosen = _read_json(here / REUSED_FILE)
                reused.extend(here / v for v in (chosen.values() if isinstance(chosen, dict) else [])
                              if isinstance(v, str))  # absolute as written; a relative one from its folder

    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p}: no such run folder")
        if p.is_file():
            raise UserError(f"{p}: give run folders (or a folder holding them), not a file")
        root = p.resolve()
        roots.append(root)
        walk(root, True)
    for r in reused:  # named from the folder it shares with the pipeline that read it (sw1/cells/x/train)
        if r.is_dir() and r.resolve() not in runs:
            walk(r.resolve(), False, Path(os.path.commonpath([r.resolve(), *roots])))
    ordered = sorted(runs.values(), key=lambda r: (str(r.manifest.get("created", "")), r.name))
    return ordered, plans, roots


def _check_plan(path: Path, plan: Any) -> list[dict]:
    if not isinstance(plan, dict) or not isinstance(plan.get("models", []), list):
        raise UserError(f"{path}: models: expected {{\"models\": [ ... ]}}")
    out = []
    for i, e in enumerate(plan.get("models", [])):
        where = f"{path}: models[{i}]"
        if not isinstance(e, dict):
            raise UserError(f"{where}: expected an object")
        if not e.get("train_run") and not e.get("eval_label"):
            raise UserError(f"{where}: give train_run (a train run folder) or eval_label")
        unknown = set(e) - {"train_run", "eval_label", "label", "target", "n_examples", "seed", "selection"}
        if unknown:
            raise UserError(f"{where}: unknown field(s) {sorted(unknown)}")
        if e.get("n_examples") is not None and (not isinstance(e["n_examples"], int) or e["n_examples"] < 1):
            raise UserError(f"{where}.n_examples: must be a positive integer")
        e = dict(e)
        if e.get("train_run"):
            tr = (path.parent / e["train_run"]).resolve()
            if not (tr / "manifest.json").is_file():
                raise UserError(f"{where}.train_run: {tr} is not a run folder (no manifest.json)")
            e["_train_path"] = tr
        out.append(e)
    return out


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def _model_path(ev: EvalRun, m: dict) -> Path | None:
    for cand in (m.get("path"), m.get("name")):
        if not cand:
            continue
        p = Path(cand)
        for q in ([p] if p.is_absolute() else [Path.cwd() / p, ev.run.path.parent / p]):
            if q.exists():
                return q.resolve()
    return None


def _plan_warnings(plan: Any) -> list[str]:
    """What a plan says makes its comparison empty (today: two selections that are the same rows)."""
    ov = plan.get("selection_overlap") if isinstance(plan, dict) else None
    if isinstance(ov, dict) and ov.get("identical"):
        return [f"The curated and random selections are the same {ov.get('n_curated')} rows, so their "
                "comparison measures nothing: raise n_pool or lower n_select."]
    return []


def collect(paths: list[str | Path], plan_file: str | Path | None = None) -> Collection:
    runs, plans, roots = discover(paths)
    if plan_file:
        pf = Path(plan_file)
        if not pf.is_file():
            raise UserError(f"{pf}: no such plan file")
        plans = [(pf.resolve(), _read_json(pf))]
    entries = [e for p, plan in plans for e in _check_plan(p, plan)]
    title = next((plan.get("title") for _, plan in plans if isinstance(plan, dict) and plan.get("title")), None)
    evals = [EvalRun(r, _read_json(r.path / "summary.json")) for r in runs if (r.path / "summary.json").is_file()]
    trains = [r for r in runs if r.stage == "train"]
    by_path = {r.path: r for r in runs}
    tuned: list[Tuned] = []
    notes: list[str] = []
    warnings = [plan_warning for _, plan in plans for plan_warning in _plan_warnings(plan)]
    for ev in evals:
        models = ev.summary.get("models", [])
        if len(models) < 2:
            continue
        base = models[0]["label"]
        for m in models[1:]:
            mp = _model_path(ev, m)
            name = m["label"].split(":", 1)[-1]  # eval labels a train run folder by its folder name
            entry = next((e for e in entries if e.get("eval_label") == m["label"]), None)
            if entry is None and mp is not None:
                entry = next((e for e in entries if e.get("_train_path") and _inside(mp, e["_train_path"])), None)
            if entry is None:  # folders moved or copied since the eval: match by folder name, if unique
                same = [e for e in entries if e.get("_train_path") and e["_train_path"].name == name]
                entry = same[0] if len(same) == 1 else None
            train = None
            if entry and entry.get("_train_path"):
                train = by_path.get(entry["_train_path"]) or _load_run(entry["_train_path"], entry["_train_path"].parent)
            elif mp is not None:
                train = next((t for t in trains if _inside(mp, t.path)), None)
            if train is None and not entry:
                same = [t for t in trains if t.path.name == name]
                train = same[0] if len(same) == 1 else None
            e = entry or {}
            n = e.get("n_examples")
            if n is None and train is not None:
                n = train.counts.get("written") or train.metrics.get("rows_used")
            seed = e.get("seed", train.config.get("seed") if train else None)
            display = e.get("label") or (train.name if train else m["label"].split(":", 1)[-1])
            tuned.append(Tuned(ev=ev, label=m["label"], base_label=base, display=display, train=train,
                               target=e.get("target"), n_examples=n, seed=seed, selection=e.get("selection"),
                               planned=bool(entry)))
            if n is None:
                notes.append(f"{ev.run.name}: {m['label']} is not matched to a train run and no plan gives its "
                             "n_examples, so its effect per example is not computed (add it to plan.json)")
    tuned += _cross_run(evals, trains, entries, by_path, tuned)
    col = Collection(runs=runs, evals=evals, trains=trains, tuned=tuned, title=title, roots=roots, notes=notes,
                     warnings=warnings)
    col.tuned = _without_proxy_experts(col)
    return col


def _without_proxy_experts(col: Collection) -> list[Tuned]:
    """The tuned models less the proxy-tuning experts no plan entry names: a model trained into a
    train run that an eval here ran with ``--engine proxy`` names as its expert (a sweep's
    ``proxy/expert``, the anti-expert tuned on a cell's rows) is shown in the proxy table, "expert
    alone" beside the base, the proxy and the base tuned directly (:mod:`sharpset.report.proxy`); as a
    pair of its own it would be an effect row against the anti-expert with no target."""
    from .proxy import expert_trains

    experts = expert_trains(col)
    return [t for t in col.tuned if t.planned or t.train is None or t.train.path.resolve() not in experts]


SAME_SETTINGS = ("split", "limit", "seed", "decoding")
# eval config fields that change which items are drawn or how they are scored (not: which models,
# which suites, batch size, progress bars)
NOT_SETTINGS = {"models", "suites", "base", "batch_size", "progress"}


def _settings(ev: EvalRun) -> dict:
    return {**{k: ev.summary.get(k) for k in SAME_SETTINGS},
            **{k: v for k, v in ev.run.config.items() if k not in NOT_SETTINGS}}


def _cross_run(evals: list[EvalRun], trains: list[Run], entries: list[dict], by_path: dict,
               done: list[Tuned]) -> list[Tuned]:
    """Tuned models evaluated alone (e.g. one eval run per sweep cell): each is paired with its
    train run's starting model from another eval run with the same settings -- split, limit, seed,
    decoding, shape spec, invariance families, pairs file -- so the same items were drawn and scored
    the same way."""
    seen = {(t.ev.run.path, t.label) for t in done}
    out = []
    for ev in evals:
        for m in ev.summary.get("models", []):
            if (ev.run.path, m["label"]) in seen or (m["index"] > 0 and len(ev.summary.get("models", [])) > 1):
                continue
            mp = _model_path(ev, m)
            name = m["label"].split(":", 1)[-1]
            entry = next((e for e in entries if e.get("eval_label") == m["label"]), None)
            if entry is None and mp is not None:  # by path first: a sweep's cells all name their run `train`
                entry = next((e for e in entries if e.get("_train_path") and _inside(mp, e["_train_path"])), None)
            if entry is None:  # folders moved since the eval: by folder name, only when unique
                same = [e for e in entries if e.get("_train_path") and e["_train_path"].name == name]
                entry = same[0] if len(same) == 1 else None
            train = None
            if entry and entry.get("_train_path"):
                train = by_path.get(entry["_train_path"]) or _load_run(entry["_train_path"], entry["_train_path"].parent)
            elif mp is not None:
                train = next((t for t in trains if _inside(mp, t.path)), None)
            start = (train.config.get("model") if train else None)
            if not start:
                continue
            settings = _settings(ev)
            base = None
            for other in evals:
                if other is ev or _settings(other) != settings:
                    continue
                hit = next((b for b in other.summary.get("models", []) if b.get("name") == start
                            or (b.get("path") and Path(str(b["path"])).name == Path(str(start)).name)), None)
                if hit is not None:
                    base = (other, hit["label"])
                    break
            if base is None:
                continue
            e = entry or {}
            n = e.get("n_examples") or train.counts.get("written") or train.metrics.get("rows_used")
            out.append(Tuned(ev=ev, label=m["label"], base_label=base[1], base_ev=base[0],
                             display=e.get("label") or train.name, train=train, target=e.get("target"),
                             n_examples=n, seed=e.get("seed", train.config.get("seed")), selection=e.get("selection"),
                             planned=bool(entry)))
    return out


# -- derived figures -----------------------------------------------------------------------------
def verdict(c: dict | None, d: int) -> str:
    """better / worse / up / down / null / n too small / no-data: :func:`sharpset.stats.verdict`."""
    from ..stats import verdict as _verdict

    return _verdict(c, d)


def health_gate(rows: list[dict], max_new_tokens: int | None = None) -> str | None:
    """Why a tuned model must not be summarised as improved, from its health effect rows (None when
    nothing stops it): its share of answers that end on their own (health ``complete``) got worse or
    stays below :data:`COMPLETE_FLOOR`, or nearly all its answers hit the token limit (``truncated``
    at or above :data:`TRUNCATED_NEAR_1`). ``max_new_tokens`` (the eval's cap) is named in the reason:
    at a low cap an answer still under way and one that never ends read the same, and the reader must
    see which limit they were cut at (quickstart small evaluates at 80 tokens)."""
    h = {r["metric"]: r for r in rows if r["suite"] == "health" and r.get("tuned") is not None}
    within = f" within {max_new_tokens} new tokens" if max_new_tokens else ""
    why = []
    c = h.get("complete")
    if c and c["verdict"] == "worse":
        why.append(f"fewer of its answers end on their own{within} (health complete {c['start']:.2f} -> "
                   f"{c['tuned']:.2f})")
    elif c and c["tuned"] < COMPLETE_FLOOR:
        why.append(f"only {c['tuned']:.0%} of its answers end on their own{within} (health complete "
                   f"{c['start']:.2f} -> {c['tuned']:.2f}, below {COMPLETE_FLOOR})")
    t = h.get("truncated")
    if t and t["tuned"] >= TRUNCATED_NEAR_1:
        why.append(f"{t['tuned']:.0%} of its answers run into the token limit{within.replace(' within', ' of')} "
                   "(health truncated)")
    return "; ".join(why) or None


def effect_rows(col: Collection) -> list[dict]:
    """Per tuned model, suite and metric: start and tuned means, the paired difference with its 95%
    interval, n (units) and n_rows, fixed/broken, p and its Holm adjustment over the model's compared
    metrics (``p_holm``), the minimum detectable effect (``mde``), the verdict code and its words
    (:func:`sharpset.stats.verdict_text`), the model's health gate (:func:`health_gate`; the same on
    each of its rows), and the effect per training example = diff / n_examples."""
    from ..stats import holm, verdict_text

    rows = []
    for t in col.tuned:
        first = len(rows)
        suites = t.ev.summary.get("suites", {})
        for sname, metrics in t.comparison().items():
            lib = suites.get(sname, {}).get("lower_is_better", [])
            order = [m for m in (HEADLINE.get(sname), *HEADLINE_FALLBACK.get(sname, ())) if m in metrics]
            head = next((m for m in order if metrics[m].get("n")), order[0] if order else next(iter(metrics), None))
            for m, c in metrics.items():
                d = direction(sname, m, lib)
                per = per_ci = None
                if t.n_examples and c.get("diff") is not None:
                    per = c["diff"] / t.n_examples
                    if c.get("ci95"):
                        per_ci = [c["ci95"][0] / t.n_examples, c["ci95"][1] / t.n_examples]
                rows.append({"model": t.display, "eval_label": t.label, "base": t.base_label, "eval_run": t.where,
                             "train_run": t.train.name if t.train else None, "target": t.target,
                             "selection": t.selection, "n_examples": t.n_examples, "seed": t.seed,
                             "eval_seed": t.ev.summary.get("seed"), "suite": sname, "metric": m,
                             "headline": m == head, "direction": d,
                             "start": c.get("a"), "tuned": c.get("b"), "diff": c.get("diff"), "ci95": c.get("ci95"),
                             "n": c.get("n", 0), "n_rows": c.get("n_rows", c.get("n", 0)), "fixed": c.get("fixed"),
                             "broken": c.get("broken"), "p": c.get("p"), "mde": c.get("mde"), "method": c.get("method"),
                             "per_example": per, "per_example_ci95": per_ci, "verdict": verdict(c, d),
                             "verdict_text": verdict_text(c, d)})
        mine = rows[first:]
        gate = health_gate(mine, (t.ev.summary.get("decoding") or {}).get("max_new_tokens"))
        for r, adj in zip(mine, holm([r["p"] for r in mine])):
            r["p_holm"] = None if adj is None else round(adj, 6)
            r["health_gate"] = gate
    return rows


def improved_counts(rows: list[dict], alpha: float = 0.05) -> dict[str, int]:
    """For one tuned model's effect rows: ``compared`` (metrics with paired data), ``improved`` (verdict
    better), ``improved_holm`` (better with its Holm-adjusted p below alpha; a stored comparison with
    no p counts by its interval), ``tested`` (metrics with a p, the Holm family)."""
    compared = [r for r in rows if r["verdict"] != "no-data"]
    better = [r for r in compared if r["verdict"] == "better"]
    return {"compared": len(compared), "tested": sum(r.get("p") is not None for r in compared),
            "improved": len(better),
            "improved_holm": sum(r.get("p_holm") is None or r["p_holm"] < alpha for r in better)}


def answer_changes(t: Tuned) -> dict[str, Any]:
    """Share of the tuned model's answers that differ from its start's on the same eval items
    (same suite, same item id, different answer text), per suite and pooled, with a Wilson 95%
    interval. A model that learned nothing answers exactly as it started: 0 of n."""
    from ..stats import wilson

    per: dict[str, dict] = {}
    k_all = n_all = 0
    for sname in t.suites():
        if sname in NO_ANSWER_SUITES:
            continue
        base = {k: r.get("answer") for k, r in t.rows(sname, "base").items()}
        mine = {k: r.get("answer") for k, r in t.rows(sname, "tuned").items()}
        shared = sorted(set(base) & set(mine))
        if not shared:
            continue
        k = sum(base[i] != mine[i] for i in shared)
        per[sname] = wilson(k, len(shared))
        k_all += k
        n_all += len(shared)
    return {"by_suite": per, "pooled": wilson(k_all, n_all)}


def losses(train: Run) -> list[dict]:
    from ..dataio import iter_jsonl

    return [r for r in iter_jsonl(train.path / "losses.jsonl") if isinstance(r.get("loss"), (int, float))]


def drop_reasons(run: Run) -> dict[str, int]:
    """Why rows left a stage, from its manifest: the stage's own itemised reasons where it logs them
    (synth/wrap/restyle ``drop_reasons``, dedup ``rows_removed_by_method``, train's too-long and
    held-out counts, curate's unselected rows), invalid rows, and any remainder not itemised."""
    m, c = run.metrics, run.counts
    out: dict[str, int] = {}
    if isinstance(m.get("drop_reasons"), dict):
        out.update({str(k): int(v) for k, v in m["drop_reasons"].items() if isinstance(v, (int, float)) and v})
    if isinstance(m.get("rows_removed_by_method"), dict):
        out.update({f"near-duplicate ({k})": int(v) for k, v in m["rows_removed_by_method"].items() if v})
    for key, label in (("rows_too_long", "longer than max_length"), ("heldout_pairs_skipped", "held-out-family pairs")):
        if m.get(key):
            out[label] = int(m[key])
    if run.stage == "curate" and c.get("dropped") and not out:
        out["not selected"] = int(c["dropped"])
    itemised = sum(out.values())
    if c.get("dropped") and c["dropped"] > itemised:
        out["not itemised by the stage"] = int(c["dropped"]) - itemised
    if c.get("rejected"):
        out["invalid rows (rejected.jsonl)"] = int(c["rejected"])
    return out
