"""The audit's plan (``sharpset run audit --dry-run``): which claims, arms, data sets and stage runs an
:class:`sharpset.pipelines.audit.AuditConfig` needs, the MDE each claim can reach, what each stage run
is estimated to cost and what each size buys. :mod:`sharpset.pipelines.audit` holds the config and
runs the plan; every name here is importable from there too.

This module does not import :mod:`~sharpset.pipelines.audit` when loaded (audit imports it). The plan
reads audit's claim registry in two places only: through the config (``cfg.claim_ids()``, which
:func:`chosen` calls) and in :func:`size_table`, which imports audit's ``CLAIMS`` and ``SIZES`` when
called -- so a patch of ``audit.CLAIMS`` (a test's) reaches the plan as it did when the plan lived there.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audit_arms import eval_families, eval_settings, reads
from .claims import ARMS, BELOW, EQ, NI, OWN_FOLDER, OWN_STEP, Arm, Check, Claim, arm_named, checks_of, proxy_arm
from .claims import chosen as _chosen

if TYPE_CHECKING:
    from .audit import AuditConfig

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


# -- the plan: which arms, data sets and stage runs the chosen claims need -------------------------
def chosen(cfg: AuditConfig) -> list[Claim]:
    """The claims this audit runs (:meth:`sharpset.pipelines.audit.AuditConfig.claim_ids`), in registry order."""
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
# one healing step of the derived anti-expert (batch 4 x 256 tokens, full-vocabulary KL to gemma3-270m): derive plus
# 45 steps took 839 s at K = 9 and 907 s at K = 15 on 2 EPYC cores (issue 22, 2026-12-07; 1-thread tests beside)
HEAL_STEP_SECONDS = 19.0


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
        healed = f", healed {cfg.heal_steps} steps on the pool's text" if cfg.heal_steps else ""
        out.append(("derive-antiexpert", f"derive: the base's first {cfg.keep_layers} decoder layers{healed} (the "
                                         "anti-expert)", DERIVE_SECONDS + cfg.heal_steps * HEAL_STEP_SECONDS))

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
    from .audit import CLAIMS, SIZES  # when called: audit imports this module; a patched audit.CLAIMS is the one read

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
