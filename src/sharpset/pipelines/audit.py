"""The ``audit`` pipeline: the research claims sharpset was built on, re-tested on the user's models.

``sharpset run audit`` runs, for each claim in :data:`CLAIMS`, the arms it compares -- each arm a
model (the base or the aligned one), untrained or trained on a named data set with a stated
objective, evaluated on fixed items -- and turns the paired differences into a verdict by the rule
the registry states (:func:`judge`), never by hand:

- **superiority** (the treatment arm better than the reference on a metric with a better direction):
  :func:`sharpset.stats.verdict` of the paired comparison with its **Holm-adjusted** p (across every
  comparison this audit made): "better" -> holds, "worse" -> does not hold, otherwise
  "inconclusive at this power (MDE X)", X the minimum detectable effect at 80% power at this n;
- **non-inferiority** with a stated ``margin`` (absolute, on the metric's scale): the treatment is
  no worse than the reference by more than the margin. The same 95% interval read against
  ``-margin`` instead of 0 (:func:`sharpset.stats.verdict` of the interval shifted by the margin,
  judged by the interval alone): lower end above ``-margin`` -> holds, upper end below ``-margin``
  -> does not hold, else inconclusive.

A claim holds when every deciding comparison holds, does not hold when any does not, is "not run"
(with the reason) when none could run, and is inconclusive otherwise. The other comparisons are
evidence, printed beside it. Claims whose parts are missing stay in the registry with ``needs``:
their row reads "not run: needs ..." -- never a verdict.

Arms shared by claims run once (one run folder per arm and seed, named as quickstart names its
steps); every step is a cached, resumable stage run (:func:`sharpset.pipelines.quickstart.stage_run`),
so a killed audit resumes where it stopped and ``--claims`` subsets share what they have in common.
Seeds: each trained arm is trained once per seed (training order, LoRA init, and the random-N draw);
the comparison pools the seeds, pairing ``seed:item`` rows and resampling *items* (a row's unit):
``n`` counts items, ``n_rows`` items x seeds. Untrained arms are evaluated once (greedy).

Outputs: ``audit.json`` (``claims``: per claim ``claim``, ``verdict`` one of holds / does not hold /
inconclusive / not run, ``verdict_text``, ``rule``, its deciding comparison's ``diff``, ``ci95``,
``p``, ``p_holm``, ``n``, ``seeds``, ``mde``, the ``paper``'s figure, and every comparison under
``checks``), ``audit.md`` (the verdict table, then one section per claim), and a dataset card for
every data set it built. ``--dry-run`` prints the plan (claims, arms, stage runs, cached or to run,
an estimated cost) without running anything.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..run import RunDir
from ..signals import QUALITY_THRESHOLD
from .claims import ARMS, CLAIM_IDS, CLAIMS, NI, Arm, Check, Claim  # noqa: F401 -- the registry, re-exported
from .quickstart import pipeline_reads, stage_run

STAGE = "audit"
VERSION = 1

# The size dial. n: the curated set's rows (LIMA's N); pool_factor: the pool arm holds pool_factor x
# n rows (LIMA's claim is about a pool >= 4N); steps: optimizer steps of every "same steps" arm (the
# pool's "same epochs" arm gets steps x pool rows / n); seeds: trainings per arm; n_pool: synth
# attempts (about 2 in 3 survive cleaning and dedup: the pool must reach pool_factor x n).
SIZES: dict[str, dict[str, int]] = {
    "small": {"n": 8, "pool_factor": 4, "steps": 12, "seeds": 2, "n_pool": 64, "eval_limit": 8,
              "eval_max_new_tokens": 64, "wrap_questions": 24, "response_max_tokens": 160},
    "medium": {"n": 16, "pool_factor": 4, "steps": 24, "seeds": 2, "n_pool": 120, "eval_limit": 20,
               "eval_max_new_tokens": 128, "wrap_questions": 64, "response_max_tokens": 256},
}
DIAL = tuple(SIZES["small"])
BASE_SUITES = ("format", "format_unseen", "knowledge")  # + health, always
ALIGNED_SUITES = ("invariance", "format", "format_unseen", "knowledge")


@dataclass
class AuditConfig:
    size: str = field("small", f"the one size dial: {', '.join(SIZES)}")
    # not in the run key (as sweep's max_cells): a subset runs in the same folder and shares its stage runs
    # with every other subset; the folder is complete once an audit of every claim has run
    claims: list = field(list(CLAIM_IDS), f"claims to run, any of {', '.join(CLAIM_IDS)} (those that need missing "
                                          "parts are listed as not run)", in_key=False)
    aligned_model: str = field("smollm2-135m-instruct", "aligned chat model: writes the pool, gets BCT / the counterfactual")
    base_model: str = field("gemma3-270m", "base (pretrained) model trained on the selections and controls")
    embedder: str = field("minilm-l6", "sentence embedder for dedup and diversity")
    pool: str = field("", "an existing SFT pool (file, folder or run folder) instead of synthesising one")
    margin: float = field(0.1, "non-inferiority margin: a treatment no worse than its reference by more than this "
                               "(absolute, on the metric's 0-1 scale)")
    lr: float = field(1e-3, "LoRA learning rate of every trained arm (quickstart's)")
    batch_size: int = field(4, "training micro-batch rows")
    overrides: dict = field({}, "config overrides per step folder, e.g. {select-curated: {min_quality: null}}")
    cards: bool = field(True, "write a dataset card beside every data set the audit built")
    seed: int = field(0, "seed of the first training seed and the selections (seed k of `seeds` is seed + k)")
    # the dial's knobs, 0 = from size
    n: int = field(0, "curated rows N (0 = from size)")
    pool_factor: int = field(0, "the pool arm's rows = pool_factor x N (0 = from size; LIMA: >= 4)")
    steps: int = field(0, "optimizer steps of the same-steps arms (0 = from size)")
    seeds: int = field(0, "trainings per arm (0 = from size)")
    n_pool: int = field(0, "synth attempts (0 = from size)")
    eval_limit: int = field(-1, "eval items per suite (-1 = from size, 0 = the whole split)")
    eval_max_new_tokens: int = field(0, "eval answer length limit (0 = from size)")
    wrap_questions: int = field(-1, "questions made into invariance pairs (-1 = from size, 0 = all)")

    def __post_init__(self) -> None:
        self.claims = [str(c).strip() for c in self.claims]

    def input_paths(self) -> list[str]:
        return [self.pool] if self.pool else []

    def key_inputs(self) -> dict[str, str]:
        return pipeline_reads([self.aligned_model, self.base_model, self.embedder],
                              [*BASE_SUITES, *ALIGNED_SUITES], self.overrides)

    def check(self) -> list[tuple[str, str]]:
        p = []
        if self.size not in SIZES:
            p.append(("size", f"must be one of {', '.join(SIZES)}"))
        bad = [c for c in self.claims if c not in CLAIM_IDS]
        if bad or not self.claims:
            p.append(("claims", f"unknown claim {', '.join(map(repr, bad)) or '(none given)'}; "
                                f"known: {', '.join(CLAIM_IDS)}"))
        if self.margin < 0:
            p.append(("margin", "must be >= 0"))
        for name in ("n", "pool_factor", "steps", "seeds", "n_pool", "eval_max_new_tokens"):
            if getattr(self, name) < 0:
                p.append((name, "must be >= 0"))
        if self.lr <= 0:
            p.append(("lr", "must be > 0"))
        return p

    def resolved(self) -> dict[str, int]:
        out = dict(SIZES.get(self.size, SIZES["small"]))
        for k in ("n", "pool_factor", "steps", "seeds", "n_pool", "eval_max_new_tokens"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        for k in ("eval_limit", "wrap_questions"):
            if getattr(self, k) >= 0:
                out[k] = getattr(self, k)
        return out


# -- the plan: which arms, data sets and stage runs the chosen claims need -------------------------
def chosen(cfg: AuditConfig) -> list[Claim]:
    return [c for c in CLAIMS if c.id in cfg.claims]


def arms_needed(claims: list[Claim]) -> list[Arm]:
    names = {n for c in claims if not c.needs for ch in c.checks for n in (ch.a, ch.b)}
    return [a for a in ARMS.values() if a.name in names]  # registry order: each arm once


def data_needed(arms: list[Arm]) -> list[str]:
    need: list[str] = []
    deps = {"curated": ["pool"], "random": ["pool"], "pool": ["pool"], "simplified": ["pool", "curated"],
            "delusive": ["pool", "curated"], "empty": ["pool", "curated"], "pairs": []}
    for a in arms:
        for d in [a.data, a.sft]:
            for x in (deps.get(d, []) + [d]) if d else []:
                if x not in need:
                    need.append(x)
    order = ["pool", "curated", "random", "simplified", "delusive", "empty", "pairs"]
    return sorted(need, key=order.index)


def _seeds(cfg: AuditConfig, z: dict) -> list[int]:
    return [cfg.seed + k for k in range(z["seeds"])]


def step_folders(cfg: AuditConfig) -> list[tuple[str, str, float]]:
    """(folder, what, estimated seconds) of every stage run the chosen claims need, in run order."""
    z = cfg.resolved()
    arms = arms_needed(chosen(cfg))
    data = data_needed(arms)
    seeds = _seeds(cfg, z)
    # Rough costs on 2 CPU cores, from quickstart's measured small run (README: synth 118 s for 64
    # attempts, tag 145 s, ~165 s per 24-step gemma3 training, ~60 s per model evaluation at 10 items)
    # -- estimates for planning, not measurements of the audit.
    gen, items = z["eval_max_new_tokens"] / 80, z["eval_limit"] or 100  # 0 = the whole split: ~100 items
    per_eval = {"base": 2.0 * items * len(BASE_SUITES) * gen,
                "aligned": 2.0 * items * (len(ALIGNED_SUITES) + 3) * gen}
    per_step = {"base": 7.0, "aligned": 3.0}
    out: list[tuple[str, str, float]] = []
    if "pool" in data:
        if not cfg.pool:
            out.append(("synth", "synth: the aligned model's Magpie pool", 1.85 * z["n_pool"]))
        out += [("tag", "tag", 2.3 * z["n_pool"]), ("dedup", "dedup", 15.0),
                ("select-pool", f"curate: {z['pool_factor'] * z['n']} pool rows", 5.0)]
    if "curated" in data:
        out.append(("select-curated", f"curate: curated N = {z['n']}", 15.0))
    if "random" in data:
        out += [(f"select-random-s{s}", f"curate: random N = {z['n']}, seed {s}", 5.0) for s in seeds]
    out += [(f"control-{d}", f"curate --control {d} of the curated set", 5.0)
            for d in ("simplified", "delusive", "empty") if d in data]
    if "pairs" in data:
        out.append(("wrap", "wrap: invariance pairs from the aligned model's answers", 4.0 * z["wrap_questions"]))
    for a in arms:
        if not a.trained:
            out.append((f"eval-{a.name}", f"eval {a.model} (untrained)", per_eval[a.model]))
            continue
        steps = z["steps"] * (z["pool_factor"] if a.steps == "epochs" else 1)
        for s in seeds:
            out.append((f"train-{a.name}-s{s}", f"train {a.model} on {a.data}: {a.objective}, {steps} steps, seed {s}",
                        10 + per_step[a.model] * steps))
            out.append((f"eval-{a.name}-s{s}", f"eval {a.name} seed {s}", per_eval[a.model]))
    return out


def dry_run(cfg: AuditConfig, root: Path) -> str:
    """The plan in words: claims, arms, stage runs (cached or to run) and the estimated cost."""
    z = cfg.resolved()
    claims = chosen(cfg)
    lines = [f"audit ({cfg.size}): {json.dumps(z)}", f"run folder: {root}", "", "claims:"]
    for c in claims:
        if c.needs:
            lines.append(f"  {c.id}. {c.title}: not run: needs {c.needs}")
            continue
        lines.append(f"  {c.id}. {c.title} (arXiv:{c.arxiv}); dial: {', '.join(c.dial)}")
        for ch in c.checks:
            lines.append(f"       {'decides ' if ch.decides else 'evidence'} {ch.label}")
    lines += ["", "arms:"] + [f"  {a.name}: {a.about}" for a in arms_needed(claims)]
    lines += ["", "stage runs:"]
    todo = 0.0
    steps = step_folders(cfg)
    for folder, what, secs in steps:
        man = root / folder / "manifest.json"
        done = man.exists() and json.loads(man.read_text(encoding="utf-8")).get("status") == "complete"
        todo += 0 if done else secs
        lines.append(f"  {folder:28s} {'cached' if done else f'~{secs / 60:.1f} min':>10s}  {what}")
    lines += ["", f"{len(steps)} stage runs; estimated cost of what is not cached: ~{todo / 60:.0f} min on 2 CPU cores "
                  "(a rough estimate from quickstart's measured steps; the first run also converts the GGUF weights)"]
    return "\n".join(lines) + "\n"


# -- running ---------------------------------------------------------------------------------------
def _data(cfg: AuditConfig, z: dict, root: Path, need: list[str], log) -> dict[str, Any]:
    """Build the data sets: name -> SFT/pairs file (``random``: seed -> file), and the pool's yield."""
    from ..dataio import read_records
    from ..stages import curate, dedup, synth, tag, wrap

    out: dict[str, Any] = {"yield": None}
    ov = cfg.overrides

    def sel(name: str, how: dict, inputs: list[str], src: str, seed: int = cfg.seed) -> RunDir:
        return stage_run(curate, {"input": src, "seed": seed, "embedder": cfg.embedder, **how}, "CurateConfig",
                         root / name, log, inputs=inputs, seed=seed, overrides=ov)

    if "pool" in need:
        if cfg.pool:
            if not Path(cfg.pool).exists():
                raise UserError(f"pool: {cfg.pool}: no such file or folder")
            pool = cfg.pool
        else:
            s = stage_run(synth, {"model": cfg.aligned_model, "n": z["n_pool"], "seed": cfg.seed,
                                  "response_max_tokens": z["response_max_tokens"]}, "SynthConfig", root / "synth", log,
                          overrides=ov)
            pool = str(s.path / "synth.jsonl")
        t = stage_run(tag, {"input": pool, "judge": cfg.aligned_model}, "TagConfig", root / "tag", log,
                      inputs=[pool], overrides=ov)
        d = stage_run(dedup, {"input": str(t.path), "embedder": cfg.embedder}, "DedupConfig", root / "dedup", log,
                      inputs=[str(t.path / "tagged.jsonl")], overrides=ov)
        deduped = str(d.path / "deduped.jsonl")
        kept = int((d.manifest.get("counts") or {}).get("written") or 0)
        if not cfg.pool:  # Magpie's yield: clean, distinct rows per synth attempt (Wilson interval)
            from ..stats import wilson

            attempts = int((s.manifest.get("metrics") or {}).get("attempts") or z["n_pool"])
            out["yield"] = {**wilson(min(kept, attempts), attempts), "kept": kept, "attempts": attempts}
        n_pool = z["pool_factor"] * z["n"]
        if kept < n_pool:
            log(f"WARNING: the pool holds {kept} rows, fewer than pool_factor x n = {n_pool}: the pool arm trains on "
                f"all of them (raise n_pool)")
        p = sel("select-pool", {"strategy": "random", "gates": [], "min_quality": None, "n": n_pool}, [deduped],
                str(d.path))
        out["pool"] = str(p.path / "selected.jsonl")
    if "curated" in need:  # quickstart's curated arm: the gates, then DEITA-style quality-diversity by quality_lm
        c = sel("select-curated", {"strategy": "quality-diversity", "quality_column": "quality_lm",
                                   "min_quality": QUALITY_THRESHOLD, "n": z["n"]}, [deduped], str(d.path))
        out["curated"] = str(c.path / "selected.jsonl")
    if "random" in need:
        out["random"] = {s: str(sel(f"select-random-s{s}", {"strategy": "random", "gates": [], "min_quality": None,
                                                            "n": z["n"]}, [deduped], str(d.path), seed=s).path
                                / "selected.jsonl") for s in _seeds(cfg, z)}
    for kind in ("simplified", "delusive", "empty"):
        if kind in need:  # Kung & Peng's controls of the curated set, row for row
            try:
                c = sel(f"control-{kind}", {"strategy": "all", "gates": [], "min_quality": None, "n": z["n"],
                                            "control": kind}, [out["curated"]], out["curated"])
            except UserError as e:  # delusive on a set with no closed-label rows: that arm is not run, the rest is
                out[kind], out.setdefault("why", {})[kind] = None, str(e)
                log(f"== control-{kind}: not built ({e})")
                continue
            out[kind] = str(c.path / f"control_{kind}.jsonl")
    if "pairs" in need:
        w = stage_run(wrap, {"model": cfg.aligned_model, "limit": z["wrap_questions"], "seed": cfg.seed},
                      "WrapConfig", root / "wrap", log, overrides=ov)
        out["pairs"] = str(w.path / "pairs.jsonl")
        out["pairs_train"] = sum(r.get("split") == "train" for r in read_records(out["pairs"], "pair").rows)
    return out


def _rows(path: str) -> int:
    from ..dataio import read_records

    return len(read_records(path, "sft").rows) if Path(path).exists() else 0


def _train_arm(cfg: AuditConfig, z: dict, root: Path, arm: Arm, seed: int, data: dict, log) -> tuple[RunDir | None, str]:
    """The arm's training run at ``seed``, or (None, why it cannot run)."""
    from .. import train

    def pick(name: str) -> str:
        v = data[name]
        return v[seed] if isinstance(v, dict) else v

    model = cfg.base_model if arm.model == "base" else cfg.aligned_model
    tcfg: dict[str, Any] = {"model": model, "objective": arm.objective, "lr": cfg.lr, "batch_size": cfg.batch_size,
                            "max_length": 512, "seed": seed, "save_every": 0, "warmup_ratio": 0.0}
    if arm.data == "pairs":
        if not data.get("pairs_train"):
            return None, "wrap kept no training pair (the aligned model answered no question right)"
        tcfg["bct"] = data["pairs"]
        if arm.sft:
            tcfg["sft"] = pick(arm.sft)
    else:
        if data.get(arm.data) is None:
            return None, data["why"][arm.data]
        tcfg["sft"] = pick(arm.data)
        if not _rows(tcfg["sft"]):
            why = " (delusive needs closed-label rows; the pool has none)" if arm.data == "delusive" else ""
            return None, f"the {arm.data} set is empty{why}"
    steps = z["steps"]
    if arm.steps == "epochs":  # the pool at the curated set's epochs: steps x pool rows / curated rows
        steps = max(steps, round(steps * _rows(pick(arm.data)) / max(1, _rows(pick("curated")))))
    tcfg["max_steps"] = steps
    inputs = [tcfg[k] for k in ("sft", "bct") if tcfg.get(k)]
    return stage_run(train, tcfg, "TrainConfig", root / f"train-{arm.name}-s{seed}", log, inputs=inputs, seed=seed,
                     overrides=cfg.overrides), ""


def _eval(cfg: AuditConfig, z: dict, root: Path, arm: Arm, model: str, folder: str, log) -> RunDir:
    from ..evaluate import stage as eval_stage

    suites = list(BASE_SUITES if arm.model == "base" else ALIGNED_SUITES)
    return stage_run(eval_stage, {"models": [model], "suites": suites, "limit": z["eval_limit"],
                                  "max_new_tokens": z["eval_max_new_tokens"], "seed": 0, "progress": True},
                     "EvalConfig", root / folder, log, overrides=cfg.overrides)


def _samples(eval_dir: Path) -> dict[str, dict]:
    """suite -> {"rows": item -> row, "lower": metrics whose lower value is better}."""
    summary = json.loads((eval_dir / "summary.json").read_text(encoding="utf-8"))
    out = {}
    for suite, entry in summary["suites"].items():
        f = eval_dir / "samples" / f"{suite}.jsonl"
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()] if f.exists() else []
        out[suite] = {"rows": {r["item"]: r for r in rows}, "lower": set(entry.get("lower_is_better") or [])}
    return out


def _keep(row: dict, where: tuple) -> bool:
    for k, v in where:
        if k == "family" and not str(row.get("family", "")).startswith(str(v)):
            return False
        if k != "family" and row.get(k) != v:
            return False
    return True


def compare_check(ch: Check, evals: dict[str, dict[int | None, dict]], seeds: list[int], seed: int
                  ) -> tuple[dict | None, int, int]:
    """(the paired comparison of ``ch``, its direction, seeds pooled): the seeds' rows joined as
    ``seed:item`` pairs, each keeping its own unit (:func:`sharpset.evaluate.pairing.unit_of`), so
    :func:`sharpset.evaluate.pairing.compare_rows` resamples items with both seeds' rows."""
    from ..evaluate.pairing import compare_rows, unit_of
    from ..evaluate.suite import direction

    a_all, b_all, used, d = {}, {}, 0, 0
    for s in seeds:
        ea = evals[ch.a].get(s, evals[ch.a].get(None))
        eb = evals[ch.b].get(s, evals[ch.b].get(None))
        if not ea or not eb or ch.suite not in ea or ch.suite not in eb:
            continue
        d = direction(ch.suite, ch.metric, ea[ch.suite]["lower"])
        ra, rb = ea[ch.suite]["rows"], eb[ch.suite]["rows"]
        for item in set(ra) & set(rb):
            if _keep(ra[item], ch.where):
                a_all[f"{s}:{item}"] = {**ra[item], "unit": unit_of(ra[item])}
                b_all[f"{s}:{item}"] = rb[item]
        used += 1
    c = compare_rows(a_all, b_all, [ch.metric], seed) if a_all else None
    return (c or {}).get(ch.metric), d, used


def judge(c: dict | None, direction: int, rule: str, margin: float, p_holm: float | None) -> tuple[str, str]:
    """(verdict, its text) of one comparison by its rule (the module docstring), through
    :func:`sharpset.stats.verdict` only."""
    from ..stats import verdict

    if rule == "superiority":
        v = verdict(None if c is None else {**c, "p": p_holm if p_holm is not None else c.get("p")}, direction)
    elif c and c.get("ci95"):  # the interval read against -margin: shifted by the margin, no p at 0
        lo, hi = sorted(direction * x + margin for x in c["ci95"])
        v = verdict({**c, "diff": direction * c["diff"] + margin, "ci95": [lo, hi], "p": None}, 1)
    else:
        v = verdict(c, 1)
    if v == "better":
        return "holds", "holds"
    if v == "worse":
        return "does not hold", "does not hold"
    mde = (c or {}).get("mde")
    return "inconclusive", ("inconclusive at this power (MDE " + (f"{mde:.3g})" if mde is not None else "n/a: n too small)"))


def combine(verdicts: list[str]) -> str:
    """A claim's verdict from its deciding comparisons' verdicts."""
    ran = [v for v in verdicts if v != "not run"]
    if not ran:
        return "not run"
    if "does not hold" in ran:
        return "does not hold"
    return "holds" if all(v == "holds" for v in ran) and len(ran) == len(verdicts) else "inconclusive"


def rule_text(ch: Check, margin: float, d: int) -> str:
    better = {1: "higher is better", -1: "lower is better", 0: "no better direction"}[d]
    if ch.rule == "superiority":
        return f"{ch.b} better than {ch.a} on {ch.suite}/{ch.metric} ({better}; Holm-adjusted p < 0.05, 95% CI excludes 0)"
    return (f"{ch.b} no worse than {ch.a} on {ch.suite}/{ch.metric} by more than {margin:g} "
            f"({better}; 95% CI's worse end above -{margin:g})")


def summarize(cfg: AuditConfig, evals: dict, seeds: list[int], skipped: dict[str, str],
              pool_yield: dict | None) -> dict[str, Any]:
    """Every chosen claim's checks compared, Holm-adjusted across the audit, judged and combined."""
    from ..stats import holm

    results: list[tuple[Claim, Check, dict]] = []
    for claim in chosen(cfg):
        for ch in claim.checks if not claim.needs else ():
            why = skipped.get(ch.a) or skipped.get(ch.b)
            c, d, used = (None, 0, 0) if why else compare_check(ch, evals, seeds, cfg.seed)
            results.append((claim, ch, {"check": ch.label, "decides": ch.decides, "a": ch.a, "b": ch.b,
                                        "suite": ch.suite, "metric": ch.metric, "where": dict(ch.where),
                                        "rule": ch.rule, "margin": cfg.margin if ch.rule == NI else None,
                                        "direction": d, "comparison": c, "seeds": used, "not_run": why}))
    adj = holm([r["comparison"]["p"] if r["comparison"] else None for _, _, r in results])
    for (claim, ch, r), p in zip(results, adj):
        c = r["comparison"]
        r["p_holm"] = p
        r["rule_text"] = rule_text(ch, cfg.margin, r["direction"])
        if r["not_run"]:
            r["verdict"], r["verdict_text"] = "not run", f"not run: {r['not_run']}"
        elif not c:
            r["verdict"], r["verdict_text"] = "not run", "not run: no paired rows"
        else:
            r["verdict"], r["verdict_text"] = judge(c, r["direction"], ch.rule, cfg.margin, p)
    claims_out = []
    for claim in chosen(cfg):
        paper = {"arxiv": claim.arxiv or None, "figure": claim.figure}
        if claim.needs:
            claims_out.append({"claim": claim.id, "title": claim.title, "verdict": "not run",
                               "verdict_text": f"not run: needs {claim.needs}", "paper": paper, "checks": []})
            continue
        mine = [r for c, _, r in results if c is claim]
        deciding = [r for r in mine if r["decides"]]
        v = combine([r["verdict"] for r in deciding])
        lead = next((r for r in deciding if r["verdict"] == v), deciding[0])  # the comparison the verdict reads
        c = lead["comparison"] or {}
        if v == "inconclusive":
            mdes = [r["comparison"]["mde"] for r in deciding if r["verdict"] == "inconclusive"
                    and r["comparison"].get("mde") is not None]
            text = (f"inconclusive at this power (MDE {max(mdes):.3g})" if mdes else
                    "inconclusive: a deciding comparison did not run" if any(r["verdict"] == "not run" for r in deciding)
                    else "inconclusive at this power (n too small)")
        elif v == "not run":
            text = lead["verdict_text"]
        else:
            text = v
        out = {"claim": claim.id, "title": claim.title, "verdict": v, "verdict_text": text,
               "rule": "every deciding comparison holds: " + "; ".join(r["rule_text"] for r in deciding),
               "lead": lead["check"], "diff": c.get("diff"), "ci95": c.get("ci95"), "p": c.get("p"),
               "p_holm": lead["p_holm"], "n": c.get("n"), "n_rows": c.get("n_rows"), "seeds": lead["seeds"],
               "mde": c.get("mde"), "paper": paper, "checks": mine}
        if claim.yield_:
            out["pool_yield"] = pool_yield
        claims_out.append(out)
    return {"claims": claims_out, "margin": cfg.margin, "seeds": seeds, "comparisons": len(results),
            "holm": f"Holm step-down over the {sum(1 for *_, r in results if r['comparison'])} comparisons that ran"}


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def format_markdown(result: dict[str, Any], cfg: AuditConfig) -> str:
    def ci(c):
        return f"[{c[0]:.3f}, {c[1]:.3f}]" if c else "(n too small)"

    def ours(c):
        return "-" if c.get("diff") is None else f"{c['diff']:+.3f} {ci(c.get('ci95'))}"

    lines = [f"# sharpset audit ({cfg.size})", "", f"Non-inferiority margin {cfg.margin:g}; {result['holm']}; "
             f"seeds {result['seeds']}.", "",
             "| claim | paper (arXiv) | paper's figure | ours: diff [95% CI] | p (Holm) | n items (rows) | seeds | MDE | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in result["claims"]:
        p = c.get("paper") or {}
        ph = "-" if c.get("p") is None else f"{c['p']:.3g} ({c['p_holm']:.3g})"
        n = "-" if c.get("n") is None else f"{c['n']} ({c.get('n_rows')})"
        lines.append(f"| {c['claim']}. {c['title']} | {p.get('arxiv') or '-'} | {p.get('figure')} | {ours(c)} | {ph} | "
                     f"{n} | {c.get('seeds', '-')} | {_g(c.get('mde'))} | {c['verdict_text']} |")
    for c in result["claims"]:
        lines += ["", f"## {c['claim']}. {c['title']}", "", f"Verdict: **{c['verdict_text']}**."]
        if c.get("rule"):
            lines += ["", f"Rule: {c['rule']}."]
        if "pool_yield" in c and not c["pool_yield"]:
            lines += ["", "Pool yield: not measured (a given pool, not synthesised here)."]
        if c.get("pool_yield"):
            y = c["pool_yield"]
            lines += ["", f"Pool yield: {y['kept']} clean distinct rows of {y['attempts']} synth attempts = "
                          f"{y['rate']:.3f} {ci(y['ci95'])} (Wilson)."]
        if c["checks"]:
            lines += ["", "| comparison | decides | a | b | diff [95% CI] | p | p (Holm) | n (rows) | MDE | verdict |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in c["checks"]:
                x = r["comparison"] or {}
                lines.append(f"| {r['check']} | {'yes' if r['decides'] else 'no'} | {_g(x.get('a'))} | {_g(x.get('b'))} | "
                             f"{ours(x)} | "
                             f"{_g(x.get('p'))} | {_g(r.get('p_holm'))} | {x.get('n', '-')} ({x.get('n_rows', '-')}) | "
                             f"{_g(x.get('mde'))} | {r['verdict_text']} |")
    return "\n".join(lines) + "\n"


def run(cfg: AuditConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import write_json, write_text

    z = cfg.resolved()
    root = run.path
    t0 = time.perf_counter()
    claims = chosen(cfg)
    arms = arms_needed(claims)
    seeds = _seeds(cfg, z)
    log(f"audit ({cfg.size}): claims {', '.join(c.id for c in claims)}; arms {', '.join(a.name for a in arms)}; "
        f"{json.dumps(z)}")
    data = _data(cfg, z, root, data_needed(arms), log)
    evals: dict[str, dict[int | None, dict]] = {}
    skipped: dict[str, str] = {}
    for arm in arms:  # registry order; shared arms once
        evals[arm.name] = {}
        if not arm.trained:
            model = cfg.base_model if arm.model == "base" else cfg.aligned_model
            evals[arm.name][None] = _samples(_eval(cfg, z, root, arm, model, f"eval-{arm.name}", log).path)
            continue
        for s in seeds:
            tr, why = _train_arm(cfg, z, root, arm, s, data, log)
            if tr is None:
                skipped[arm.name] = why
                log(f"== {arm.name}: not run ({why})")
                break
            evals[arm.name][s] = _samples(_eval(cfg, z, root, arm, str(tr.path), f"eval-{arm.name}-s{s}", log).path)
    result = summarize(cfg, evals, seeds, skipped, data.get("yield"))
    result.update({"size": cfg.size, "dial": z, "arms": {a.name: {"about": a.about, "not_run": skipped.get(a.name)}
                                                          for a in arms}})
    write_json(root / "audit.json", result)
    write_text(root / "audit.md", format_markdown(result, cfg))
    if cfg.cards:
        from ..report.cards import card_all

        for folder in ("synth", "dedup", "select-pool", "select-curated", "wrap", *(
                f"select-random-s{s}" for s in seeds), *(f"control-{k}" for k in ("simplified", "delusive", "empty"))):
            if (root / folder / "manifest.json").exists():
                card_all(root / folder)
    for c in result["claims"]:
        log(f"claim {c['claim']} ({c['title']}): {c['verdict_text']}")
    metrics = {"elapsed_s": round(time.perf_counter() - t0, 1), "audit": str(root / "audit.json"),
               "verdicts": {c["claim"]: c["verdict"] for c in result["claims"]}}
    if set(CLAIM_IDS) - set(cfg.claims):  # a subset: the folder stays open to the other claims (its runs shared)
        log(f"audit: claims {', '.join(c.id for c in claims)} of {len(CLAIM_IDS)}; another --claims in this folder "
            "reuses these runs")
        run.manifest["metrics"] = metrics
        run.save_manifest()
        return metrics
    run.finish(outputs=["audit.json", "audit.md"], metrics=metrics)
    return metrics
