"""The audit's claim registry (``sharpset run audit``; :mod:`sharpset.pipelines.audit` runs it).

Declarative: each :class:`Claim` names its paper (arXiv id) and reported figure, the comparisons
that decide it (:class:`Check`: reference arm, treatment arm, suite, metric, rows, rule) and the
size-dial knobs it reads; each :class:`Arm` is a model, untrained or trained on a named data set
with an objective. A claim whose parts are missing carries ``needs`` and is never judged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    """A model, untrained or trained on ``data`` with ``objective`` (``steps``: "same" = the audit's
    step budget, "epochs" = as many epochs as the curated set gets at that budget)."""
    name: str
    model: str  # "base" | "aligned"
    data: str = ""  # a data set of :func:`_data`: curated, random, pool, simplified, delusive, empty, pairs
    objective: str = ""
    sft: str = ""  # objective sft+bct: the SFT part's data set (the model's own answers)
    steps: str = "same"
    about: str = ""

    @property
    def trained(self) -> bool:
        return bool(self.data)


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("base", "base", about="the base model, untrained"),
    Arm("base-curated", "base", "curated", "sft", about="curated N (quality-diversity, gated)"),
    Arm("base-random", "base", "random", "sft", about="random N from the pool (per seed)"),
    Arm("base-pool", "base", "pool", "sft", about="the pool (pool_factor x N rows), same steps as N"),
    Arm("base-pool-epochs", "base", "pool", "sft", steps="epochs", about="the pool, same epochs as N"),
    Arm("base-simplified", "base", "simplified", "sft", about="curated N, instructions simplified (Kung & Peng)"),
    Arm("base-delusive", "base", "delusive", "sft", about="curated N, wrong label mapping (closed-label rows)"),
    Arm("base-empty", "base", "empty", "sft", about="curated N, instructions emptied"),
    Arm("aligned", "aligned", about="the aligned model, untrained"),
    Arm("aligned-bct", "aligned", "pairs", "bct", about="BCT on its own answers (train families)"),
    Arm("aligned-bct-mix", "aligned", "pairs", "sft+bct", sft="random",
        about="BCT + N of its own general answers (random pool rows)"),
    Arm("aligned-cf", "aligned", "pairs", "bct+cf", about="BCT + the ICR counterfactual gap"),
)}


@dataclass(frozen=True)
class Check:
    """One paired comparison: ``b`` against ``a`` on ``suite``/``metric`` (rows where ``where``
    holds: ``heldout`` True/False, ``family`` a prefix), judged by ``rule``."""
    a: str
    b: str
    suite: str
    metric: str
    rule: str = "superiority"  # | "non-inferiority"
    where: tuple = ()
    decides: bool = True

    @property
    def label(self) -> str:
        w = "".join(f" [{k}={v}]" for k, v in self.where)
        return f"{self.b} vs {self.a}: {self.suite}/{self.metric}{w} ({self.rule})"


def where_holds(row: dict, where) -> bool:
    """Whether a per-sample row is among a check's rows: ``where`` pairs (or a mapping) of column and
    value, ``family`` matched as a prefix (``partner`` holds every partner/... family)."""
    for k, v in (where.items() if isinstance(where, dict) else where):
        if k == "family" and not str(row.get("family", "")).startswith(str(v)):
            return False
        if k != "family" and row.get(k) != v:
            return False
    return True


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    arxiv: str
    figure: str  # the paper's reported figure and setting
    checks: tuple = ()
    needs: str = ""  # what is missing: the claim is listed, never judged
    dial: tuple = ("n", "steps", "seeds", "eval_limit")  # the size-dial knobs it reads
    yield_: bool = False  # also report the pool's clean-row yield (Magpie)


NI = "non-inferiority"
CLAIMS: tuple[Claim, ...] = (
    Claim("1", "Small curated sets suffice (LIMA)", "2305.11206",
          "1,000 curated examples: LIMA 65B >= GPT-4 in 43% of 300 prompts; 7B quality-filtered 3.83 vs "
          "unfiltered 3.33 (1-6); 2K -> 32K rows plateau", (
              Check("base-pool-epochs", "base-curated", "format", "prompt_loose", NI),
              Check("base-pool", "base-curated", "format", "prompt_loose", NI),
              Check("base-pool-epochs", "base-curated", "health", "complete", NI),
              Check("base-pool-epochs", "base-curated", "knowledge", "mc_correct", NI, decides=False),
              Check("base-random", "base-curated", "format", "prompt_loose", decides=False),
              Check("base-random", "base-curated", "format_unseen", "prompt_loose", decides=False))),
    Claim("2", "Format, not task understanding, transfers (Kung & Peng)", "2305.11383",
          "low-resource tuned 43% EM vs random guess 42.6% vs untuned 12.78%: simplified / delusive / empty "
          "instructions transfer almost as well as the original", (
              Check("base-curated", "base-simplified", "format", "prompt_loose", NI),
              Check("base-curated", "base-empty", "format", "prompt_loose", NI),
              Check("base-curated", "base-simplified", "health", "complete", NI),
              Check("base-curated", "base-empty", "health", "complete", NI),
              Check("base-curated", "base-delusive", "format", "prompt_loose", NI, decides=False),
              Check("base-curated", "base-simplified", "knowledge", "mc_correct", NI, decides=False),
              Check("base-curated", "base-empty", "knowledge", "mc_correct", NI, decides=False))),
    Claim("3", "Aligned models write their own training data from the template alone (Magpie)", "2406.08464",
          "Llama-3-8B base + Magpie-Pro (300K of 4M self-written rows) rivals Llama-3-8B-Instruct "
          "(AlpacaEval 2, Arena-Hard; the abstract)", (
              Check("base", "base-pool", "health", "complete"),
              Check("base", "base-pool", "format", "prompt_loose", decides=False),
              Check("base", "base-pool", "knowledge", "mc_correct", NI, decides=False)),
          dial=("n_pool", "n", "pool_factor", "steps", "seeds", "eval_limit"), yield_=True),
    Claim("4", "Consistency training teaches invariance from the model's own answers (BCT)", "2510.27062",
          "Gemini 2.5 Flash ClearHarm attack success 67.8% -> 2.9%; Chua et al. (2403.05518): biased "
          "reasoning -86% on held-out tasks, -37% on held-out biases", (
              Check("aligned", "aligned-bct", "invariance", "flip", where=(("heldout", False),)),
              Check("aligned", "aligned-bct", "invariance", "flip", where=(("heldout", True),)),
              Check("aligned", "aligned-bct", "invariance", "clean_correct", NI),
              Check("aligned", "aligned-bct", "format", "prompt_loose", NI),
              Check("aligned", "aligned-bct", "health", "complete", NI),
              Check("aligned", "aligned-bct-mix", "invariance", "flip", where=(("heldout", True),), decides=False),
              Check("aligned", "aligned-bct-mix", "format", "prompt_loose", NI, decides=False),
              Check("aligned", "aligned-bct-mix", "health", "complete", NI, decides=False)),
          dial=("wrap_questions", "steps", "seeds", "eval_limit")),
    Claim("5", "Partner-aware counterfactual invariance (ICR)", "2510.22462",
          "counterfactual regulariser beside PPO, weight 0.1 in the code, 0.2 best in the ablation "
          "(no headline figure transcribed in METHODS §6)", (
              Check("aligned", "aligned-cf", "invariance", "flip", where=(("family", "partner"),)),
              Check("aligned-bct", "aligned-cf", "invariance", "flip", where=(("family", "partner"),),
                    decides=False),
              Check("aligned", "aligned-cf", "invariance", "flip", where=(("heldout", True),), decides=False),
              Check("aligned", "aligned-cf", "invariance", "clean_correct", NI, decides=False)),
          dial=("wrap_questions", "steps", "seeds", "eval_limit")),
    Claim("6", "Alignment suppresses alarm, warning, denunciation", "",
          "no empirical source found (DESIGN.md)",
          needs="benign controls in the speech_acts data and a warn-when-warranted target (warn rate on risky vs "
                "false-alarm rate on benign prompts)"),
    Claim("7", "Lexical and emotional alignment are separate knobs", "",
          "no empirical source found (DESIGN.md)",
          needs="a rule over the dimensions suite across sweep targets (does a target that moves one leave the other?)"),
    Claim("8", "Alignment is a shallow token shift (URIAL)", "2312.01552",
          "Llama-2-7b-chat vs its base: 77.7% unshifted, 7.8% shifted tokens",
          needs="a paired per-answer token-shift metric and its decision rule (the suite reports pooled shares)"),
    Claim("9", "Proxy-tuning closes most of the gap and keeps knowledge", "2401.08565",
          "closes 88-91% of the base -> chat gap; proxy-tuned 70B TruthfulQA True x Info 85.1 vs tuned 79.6",
          needs="--engine proxy arms in the audit (a derived anti-expert, its tuned expert, and a gap-closed rule)"),
)
CLAIM_IDS = tuple(c.id for c in CLAIMS)


def chosen(ids: list[str]) -> list[Claim]:
    """The claims named in ``ids``, in registry order."""
    return [c for c in CLAIMS if c.id in ids]


SUITE_ORDER = ("invariance", "format", "format_unseen", "knowledge")


def arm_checks(arm: str) -> list[Check]:
    """Every check of the whole registry that reads ``arm`` (as :func:`arm_suites`, not the claims
    chosen: an arm is evaluated alike whichever claims an audit runs)."""
    return [ch for c in CLAIMS for ch in c.checks if arm in (ch.a, ch.b)]


def arm_suites(arm: str) -> list[str]:
    """The eval suites an arm is evaluated on: those any claim's check of it reads (health is always
    added by eval). From the whole registry, not the claims chosen, so every ``--claims`` subset
    evaluates an arm alike and shares its eval run."""
    used = {ch.suite for ch in arm_checks(arm)} - {"health"}
    return [s for s in SUITE_ORDER if s in used] + sorted(used - set(SUITE_ORDER))
