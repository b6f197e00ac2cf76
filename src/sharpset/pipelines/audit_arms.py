"""The audit's arms (``sharpset run audit``): the data sets they train on, their training and their
evaluation -- every one a cached, resumable stage run (:func:`sharpset.pipelines.quickstart.stage_run`),
or a finished run found elsewhere by content key (:mod:`sharpset.pipelines.reuse`).

Data: the pool (synthesised by the aligned model, or the user's) tagged and deduplicated; the pool
arm's ``pool_factor`` x N rows and the curated N (quickstart's gates, then quality-diversity by
``quality_lm``) by ``curate``; Kung & Peng's controls of the curated set row for row; invariance
pairs from the aligned model's own answers (``wrap``). The random N is drawn exactly as a ``sweep``
``random`` cell draws its rows (:func:`sharpset.pipelines.sweep.cell_data`, keyed by the cell's name
``random-n<N>-s<seed>``), so a sweep over the same pool with the same budget has already trained
the audit's random arm, and the audit reuses it.

Evaluation: each arm on the suites its comparisons read, each suite with the items they need (a
deciding comparison's count or an evidence count) and invariance on the wrapper families they read
(:func:`eval_settings`: eval's ``suite_limits`` and ``invariance_families``) -- only where a chosen
claim reads it. The token-shift and speech-acts suites (claims.OWN_STEP) are each an eval run of
their own per arm and seed (``token-shift-<arm>-s<seed>``: the arm's answers ranked by the base;
``speech-acts-<arm>[-s<seed>]``), never part of the arm's eval run, whose run key therefore does not
depend on whether claim 6 or 8 is chosen; an own-step run gives the audit only its own suite's rows
(its health rows are of its own answers, never the arm's eval run's).

Claim 7's ``lexical`` and ``emotional`` sets (``select-lexical`` / ``select-emotional``): the N pool
rows of the highest lexical reuse / sentiment concordance by the dimensions suite's own scorers
(:mod:`sharpset.pipelines.audit_dims`), each trained like the random N (the reference) is.

Claim 6's ``warn`` set (``select-warn``): the aligned model's own answers to the speech-acts dev
prompts that warn where warranted and not on the benign controls (:mod:`sharpset.pipelines.audit_warn`);
the ``aligned-warn`` arm trains the aligned model on it with the audit's step budget.

Proxy-tuning (claim 9): ``derive-antiexpert`` derives the base's first ``keep_layers`` decoder
layers (``sharpset derive``; DESIGN.md: the honest small-scale analogue of a smaller model sharing
the base's vocabulary) and heals it ``heal_steps`` steps by distillation from the base on the pool's
text (the user's ``pool``, else ``synth``'s rows: what a sweep heals on, so a sweep's derivative of
the same base, K, steps and pool has the same content key and is reused). Issue 22: a plain
truncation decodes noise, and ``expert - antiexpert`` with it; ``heal_steps`` 0 derives the plain
truncation, keyed as before. The ``expert`` arm trains it on the curated N with base-curated's
budget, per seed; each proxy arm (one per alpha) evaluates the base with ``--engine proxy`` steered
by that seed's expert against the anti-expert, on the same items as the base and base-curated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..run import RunDir
from ..signals import QUALITY_THRESHOLD
from .claims import OWN_FOLDER, OWN_STEP, Arm, Check, arm_checks, arm_suites, checks_of
from .quickstart import stage_run


@dataclass
class Ctx:
    """One audit call: its config, the resolved dial, its folder, log and reuse index."""
    cfg: Any  # AuditConfig
    z: dict
    root: Path
    log: Callable[[str], None]
    reuse: Any = None  # sharpset.pipelines.reuse.Reuse, or None

    @property
    def seeds(self) -> list[int]:
        return [self.cfg.seed + k for k in range(self.z["seeds"])]

    def step(self, mod, cfg_map: dict, cls_name: str, folder: str, inputs: list[str] = (), seed: int = 0) -> RunDir:
        return stage_run(mod, cfg_map, cls_name, self.root / folder, self.log, inputs=list(inputs), seed=seed,
                         overrides=self.cfg.overrides, reuse=self.reuse)


# -- the random N: a sweep random cell's draw, as a step of its own -------------------------------
@dataclass
class DrawConfig:
    input: str = field("", "SFT rows to draw from (file, folder or run folder)")
    n: int = field(0, "rows drawn without replacement (all when the input holds fewer)")
    seed: int = field(0, "seed of the draw")
    name: str = field("", "the draw's key: a sweep cell's name, random-n<n>-s<seed>")

    def check(self) -> list[tuple[str, str]]:
        return [("n", "must be >= 1")] if self.n < 1 else []


def sweep_cell_name(target: str, n: int, seed: int) -> str:
    """The name sharpset.pipelines.sweep.run gives a cell (and keys its draw by)."""
    return f"{target}-n{n}-s{seed}"


def draw_run(cfg: DrawConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``sft.jsonl``: :func:`sharpset.pipelines.sweep.cell_data` of a ``random`` cell, written as the
    sweep writes it -- byte for byte the cell's training file when the rows are the same."""
    from ..dataio import read_records, write_records
    from .sweep import cell_data

    rows = read_records(cfg.input, "sft").rows
    sft, _, _ = cell_data("random", cfg.n, cfg.seed, cfg.name, {"random": rows})
    write_records(sft, run.path / "sft.jsonl")
    log(f"random draw {cfg.name}: {len(sft)} of {len(rows)} rows")
    run.finish(counts={"read": len(rows), "written": len(sft), "dropped": len(rows) - len(sft), "rejected": 0},
               outputs=["sft.jsonl"])
    return {"written": len(sft)}


DRAW = SimpleNamespace(STAGE="draw", VERSION=1, DrawConfig=DrawConfig, run=draw_run)


# -- data ------------------------------------------------------------------------------------------
def build_data(ctx: Ctx, need: list[str]) -> dict[str, Any]:
    """Build the data sets: name -> SFT/pairs file (``random``: seed -> file), the pool's yield, and
    ``why`` a set could not be built."""
    from ..dataio import read_records
    from ..stages import curate, dedup, synth, tag, wrap

    cfg, z = ctx.cfg, ctx.z
    out: dict[str, Any] = {"yield": None, "why": {}}

    def sel(name: str, how: dict, inputs: list[str], src: str, seed: int = cfg.seed) -> RunDir:
        return ctx.step(curate, {"input": src, "seed": seed, "embedder": cfg.embedder, **how}, "CurateConfig", name,
                        inputs=inputs, seed=seed)

    if "pool" in need:
        if cfg.pool:
            if not Path(cfg.pool).exists():
                raise UserError(f"pool: {cfg.pool}: no such file or folder")
            pool = cfg.pool
        else:
            s = ctx.step(synth, {"model": cfg.aligned_model, "n": z["n_pool"], "seed": cfg.seed,
                                 "response_max_tokens": z["response_max_tokens"]}, "SynthConfig", "synth")
            pool = str(s.path / "synth.jsonl")
        out["pool_text"] = pool  # the pool before tag and dedup: claim 9's anti-expert is healed on its text
        t = ctx.step(tag, {"input": pool, "judge": cfg.aligned_model}, "TagConfig", "tag", inputs=[pool])
        d = ctx.step(dedup, {"input": str(t.path), "embedder": cfg.embedder}, "DedupConfig", "dedup",
                     inputs=[str(t.path / "tagged.jsonl")])
        deduped = str(d.path / "deduped.jsonl")
        kept = int((d.manifest.get("counts") or {}).get("written") or 0)
        if not cfg.pool:  # Magpie's yield: clean, distinct rows per synth attempt (Wilson interval)
            from ..stats import wilson

            attempts = int((s.manifest.get("metrics") or {}).get("attempts") or z["n_pool"])
            out["yield"] = {**wilson(min(kept, attempts), attempts), "kept": kept, "attempts": attempts}
        n_pool = z["pool_factor"] * z["n"]
        if kept < n_pool:
            ctx.log(f"WARNING: the pool holds {kept} rows, fewer than pool_factor x n = {n_pool}: the pool arm trains "
                    f"on all of them (raise n_pool)")
        p = sel("select-pool", {"strategy": "random", "gates": [], "min_quality": None, "n": n_pool}, [deduped],
                str(d.path))
        out["pool"] = str(p.path / "selected.jsonl")
    if "curated" in need:  # quickstart's curated arm: the gates, then DEITA-style quality-diversity by quality_lm
        c = sel("select-curated", {"strategy": "quality-diversity", "quality_column": "quality_lm",
                                   "min_quality": QUALITY_THRESHOLD, "n": z["n"]}, [deduped], str(d.path))
        out["curated"] = str(c.path / "selected.jsonl")
    if "random" in need:  # the baseline of LIMA, DEITA, AlpaGasus -- and a sweep's random cell, row for row
        out["random"] = {s: str(ctx.step(DRAW, {"input": deduped, "n": z["n"], "seed": s,
                                                "name": sweep_cell_name("random", z["n"], s)}, "DrawConfig",
                                         f"select-random-s{s}", inputs=[deduped], seed=s).path / "sft.jsonl")
                         for s in ctx.seeds}
    for kind in ("simplified", "delusive", "empty"):
        if kind in need:  # Kung & Peng's controls of the curated set, row for row
            try:
                c = sel(f"control-{kind}", {"strategy": "all", "gates": [], "min_quality": None, "n": z["n"],
                                            "control": kind}, [out["curated"]], out["curated"])
            except UserError as e:  # delusive on a set with no closed-label rows: that arm is not run, the rest is
                out[kind], out["why"][kind] = None, str(e)
                ctx.log(f"== control-{kind}: not built ({e})")
                continue
            out[kind] = str(c.path / f"control_{kind}.jsonl")
    if "pairs" in need:
        w = ctx.step(wrap, {"model": cfg.aligned_model, "limit": z["wrap_questions"], "seed": cfg.seed},
                     "WrapConfig", "wrap")
        out["pairs"] = str(w.path / "pairs.jsonl")
        out["pairs_train"] = sum(r.get("split") == "train" for r in read_records(out["pairs"], "pair").rows)
    for dim in ("lexical", "emotional"):
        if dim in need:  # claim 7's targets: the N pool rows of the highest alignment of one kind
            from .audit_dims import DIMSEL

            out[dim] = str(ctx.step(DIMSEL, {"input": deduped, "n": z["n"], "by": dim}, "DimSelectConfig",
                                    f"select-{dim}", inputs=[deduped]).path / "sft.jsonl")
    if "warn" in need:  # claim 6: the aligned model's own answers that warn where warranted, not on benign prompts
        from .audit_warn import WARN

        w = ctx.step(WARN, {"model": cfg.aligned_model, "k": cfg.warn_k, "seed": cfg.seed,
                            "max_new_tokens": z["response_max_tokens"]}, "WarnConfig", "select-warn")
        out["warn"] = str(w.path / "sft.jsonl")
    return out


def _rows(path: str) -> int:
    from ..dataio import read_records

    return len(read_records(path, "sft").rows) if Path(path).exists() else 0


# -- training and evaluation -----------------------------------------------------------------------
def train_arm(ctx: Ctx, arm: Arm, seed: int, data: dict) -> tuple[RunDir | None, str]:
    """The arm's training run at ``seed``, or (None, why it cannot run). The config is a sweep cell's
    (same fields, same defaults), so the same rows and budget are the same content key."""
    from .. import train

    cfg, z = ctx.cfg, ctx.z

    def pick(name: str) -> str:
        v = data[name]
        return v[seed] if isinstance(v, dict) else v

    model = data["antiexpert"] if arm.model == "derived" else cfg.base_model if arm.model == "base" \
        else cfg.aligned_model
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
            why = {"delusive": " (delusive needs closed-label rows; the pool has none)",
                   "warn": " (no candidate answer warned where a warning is warranted or stayed quiet on a benign "
                           "prompt: raise warn_k)"}.get(arm.data, "")
            return None, f"the {arm.data} set is empty{why}"
    steps = z["steps"]
    if arm.steps == "epochs":  # the pool at the curated set's epochs: steps x pool rows / curated rows
        steps = max(steps, round(steps * _rows(pick(arm.data)) / max(1, _rows(pick("curated")))))
    tcfg["max_steps"] = steps
    inputs = [tcfg[k] for k in ("sft", "bct") if tcfg.get(k)]
    return ctx.step(train, tcfg, "TrainConfig", f"train-{arm.name}-s{seed}", inputs=inputs, seed=seed), ""


def eval_families() -> tuple[list[str], set[str]]:
    """(every wrapper family the eval's invariance suite applies by default, those it marks held out)."""
    from ..evaluate.stage import EvalConfig
    from ..invariance import load_families, select_families

    default = EvalConfig()
    return select_families(default.invariance_families, load_families(None)), set(default.heldout_families)


def families_read(ch: Check, every: list[str], heldout: set[str]) -> list[str] | None:
    """The wrapper families an invariance check's rows come from (``where``: ``heldout`` True / False,
    ``family`` a prefix), of ``every`` family the eval applies; None: any one serves (a metric of the
    plain answer, clean_correct, is the same in every family's row of a question)."""
    from .claims import where_holds

    if not ch.where:
        return None
    return [f for f in every if where_holds({"family": f, "heldout": f in heldout}, ch.where)]


def eval_settings(arm: str, z: dict, own: bool | str = False) -> dict[str, Any]:
    """The eval config an arm gets beyond its model (issue 23: each suite the items its own checks
    need, not one count for all): the ``suites`` its checks read
    (:func:`sharpset.pipelines.claims.arm_suites`); ``eval_limit`` items (the dial's eval_mde) of a
    suite a deciding check reads, ``evidence_limit`` of one only evidence reads for this arm (health
    is scored on the answers of the generating suites, so a health check sizes ``format``) --
    ``limit`` where all its suites get one count, else ``limit`` = ``eval_limit`` and
    ``suite_limits`` for the others; and ``invariance_families`` only where its checks read fewer
    than every family (the wrapped generations are the invariance suite's cost: one per question and
    family). From the whole registry (:func:`sharpset.pipelines.claims.arm_checks`), so every
    ``--claims`` subset shares the arm's eval run; at the eval's defaults the config is a plain eval's.
    ``own``: the settings of its own-step eval run (claims.OWN_STEP's suites; a suite name: that
    suite's run) instead."""
    every, heldout = eval_families()
    limits: dict[str, int] = {}
    fams: set[str] = set()
    for ch in arm_checks(arm, own):
        suite = "format" if ch.suite == "health" else ch.suite
        n = z["eval_limit"] if ch.decides and ch.sized != "evidence" else z["evidence_limit"]
        limits[suite] = 0 if 0 in (n, limits.get(suite)) else max(n, limits.get(suite, 0))  # 0: the whole split
        if ch.suite == "invariance":
            fams |= set(families_read(ch, every, heldout) or ())
    one = set(limits.values())
    limit = one.pop() if len(one) == 1 else z["eval_limit"]  # one count for all its suites: a plain limit
    out: dict[str, Any] = {"suites": arm_suites(arm, own), "limit": limit,
                           "suite_limits": {s: n for s, n in limits.items() if n != limit}}
    if fams and fams != set(every):
        out["invariance_families"] = [f for f in every if f in fams]
    return out


def eval_arm(ctx: Ctx, arm: Arm, model: str, folder: str, own: bool | str = False,
             more: dict | None = None) -> RunDir:
    """The arm's model on the suites its checks read, each with the items they need and invariance
    on the families they read (:func:`eval_settings`); ``own``: its own-step run of that suite
    (token_shift: the answers ranked by the base model; speech_acts); ``more``: further eval fields
    (the proxy engine's)."""
    from ..evaluate import stage as eval_stage

    base = {"base": ctx.cfg.base_model} if own is True or own == "token_shift" else {}
    return ctx.step(eval_stage, {"models": [model], **eval_settings(arm.name, ctx.z, own), **base,
                                 "max_new_tokens": ctx.z["eval_max_new_tokens"], "seed": 0, "progress": True,
                                 **(more or {})},
                    "EvalConfig", folder)


def proxy_options(expert: str, antiexpert: str, alpha: float) -> dict[str, Any]:
    """The eval fields of a proxy arm: the base steered by ``expert`` against ``antiexpert`` (as a
    sweep's proxy arm gives them)."""
    return {"engine": "proxy", "engine_options": {"expert": expert, "antiexpert": antiexpert, "alpha": alpha,
                                                  "chat_template": "all"}}


def reads(claims: list, alphas) -> tuple[set[str], dict[str, set[str]]]:
    """(arms a chosen claim reads in their eval run, own-step suite -> arms it reads in that suite's
    own run): an arm is evaluated only where some chosen claim reads it (the expert is trained, never
    evaluated)."""
    main: set[str] = set()
    own: dict[str, set[str]] = {s: set() for s in OWN_STEP}
    for c in claims:
        for ch in checks_of(c, alphas) if not c.needs else ():
            (own[ch.suite] if ch.suite in OWN_STEP else main).update(ch.arms)
    return main, own


def derive_antiexpert(ctx: Ctx, pool: str) -> str:
    """``derive-antiexpert``: the base's first ``keep_layers`` decoder layers, healed ``heal_steps``
    steps on the text of ``pool`` (heal fields only where heal_steps > 0, so a plain truncation keeps
    its key, as :func:`sharpset.pipelines.sweep_proxy.derive_config` does); its model folder. The heal
    data enters the step's key by content (DeriveConfig.key_inputs), as a sweep's derive step's does."""
    from ..models import derive
    from .sweep_proxy import derive_config

    cfg = derive_config(ctx.cfg.base_model, {"antiexpert": ctx.cfg.keep_layers, "heal_steps": ctx.cfg.heal_steps},
                        pool)
    return str(ctx.step(derive, cfg, "DeriveConfig", "derive-antiexpert").path / "model")


def samples(eval_dir: Path) -> dict[str, dict]:
    """suite -> {"rows": item -> row, "lower": metrics whose lower value is better}."""
    summary = json.loads((eval_dir / "summary.json").read_text(encoding="utf-8"))
    out = {}
    for suite, entry in summary["suites"].items():
        f = eval_dir / "samples" / f"{suite}.jsonl"
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()] if f.exists() else []
        out[suite] = {"rows": {r["item"]: r for r in rows}, "lower": set(entry.get("lower_is_better") or [])}
    return out


def run_arms(ctx: Ctx, arms: list[Arm], data: dict, claims: list
             ) -> tuple[dict, dict[str, str], dict[str, dict], dict[str, dict]]:
    """Train and evaluate every arm (registry order; shared arms once; each eval only where a chosen
    claim reads it): (arm -> seed (None when untrained) -> samples, its own-step suites' among them,
    arm -> why it did not run, arm -> seed -> its eval run folder, arm -> own-step suite -> seed ->
    that suite's eval run folder)."""
    cfg = ctx.cfg
    main, own = reads(claims, cfg.alphas)
    evals: dict[str, dict[int | None, dict]] = {}
    skipped: dict[str, str] = {}
    where: dict[str, dict] = {}
    where_own: dict[str, dict] = {}
    trained: dict[tuple[str, int], str] = {}
    if any(a.model == "derived" for a in arms):
        data = {**data, "antiexpert": derive_antiexpert(ctx, data.get("pool_text", ""))}

    def evaluate(arm: Arm, model: str, seed: int | None, more: dict | None = None) -> None:
        tail = "" if seed is None else f"-s{seed}"
        got: dict = {}
        if arm.name in main:
            ev = eval_arm(ctx, arm, model, f"eval-{arm.name}{tail}", more=more)
            got.update(samples(ev.path))
            where[arm.name][seed] = str(ev.path)
        for suite in OWN_STEP:
            if arm.name in own[suite]:  # only the suite's own rows: the run's health is of its own answers
                ev = eval_arm(ctx, arm, model, f"{OWN_FOLDER[suite]}-{arm.name}{tail}", own=suite)
                got.update({k: v for k, v in samples(ev.path).items() if k == suite})
                where_own[arm.name].setdefault(suite, {})[seed] = str(ev.path)
        evals[arm.name][seed] = got

    for arm in arms:
        evals[arm.name], where[arm.name], where_own[arm.name] = {}, {}, {}
        if arm.engine == "proxy":  # per seed: the base steered by that seed's expert
            for s in ctx.seeds:
                if (arm.expert, s) not in trained:
                    skipped[arm.name] = skipped.get(arm.expert) or f"its expert ({arm.expert}) did not train"
                    ctx.log(f"== {arm.name}: not run ({skipped[arm.name]})")
                    break
                evaluate(arm, cfg.base_model, s, proxy_options(trained[(arm.expert, s)], data["antiexpert"],
                                                               arm.alpha))
            continue
        if not arm.trained:
            evaluate(arm, cfg.base_model if arm.model == "base" else cfg.aligned_model, None)
            continue
        for s in ctx.seeds:
            tr, why = train_arm(ctx, arm, s, data)
            if tr is None:
                skipped[arm.name] = why
                ctx.log(f"== {arm.name}: not run ({why})")
                break
            trained[(arm.name, s)] = str(tr.path)
            evaluate(arm, str(tr.path), s)
    return evals, skipped, where, where_own
