"""The ``audit`` pipeline: the research claims sharpset was built on, re-tested on the user's models.

``sharpset run audit`` runs, for each claim in :data:`sharpset.pipelines.claims.CLAIMS`, the arms it
compares -- each arm a model (the base or the aligned one), untrained or trained on a named data set
with a stated objective, evaluated on fixed items -- and turns the paired differences into a verdict
by the rule the registry states, never by hand. The job is split four ways:

- this module: the config and its one size dial, and the run;
- :mod:`sharpset.pipelines.audit_plan`: the plan (``--dry-run``: claims, arms, stage runs, the MDE
  each claim can reach, an estimated cost, what each size buys), its names importable from here too;
- :mod:`sharpset.pipelines.audit_arms`: the data sets, trainings and evaluations, every one a
  cached, resumable stage run shared by the claims that use it;
- :mod:`sharpset.pipelines.audit_verdicts`: the comparisons, Holm's adjustment, the verdict rules
  (supported / contradicted / inconclusive / not run) and ``audit.md``.

**How many items** (issue 23): the evaluation size comes from power, not from time, and per suite
and arm, not one count for all. The dial states the minimum detectable effect a deciding comparison
is built for (``eval_mde``, 80% power, two-sided 0.05) and one for a comparison printed only as
evidence (``evidence_mde``); an arm's suite gets the fewest items whose planned MDE
(:func:`sharpset.stats.planned_n` at :data:`~sharpset.pipelines.audit_plan.PLANNING_DISCORDANCE`) reaches the stricter of the two
its comparisons ask for -- a suite's whole test split where that is smaller -- and invariance only
the wrapper families its comparisons read (eval's ``suite_limits`` and ``invariance_families``:
:func:`sharpset.pipelines.audit_arms.eval_settings`). A comparison's n is the fewer of its two arms'
items; its measured MDE goes beside its verdict, and a claim's row shows one comparison's n and MDE
together. Invariance counts questions (the unit), each wrapped by every family applied.

**Sizes** (issue 23: the default size under an hour on 2 cores, at least 2 seeds for the training
claims, ``small`` a first look in ~15 minutes): no useful power buys all five runnable claims (before 8
and 9) at 2 seeds in an hour (their 10 trained arms x 2 seeds, 22 model loads and the data steps are ~51 min by
the estimate before one item is scored), so each size runs the claims it can decide in its time and
lists the others as "not run at size ..." with the command that runs them -- ``--claims 1,2,3`` in
the same folder (shared runs are not run again) or ``--set size=large``. ``small``: claim 3, 2
seeds, MDE 0.25 (~11 min estimated); ``medium``, the default: claims 1 and 3, 2 seeds, MDE 0.14 --
small enough for the non-inferiority checks at margin 0.1 to be decided (~55 min; claim 8 would add
~6 min, claim 9 ~36 (~15 of it healing its anti-expert), claim 6 ~18 and claim 7 ~15: ``--claims 1,3,8``);
``large``: every claim, 2 seeds, MDE 0.12 (~5.3 h).
``--dry-run`` prints what each size buys: its seeds, stage runs, estimated minutes and the planned
MDE of each claim.

**Claims 8 and 9** (URIAL's token shift, proxy-tuning) read arms the other claims train: claim 8 the
tuned arms' answers ranked by the base in a token-shift eval run of their own (never a suite of the
arm's eval run, so choosing claim 8 changes no existing eval run's key), claim 9 the base and
base-curated evals beside a derived anti-expert (the base's first ``keep_layers`` = 12 decoder layers
healed ``heal_steps`` = 45 steps on the pool's text: issue 22 measured a plain truncation to decode
noise), its expert and a proxy arm per alpha (:mod:`sharpset.pipelines.audit_arms`; the rules:
:mod:`sharpset.pipelines.audit_verdicts`). Their fields (``keep_layers``, ``heal_steps``, ``alphas``)
enter the audit's own key only where set off their defaults, and ``token_shift``'s suite version not
at all, so ``--claims 1,3,8`` runs in the folder a medium audit left open (a key change would refuse
it, and ``--force`` would remove its finished stage runs); the stage runs key themselves. Version 4
(claim 9's new defaults) is such a key change: a version-3 folder is refused, and an audit in a new
folder beside it reads its finished stage runs in place (``reuse``: auto).

**Claim 6** (speech acts; no paper: DESIGN.md) reads the base, the aligned model and ``aligned-warn``
-- the aligned model trained (SFT, the audit's step budget) on ``warn-when-warranted``: its own
answers to the speech-acts *dev* prompts, ``warn_k`` sampled per prompt and the first kept that warns
on a risky prompt / does not on a benign control, by the suite's own classifier
(:mod:`sharpset.pipelines.audit_warn`). Its checks read the *test* split in a speech-acts eval run of
its own per arm (``speech-acts-<arm>``, like token shift's), so base's and aligned's eval runs, and the
audit's key, stay as they were; ``warn_k`` is a new field at its default, out of every existing key.

**Claim 7** (lexical vs emotional alignment; no paper) trains the base, like the random N, on two
targets of N pool rows selected by the dimensions suite's own scorers (``select-lexical``,
``select-emotional``: :mod:`sharpset.pipelines.audit_dims`) and reads the dimensions suite in an eval
run of its own per arm (``dimensions-<arm>``; base-random's eval run is unchanged): each target must
raise its own dimension against the random N (superiority) and leave the other within ``margin``
either way (``equivalence``).

**Reuse** (issue 23): a step whose work a finished run elsewhere already did -- a sweep's cell, a
quickstart's pool -- is read from there (:mod:`sharpset.pipelines.reuse`: matched by content key,
not by path; ``reuse`` names the folders searched, by default the one the audit's folder sits in).
``audit.json``'s ``reused`` lists each.

Seeds: each trained arm is trained once per seed (training order, LoRA init, and the random-N draw);
the comparison pools the seeds, pairing ``seed:item`` rows and resampling *items*. Untrained arms are
evaluated once (greedy).

Outputs: ``audit.json`` (``claims``: per claim ``claim``, ``verdict`` exactly one of supported /
contradicted / inconclusive / not run, ``verdict_text`` (in words, with the MDE where inconclusive),
``rule``, its deciding comparison's ``diff``, ``ci95``, ``p``, ``p_holm``, ``n``, ``seeds``, ``mde``,
the ``paper``'s figure, every comparison under ``checks``; ``arms`` with each arm's eval runs and
its token-shift runs (``suite_evals``); ``reused``), ``audit.md`` (the verdict table, then one section per claim), and a dataset card for
every data set it built. ``sharpset report`` on the folder draws the audit page (``audit.html``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..run import RunDir
from .audit_arms import Ctx, build_data, eval_settings, run_arms
from .audit_plan import (  # noqa: F401 -- the plan's names, re-exported (sharpset.pipelines.audit.*)
    DERIVE_SECONDS, DERIVED_STEP_SECONDS, PLANNING_DISCORDANCE, PLANNING_SHIFT_SD, PROXY_EVAL_FACTOR,
    SECONDS_PER_80_TOKENS, SHORT_ANSWER_TOKENS, WARN_FACTOR, arms_needed, check_units, chosen, data_needed, dry_run,
    eval_seconds, eval_text, planned_power, size_table, split_sizes, step_folders)
from .audit_verdicts import format_markdown, summarize
from .claims import ARMS, CLAIM_IDS, CLAIMS, arm_suites
from .quickstart import pipeline_reads

STAGE = "audit"
VERSION = 4  # 4 (issue 22): claim 9's anti-expert is the base's first 12 layers healed 45 steps on the pool's text
# (keep_layers 9 -> 12, heal_steps 45: a plain truncation decodes noise). 3 (issue 23: the default size under an
# hour on 2 cores): items per suite and arm from what its checks need (eval_mde where a deciding check reads the
# suite, evidence_mde where only evidence does: eval's suite_limits), invariance on the wrapper families an arm's
# checks read; sizes small / medium / large, each running the claims it
# can decide in its time (claims [] = the size's; large = version 2's medium, every claim); the cost estimate counts
# knowledge QA and invariance answers at their suites' 32 tokens, and their log-likelihood scoring
# (2: verdict words supported / contradicted; eval items from power (eval_mde), each arm on the suites its checks
# read; small: one seed; synth / wrap settings of quickstart's size (its runs reused); the random N drawn as a sweep
# random cell. 1: 8 / 20 items per suite, every suite for every arm, random N by curate)

# The size dial. n: the curated set's rows (LIMA's N); pool_factor: the pool arm holds pool_factor x
# n rows (LIMA's claim is about a pool >= 4N); steps: optimizer steps of every "same steps" arm (the
# pool's "same epochs" arm gets steps x pool rows / n); seeds: trainings per arm; eval_mde: the
# minimum detectable effect a deciding comparison's suite is sized for, evidence_mde: the same for a
# suite only evidence reads (the items per suite follow: resolved()); claims: the claims the size
# runs when none are named. n_pool, response_max_tokens and wrap_questions are quickstart's at a
# size (small and medium: quickstart small's; large: quickstart medium's), so an audit beside a
# quickstart reuses its synth, tag, dedup and wrap runs (pipelines/reuse.py).
#
# Why eval_mde, not a number of items: version 1's small size scored 8 items per suite, where a paired
# 0/1 comparison cannot detect anything below 0.98 (stats.binary_mde's floor, 7.85 / n) -- every
# verdict was "inconclusive" by construction. So the item count comes from power and the compute is
# saved on claims, seeds and steps instead. An eval_mde under ~0.14 is where a non-inferiority check
# at margin 0.1 becomes decidable (its 95% half-width, Z95 / (Z95 + Z80) = 0.7 of the MDE, must fall
# under the margin).
#
# Why a size runs some claims (issue 23 asks for both an hour at the default size and 2 seeds for the
# training claims): the five claims that can run train 7 base arms and 3 aligned arms per seed and
# evaluate each; at 2 seeds and medium's 12 steps that is ~35 min of training, ~9 min of loading models
# for 22 evaluations and ~7 min of synth, tag and wrap -- ~51 min by the estimate before one item is
# scored (eval_limit=1), ~72 min at an MDE of 0.5 -- so no useful power buys all five in an hour.
# Each size therefore runs the claims it can decide in its time, at a power that decides them, and
# lists the others as "not run at this size" with the command that runs them (`--claims 1,2,3` in the
# same folder: the runs it shares are not run again; or `--set size=large`, every claim). `--dry-run`
# prints what each size buys: its claims, minutes and planned MDE per claim.
SIZES: dict[str, dict[str, Any]] = {
    "small": {"n": 8, "pool_factor": 4, "steps": 12, "seeds": 2, "n_pool": 64, "eval_mde": 0.25,
              "evidence_mde": 0.3, "eval_max_new_tokens": 64, "wrap_questions": 32, "response_max_tokens": 192,
              "claims": ["3"]},
    "medium": {"n": 8, "pool_factor": 4, "steps": 12, "seeds": 2, "n_pool": 64, "eval_mde": 0.14,
               "evidence_mde": 0.3, "eval_max_new_tokens": 128, "wrap_questions": 32, "response_max_tokens": 192,
               "claims": ["1", "3"]},
    "large": {"n": 16, "pool_factor": 4, "steps": 24, "seeds": 2, "n_pool": 200, "eval_mde": 0.12,
              "evidence_mde": 0.25, "eval_max_new_tokens": 128, "wrap_questions": 96, "response_max_tokens": 384,
              "claims": ["1", "2", "3", "4", "5", "6", "7", "8", "9"]},
}
DIAL = tuple(SIZES["small"])


@dataclass
class AuditConfig:
    size: str = field("medium", f"the one size dial: {', '.join(SIZES)} (small: a first look; each size runs the "
                                "claims it can decide in its time, --dry-run prints what each buys)")
    # not in the run key (as sweep's max_cells): a subset runs in the same folder and shares its stage runs
    # with every other subset; the folder is complete once an audit of every claim has run
    claims: list = field([], f"claims to run, any of {', '.join(CLAIM_IDS)} (those that need missing parts are listed "
                             "as not run); [] = the size's claims, the others listed as not run at this size",
                         in_key=False)
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
    # not in the run key: a reused run computed exactly what the step would (the same content key)
    reuse: list = field(["auto"], "folders searched for finished stage runs (sweep, quickstart, other audits) that "
                                  "do a step's work exactly -- same data by content, same model, same settings -- "
                                  "and are read in place instead of recomputed; auto = the folder the audit's run "
                                  "folder sits in; [] = reuse nothing", in_key=False)
    # the dial's knobs, 0 = from size
    n: int = field(0, "curated rows N (0 = from size)")
    pool_factor: int = field(0, "the pool arm's rows = pool_factor x N (0 = from size; LIMA: >= 4)")
    steps: int = field(0, "optimizer steps of the same-steps arms (0 = from size)")
    seeds: int = field(0, "trainings per arm (0 = from size)")
    n_pool: int = field(0, "synth attempts (0 = from size)")
    eval_mde: float = field(0.0, "the minimum detectable effect (80% power, two-sided 0.05) a suite that a deciding "
                                 "comparison reads is sized for: its items = the fewest whose planned MDE reaches it "
                                 "(0 = from size)")
    evidence_mde: float = field(0.0, "the same for a suite an arm is evaluated on only for evidence (comparisons "
                                     "printed beside a verdict, not deciding it; 0 = from size; never below eval_mde)")
    eval_limit: int = field(-1, "eval items of every suite, deciding or evidence (-1 = from eval_mde and evidence_mde, "
                                "0 = the whole split)")
    eval_max_new_tokens: int = field(0, "eval answer length limit (0 = from size)")
    wrap_questions: int = field(-1, "questions made into invariance pairs (-1 = from size, 0 = all)")
    # claim 9 (proxy-tuning), issue 22 on gemma3-270m (alpha 1, one seed): a plain truncation decodes noise at every K
    # tried (12-17; knowledge QA 0.25 -> 0.00-0.02); healed 45 steps, K = 12 and 15 are indistinguishable (QA 0.250 /
    # 0.283, tuned 0.250; MC above tuned +0.117 / +0.100) and K = 9 echoes 74% of requests (QA 0.05): 12, the cheaper
    keep_layers: int = field(12, "claim 9's anti-expert: the base's first K decoder layers (sharpset derive); the "
                                 "expert is it trained on the curated N with base-curated's budget")
    heal_steps: int = field(45, "claim 9's anti-expert: steps of distillation from the base on the pool's text "
                                "(sharpset derive --heal-steps) before it is trained; 0 = the plain truncation")
    alphas: list = field([1.0], "claim 9's proxy arms: base + alpha (expert - anti-expert), one per alpha; the first "
                                "decides (1.0: the paper's), the others are evidence")
    # claim 6. 4: a stated default, not chosen by measurement (no yield of the aligned model's warnings measured yet)
    warn_k: int = field(4, "claim 6's warn-when-warranted set: answers sampled per speech-acts dev prompt; the first "
                           "that warns where a warning is warranted (and does not on a benign control) is kept")

    def __post_init__(self) -> None:
        self.claims = [str(c).strip() for c in self.claims]
        if isinstance(self.reuse, str):  # --set reuse=runs
            self.reuse = [self.reuse]
        if isinstance(self.alphas, (int, float)) and not isinstance(self.alphas, bool):  # --set alphas=0.5
            self.alphas = [self.alphas]

    def input_paths(self) -> list[str]:
        return [self.pool] if self.pool else []

    def key_inputs(self) -> dict[str, str]:
        return pipeline_reads([self.aligned_model, self.base_model, self.embedder],
                              sorted({s for a in ARMS for s in arm_suites(a)}), self.overrides)

    def check(self) -> list[tuple[str, str]]:
        p = []
        if self.size not in SIZES:
            p.append(("size", f"must be one of {', '.join(SIZES)}"))
        bad = [c for c in self.claims if c not in CLAIM_IDS]
        if bad:
            p.append(("claims", f"unknown claim {', '.join(map(repr, bad))}; known: {', '.join(CLAIM_IDS)} "
                                "([] = the size's claims)"))
        if self.margin < 0:
            p.append(("margin", "must be >= 0"))
        for name in ("n", "pool_factor", "steps", "seeds", "n_pool", "eval_max_new_tokens"):
            if getattr(self, name) < 0:
                p.append((name, "must be >= 0"))
        for name in ("eval_mde", "evidence_mde"):
            if not 0 <= getattr(self, name) < 1:
                p.append((name, "must be in (0, 1) (0 = from size)"))
        if self.eval_limit < -1:
            p.append(("eval_limit", "must be >= -1 (-1 = from eval_mde, 0 = the whole split)"))
        if self.lr <= 0:
            p.append(("lr", "must be > 0"))
        if self.keep_layers < 1:
            p.append(("keep_layers", "must be >= 1 (the base's first K decoder layers)"))
        if isinstance(self.heal_steps, bool) or not isinstance(self.heal_steps, int) or self.heal_steps < 0:
            p.append(("heal_steps", f"must be an integer >= 0 (0 = the plain truncation), got {self.heal_steps!r}"))
        if isinstance(self.warn_k, bool) or not isinstance(self.warn_k, int) or self.warn_k < 1:
            p.append(("warn_k", f"must be an integer >= 1 (answers sampled per prompt), got {self.warn_k!r}"))
        finite = isinstance(self.alphas, list) and all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in self.alphas)
        if not finite or not self.alphas:
            p.append(("alphas", f"a non-empty list of finite numbers, got {self.alphas!r}"))
        elif len({f"{a:g}" for a in self.alphas}) != len(self.alphas):
            p.append(("alphas", f"each alpha once, got {self.alphas!r}"))
        from .reuse import reuse_problem

        if why := reuse_problem(self.reuse, "audit"):
            p.append(("reuse", why))
        return p

    def resolved(self) -> dict[str, Any]:
        """The size's dial with this config's knobs over it, and the items per suite: ``eval_limit``
        for a suite a deciding comparison reads (the fewest whose planned MDE reaches eval_mde),
        ``evidence_limit`` for one only evidence reads (evidence_mde's, never more than eval_limit)."""
        from ..stats import planned_n

        out = dict(SIZES.get(self.size, SIZES["small"]))
        for k in ("n", "pool_factor", "steps", "seeds", "n_pool", "eval_mde", "evidence_mde", "eval_max_new_tokens"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        if self.wrap_questions >= 0:
            out["wrap_questions"] = self.wrap_questions
        if self.eval_limit >= 0:  # one count for every suite, as given
            out["eval_limit"] = out["evidence_limit"] = self.eval_limit
        else:
            out["eval_limit"] = planned_n(out["eval_mde"], PLANNING_DISCORDANCE)
            out["evidence_limit"] = min(out["eval_limit"], planned_n(out["evidence_mde"], PLANNING_DISCORDANCE))
        return out

    def claim_ids(self) -> list[str]:
        """The claims this audit runs: those named, else the size's (with the claims that need missing
        parts, which are listed as not run whatever the size)."""
        if self.claims:
            return list(self.claims)
        size = set(self.resolved()["claims"])
        return [c.id for c in CLAIMS if c.id in size or c.needs]

    def listed_ids(self) -> list[str]:
        """The claims in the verdict table: every claim, whichever run (a claim the size or ``--claims``
        leaves out reads "not run ..." with the command that runs it, :meth:`held_back_text`)."""
        return list(CLAIM_IDS)

    def held_back_text(self, claim: str, minutes: float | None = None) -> str:
        """Why a claim the size (or ``--claims``) leaves out reads "not run", and the commands that run it."""
        if self.claims:
            ids = [i for i in CLAIM_IDS if i in self.claims]
            both = ",".join(i for i in CLAIM_IDS if i in ids or i == claim)
            more = "" if minutes is None else f" (~{minutes:.0f} min more)"
            return (f"not run: not among --claims {','.join(ids)}{more}; --claims {both} runs it beside "
                    f"{'them' if len(ids) > 1 else 'it'} in this folder (their runs reused)")
        ids = self.resolved()["claims"]
        both = ",".join(i for i in CLAIM_IDS if i in ids or i == claim)
        more = "" if minutes is None else f"~{minutes:.0f} min more at this size; "
        return (f"not run at size {self.size} ({more}it runs claim{'s' * (len(ids) > 1)} {', '.join(ids)} in its "
                f"time): --claims {both} runs it beside {'them' if len(ids) > 1 else 'it'} in this folder (their "
                "runs reused), --set size=large runs every claim")

    def reuse_dirs(self, root: Path) -> list[Path]:
        from .reuse import search_dirs

        return search_dirs(self.reuse, root)


# -- running ---------------------------------------------------------------------------------------
def run(cfg: AuditConfig, run: RunDir, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import write_json, write_text
    from .reuse import Reuse

    z = cfg.resolved()
    root = run.path
    t0 = time.perf_counter()
    claims = chosen(cfg)
    arms = arms_needed(claims, cfg.alphas)
    dirs = cfg.reuse_dirs(root)
    ctx = Ctx(cfg, z, root, log, Reuse(dirs, root) if dirs else None)
    log(f"audit ({cfg.size}): claims {', '.join(c.id for c in claims)}; arms {', '.join(a.name for a in arms)}; "
        f"{json.dumps(z)}")
    if any(a.model == "derived" for a in arms):  # claim 9's anti-expert: K in range, known before anything runs
        from ..errors import UserError
        from ..models.derive import keep_layers_problem

        if why := keep_layers_problem(cfg.base_model, cfg.keep_layers):
            raise UserError(f"keep_layers: {why}")
    data = build_data(ctx, data_needed(arms))
    evals, skipped, where, where_own = run_arms(ctx, arms, data, claims)
    seeds = ctx.seeds
    result = summarize(cfg, evals, seeds, skipped, data.get("yield"))

    def rel(p: str) -> str:
        return str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else p

    result.update({"size": cfg.size, "dial": z, "planned": planned_power(cfg), "arms": {
        a.name: {"about": a.about, "not_run": skipped.get(a.name), "suites": arm_suites(a.name),
                 "eval": eval_settings(a.name, z),
                 "evals": [{"seed": s, "run": rel(p)} for s, p in where[a.name].items()],
                 **({"suite_evals": {s: [{"seed": k, "run": rel(p)} for k, p in runs.items()]
                                     for s, runs in where_own[a.name].items()}} if where_own[a.name] else {}),
                 **({"alpha": a.alpha} if a.engine else {})} for a in arms},
        "reused": [{**u, "run": rel(u["run"])} for u in (ctx.reuse.used if ctx.reuse else [])]})
    write_json(root / "audit.json", result)
    write_text(root / "audit.md", format_markdown(result, cfg))
    if cfg.cards:
        from ..report.cards import card_all

        for folder in ("synth", "dedup", "select-pool", "select-curated", "wrap", "select-warn", "select-lexical",
                       "select-emotional", *(
                f"select-random-s{s}" for s in seeds), *(f"control-{k}" for k in ("simplified", "delusive", "empty"))):
            if (root / folder / "manifest.json").exists():  # its own runs only: a reused folder is not written to
                card_all(root / folder)
    for u in result["reused"]:
        log(f"reused: {u['step']} <- {u['run']}")
    for c in result["claims"]:
        log(f"claim {c['claim']} ({c['title']}): {c['verdict_text']}")
    metrics = {"elapsed_s": round(time.perf_counter() - t0, 1), "audit": str(root / "audit.json"),
               "verdicts": {c["claim"]: c["verdict"] for c in result["claims"]}, "reused": len(result["reused"])}
    if set(CLAIM_IDS) - set(cfg.claim_ids()):  # a subset: the folder stays open to the other claims (its runs shared)
        log(f"audit: claims {', '.join(c.id for c in claims)} of {len(CLAIM_IDS)}; another --claims in this folder "
            "reuses these runs")
        run.manifest["metrics"] = metrics
        run.save_manifest()
        return metrics
    run.finish(outputs=["audit.json", "audit.md"], metrics=metrics)
    return metrics
