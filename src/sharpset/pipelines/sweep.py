"""``sharpset sweep``: effect per example, per target, for the user's own model (METHODS §11).

For each (target, size n, seed) cell: select n examples for the target, train the model on them
with the SAME optimizer-step budget for every size (``steps``), evaluate every suite on the same
fixed items, and compare with the untrained model paired per item. Targets:

- ``format``: pool rows whose answers conform to a response-shape spec (``spec``, conformance >=
  ``min_conformance``), n drawn at random (seeded) from them; SFT;
- ``invariance``: the model's own invariance pairs (``wrap`` on the shipped questions' train split,
  train families), n drawn at random; BCT;
- ``knowledge``: closed-book QA rows built from the shipped knowledge data's DEV split (the eval
  scores the TEST split), n drawn at random; SFT;
- ``constraints``: verified-constraint rows (METHODS §9b; issue 20): ``constrain`` run over the
  sweep's pool (the first ``constrain_prompts`` instructions, 1-3 train-type constraints each,
  ``constrain_k`` candidates from the model, a row kept only when one passes every check), n drawn
  at random from the kept rows; SFT. The model trains on its own verified answers (rejection-
  sampled self-distillation);
- ``mixed``: n - n/2 constraint rows + n/2 invariance pairs; SFT + BCT. (Until VERSION 2, ``mixed``
  was n - n/2 *format* rows + n/2 invariance pairs.)
- ``random``: n pool rows drawn at random (seeded), no selection and no gate; SFT. The baseline every
  targeted set must beat: each other cell is also compared, paired per item, with the ``random`` cell
  of the same n and seed (``vs_random`` in sweep.json, the second table of sweep.md).
- ``quality-diversity`` (not in the default targets): n pool rows by ``curate --strategy
  quality-diversity`` (DEITA); SFT. A pool without quality and difficulty columns is tagged first
  (``pool-qd-tag``, judge ``judge``) for these cells only. The target-blind selection a
  targeted one must also beat: cells are compared with it as with random (``vs_quality_diversity``).

``selection: less`` (issue 25): the format and constraints cells take their n rows from the whole
pool by ``curate --strategy less`` (LESS, arXiv:2402.04333), with ``less_target_rows`` of the
target's candidates (drawn once, seed 0) as the target examples and ``selector`` (default: the
swept model) computing the gradients; one gradient datastore per seed (``less-datastores/``), shared
by every target and size. With ``targets: [format, constraints, quality-diversity, random]`` the
report shows, per target, LESS vs quality-diversity vs random at the same n and seed.

``proxy`` (issue 22): proxy-tuning arms per cell -- an expert (a small same-vocabulary model, by
default derived from the swept model, trained on the cell's rows with the cell's budget), its eval
alone and the swept model steered by it at each alpha, on the same items; sweep.json's ``proxy`` and
sweep.md's proxy tables pair base, expert alone, proxy per alpha and the cell's direct tuning
(:mod:`sharpset.pipelines.sweep_proxy`).

**Reuse** (as the audit's; :mod:`sharpset.pipelines.reuse`): a step whose work a finished run
elsewhere already did -- another sweep's ``random`` cell over the same pool and model, its baseline
eval, its format candidates -- is read from there (matched by content key, not by path; ``reuse``
names the folders searched, by default the one the sweep's folder sits in; ``[]`` = none). The
cell's own folder still gets its rows (``sft.jsonl``, ``pairs.jsonl``: the train step's inputs, so
equal rows match); its train and eval are read where they are: the eval names the model by the
reused run's path, and sweep.json, plan.json (``train_run``) and the proxy tables follow.
sweep.json's ``reused`` maps each reused step to its run folder; ``sharpset report`` follows
``reused.json`` to them.

``constrain_model`` writes the constraint candidates when the swept model is a base that cannot
(default: the swept model itself, i.e. self-distillation).

A target with fewer candidate rows than a size trains that size's cells on all of them; the cell's
``n_examples`` (and so its effect per example) counts the rows it trained on.

Outputs: ``cells/<target>-n<n>-s<seed>/`` (select, train, eval run folders, unless reused),
``baseline/`` (the untrained model's eval), ``reused.json`` (the runs read from elsewhere, per
step), ``sweep.json``: per cell and suite metric, the paired difference against the baseline with
its bootstrap 95% interval, n items, and the effect per training example (diff / n); per target and
size, the mean over seeds. The off-diagonal cells (training for t, measuring t' != t) are the costs
and spill-overs. Cells are resumable (each step a cached stage run) and run in any order
(``order``); ``max_cells`` caps how many run in this call.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..run import RunDir, derive_seed
from . import sweep_proxy
from .quickstart import stage_run
from .reuse import Reuse, finished, relative, reuse_problem, search_dirs

STAGE = "sweep"
VERSION = 4  # 2: the constraints target (in the default targets), mixed = constraints + invariance (was format +
# invariance), constrain in the run key (issue 20). 3: the random target and every cell vs random; constrain_model.
# 4: with token_shift among the suites every eval names the swept model as its base (the cells' shift was skipped)
TARGETS = ("format", "invariance", "knowledge", "constraints", "mixed", "random")
KNOWN_TARGETS = TARGETS + ("quality-diversity",)  # the default targets stay TARGETS
POOL_TARGETS = {"format", "constraints", "mixed", "random", "quality-diversity"}  # rows come from the pool
LESS_TARGETS = ("format", "constraints")  # selection: less picks these cells' rows from the pool
BASELINES = ("random", "quality-diversity")  # every other cell is compared with these, paired per item


@dataclass
class SweepConfig:
    model: str = field("smollm2-135m-instruct", "the model to train per cell (embedded name or local folder)")
    targets: list = field(list(TARGETS), f"targets, any of {', '.join(TARGETS)}")
    sizes: list = field([8, 16, 32, 64], "training-set sizes n")
    seeds: int = field(2, "seeds per (target, size): selection draw and training order")
    pool: str = field("", "SFT pool for the format, constraints and mixed targets (file, folder or run folder); "
                          "empty = synthesise `pool_size` rows with the model")
    pool_size: int = field(120, "synth attempts when no pool is given")
    spec: str = field("concise-plain", "format target: response-shape spec the selected answers conform to")
    min_conformance: float = field(0.75, "format target: minimum conformance of a selected answer")
    constrain_prompts: int = field(0, "constraints/mixed targets: pool instructions `constrain` attempts (0 = every "
                                      "pool row; about 1 in 3 is kept at a plausible yield)")
    constrain_k: int = field(8, "constraints/mixed targets: candidates per constrained instruction")
    constrain_model: str = field("", "constraints/mixed targets: the aligned model that writes the candidates "
                                     "(empty = the swept model: self-distillation)")
    constraint_rows: str = field("", "constraints/mixed targets: verified-constraint rows already made (a constrain "
                                     "run folder or its constrain.jsonl) instead of running constrain over the pool")
    steps: int = field(24, "optimizer steps per cell, the same for every size")
    lr: float = field(1e-3, "LoRA learning rate")
    batch_size: int = field(4, "training micro-batch rows")
    eval_limit: int = field(12, "eval items per suite (the same fixed items for every cell)")
    eval_suite_limits: dict = field({}, "eval items for the suites named here, overriding eval_limit (e.g. "
                                        "{format: 0, invariance: 40})")
    eval_max_new_tokens: int = field(96, "eval answer length limit")
    suites: list = field(["all"], "eval suites")
    order: str = field("size", "cell order: size (small first), size-desc (large first), target, or shuffled",
                       in_key=False)
    max_cells: int = field(0, "run at most this many new cells in this call (0 = all): the budget flag", in_key=False)
    selection: str = field("draw", "format/constraints cells: draw (n at random from the target's candidates) or "
                                   "less (n from the whole pool by curate --strategy less toward the target; issue 25)")
    less_target_rows: int = field(8, "selection less: target examples, drawn once from the target's candidates")
    selector: str = field("", "selection less: the model whose gradients select (empty = the swept model)")
    less_options: dict = field({}, "selection less: curate's LESS fields for every selection, e.g. {warmup_epochs: 2, "
                                   "proj_dim: 4096} (`sharpset curate --help`; empty = its defaults, the paper's values)")
    judge: str = field("", "quality-diversity on a pool without quality/difficulty columns: the judge `tag` scores "
                           "them with first (empty = the swept model; name an instruct model when sweeping a base)")
    proxy: dict = field({}, sweep_proxy.HELP)
    # not in the run key: a reused run computed exactly what the step would (the same content key)
    reuse: list = field(["auto"], "folders searched for finished stage runs (other sweeps, audits, quickstarts) "
                                  "that do a step's work exactly -- same data by content, same model, same settings "
                                  "-- and are read in place instead of recomputed; auto = the folder the sweep's run "
                                  "folder sits in; [] = reuse nothing", in_key=False)

    def __post_init__(self) -> None:
        try:  # from a flag, "8,16" arrives as strings
            self.sizes = [int(n) for n in self.sizes]
        except (TypeError, ValueError):
            pass  # check() names the field
        if isinstance(self.reuse, str):  # --set reuse=runs
            self.reuse = [self.reuse]

    def input_paths(self) -> list[str]:
        """The sweep's own data, hashed into its top-level run key: an edited pool is a new sweep."""
        return [p for p in (self.pool, self.constraint_rows) if p]

    def key_inputs(self) -> dict[str, str]:
        """What else the sweep reads (its model, the spec, stage and suite versions, shipped data),
        so its own cache hit is never stale (issue 21; quickstart.pipeline_reads)."""
        from .quickstart import pipeline_reads

        models = [self.model] + [m for m in (self.constrain_model, self.judge) if m]
        models += [self.selector] if self.selector and self.selection == "less" else []
        return {**pipeline_reads(models, self.suites, spec=self.spec), **sweep_proxy.key_inputs(self.proxy)}

    def check(self) -> list[tuple[str, str]]:
        p = []
        bad = [t for t in self.targets if t not in KNOWN_TARGETS]
        if bad or not self.targets:
            p.append(("targets", f"unknown {bad}; choose from {', '.join(KNOWN_TARGETS)}"))
        if self.selection not in ("draw", "less"):
            p.append(("selection", "must be draw or less"))
        if self.less_target_rows < 1:
            p.append(("less_target_rows", "must be >= 1"))
        from ..stages.curate.less_fields import less_options_problems

        p += less_options_problems(self.less_options)
        if not self.sizes or any(not isinstance(n, int) or n < 1 for n in self.sizes):
            p.append(("sizes", "give positive integers"))
        for name in ("seeds", "steps", "batch_size", "constrain_k"):
            if getattr(self, name) < 1:
                p.append((name, "must be >= 1"))
        if self.constrain_prompts < 0:
            p.append(("constrain_prompts", "must be >= 0 (0 = every pool row)"))
        if self.order not in ("size", "size-desc", "target", "shuffled"):
            p.append(("order", "must be size, size-desc, target or shuffled"))
        if self.max_cells < 0:
            p.append(("max_cells", "must be >= 0"))
        if why := reuse_problem(self.reuse, "sweep"):
            p.append(("reuse", why))
        return p + sweep_proxy.check(self.proxy, list(self.targets))


def cells(cfg: SweepConfig) -> list[tuple[str, int, int]]:
    out = [(t, n, s) for t in cfg.targets for n in cfg.sizes for s in range(cfg.seeds)]
    if cfg.order in ("size", "size-desc"):
        sign = 1 if cfg.order == "size" else -1
        out.sort(key=lambda c: (sign * c[1], c[2], KNOWN_TARGETS.index(c[0])))
    elif cfg.order == "shuffled":
        random.Random(derive_seed(0, STAGE, "order")).shuffle(out)
    return out


def knowledge_rows() -> list[dict]:
    """SFT rows from the shipped knowledge data's dev split (the knowledge suite scores test)."""
    from ..evaluate.data import load
    from ..records import with_id

    rows = [{"messages": [{"role": "user", "content": r["question"]},
                          {"role": "assistant", "content": f"{r['answer'][:1].upper()}{r['answer'][1:]}."}]}
            for r in load("knowledge_qa", "dev")]
    rows += [{"messages": [{"role": "user", "content": r["question"]},
                           {"role": "assistant", "content": f"{r['choices'][r['answer_index']][:1].upper()}"
                                                            f"{r['choices'][r['answer_index']][1:]}."}]}
             for r in load("knowledge_mc", "dev")]
    return [with_id(r) for r in rows]


def draw(rows: list[dict], n: int, seed: int, key: str) -> list[dict]:
    """n rows drawn without replacement by a generator keyed by (seed, sweep, key); all if fewer."""
    rows = sorted(rows, key=lambda r: r["id"])
    rng = random.Random(derive_seed(seed, STAGE, key))
    return rng.sample(rows, min(n, len(rows)))


def cell_data(target: str, n: int, seed: int, name: str, cand: dict[str, list[dict]]
              ) -> tuple[list[dict], list[dict], str]:
    """(SFT rows, invariance pairs, objective) of one cell: n examples drawn for ``target`` from its
    candidates (``mixed``: n - n/2 constraint rows and n/2 pairs, each drawn under its own key)."""
    if target in ("format", "knowledge", "constraints", "random"):
        return draw(cand[target], n, seed, name), [], "sft"
    if target == "invariance":
        return [], draw(cand["invariance"], n, seed, name), "bct"
    sft = draw(cand["constraints"], n - n // 2, seed, name + "/constraints")
    pairs = draw(cand["invariance"], n // 2, seed, name + "/inv")
    return sft, pairs, "sft+bct" if pairs else "sft"


def qd_input(pool: str, rows: list[dict], cfg: SweepConfig, root: Path, log: Callable[[str], None],
             reuse: Reuse | None) -> str:
    """The pool the quality-diversity cells select from: the pool itself when every row has the
    quality and difficulty columns, else the pool tagged first (``tag``, judge ``cfg.judge``, run
    folder ``pool-qd-tag``; shape columns beside them, they cost no model call). The other targets
    keep the pool as given, so their cells' training files (and cache keys) do not change."""
    from ..stages import tag

    if rows and all(r.get("quality") is not None and r.get("difficulty") is not None for r in rows):
        return pool
    t = stage_run(tag, {"input": pool, "judge": cfg.judge or cfg.model, "scores": ["quality", "difficulty", "shape"]},
                  "TagConfig", root / "pool-qd-tag", log, inputs=[pool], reuse=reuse)
    log(f"quality-diversity: the pool has no quality/difficulty on every row; tagged by {cfg.judge or cfg.model} "
        f"in {t.path}")
    return str(t.path / "tagged.jsonl")


def run(cfg: SweepConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from .. import train
    from ..dataio import read_records, write_json, write_records, write_text
    from ..evaluate import stage as eval_stage
    from ..evaluate.suite import resolve_suites
    from ..stages import constrain, curate, dedup, synth, tag, wrap
    from ..stages.curate.less_fields import less_curate

    root = run.path
    t0 = time.perf_counter()
    dirs = search_dirs(cfg.reuse, root)
    reuse = Reuse(dirs, root) if dirs else None
    ev = {"limit": cfg.eval_limit, "suite_limits": dict(cfg.eval_suite_limits), "max_new_tokens": cfg.eval_max_new_tokens,
          "suites": cfg.suites, "seed": 0}
    if "token_shift" in resolve_suites(list(cfg.suites)):  # a cell's answers ranked by the swept model (URIAL);
        ev["base"] = cfg.model  # without it a one-model eval has no base and the suite is skipped
    px = sweep_proxy.settings(cfg.proxy, cfg.targets) if cfg.proxy else None
    anti = sweep_proxy.antiexpert(cfg.model, px, ev, root, log, reuse, cfg.pool) if px else ""  # first: fails early
    baseline = stage_run(eval_stage, {"models": [cfg.model], **ev}, "EvalConfig", root / "baseline", log, reuse=reuse)
    cand: dict[str, list[dict]] = {}
    about: dict[str, str] = {}  # where each target's candidates came from (sweep.json, sweep.md)
    needs_pool = POOL_TARGETS - ({"constraints", "mixed"} if cfg.constraint_rows and cfg.selection != "less" else set())
    if needs_pool & set(cfg.targets):
        pool = cfg.pool
        if not pool:
            s = stage_run(synth, {"model": cfg.model, "n": cfg.pool_size}, "SynthConfig", root / "pool-synth", log,
                          reuse=reuse)
            t = stage_run(tag, {"input": str(s.path), "judge": cfg.model, "scores": ["shape"]}, "TagConfig",
                          root / "pool-tag", log, inputs=[str(s.path / "synth.jsonl")], reuse=reuse)
            d = stage_run(dedup, {"input": str(t.path)}, "DedupConfig", root / "pool-dedup", log,
                          inputs=[str(t.path / "tagged.jsonl")], reuse=reuse)
            pool = str(d.path / "deduped.jsonl")
    if "format" in cfg.targets:
        c = stage_run(curate, {"input": pool, "strategy": "all", "n": 1, "spec": cfg.spec,
                               "min_conformance": cfg.min_conformance, "min_quality": None},
                      "CurateConfig", root / "format-candidates", log, inputs=[pool], reuse=reuse)
        cand["format"] = read_records(c.path / "selected.jsonl", "sft").rows
        about["format"] = f"{len(cand['format'])} pool rows conforming to {cfg.spec} >= {cfg.min_conformance}"
        log(f"format candidates: {about['format']}")
    if {"constraints", "mixed"} & set(cfg.targets) and cfg.constraint_rows:
        rows_path = Path(cfg.constraint_rows)
        cand["constraints"] = read_records(rows_path / "constrain.jsonl" if rows_path.is_dir() else rows_path,
                                           "sft").rows
        about["constraints"] = f"{len(cand['constraints'])} verified-constraint rows from {cfg.constraint_rows}"
        log(f"constraints candidates: {about['constraints']}")
    elif {"constraints", "mixed"} & set(cfg.targets):
        c = stage_run(constrain, {"input": pool, "model": cfg.constrain_model or cfg.model, "k": cfg.constrain_k,
                                  "limit": cfg.constrain_prompts, "seed": 0}, "ConstrainConfig",
                      root / "constraints", log, inputs=[pool], reuse=reuse)
        cand["constraints"] = read_records(c.path / "constrain.jsonl", "sft").rows
        m = c.manifest.get("metrics") or {}
        about["constraints"] = (f"{len(cand['constraints'])} verified-constraint rows kept of {m.get('attempted')} "
                                f"prompts (constrain, k={cfg.constrain_k})")
        log(f"constraints candidates: {about['constraints']}")
    pool_rows = read_records(pool, "sft").rows if {"random", "quality-diversity"} & set(cfg.targets) else []
    if "random" in cfg.targets:
        cand["random"] = pool_rows
        about["random"] = f"{len(cand['random'])} pool rows, drawn at random (no selection, no gate)"
        log(f"random candidates: {about['random']}")
    if "quality-diversity" in cfg.targets:
        cand["quality-diversity"] = pool_rows
        about["quality-diversity"] = f"{len(cand['quality-diversity'])} pool rows, curate --strategy quality-diversity"
    qd_pool = qd_input(pool, pool_rows, cfg, root, log, reuse) if "quality-diversity" in cfg.targets else ""
    less_targets: dict[str, str] = {}
    if cfg.selection == "less":
        for t in LESS_TARGETS:
            if t in cfg.targets:
                less_targets[t] = str(root / "less-targets" / f"{t}.jsonl")
                write_records([{"messages": r["messages"]} for r in draw(cand[t], cfg.less_target_rows, 0, f"{t}/less")],
                              less_targets[t])
                about[t] += f"; cells select from the pool by LESS toward {cfg.less_target_rows} of them"
    if {"invariance", "mixed"} & set(cfg.targets):
        w = stage_run(wrap, {"model": cfg.model}, "WrapConfig", root / "pairs", log, reuse=reuse)
        cand["invariance"] = [r for r in read_records(w.path / "pairs.jsonl", "pair").rows if r["split"] == "train"]
        about["invariance"] = f"{len(cand['invariance'])} train pairs (wrap)"
        log(f"invariance candidates: {about['invariance']}")
    if "knowledge" in cfg.targets:
        cand["knowledge"] = knowledge_rows()
        about["knowledge"] = f"{len(cand['knowledge'])} closed-book QA rows (shipped dev split)"
    if "mixed" in cfg.targets:
        about["mixed"] = "n - n/2 constraint rows + n/2 invariance pairs (SFT + BCT)"
    biggest = max(cfg.sizes)
    for k, v in cand.items():
        if v and len(v) < biggest:
            log(f"WARNING: {k}: {len(v)} candidate examples, fewer than the largest size {biggest}: those cells "
                "train on all of them (their n_examples says how many)")
    for k, v in cand.items():
        if not v:
            raise UserError(f"sweep: no candidate examples for target {k} (see the run folders under {root})")

    done_cells, new = [], 0
    at: dict[str, dict[str, Path]] = {}  # per cell, where its train and eval runs are (reused: elsewhere)
    experts: dict[str, str] = {}  # per cell with proxy arms, its expert's train run
    for target, n, seed in cells(cfg):
        name = f"{target}-n{n}-s{seed}"
        cell = root / "cells" / name
        ev_dir = cell / "eval"
        last = sweep_proxy.arm_dir(cell, px["alphas"][-1]) if px and target in px["targets"] else ev_dir
        if finished(last) is None and (reuse is None or reuse.chosen(last) is None):
            if cfg.max_cells and new >= cfg.max_cells:
                continue
            new += 1
        log(f"== cell {name}")
        cell.mkdir(parents=True, exist_ok=True)
        tcfg: dict[str, Any] = {"model": cfg.model, "max_steps": cfg.steps, "lr": cfg.lr, "seed": seed,
                                "batch_size": cfg.batch_size, "max_length": 512, "save_every": 0, "warmup_ratio": 0.0}
        if target in less_targets or target == "quality-diversity":  # a selection from the whole pool
            sel = less_curate(cfg.less_options, less_targets[target], cfg.selector or cfg.model,
                              str(root / "less-datastores")) if target in less_targets else {"strategy": "quality-diversity"}
            src = qd_pool if target == "quality-diversity" else pool
            c = stage_run(curate, {"input": src, "n": n, "seed": seed, **sel}, "CurateConfig", cell / "select", log,
                          inputs=[src], seed=seed, reuse=reuse)
            sft, pairs, objective = read_records(c.path / "selected.jsonl", "sft").rows, [], "sft"
        else:
            sft, pairs, objective = cell_data(target, n, seed, name, cand)
        inputs = []
        if sft:
            write_records(sft, cell / "sft.jsonl")
            tcfg["sft"] = str(cell / "sft.jsonl")
            inputs.append(str(cell / "sft.jsonl"))
        if pairs or objective == "bct":
            write_records(pairs, cell / "pairs.jsonl")
            tcfg["bct"] = str(cell / "pairs.jsonl")
            inputs.append(str(cell / "pairs.jsonl"))
        tcfg["objective"] = objective
        tr = stage_run(train, tcfg, "TrainConfig", cell / "train", log, inputs=inputs, seed=seed, reuse=reuse)
        e = stage_run(eval_stage, {"models": [str(tr.path)], **ev}, "EvalConfig", ev_dir, log,  # model by fingerprint
                      reuse=reuse)
        at[name] = {"train": tr.path, "eval": e.path}
        if px and target in px["targets"]:
            experts[name] = sweep_proxy.arms(cfg.model, anti, px, cell, tcfg, inputs, seed, ev, log, reuse)
        done_cells.append((target, n, seed, name, (tr.manifest.get("metrics") or {}).get("rows_used")))
    used = reuse.used if reuse else []
    result = {"candidates": about, **summarize(root, baseline.path, done_cells, {k: v["eval"] for k, v in at.items()}),
              "reused": {u["step"]: relative(u["run"], root) for u in used}}
    if px:
        result["proxy"] = sweep_proxy.summarize(root, cfg.model, px, anti, done_cells, experts,
                                                [u["run"] for u in used])
    write_json(root / "sweep.json", result)
    # `sharpset report` names each cell's target
    write_json(root / "plan.json", plan(cfg, done_cells, {k: relative(v["train"], root) for k, v in at.items()}))
    write_text(root / "sweep.md", format_markdown(result))  # atomic, as every output (issue 21)
    for step, where in result["reused"].items():
        log(f"reused: {step} <- {where}")
    total = len(cells(cfg))
    metrics = {"cells_done": len(done_cells), "cells_total": total, "elapsed_s": round(time.perf_counter() - t0, 1),
               "sweep": str(root / "sweep.json"), "reused": len(result["reused"])}
    if len(done_cells) < total:
        log(f"sweep: {len(done_cells)} of {total} cells done; run the same command again to continue")
        metrics["incomplete"] = True
        run.save_manifest()
        return metrics
    run.finish(outputs=["sweep.json", "sweep.md"], metrics=metrics)
    return metrics


def plan(cfg: SweepConfig, done: list[tuple[str, int, int, str, int | None]],
         trains: dict[str, str] | None = None) -> dict[str, Any]:
    """The report's plan (sharpset.report.collect): which train run was trained for which target, on how
    many examples, with which seed -- so the report draws effect-vs-size curves per target. ``trains``:
    a cell's train run where it is not ``cells/<cell>/train`` (reused: its path elsewhere)."""
    trains = trains or {}
    return {"title": f"sweep: {cfg.model}", "models": [
        {"train_run": trains.get(name, f"cells/{name}/train"), "target": target, "seed": seed,
         "label": f"{target}{' (less)' if cfg.selection == 'less' and target in LESS_TARGETS else ''} n={n} seed {seed}",
         **({"n_examples": rows} if rows else {})} for target, n, seed, name, rows in done]}


def _samples(eval_dir: Path) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for f in sorted((eval_dir / "samples").glob("*.jsonl")):
        out[f.stem] = {}
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            out[f.stem][r["item"]] = r
    return out


def summarize(root: Path, baseline_dir: Path, done: list[tuple[str, int, int, str, int | None]],
              evals: dict[str, Path] | None = None) -> dict[str, Any]:
    """Paired differences of every cell against the baseline on the same items (resampled by unit:
    :func:`sharpset.evaluate.pairing.compare_rows`), and means over seeds. Each row carries the
    metric's ``direction`` (+1 higher is better, -1 lower, 0 none: :func:`sharpset.evaluate.suite.direction`). ``evals``: a cell's eval run
    where it is not ``cells/<cell>/eval`` (reused from another folder)."""
    from ..evaluate.pairing import compare_rows
    from ..evaluate.suite import direction

    base_summary = json.loads((baseline_dir / "summary.json").read_text())
    base = _samples(baseline_dir)
    metrics = {s: e["metrics"] for s, e in base_summary["suites"].items()}
    lower = {s: e.get("lower_is_better") or [] for s, e in base_summary["suites"].items()}

    def paired(a: dict, b: dict, head: dict, n_rows: int | None) -> list[dict]:
        out = []
        for suite, ms in metrics.items():
            cs = compare_rows(a.get(suite, {}), b.get(suite, {}), ms, seed=0)
            for m in ms if cs else ():
                c = cs[m]
                if not c["n"]:
                    continue
                out.append({**head, "suite": suite, "metric": m, "direction": direction(suite, m, lower[suite]),
                            "before": c["a"], "after": c["b"], "diff": c["diff"],
                            "ci95": c["ci95"], "n_items": c["n"], "n_rows": c.get("n_rows"), "p": c.get("p"),
                            "mde": c.get("mde"), "fixed": c["fixed"], "broken": c["broken"],
                            "per_example": None if not n_rows or c["diff"] is None else round(c["diff"] / n_rows, 6)})
        return out

    samples = {name: _samples((evals or {}).get(name, root / "cells" / name / "eval")) for *_, name, _ in done}
    rows = []
    for target, n, seed, name, n_rows in done:
        rows += paired(base, samples[name], {"target": target, "n": n, "seed": seed, "n_examples": n_rows}, n_rows)
    vs: dict[str, list[dict]] = {b: [] for b in BASELINES}
    vs_random = vs["random"]
    for b in BASELINES:  # the question a targeted set must answer: does it beat random (and a target-blind pick)?
        bases = {(n, seed): name for target, n, seed, name, _ in done if target == b}
        for target, n, seed, name, n_rows in done:
            if target != b and (n, seed) in bases:
                vs[b] += paired(samples[bases[n, seed]], samples[name],
                                {"target": target, "n": n, "seed": seed, "n_examples": n_rows}, None)
    means: dict[str, Any] = {}
    for r in rows:
        key = f"{r['target']}|{r['n']}|{r['suite']}|{r['metric']}"
        means.setdefault(key, []).append(r["diff"])
    mean_rows = [{"target": k.split("|")[0], "n": int(k.split("|")[1]), "suite": k.split("|")[2],
                  "metric": k.split("|")[3], "mean_diff": round(sum(v) / len(v), 4), "seeds": len(v)}
                 for k, v in sorted(means.items())]
    return {"baseline": str(baseline_dir), "cells": rows, "means_over_seeds": mean_rows, "vs_random": vs_random,
            **({"vs_quality_diversity": vs["quality-diversity"]} if vs["quality-diversity"] else {})}


def format_markdown(result: dict[str, Any]) -> str:
    about = result.get("candidates") or {}
    lines = (["Candidate examples per target:", ""] + [f"- {t}: {v}" for t, v in about.items()] + [""]
             if about else [])
    lines += ["Each cell against the untrained model, paired per item:", "",
              "| target | n | seed | suite | metric | before | after | diff [95% CI] | p | items | diff/example |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_md_row(r, r["per_example"]) for r in result["cells"]]
    if result.get("vs_random"):
        lines += ["", "Each cell against the `random` cell of the same n and seed (before = random, after = the "
                      "target), paired per item:", "",
                  "| target | n | seed | suite | metric | random | target | diff [95% CI] | p | items | mde |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_md_row(r, r.get("mde")) for r in result["vs_random"]]
    if result.get("vs_quality_diversity"):
        lines += ["", "Each cell against the `quality-diversity` cell of the same n and seed, paired per item:", "",
                  "| target | n | seed | suite | metric | quality-diversity | target | diff [95% CI] | p | items | mde |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_md_row(r, r.get("mde")) for r in result["vs_quality_diversity"]]
    if result.get("proxy"):
        lines += sweep_proxy.markdown(result["proxy"])
    return "\n".join(lines) + "\n"


def _md_row(r: dict, last: Any) -> str:
    ci = r["ci95"]
    interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "(n too small)"
    p = "" if r.get("p") is None else f"{r['p']:.3g}"
    return (f"| {r['target']} | {r['n']} | {r['seed']} | {r['suite']} | {r['metric']} | {r['before']} | "
            f"{r['after']} | {r['diff']:+.3f} {interval} | {p} | {r['n_items']} | {last} |")
