"""The audit's claim registry (``sharpset run audit``; :mod:`sharpset.pipelines.audit` runs it).

Declarative: each :class:`Claim` names its paper (arXiv id) and reported figure, the comparisons
that decide it (:class:`Check`: reference arm, treatment arm, suite, metric, rows, rule) and the
size-dial knobs it reads; each :class:`Arm` is a model, untrained or trained on a named data set
with an objective. A claim whose parts are missing carries ``needs`` and is never judged.

Rules: ``superiority``, ``non-inferiority`` and ``equivalence`` (within the margin either way: claim 7's
"leaves the other dimension") compare two arms; ``below`` reads one arm's per-answer
share against a fixed ``threshold`` (URIAL's token shift); ``gap-share`` reads the share of the
``tuned`` - ``a`` gap that ``b`` closes against a ``threshold`` (proxy-tuning). The proxy arm
(``proxy``) stands for one arm per alpha of the audit's ``alphas`` (:func:`checks_of`).

Suites in :data:`OWN_STEP` (token_shift, speech_acts, dimensions) are never part of an arm's eval run: each arm
that a check reads one for gets an eval run of its own with only that suite (token_shift's scored by
the base), so adding a claim that reads them never changes, and never re-runs, an arm's existing eval
run. A check's ``better`` states the direction a claim predicts where the suite's metric has none
(speech-act rates: measured, not assumed -- claim 6 says which way it expects them to move).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Arm:
    """A model, untrained or trained on ``data`` with ``objective`` (``steps``: "same" = the audit's
    step budget, "epochs" = as many epochs as the curated set gets at that budget)."""
    name: str
    model: str  # "base" | "aligned" | "derived" (the base's first keep_layers decoder layers: the anti-expert)
    data: str = ""  # a data set of :func:`_data`: curated, random, pool, simplified, delusive, empty, pairs
    objective: str = ""
    sft: str = ""  # objective sft+bct: the SFT part's data set (the model's own answers)
    steps: str = "same"
    about: str = ""
    engine: str = ""  # "proxy": the base steered by the expert arm against the anti-expert at ``alpha``
    expert: str = ""  # engine proxy: the expert arm (trained per seed; the proxy arm pairs with it seed by seed)
    alpha: float | None = None

    @property
    def trained(self) -> bool:
        return bool(self.data)


PROXY = "proxy"  # the registry's proxy arm; the audit runs one per alpha, named proxy_arm(alpha)


def proxy_arm(alpha: float) -> str:
    return f"{PROXY}-a{float(alpha):g}"


def registry_arm(name: str) -> str:
    """The registry entry an arm name stands for: a proxy arm at an alpha -> ``proxy``."""
    return PROXY if name.startswith(PROXY + "-a") else name


def arm_named(name: str) -> Arm:
    """The :class:`Arm` of a name (a proxy arm at an alpha: the proxy entry with that alpha)."""
    if registry_arm(name) == PROXY and name != PROXY:
        return replace(ARMS[PROXY], name=name, alpha=float(name[len(PROXY) + 2:]))
    return ARMS[name]


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("base", "base", about="the base model, untrained"),
    Arm("base-curated", "base", "curated", "sft", about="curated N (quality-diversity, gated)"),
    Arm("base-random", "base", "random", "sft", about="random N from the pool (per seed)"),
    Arm("base-pool", "base", "pool", "sft", about="the pool (pool_factor x N rows), same steps as N"),
    Arm("base-pool-epochs", "base", "pool", "sft", steps="epochs", about="the pool, same epochs as N"),
    Arm("base-simplified", "base", "simplified", "sft", about="curated N, instructions simplified (Kung & Peng)"),
    Arm("base-delusive", "base", "delusive", "sft", about="curated N, wrong label mapping (closed-label rows)"),
    Arm("base-empty", "base", "empty", "sft", about="curated N, instructions emptied"),
    Arm("base-lexical", "base", "lexical", "sft", about="N pool rows whose answers reuse most of the user's content "
        "words (the dimensions suite's lexical_alignment): a lexical target"),
    Arm("base-emotional", "base", "emotional", "sft", about="N pool rows whose answers match the user's sentiment "
        "most (the dimensions suite's emotional_alignment; user turns with sentiment first): an emotional target"),
    Arm("expert", "derived", "curated", "sft", about="the anti-expert (the base's first keep_layers decoder layers, "
        "sharpset derive) trained on the curated N with base-curated's budget: proxy-tuning's expert"),
    Arm(PROXY, "base", engine="proxy", expert="expert",
        about="the base steered at decoding time by base + alpha (expert - anti-expert) (--engine proxy), per alpha"),
    Arm("aligned", "aligned", about="the aligned model, untrained"),
    Arm("aligned-bct", "aligned", "pairs", "bct", about="BCT on its own answers (train families)"),
    Arm("aligned-bct-mix", "aligned", "pairs", "sft+bct", sft="random",
        about="BCT + N of its own general answers (random pool rows)"),
    Arm("aligned-cf", "aligned", "pairs", "bct+cf", about="BCT + the ICR counterfactual gap"),
    Arm("aligned-warn", "aligned", "warn", "sft",
        about="SFT on its own answers to the speech-acts dev prompts that warn where warranted and do not on the "
              "benign controls (rejection sampling, the suite's classifier): warn-when-warranted"),
)}


@dataclass(frozen=True)
class Check:
    """One paired comparison: ``b`` against ``a`` on ``suite``/``metric`` (rows where ``where``
    holds: ``heldout`` True/False, ``family`` a prefix), judged by ``rule`` (the module docstring;
    ``below``: ``a`` is empty, the reference is ``threshold``; ``gap-share``: ``a`` the base, ``b``
    the steered arm, ``tuned`` the base tuned directly). ``sized`` "evidence": the check reads its
    suite at the evidence count even where it decides (it must not resize an eval run that other
    claims' checks size, which would change that run's key)."""
    a: str
    b: str
    suite: str
    metric: str
    rule: str = "superiority"  # | "non-inferiority" | "equivalence" | "below" | "gap-share"
    where: tuple = ()
    decides: bool = True
    tuned: str = ""
    threshold: float | None = None
    sized: str = ""
    better: int = 0  # +1 / -1: the direction the claim predicts (superiority: b above / below a; NI: not
    # worse that way by more than the margin), for a metric with no better direction of its own; 0: the suite's

    @property
    def label(self) -> str:
        w = "".join(f" [{k}={v}]" for k, v in self.where)
        if self.better:
            way = "higher" if self.better > 0 else "lower"
            return f"{self.b} vs {self.a}: {self.suite}/{self.metric}{w} {way} ({self.rule})"
        if self.rule == BELOW:
            return f"{self.b}: {self.suite}/{self.metric}{w} per answer, ranked by the base, below {self.threshold:g} (below)"
        if self.rule == GAP:
            return (f"{self.b} vs {self.a}: {self.suite}/{self.metric}{w} share of the {self.tuned} - {self.a} gap "
                    f"closed above {self.threshold:g} (gap-share)")
        return f"{self.b} vs {self.a}: {self.suite}/{self.metric}{w} ({self.rule})"

    @property
    def arms(self) -> tuple[str, ...]:
        """The arms whose rows it reads."""
        return tuple(n for n in (self.a, self.b, self.tuned) if n)


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
EQ = "equivalence"  # within the margin either way: non-inferior both ways
BELOW = "below"
GAP = "gap-share"
# suites evaluated in an eval run of their own per arm (the module docstring), and its folder's prefix
OWN_STEP = ("token_shift", "speech_acts", "dimensions")
OWN_FOLDER = {"token_shift": "token-shift", "speech_acts": "speech-acts", "dimensions": "dimensions"}
# Claim 8's threshold on the per-answer shifted share (rank under the base > 3; URIAL's setting and code). The
# paper's figure: 7.8% of Llama-2-7b-chat's tokens shifted against its base (77.7% unshifted), Vicuna 4.8%,
# Mistral-Instruct 5.2% -- so 0.15 is about twice the largest shift it reports. Twice, not the figure itself:
# the audit averages per answer (each answer one unit, as the intervals need), and shifted tokens cluster in the
# first positions, so short answers raise the per-answer mean above URIAL's pooled share; and "shallow" is a
# claim about a small minority of tokens, which 0.15 still is while 7.8% is not a law. A tuned model whose
# interval lies wholly above 0.15 shifts at least twice what the paper found: the claim is contradicted there.
SHIFT_THRESHOLD = 0.15
# Claim 9's threshold on the share of the gap closed: the claim is that proxy-tuning closes *most* of the
# base -> tuned gap (88-91% reported), so more than half of it, with its whole 95% interval, supports it.
GAP_THRESHOLD = 0.5
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
    # Claim 6: the suppression (the aligned model warns less than the base where a warning is warranted) and the
    # question it leaves open (can a few examples of the model's own answers teach *selective* warning: more
    # warnings where warranted, no more false alarms on the benign controls). Both decide: supported means the
    # aligned model suppresses warnings and a warn-when-warranted target restores them without false alarms. The
    # base and the aligned model are the user's two models: with the embedded defaults they are of different
    # families (gemma3-270m base, SmolLM2-135M-Instruct), so the first check compares those two models, not one
    # model before and after alignment.
    Claim("6", "Alignment suppresses alarm, warning, denunciation", "",
          "no empirical source found (DESIGN.md)", (
              Check("base", "aligned", "speech_acts", "warn", where=(("warranted", True),), better=-1),
              Check("aligned", "aligned-warn", "speech_acts", "warn", where=(("warranted", True),), better=1),
              Check("aligned", "aligned-warn", "speech_acts", "false_alarm", NI, where=(("warranted", False),),
                    better=-1),
              Check("base", "aligned", "speech_acts", "alarm", where=(("warranted", True),), better=-1, decides=False),
              Check("base", "aligned", "speech_acts", "denounce", where=(("warranted", True),), better=-1,
                    decides=False),
              Check("base", "aligned", "speech_acts", "hedge", where=(("warranted", True),), better=1, decides=False),
              Check("base", "aligned", "speech_acts", "false_alarm", where=(("warranted", False),), better=-1,
                    decides=False)),
          dial=("warn_k", "steps", "seeds", "eval_limit")),
    # Claim 7: two targets of the same size and budget, each selected from the audit's pool for one dimension by
    # the dimensions suite's own scorers, against the random N (the untargeted draw): each moves its own dimension
    # up and leaves the other within the margin either way. Both halves decide.
    Claim("7", "Lexical and emotional alignment are separate knobs", "",
          "no empirical source found (DESIGN.md)", (
              Check("base-random", "base-lexical", "dimensions", "lexical_content_reuse", better=1),
              Check("base-random", "base-emotional", "dimensions", "emotional_concordance", better=1),
              Check("base-random", "base-lexical", "dimensions", "emotional_concordance", EQ),
              Check("base-random", "base-emotional", "dimensions", "lexical_content_reuse", EQ),
              Check("base-random", "base-lexical", "dimensions", "lexical_bigram_reuse", better=1, decides=False),
              Check("base-random", "base-emotional", "dimensions", "emotional_sign_agreement", better=1,
                    decides=False)),
          dial=("n", "steps", "seeds", "eval_limit")),
    Claim("8", "Alignment is a shallow token shift (URIAL)", "2312.01552",
          "Llama-2-7b-chat vs its base: 77.7% unshifted, 7.8% shifted tokens (rank under the base 1 / > 3)", (
              Check("", "base-curated", "token_shift", "shifted", BELOW, threshold=SHIFT_THRESHOLD),
              Check("", "base-pool", "token_shift", "shifted", BELOW, threshold=SHIFT_THRESHOLD)),
          dial=("n", "steps", "seeds", "eval_max_new_tokens")),
    Claim("9", "Proxy-tuning closes most of the gap and keeps knowledge", "2401.08565",
          "closes 88-91% of the base -> chat gap; proxy-tuned 70B TruthfulQA True x Info 85.1 vs tuned 79.6 "
          "(MC accuracy 59.2 vs 68.3)", (
              Check("base", PROXY, "format", "prompt_loose", GAP, tuned="base-curated", threshold=GAP_THRESHOLD),
              # base-curated's knowledge eval is claim 1's evidence (evidence count): read at that count, not resized
              Check("base-curated", PROXY, "knowledge", "mc_correct", NI, sized="evidence"),
              Check("base", PROXY, "health", "complete", GAP, tuned="base-curated", threshold=GAP_THRESHOLD,
                    decides=False)),
          dial=("keep_layers", "heal_steps", "alphas", "n", "steps", "seeds", "eval_limit")),
)
CLAIM_IDS = tuple(c.id for c in CLAIMS)


def chosen(ids: list[str]) -> list[Claim]:
    """The claims named in ``ids``, in registry order."""
    return [c for c in CLAIMS if c.id in ids]


SUITE_ORDER = ("invariance", "format", "format_unseen", "knowledge")


def checks_of(claim: Claim, alphas=(1.0,)) -> list[Check]:
    """A claim's checks with the proxy arm made one arm per alpha (:func:`proxy_arm`); the first
    alpha's checks decide as the registry says, the other alphas' are evidence."""
    out = []
    for ch in claim.checks:
        if PROXY not in ch.arms:
            out.append(ch)
            continue
        for k, alpha in enumerate(alphas):
            name = proxy_arm(alpha)
            out.append(replace(ch, a=name if ch.a == PROXY else ch.a, b=name if ch.b == PROXY else ch.b,
                               decides=ch.decides and k == 0))
    return out


def own_holds(suite: str, own: bool | str) -> bool:
    """Whether ``suite`` is among the suites ``own`` names: False, those of an arm's eval run (not
    :data:`OWN_STEP`'s); True, every own-step suite; a suite name, that own-step suite alone."""
    if isinstance(own, str):
        return suite == own
    return (suite in OWN_STEP) == own


def arm_checks(arm: str, own: bool | str = False) -> list[Check]:
    """Every check of the whole registry that reads ``arm`` (as :func:`arm_suites`, not the claims
    chosen: an arm is evaluated alike whichever claims an audit runs); ``own``: those of the suites
    evaluated in a run of their own (:data:`OWN_STEP`; a suite name: that one's), else the others."""
    reg = registry_arm(arm)
    return [ch for c in CLAIMS for ch in c.checks if reg in ch.arms and own_holds(ch.suite, own)]


def arm_suites(arm: str, own: bool | str = False) -> list[str]:
    """The eval suites an arm is evaluated on: those any claim's check of it reads (health is always
    added by eval). From the whole registry, not the claims chosen, so every ``--claims`` subset
    evaluates an arm alike and shares its eval run. ``own``: the suites of its own-step eval run
    (:data:`OWN_STEP`), never among the others."""
    used = {ch.suite for ch in arm_checks(arm, own)} - {"health"}
    return [s for s in SUITE_ORDER if s in used] + sorted(used - set(SUITE_ORDER))
