"""Proxy-tuning in one paired table (issue 22; arXiv:2401.08565, METHODS §7): the base, the expert
alone, the proxy at each alpha and the base tuned directly, on the same items.

Nothing new is evaluated here: the columns are found in the eval runs the report reads. Each model
that ran with ``--engine proxy`` (its summary entry carries ``proxy``: expert, anti-expert, alpha)
joins a **group** with every other proxy of the same base, expert, anti-expert and chat-template
mode evaluated with the same item settings (split, limit, seed, decoding, suite files -- everything
but the models and the engine fields: ``collect._settings``); one column per alpha. Plain models
(no ``proxy``) from eval runs with those settings fill the rest:

- **base**: the proxy's base model; **expert** / **anti-expert**: the models its options name (a
  train run folder counts as its merged model; the anti-expert only where it was evaluated);
- **tuned**: a plain model from a ``sharpset train`` run whose start is the base and whose training
  data is the expert's (the same ``sft``/``bct`` content hash in the two train manifests; by path
  where a manifest has none). Several: the one trained with the expert's budget (epochs, steps,
  batch, lr, seed), else the first, and a note names the others.

Per suite and metric, every column is read on the items all of them have a value for (``n`` units,
one n per row), so the table is paired throughout: each model's mean with its 95% interval
(:func:`sharpset.stats.mean_ci`) and its difference from the base
(:func:`sharpset.evaluate.pairing.compare_rows`); the paper's two numbers beside it: the **share of
the gap closed** per metric and alpha (:func:`sharpset.evaluate.pairing.gap_share_rows`;
"undefined" where tuned - base is not shown) and **knowledge kept**, proxy - tuned on the knowledge
suite's metrics (``compare_rows``). ``proxy.json`` holds every number; ``report.md`` and
``report.html`` show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .collect import Collection, EvalRun, Run, _inside, _load_run, _settings, direction
from .svg import esc

ENGINE_FIELDS = ("engine", "engine_options", "cluster", "cluster_options")  # how a model ran, not which items
KEPT_SUITES = ("knowledge",)  # the paper's "knowledge kept": MC and QA of proxy vs direct tuning
# suites that score a model's answers *against the base* (token_shift: the base's ranks of each answer token), so
# the base has no rows of its own (its own tokens are unshifted by definition); their rows are shown for the
# other columns, without a paired difference from the base or a share of the gap
BASE_IS_REFERENCE = ("token_shift",)
BUDGET = ("objective", "epochs", "max_steps", "min_steps", "batch_size", "grad_accum", "lr", "max_length", "seed")
ROLE_NAMES = {"base": "base", "antiexpert": "anti-expert", "expert": "expert alone", "tuned": "tuned directly"}


@dataclass
class Column:
    key: str  # base | antiexpert | expert | proxy@ALPHA | tuned
    role: str
    ev: EvalRun
    label: str  # the model's label in its eval run
    alpha: float | None = None
    train: Run | None = None

    @property
    def name(self) -> str:
        return f"proxy α={self.alpha:g}" if self.role == "proxy" else ROLE_NAMES[self.role]

    def rows(self, suite: str) -> dict[str, dict]:
        return {r["item"]: r for r in self.ev.samples(suite) if r.get("model") == self.label}

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "role": self.role, "name": self.name, "alpha": self.alpha,
                "eval_run": self.ev.run.name, "eval_label": self.label,
                "train_run": self.train.name if self.train else None}


@dataclass
class Group:
    base: tuple  # identities (:func:`_ident`)
    expert: tuple
    antiexpert: tuple
    chat_template: str
    settings: dict
    names: dict  # base / expert / antiexpert as the proxy run named them
    columns: list[Column] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)


def _where(name: Any, near: Path) -> str:
    """A model's folder resolved (a train run folder -> its merged/ or model/ folder, as eval resolves
    it), looked for from the current folder and ``near``; else the name as given (an embedded model)."""
    p = Path(str(name))
    for q in ([p] if p.is_absolute() else [Path.cwd() / p, near / p]):
        if q.exists():
            q = q.resolve()
            if (q / "manifest.json").is_file() and not (q / "config.json").exists():
                return next((str(q / s) for s in ("merged", "model") if (q / s / "config.json").exists()), str(q))
            return str(q)
    return str(name)


def _ident(run: Run, name: Any) -> tuple[str | None, str]:
    """A model as (fingerprint, folder) comparable across runs, wherever they were started from: the
    fingerprint the run's manifest keys it by (run.models_read: an eval's models, the proxy's
    ``engine:`` expert and anti-expert, a train run's start model; a train run folder named by its
    merged/ or model/ folder) or None, and :func:`_where`. Compared by :func:`_same`."""
    if not name:
        return None, ""
    inputs = run.manifest.get("inputs") or {}
    p = Path(str(name))
    for n in dict.fromkeys([str(name), str(p), str(p / "merged"), str(p / "model")]):
        for key in (n, f"model:{n}", f"engine:{n}", f"engine:model:{n}"):
            if key in inputs:
                return str(inputs[key]), _where(name, run.path.parent)
    return None, _where(name, run.path.parent)


def _same(a: tuple[str | None, str], b: tuple[str | None, str]) -> bool:
    """One model: the same fingerprint where both runs recorded one (a model retrained in place is
    another model), else the same folder or name."""
    return a[0] == b[0] if a[0] and b[0] else bool(a[1]) and a[1] == b[1]


def _item_settings(ev: EvalRun) -> dict:
    return {k: v for k, v in _settings(ev).items() if k not in ENGINE_FIELDS}


def _train_of(name: Any, near: Path, col: Collection) -> Run | None:
    """The train run folder a model folder lies in: among the runs read, else on disk beside it; a
    relative name not found from here (the runs were started from another folder): the one train run
    read whose path ends with it."""
    p = Path(_where(name, near)) if name else Path()
    if not p.is_absolute():
        parts = Path(str(name)).parts if name else ()
        parts = parts[:-1] if parts and parts[-1] in ("merged", "model") else parts
        hits = [t for t in col.trains if parts and t.path.parts[-len(parts):] == parts]
        return hits[0] if len(hits) == 1 else None
    hit = next((t for t in col.trains if _inside(p, t.path)), None)
    if hit is not None:
        return hit
    for q in (p, p.parent):
        if (q / "manifest.json").is_file():
            run = _load_run(q, q.parent)
            return run if run.stage == "train" else None
    return None


def expert_trains(col: Collection) -> set[Path]:
    """The train run folders (resolved) that the proxy-tuned models here name as their expert; their
    models are the groups' "expert alone" column, not effect rows of their own (report.collect)."""
    out = set()
    for ev in col.evals:
        for m in ev.summary.get("models", []):
            p = m.get("proxy")
            if isinstance(p, dict) and p.get("expert"):
                tr = _train_of(p["expert"], ev.run.path.parent, col)
                if tr is not None:
                    out.add(tr.path.resolve())
    return out


def _data_key(train: Run) -> tuple:
    """What a train run trained on: its sft/bct files by content hash (manifest inputs), else by path."""
    inputs = train.manifest.get("inputs") or {}
    return tuple((f, inputs.get(str(train.config[f])) or _where(train.config[f], train.path.parent))
                 for f in ("sft", "bct") if train.config.get(f))


def groups(col: Collection) -> list[Group]:
    """The proxy groups in the runs read, with their columns found (module docstring)."""
    found: dict[tuple, Group] = {}
    for ev in col.evals:
        for m in ev.summary.get("models", []):
            p = m.get("proxy")
            if not isinstance(p, dict) or p.get("alpha") is None:
                continue
            settings = _item_settings(ev)
            names = {"base": m.get("path") or m.get("name"), "expert": p.get("expert"),
                     "antiexpert": p.get("antiexpert"), "near": str(ev.run.path.parent)}
            ids = (_ident(ev.run, names["base"]), _ident(ev.run, p.get("expert")), _ident(ev.run, p.get("antiexpert")),
                   str(p.get("chat_template", "all")))
            key = (*(i[0] or i[1] for i in ids[:3]), ids[3], repr(sorted(settings.items(), key=str)))
            g = found.setdefault(key, Group(*ids, settings=settings, names=names))
            alpha = float(p["alpha"])
            if g.column(f"proxy@{alpha:g}") is None:
                g.columns.append(Column(f"proxy@{alpha:g}", "proxy", ev, m["label"], alpha=alpha))
    out = list(found.values())
    for g in out:
        _fill(g, col)
    return out


def _fill(g: Group, col: Collection) -> None:
    """Add the plain columns (base, anti-expert, expert, tuned) from eval runs with the group's settings."""
    plain = [(ev, m, _ident(ev.run, m.get("path") or m.get("name")))
             for ev in col.evals if _item_settings(ev) == g.settings
             for m in ev.summary.get("models", []) if not m.get("proxy")]
    proxies = sorted(g.columns, key=lambda c: c.alpha)
    found = {}
    for role, ident in (("base", g.base), ("antiexpert", g.antiexpert), ("expert", g.expert)):
        hit = next(((ev, m) for ev, m, i in plain if _same(i, ident)), None)
        if hit is not None:
            ev, m = hit
            found[role] = Column(role, role, ev, m["label"],
                                 train=_train_of(m.get("path") or m.get("name"), ev.run.path.parent, col))
        elif role != "antiexpert":
            g.notes.append(f"no eval run with the proxies' item settings evaluates the {ROLE_NAMES[role]} "
                           f"({g.names[role]}) as a plain model: its column is empty")
    tuned = _tuned(g, plain, found.get("expert"), col)
    g.columns = [c for c in (found.get("base"), found.get("antiexpert"), found.get("expert")) if c] + proxies \
        + ([tuned] if tuned else [])


def _tuned(g: Group, plain: list, expert: Column | None, col: Collection) -> Column | None:
    exp_train = expert.train if expert else _train_of(g.names["expert"], Path(g.names["near"]), col)
    cands = []
    for ev, m, ident in plain:
        tr = _train_of(m.get("path") or m.get("name"), ev.run.path.parent, col)
        if tr is None or _same(ident, g.expert) or not _same(_ident(tr, tr.config.get("model")), g.base):
            continue
        if exp_train is not None and _data_key(tr) != _data_key(exp_train):
            continue
        cands.append(Column("tuned", "tuned", ev, m["label"], train=tr))
    if not cands:
        what = f"on the expert's training data ({', '.join(f'{f} {v}' for f, v in _data_key(exp_train))})" \
            if exp_train else "(the expert is not a train run here, so its data is unknown)"
        g.notes.append(f"no eval run with the proxies' item settings holds the base tuned directly {what}: "
                       "no share of the gap closed and no knowledge kept")
        return None
    if exp_train is not None:
        same = [c for c in cands if all(c.train.config.get(k) == exp_train.config.get(k) for k in BUDGET)]
        cands = same + [c for c in cands if c not in same]
    if len(cands) > 1:
        g.notes.append(f"{len(cands)} directly tuned models match; the table uses {cands[0].train.name} "
                       f"({cands[0].label} in {cands[0].ev.run.name}), not "
                       + ", ".join(f"{c.train.name} ({c.label} in {c.ev.run.name})" for c in cands[1:]))
    return cands[0]


def table(g: Group) -> dict[str, Any]:
    """The group's numbers (module docstring): per suite and metric, ``n`` units on the items every
    column has, each column's ``mean`` and ``vs_base`` (paired), ``gap_share`` per proxy and, on the
    knowledge suite, ``kept`` per proxy (proxy - tuned)."""
    from ..evaluate.pairing import common_items, compare_rows, gap_share_rows, unit_of, weights_of
    from ..stats import mean_ci

    base, tuned = g.column("base"), g.column("tuned")
    proxies = [c for c in g.columns if c.role == "proxy"]
    out = {"base": str(g.names["base"]), "expert": str(g.names["expert"]), "antiexpert": str(g.names["antiexpert"]),
           "chat_template": g.chat_template,
           "columns": [c.describe() for c in g.columns], "notes": list(g.notes), "rows": []}
    if base is None:
        return out
    seed = int(base.ev.summary.get("seed") or 0)
    out["seed"] = seed
    entries: dict[str, dict] = {}  # suite -> its summary entry, the base's first (a suite the base has no rows of too)
    for c in g.columns:
        for sname, entry in c.ev.summary.get("suites", {}).items():
            entries.setdefault(sname, entry)
    for sname, entry in entries.items():
        have = {c.key: c.rows(sname) for c in g.columns}
        present = [c.key for c in g.columns if have[c.key]]
        if len(present) < 2 or (not have["base"] and sname not in BASE_IS_REFERENCE):
            continue
        for m in entry.get("metrics", []):
            items = common_items(*(have[k] for k in present), metric=m)
            sub = {k: {i: have[k][i] for i in items} for k in present}
            units = [unit_of(sub[present[0]][i]) for i in items]  # the base's rows where it has them
            cells: dict[str, Any] = {}
            for c in g.columns:
                if c.key not in sub:
                    # the column's eval run did not run this suite; the base of a suite scored against it: the reference
                    cells[c.key] = {"reference": True} if c.key == "base" and sname in BASE_IS_REFERENCE else None
                    continue
                # each column's own row weights (token_shift: an answer weighs its own tokens, per model)
                cells[c.key] = {"mean": mean_ci([sub[c.key][i].get(m) for i in items], seed, groups=units,
                                                weights=weights_of([sub[c.key][i] for i in items]))}
                if c.key != "base" and items and "base" in sub:
                    cells[c.key]["vs_base"] = compare_rows(sub["base"], sub[c.key], [m], seed)[m]
            mean = cells[present[0]]["mean"]
            row = {"suite": sname, "metric": m, "direction": direction(sname, m, entry.get("lower_is_better", [])),
                   "n": mean["n"], "n_rows": mean["n_rows"], "cells": cells}
            if tuned is not None and "tuned" in sub and "base" in sub and items:
                row["gap_share"] = {p.key: gap_share_rows(sub["base"], sub[p.key], sub["tuned"], [m], seed)[m]
                                    for p in proxies if p.key in sub}
                if sname in KEPT_SUITES:
                    row["kept"] = {p.key: compare_rows(sub["tuned"], sub[p.key], [m], seed)[m]
                                   for p in proxies if p.key in sub}
            out["rows"].append(row)
    return out


def tables(col: Collection) -> list[dict[str, Any]]:
    """Every proxy group's :func:`table` (what ``proxy.json`` holds)."""
    return [table(g) for g in groups(col)]


# -- text of the cells, shared by report.md and report.html ----------------------------------------
def _ci(v: float | None, ci: list | None, sign: bool = False) -> str:
    from .html import num

    if v is None:
        return "-"
    return f"{num(v, sign=sign)} [{num(ci[0])}, {num(ci[1])}]" if ci else f"{num(v, sign=sign)} (n too small)"


def _cell(c: dict | None) -> str:
    if c is None:
        return "not evaluated"
    if c.get("reference"):
        return "the reference"
    text = _ci(c["mean"].get("mean"), c["mean"].get("ci95"))
    d = c.get("vs_base")
    return text + (f" · Δ {_ci(d.get('diff'), d.get('ci95'), sign=True)}" if d and d.get("diff") is not None else "")


def _share(s: dict | None) -> str:
    from .html import num

    if not s or s.get("share") is None:
        return "undefined"
    return _ci(s["share"], s["ci95"]) if s.get("ci95") else f"{num(s['share'])} (interval unbounded)"


def _kept(c: dict | None, d: int) -> str:
    from ..stats import verdict_text

    if not c or c.get("diff") is None:
        return "-"
    p = f", p={c['p']:.2g}" if c.get("p") is not None else ""
    return f"{_ci(c['diff'], c.get('ci95'), sign=True)}{p}: {verdict_text(c, d)}"


def grids(t: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, head, rows) of the group's three tables as text: the paired table, the share of the gap
    closed, knowledge kept (the last two only with a directly tuned column)."""
    cols = t["columns"]
    proxies = [c for c in cols if c["role"] == "proxy"]
    if not t["rows"]:  # no plain base with the proxies' settings: the notes say so
        return []
    main = [[r["suite"], r["metric"] + {1: " ↑", -1: " ↓", 0: ""}[r["direction"]], _n(r)]
            + [_cell(r["cells"].get(c["key"])) for c in cols] for r in t["rows"]]
    out = [("Each model on the same items: mean [95% CI] · Δ = paired difference from the base [95% CI]",
            ["suite", "metric", "n", *[c["name"] for c in cols]], main)]
    gap = [r for r in t["rows"] if "gap_share" in r]
    if gap and proxies:
        out.append(("Share of the gap closed, (proxy − base) / (tuned − base) [95% CI, units resampled jointly]; "
                    "undefined where tuned − base is not shown",
                    ["suite", "metric", "n", "tuned − base", *[c["name"] for c in proxies]],
                    [[r["suite"], r["metric"], _n(r), _gap(r), *[_share(r["gap_share"].get(c["key"])) for c in proxies]]
                     for r in gap]))
    kept = [r for r in t["rows"] if "kept" in r]
    if kept and proxies:
        out.append(("Knowledge kept: proxy − tuned directly, paired [95% CI]",
                    ["suite", "metric", "n", "tuned directly", *[c["name"] for c in proxies]],
                    [[r["suite"], r["metric"], _n(r), _ci(r["cells"]["tuned"]["mean"].get("mean"),
                                                          r["cells"]["tuned"]["mean"].get("ci95")),
                      *[_kept(r["kept"].get(c["key"]), r["direction"]) for c in proxies]] for r in kept]))
    return out


def _n(r: dict) -> str:
    return f"{r['n']}" + (f" ({r['n_rows']} rows)" if r["n_rows"] != r["n"] else "")


def _gap(r: dict) -> str:
    s = next(iter(r["gap_share"].values()), None)
    g = s and s.get("gap")
    return _ci(g.get("diff"), g.get("ci95"), sign=True) if g else "-"


def _short(ident: str) -> str:
    """A model's folder name (a train run's merged/ model: the run's name), or its embedded name."""
    p = Path(ident)
    return p.parent.name if p.name in ("merged", "model") else p.name


def _title(t: dict) -> str:
    return f"{_short(t['base'])} steered by {_short(t['expert'])} (anti-expert {_short(t['antiexpert'])})"


def _legend(t: dict) -> list[str]:
    out = [f"{c['name']}: {c['eval_label']} in {c['eval_run']}" + (f" (train run {c['train_run']})"
                                                                    if c.get("train_run") else "")
           for c in t["columns"]]
    return out + [f"anti-expert {t['antiexpert']}; chat template: {t['chat_template']}; bootstrap seed {t.get('seed')}"]


INTRO = ("Proxy-tuning (arXiv:2401.08565) next to what it stands in for: the base, the expert alone, the base steered "
         "by base + α·(expert − anti-expert) at each α, and the base tuned directly on the expert's data. Every "
         "column is read on the items all of them have (n independent units per row), so each Δ is paired; "
         "↑/↓ mark the better direction where one is plain.")


def table_md(t: dict) -> list[str]:
    """One table's Markdown under its heading: legend, notes, the grids (report.md; sweep.md per cell)."""
    from .markdown import _table, md

    out = [f"- {md(x)}" for x in _legend(t)] + [""]
    out += [f"> **Note:** {md(n)}\n" for n in t["notes"]]
    for title, head, rows in grids(t):
        out += [f"**{md(title)}**", ""] + _table(head, rows)
    return out


def proxy_md(col: Collection, ts: list[dict] | None = None) -> list[str]:
    from .markdown import md

    ts = tables(col) if ts is None else ts
    out: list[str] = []
    for t in ts:
        out += [f"## Proxy-tuning: {md(_title(t))}", "", md(INTRO), ""] + table_md(t)
    return out


def proxy_section(col: Collection, ts: list[dict] | None = None) -> str:
    """The tables as HTML; empty when no eval run here used the proxy engine."""
    from .html import grid

    ts = tables(col) if ts is None else ts
    if not ts:
        return ""
    out = ['<section id="proxy"><h2>Proxy-tuning</h2>', f"<p>{esc(INTRO)}</p>"]
    for t in ts:
        out.append(f"<h3>{esc(_title(t))}</h3><ul class=meta>" + "".join(f"<li>{esc(x)}</li>" for x in _legend(t))
                   + "</ul>" + "".join(f'<div class="warnbox">{esc(n)}</div>' for n in t["notes"]))
        for title, head, rows in grids(t):
            out.append(f'<p class="meta">{esc(title)}</p>' + grid(head, rows))
    out.append("</section>")
    return "".join(out)
