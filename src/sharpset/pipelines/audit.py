"""The ``audit`` pipeline: the research claims sharpset was built on, re-tested on the user's models.

``sharpset run audit`` runs, for each claim in :data:`sharpset.pipelines.claims.CLAIMS`, the arms it
compares -- each arm a model (the base or the aligned one), untrained or trained on a named data set
with a stated objective, evaluated on fixed items -- and turns the paired differences into a verdict
by the rule the registry states, never by hand. The job is split three ways:

- this module: the config and its one size dial, the plan (``--dry-run``: claims, arms, stage runs,
  the MDE each claim can reach, an estimated cost, what each size buys) and the run;
- :mod:`sharpset.pipelines.audit_arms`: the data sets, trainings and evaluations, every one a
  cached, resumable stage run shared by the claims that use it;
- :mod:`sharpset.pipelines.audit_verdicts`: the comparisons, Holm's adjustment, the verdict rules
  (supported / contradicted / inconclusive / not run) and ``audit.md``.

**How many items** (issue 23): the evaluation size comes from power, not from time, and per suite
and arm, not one count for all. The dial states the minimum detectable effect a deciding comparison
is built for (``eval_mde``, 80% power, two-sided 0.05) and one for a comparison printed only as
evidence (``evidence_mde``); an arm's suite gets the fewest items whose planned MDE
(:func:`sharpset.stats.planned_n` at :data:`PLANNING_DISCORDANCE`) reaches the stricter of the two
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
~6 min, claim 9 ~22, claim 6 ~18 and claim 7 ~15: ``--claims 1,3,8``); ``large``: every claim, 2 seeds,
MDE 0.12 (~5.3 h).
``--dry-run`` prints what each size buys: its seeds, stage runs, estimated minutes and the planned
MDE of each claim.

**Claims 8 and 9** (URIAL's token shift, proxy-tuning) read arms the other claims train: claim 8 the
tuned arms' answers ranked by the base in a token-shift eval run of their own (never a suite of the
arm's eval run, so choosing claim 8 changes no existing eval run's key), claim 9 the base and
base-curated evals beside a derived anti-expert, its expert and a proxy arm per alpha
(:mod:`sharpset.pipelines.audit_arms`; the rules: :mod:`sharpset.pipelines.audit_verdicts`). Their
new fields (``keep_layers``, ``alphas``) and ``token_shift``'s suite version are not among the
audit's own key inputs: the key of every existing audit folder stays as it was, so ``--claims 1,3,8``
runs in the folder a medium audit left open (a key change would refuse it, and ``--force`` would
remove its finished stage runs); the stage runs key themselves.

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

import functools
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..run import RunDir
from .audit_arms import Ctx, build_data, eval_families, eval_settings, reads, run_arms
from .audit_verdicts import format_markdown, summarize
from .claims import (ARMS, BELOW, CLAIM_IDS, CLAIMS, EQ, GAP, NI, OWN_FOLDER, OWN_STEP, Arm, Check, Claim, arm_named,
                     arm_suites, checks_of, proxy_arm)
from .claims import chosen as _chosen
from .quickstart import pipeline_reads

STAGE = "audit"
VERSION = 3  # 3 (issue 23: the default size under an hour on 2 cores): items per suite and arm from what its checks
# need (eval_mde where a deciding check reads the suite, evidence_mde where only evidence does: eval's suite_limits),
# invariance on the wrapper families an arm's checks read; sizes small / medium / large, each running the claims it
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
# The share of items whose 0/1 score differs between two arms, assumed to size the evaluation before
# anything has run (stats.planned_n). A stated planning figure, not a measurement: two LoRA runs of
# one base on 8-16 rows answer most items alike, and 0.3 leaves room for arms that move a third of
# them. More discordance than this needs more items for the same MDE; the MDE each comparison really
# reached is measured (stats.paired_diff_ci) and printed beside its verdict. Seeds are not counted:
# pooled per item they only narrow the interval, so the planned MDE is an upper bound.
PLANNING_DISCORDANCE = 0.3
# The standard deviation of an answer's shifted share (claim 8), assumed to size the token-shift check before
# anything has run: a stated planning figure, not a measurement (URIAL's pooled 5-8% shifted, answers spread
# around it by about as much again). The MDE each check really reached is measured and printed beside its verdict.
PLANNING_SHIFT_SD = 0.1


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
    # claim 9 (proxy-tuning). 9 = half of gemma3-270m's 18 decoder layers: a stated default, not yet chosen by
    # measurement (no comparison of K has run; the paper's expert is a 7B model for a 13B or 70B base)
    keep_layers: int = field(9, "claim 9's anti-expert: the base's first K decoder layers (sharpset derive); the "
                                "expert is it trained on the curated N with base-curated's budget")
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


# -- the plan: which arms, data sets and stage runs the chosen claims need -------------------------
def chosen(cfg: AuditConfig) -> list[Claim]:
    """The claims this audit runs (:meth:`AuditConfig.claim_ids`), in registry order."""
    return _chosen(cfg.claim_ids())


def arms_needed(claims: list[Claim], alphas=(1.0,)) -> list[Arm]:
    """The arms the claims' checks read, with the expert each proxy arm steers by (trained, not
    evaluated); registry order, each arm once, the proxy arm one per alpha."""
    names = {n for c in claims if not c.needs for ch in checks_of(c, alphas) for n in ch.arms}
    names |= {arm_named(n).expert for n in names if arm_named(n).expert}
    out: list[Arm] = []
    for a in ARMS.values():
        if a.engine:  # the proxy arm: one per alpha, in the alphas' order
            out += [arm_named(proxy_arm(x)) for x in alphas if proxy_arm(x) in names]
        elif a.name in names:
            out.append(a)
    return out


def data_needed(arms: list[Arm]) -> list[str]:
    need: list[str] = []
    deps = {"curated": ["pool"], "random": ["pool"], "pool": ["pool"], "simplified": ["pool", "curated"],
            "delusive": ["pool", "curated"], "empty": ["pool", "curated"], "pairs": [], "warn": [],
            "lexical": ["pool"], "emotional": ["pool"]}
    for a in arms:
        for d in [a.data, a.sft]:
            for x in (deps.get(d, []) + [d]) if d else []:
                if x not in need:
                    need.append(x)
    order = ["pool", "curated", "random", "simplified", "delusive", "empty", "lexical", "emotional", "pairs", "warn"]
    return sorted(need, key=order.index)


def _seeds(cfg: AuditConfig, z: dict) -> list[int]:
    return [cfg.seed + k for k in range(z["seeds"])]


@functools.lru_cache(maxsize=1)
def split_sizes() -> dict[str, int]:
    """Test-split units of the suites the audit reads: format and format_unseen prompts, knowledge's
    multiple-choice and open questions, invariance's eval questions, token_shift's (shape's) prompts,
    speech_acts' warranted prompts and its benign controls, dimensions' user turns."""
    from ..dataio import read_records
    from ..evaluate.data import load
    from ..invariance import QUESTIONS, question_split

    out = {name: len(load(name, "test")) for name in ("format", "format_unseen", "knowledge_mc", "knowledge_qa")}
    out["token_shift"] = len(load("shape", "test"))
    out["speech_acts"] = len(load("speech_acts", "test"))  # the warranted prompts; the suite's limit counts per group
    out["speech_acts_benign"] = len(load("speech_acts_benign", "test"))
    out["dimensions"] = len(load("dimensions", "test"))
    out["invariance"] = sum(question_split(r["id"]) == "eval"
                            for r in read_records(QUESTIONS, "sft", require_response=False).rows)
    return out


def _suite_items(settings: dict, suite: str, split: int) -> int:
    """The items an eval config (:func:`sharpset.pipelines.audit_arms.eval_settings`) scores of a
    suite whose test split holds ``split``: its suite_limits entry, else its limit (0 = all)."""
    limit = settings["suite_limits"].get(suite, settings["limit"])
    return min(limit, split) if limit else split


def check_units(ch: Check, z: dict, sizes: dict[str, int]) -> tuple[int, str]:
    """(the units a check compares, how that count bounds them: "" exact, ">=" at least, "<=" at
    most): the fewer of its two arms' items of the suite (each arm's own count,
    :func:`sharpset.pipelines.audit_arms.eval_settings`; the fixed order makes the smaller set part of
    the larger) -- a format prompt, a knowledge question, an invariance question (its wrapper
    families are rows of one unit). Health pools every answer of the suites both arms answer, so at
    least the format prompts; a flip exists only where the plain question was answered right, so at
    most the questions (how many the model answers right is not known before it runs). A token-shift
    check reads its arm's own-step run (answers), a gap share its three arms'. A speech-acts check
    reads the warranted prompts or the benign controls (its ``where``), each group limited apart."""
    suite = "format" if ch.suite == "health" else ch.suite
    split = sizes[("knowledge_qa" if ch.metric == "qa_correct" else "knowledge_mc") if suite == "knowledge" else
                  "speech_acts_benign" if suite == "speech_acts" and ("warranted", False) in ch.where else suite]
    own = ch.suite if ch.suite in OWN_STEP else False
    n = min(_suite_items(eval_settings(arm, z, own), suite, split) for arm in ch.arms)
    return n, ">=" if ch.suite == "health" else "<=" if ch.metric == "flip" else ""


def planned_power(cfg: AuditConfig) -> list[dict[str, Any]]:
    """Per chosen claim that can run: each deciding check's planned units (:func:`check_units`) and
    MDE (stats.planned_mde at PLANNING_DISCORDANCE; a gap share: that of its tuned - base gap, which
    must be shown for the share to be defined; a token-shift share: (z95 + z80) x
    PLANNING_SHIFT_SD / sqrt(n)), and the claim's -- the largest, since every deciding check must be
    decided."""
    from ..stats import Z80, Z95, planned_mde

    z = cfg.resolved()
    sizes = split_sizes()
    out = []
    for c in chosen(cfg):
        if c.needs:
            continue
        rows = []
        for ch in checks_of(c, cfg.alphas):
            if not ch.decides:
                continue
            n, bound = check_units(ch, z, sizes)
            mde = planned_mde(n, PLANNING_DISCORDANCE) if ch.rule != BELOW else \
                None if n < 2 else (Z95 + Z80) * PLANNING_SHIFT_SD / math.sqrt(n)
            rows.append({"check": ch.label, "n": n, "bound": bound, "mde": mde, "rule": ch.rule,
                         # non-inferiority needs the 95% half-width, Z95 / (Z95 + Z80) of the MDE, under the margin
                         "ni_decidable": None if ch.rule not in (NI, EQ) or mde is None else
                         mde * Z95 / (Z95 + Z80) < cfg.margin})
        worst = max((r["mde"] for r in rows if r["mde"] is not None), default=None)
        out.append({"claim": c.id, "title": c.title, "mde": worst, "checks": rows})
    return out


# Rough costs on 2 CPU cores, from quickstart's measured small run (README: synth 118 s for 64 attempts,
# tag 145 s, ~165 s per 24-step gemma3 training, ~60 s per model evaluation of 10 items in 7 suites: ~0.9 s
# per answer of 80 tokens) -- estimates for planning, not measurements of the audit.
SECONDS_PER_80_TOKENS = 0.9
# Knowledge QA and invariance answers stop at their suites' own 32 new tokens, whatever eval_max_new_tokens.
SHORT_ANSWER_TOKENS = 32
# Claim 9, estimated from gemma3-270m's parameter count, not measured: its output head (640 x 262k) is the
# larger part of a token's compute, and a derived model keeps it whole, so a model of half the layers costs
# ~0.8 of the base per token; the proxy runs three models per token (1 + 0.8 + 0.8), a derived model trains at
# ~0.8 of the base's step time; derive loads and writes the base once.
PROXY_EVAL_FACTOR = 2.6
# Claim 6's warn set: sampled answers of the aligned model (135M, ~3x faster per token than the 270M base whose
# answers SECONDS_PER_80_TOKENS was measured on -- an estimate from their sizes, not a measurement), batched.
WARN_FACTOR = 0.5
DERIVED_STEP_SECONDS = 5.6
DERIVE_SECONDS = 30.0


def eval_seconds(arm: str, z: dict, sizes: dict[str, int], own: bool | str = False) -> float:
    """Estimated seconds of an arm's evaluation: 20 to load, then per answer SECONDS_PER_80_TOKENS per
    80 tokens of its cap (format and format_unseen at eval_max_new_tokens, knowledge QA and invariance
    at SHORT_ANSWER_TOKENS); a log-likelihood scoring (knowledge's multiple choice, invariance's bias
    of a wrapped row) counted as one short answer. Invariance per question: its plain answer, then
    per family applied a wrapped answer and its scoring. Own-step (token_shift): 20 more to load the
    base, each answer at the cap and its ranking under the base as a short answer. Speech acts (an
    own step too): its warranted and benign prompts, each group limited apart, at the cap. A proxy
    arm: PROXY_EVAL_FACTOR times the base's."""
    st = eval_settings(arm, z, own)
    long = SECONDS_PER_80_TOKENS * z["eval_max_new_tokens"] / 80
    short = SECONDS_PER_80_TOKENS * SHORT_ANSWER_TOKENS / 80
    fams = len(st.get("invariance_families") or eval_families()[0])
    answers = {"format": _suite_items(st, "format", sizes["format"]) * long,
               "format_unseen": _suite_items(st, "format_unseen", sizes["format_unseen"]) * long,
               "knowledge": (_suite_items(st, "knowledge", sizes["knowledge_mc"])
                             + _suite_items(st, "knowledge", sizes["knowledge_qa"])) * short,
               "invariance": _suite_items(st, "invariance", sizes["invariance"]) * (1 + 2 * fams) * short,
               "token_shift": _suite_items(st, "token_shift", sizes["token_shift"]) * (long + short) + 20,
               "dimensions": _suite_items(st, "dimensions", sizes["dimensions"]) * long,
               "speech_acts": (_suite_items(st, "speech_acts", sizes["speech_acts"])
                               + _suite_items(st, "speech_acts", sizes["speech_acts_benign"])) * long}
    secs = 20 + sum(answers[s] if s in answers else _suite_items(st, s, 100) * long for s in st["suites"])
    return secs * (PROXY_EVAL_FACTOR if arm_named(arm).engine else 1)


def step_folders(cfg: AuditConfig) -> list[tuple[str, str, float]]:
    """(folder, what, estimated seconds) of every stage run the chosen claims need, in run order."""
    z = cfg.resolved()
    claims = chosen(cfg)
    arms = arms_needed(claims, cfg.alphas)
    main, own = reads(claims, cfg.alphas)
    data = data_needed(arms)
    seeds = _seeds(cfg, z)
    sizes = split_sizes()
    per_step = {"base": 7.0, "aligned": 3.0, "derived": DERIVED_STEP_SECONDS}
    out: list[tuple[str, str, float]] = []
    if "pool" in data:
        if not cfg.pool:
            out.append(("synth", "synth: the aligned model's Magpie pool", 1.85 * z["n_pool"]))
        out += [("tag", "tag", 2.3 * z["n_pool"]), ("dedup", "dedup", 15.0),
                ("select-pool", f"curate: {z['pool_factor'] * z['n']} pool rows", 5.0)]
    if "curated" in data:
        out.append(("select-curated", f"curate: curated N = {z['n']}", 15.0))
    if "random" in data:
        out += [(f"select-random-s{s}", f"draw: random N = {z['n']}, seed {s} (a sweep random cell's rows)", 2.0)
                for s in seeds]
    out += [(f"control-{d}", f"curate --control {d} of the curated set", 5.0)
            for d in ("simplified", "delusive", "empty") if d in data]
    out += [(f"select-{d}", f"select: the {z['n']} pool rows of the highest {d} alignment (the dimensions scorers)",
             5.0) for d in ("lexical", "emotional") if d in data]
    if "pairs" in data:
        out.append(("wrap", "wrap: invariance pairs from the aligned model's answers", 4.0 * z["wrap_questions"]))
    if "warn" in data:  # k sampled answers per speech-acts dev prompt, at the synth answers' cap
        from .audit_warn import prompts

        n_dev = len(prompts("dev"))
        out.append(("select-warn", f"warn-when-warranted: the aligned model's own answers to {n_dev} speech-acts dev "
                                   f"prompts, {cfg.warn_k} sampled each, kept where they warn exactly when warranted",
                    20 + n_dev * cfg.warn_k * SECONDS_PER_80_TOKENS * z["response_max_tokens"] / 80 * WARN_FACTOR))
    if any(a.model == "derived" for a in arms):
        out.append(("derive-antiexpert", f"derive: the base's first {cfg.keep_layers} decoder layers (the anti-expert)",
                    DERIVE_SECONDS))

    def evals(a: Arm, tail: str, who: str) -> None:
        if a.name in main:
            out.append((f"eval-{a.name}{tail}", f"eval {who}: {eval_text(a.name, z, sizes)}",
                        eval_seconds(a.name, z, sizes)))
        for suite in OWN_STEP:
            if a.name in own[suite]:
                how = ", ranked by the base" if suite == "token_shift" else ""
                out.append((f"{OWN_FOLDER[suite]}-{a.name}{tail}", f"eval {who}{how}: "
                            f"{eval_text(a.name, z, sizes, own=suite)}", eval_seconds(a.name, z, sizes, own=suite)))

    for a in arms:
        if a.engine:
            for s in seeds:
                evals(a, f"-s{s}", f"the base steered by {a.expert} seed {s} (--engine proxy, alpha {a.alpha:g})")
            continue
        if not a.trained:
            evals(a, "", f"{a.model} (untrained)")
            continue
        steps = z["steps"] * (z["pool_factor"] if a.steps == "epochs" else 1)
        for s in seeds:
            out.append((f"train-{a.name}-s{s}", f"train {a.model} on {a.data}: {a.objective}, {steps} steps, seed {s}",
                        10 + per_step[a.model] * steps))
            evals(a, f"-s{s}", f"{a.name} seed {s}")
    return out


def eval_text(arm: str, z: dict, sizes: dict[str, int], own: bool | str = False) -> str:
    """An arm's eval in words: each suite with its items (invariance: questions x families;
    speech_acts: warranted + benign prompts)."""
    st = eval_settings(arm, z, own)
    fams = st.get("invariance_families")
    split = {"knowledge": sizes["knowledge_mc"]}
    parts = []
    for s in st["suites"]:
        if s == "speech_acts":
            parts.append(f"speech_acts {_suite_items(st, s, sizes['speech_acts'])} warranted + "
                         f"{_suite_items(st, s, sizes['speech_acts_benign'])} benign")
            continue
        n = _suite_items(st, s, split.get(s, sizes.get(s, 100)))
        parts.append(f"{s} {n}" + ("" if s != "invariance" else
                                   f" q x {len(fams)} families ({', '.join(fams)})" if fams else " q x every family"))
    return " + ".join(parts)


def size_table(cfg: AuditConfig) -> list[str]:
    """What each size buys, with this config's other fields: seeds, stage runs, estimated minutes
    (every stage run counted as to run) and the planned MDE of each claim it runs ("-": not run)."""
    ids = [c.id for c in CLAIMS if not c.needs]
    lines = ["what each size buys (--set size=...; * this one; minutes for every stage run, none cached):",
             f"  {'size':10s}{'seeds':>6s}{'stage runs':>12s}{'~min':>7s}   planned MDE of claim "
             + "".join(f"{i:>7s}" for i in ids)]
    for size in SIZES:
        other = replace(cfg, size=size)
        steps = step_folders(other)
        mde = {p["claim"]: p["mde"] for p in planned_power(other)}
        mark = " *" if size == cfg.size else ""
        lines.append(f"  {size + mark:10s}{other.resolved()['seeds']:>6d}{len(steps):>12d}"
                     f"{sum(s for *_, s in steps) / 60:>7.0f}   {'':21s}"
                     + "".join(f"{_mde(mde[i]) if i in mde else '-':>7s}" for i in ids))
    if not cfg.claims and set(ids) - set(cfg.resolved()["claims"]):  # the trade-off: every claim at this dial
        every = step_folders(replace(cfg, claims=ids))
        lines.append(f"  every claim at {cfg.size}'s dial: {len(every)} stage runs, "
                     f"~{sum(s for *_, s in every) / 60:.0f} min")
    return lines


def dry_run(cfg: AuditConfig, root: Path) -> str:
    """The plan in words: claims, the MDE each can reach, arms and their evaluations, stage runs
    (cached, reused or to run), the estimated cost, and what each size buys."""
    from .reuse import RECORD, finished

    z = cfg.resolved()
    claims = chosen(cfg)
    power = {p["claim"]: p for p in planned_power(cfg)}
    steps = step_folders(cfg)
    lines = [f"audit ({cfg.size}): {json.dumps(z)}", f"run folder: {root}", "", "claims:"]
    for c in _chosen(cfg.listed_ids()):
        if c.needs:
            lines.append(f"  {c.id}. {c.title}: not run: needs {c.needs}")
            continue
        if c.id not in cfg.claim_ids():
            have = {f for f, *_ in steps}
            more = sum(s for f, _, s in step_folders(replace(cfg, claims=cfg.claim_ids() + [c.id])) if f not in have)
            lines.append(f"  {c.id}. {c.title}: {cfg.held_back_text(c.id, more / 60)}")
            continue
        p = power[c.id]
        lines.append(f"  {c.id}. {c.title}{f' (arXiv:{c.arxiv})' if c.arxiv else ''}; dial: {', '.join(c.dial)}; "
                     f"planned MDE {_mde(p['mde'])}")
        checks = {r["check"]: r for r in p["checks"]}
        for ch in checks_of(c, cfg.alphas):
            r = checks.get(ch.label)
            power_text = "" if r is None else (
                f"  [n {r['bound']}{r['n']}, MDE {_mde(r['mde'])}"
                + ("" if r["ni_decidable"] is None else "" if r["ni_decidable"] else
                   f"; too wide for {ch.rule} at margin {cfg.margin:g}") + "]")
            lines.append(f"       {'decides ' if ch.decides else 'evidence'} {ch.label}{power_text}")
    lines += ["", f"planned MDE: 80% power, two-sided 0.05, at the units a comparison reads: {z['eval_limit']} "
                  f"items of a suite a deciding comparison reads (eval_mde {z['eval_mde']:g}), {z['evidence_limit']} "
                  f"of one an arm is evaluated on only for evidence (evidence_mde {z['evidence_mde']:g}), a suite's "
                  f"whole split where smaller; {PLANNING_DISCORDANCE:g} of the items assumed to differ between two "
                  "arms, seeds not counted (an upper bound); a flip (n <=) counts only questions answered right when "
                  "asked plainly, so its n is at most the questions and its MDE at least the planned; the audit "
                  "reports the MDE each comparison reached"]
    lines += ["", "arms:"] + [f"  {a.name}: {a.about}" + (f" (alpha {a.alpha:g})" if a.engine else "")
                              for a in arms_needed(claims, cfg.alphas)]
    lines += ["", "stage runs:"]
    todo = 0.0
    record = {}
    if (root / RECORD).is_file():
        record = json.loads((root / RECORD).read_text(encoding="utf-8"))
    for folder, what, secs in steps:
        done = finished(root / folder) is not None
        reused = not done and record.get(folder) and finished(Path(record[folder])) is not None
        todo += 0 if done or reused else secs
        lines.append(f"  {folder:28s} {'cached' if done else 'reused' if reused else f'~{secs / 60:.1f} min':>10s}  "
                     f"{what}")
    dirs = [str(d) for d in cfg.reuse_dirs(root)]
    lines += ["", f"{len(steps)} stage runs; estimated cost of what is not cached: ~{todo / 60:.0f} min on 2 CPU cores "
                  "(a rough estimate from quickstart's measured steps; the first run also converts the GGUF weights)",
              "reuse: " + (f"a step whose inputs exist is read from a finished run with its content key under "
                           f"{', '.join(dirs)} instead of run (the estimate counts it as to run)" if dirs else "off"),
              ""] + size_table(cfg)
    return "\n".join(lines) + "\n"


def _mde(x: float | None) -> str:
    return "n/a (n < 2)" if x is None else f"{x:.3g}"


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
