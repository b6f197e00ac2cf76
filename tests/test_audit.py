"""`sharpset run audit`: the plan, the verdict rules on constructed effects, shared arms, resume after a
kill -- on tiny in-process models (the real audit is the README's command)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from sharpset.cli import main
from sharpset.pipelines import audit
from sharpset.pipelines import audit_verdicts as av
from sharpset.report.browser import find_browser
from sharpset.stats import paired_diff_ci

from test_quickstart import _pool


@pytest.fixture
def needs7(monkeypatch):
    """Claim 7 as a claim whose parts are missing (``needs``; every registry claim runs now): listed, never run."""
    from dataclasses import replace

    from sharpset.pipelines import claims

    table = tuple(replace(c, needs="a part (this test)", checks=()) if c.id == "7" else c for c in claims.CLAIMS)
    monkeypatch.setattr(claims, "CLAIMS", table)
    monkeypatch.setattr(audit, "CLAIMS", table)



def named(res: dict) -> list[dict]:
    """audit.json's claims that this audit ran or its size held back: every claim is listed, and one
    that --claims left out reads "not run: not among --claims ..."."""
    return [c for c in res["claims"] if not c.get("verdict_text", "").startswith("not run: not among --claims")]

# -- the plan -------------------------------------------------------------------------------------
def test_dry_run_plans_a_subset_and_runs_nothing(tmp_path, capsys, needs7):
    out = tmp_path / "a"
    assert main(["run", "audit", "--dry-run", "--claims", "1,3", "--out", str(out)]) == 0
    plan = capsys.readouterr().out
    assert "1. Small curated sets suffice (LIMA)" in plan and "3. Aligned models write" in plan
    # every claim is listed; one not named reads "not run" with the command that runs it, and plans nothing
    assert "2. Format, not task understanding, transfers (Kung & Peng): not run: not among --claims 1,3 (~" in plan
    assert "--claims 1,2,3 runs it beside them in this folder" in plan
    assert "base-simplified" not in plan and "aligned-bct" not in plan
    folders = re.findall(r"^  (\S+) +(?:~[\d.]+ min|cached)", plan, re.M)
    # shared arms once: base-pool serves claims 1 and 3, base-curated only claim 1, two seeds each
    assert folders.count("train-base-pool-s0") == 1 and "train-base-pool-epochs-s1" in folders
    assert {"synth", "tag", "dedup", "select-curated", "eval-base"} <= set(folders)
    assert "estimated cost" in plan and not out.exists()
    # the items come from power: the default size is planned to detect 0.14 where a comparison decides
    # (121 items: non-inferiority at margin 0.1 decidable), 0.3 where it is evidence (27 items)
    assert '"eval_mde": 0.14' in plan and '"eval_limit": 121' in plan and '"evidence_limit": 27' in plan
    assert "1. Small curated sets suffice (LIMA) (arXiv:2305.11206); dial: n, steps, seeds, eval_limit; " \
        "planned MDE 0.139" in plan and "format/prompt_loose (non-inferiority)  [n 121, MDE 0.139]" in plan
    assert "health/complete (non-inferiority)  [n >=121, MDE 0.139]" in plan and "too wide" not in plan
    # each arm's suites at their own counts: the random arm is read only as evidence
    assert "eval base-curated seed 0: format 121 + format_unseen 27 + knowledge 27" in plan
    assert "eval base-random seed 1: format 27 + format_unseen 27" in plan
    assert main(["run", "audit", "--dry-run", "--claims", "1", "--set", "size=small", "--out", str(out)]) == 0
    small = capsys.readouterr().out
    assert '"eval_limit": 38' in small and "planned MDE 0.249" in small
    assert "[n 38, MDE 0.249; too wide for non-inferiority at margin 0.1]" in small
    # a claim whose parts are missing is listed, never run
    assert main(["run", "audit", "--dry-run", "--claims", "7", "--out", str(out)]) == 0
    assert "7. Lexical and emotional alignment are separate knobs: not run: needs a part (this test)" in \
        capsys.readouterr().out


def _minutes(plan: str) -> int:
    return int(re.search(r"estimated cost of what is not cached: ~(\d+) min", plan).group(1))


def test_the_default_size_plans_under_an_hour_and_says_what_each_size_buys(tmp_path, capsys):
    """Issue 23: the default size under an hour on 2 cores with 2 seeds for its training claims, small a
    first look; the claims a size leaves out are listed as not run with the command that runs them, and the
    dry run prints each size's seeds, stage runs, minutes and planned MDE per claim."""
    out = tmp_path / "a"
    plans = {}
    for size in audit.SIZES:
        assert main(["run", "audit", "--dry-run", "--set", f"size={size}", "--out", str(out)]) == 0
        plans[size] = capsys.readouterr().out
        assert audit.SIZES[size]["seeds"] >= 2
    assert _minutes(plans["medium"]) < 60 and _minutes(plans["small"]) <= 15
    medium = plans["medium"]
    assert f'"claims": {json.dumps(audit.SIZES["medium"]["claims"])}' in medium
    assert re.search(r"2\. Format, not task understanding, transfers \(Kung & Peng\): not run at size medium "
                     r"\(~\d+ min more at this size; it runs claims 1, 3 in its time\): --claims 1,2,3 runs it "
                     r"beside them in this folder \(their runs reused\), --set size=large runs every claim", medium)
    for claim in ("6. Alignment suppresses alarm, warning, denunciation",
                  "7. Lexical and emotional alignment are separate knobs", "8. Alignment is a shallow token shift (URIAL)",
                  "9. Proxy-tuning closes most of the gap and keeps knowledge"):  # runnable, left out at medium
        assert re.search(re.escape(claim) + r": not run at size medium \(~\d+ min more at this size; it runs claims "
                         r"1, 3 in its time\): --claims 1,3,\d runs it beside them", medium)
    assert "base-simplified" not in medium.split("what each size buys")[0].split("arms:")[1]
    table = medium.split("what each size buys")[1]
    assert re.search(r"^  medium \* +2 +24 +5\d +0\.139 +- +0\.139 +- +- +- +- +- +-$", table, re.M)
    assert re.search(r"^  small +2 +9 +\d+ +- +- +0\.249 +- +- +- +- +- +-$", table, re.M)
    assert re.search(r"^  large +2 +81 +\d+ +0\.12 +0\.12 +0\.12 +0\.138 +0\.138 +0\.226 +0\.234 +0\.0511 +0\.249$",
                     table, re.M)
    assert re.search(r"every claim at medium's dial: 81 stage runs, ~\d+ min", table)
    assert "every claim at" not in plans["large"]  # large runs every claim
    # named claims run at any size; the others are listed as not run, with the command that runs them
    assert main(["run", "audit", "--dry-run", "--claims", "4,5", "--out", str(out)]) == 0
    four = capsys.readouterr().out
    assert "1. Small curated sets suffice (LIMA): not run: not among --claims 4,5 (~" in four
    assert "--claims 1,4,5 runs it beside them" in four and "not run at size" not in four
    assert "invariance/flip [heldout=False] (superiority)  [n <=121, MDE 0.139]" in four
    assert "invariance/clean_correct (non-inferiority)  [n 121, MDE 0.139]" in four
    # invariance only on the families an arm's comparisons read: ICR's arm on partner + the held-out ones
    assert "eval aligned-cf seed 0: invariance 121 q x 5 families (sycophancy/authority, sycophancy/pushback, " \
        "jailbreak/injection, noise/format, partner/intervention)" in four
    assert "eval aligned-bct seed 1: invariance 121 q x every family + format 121" in four


def test_an_unknown_claim_exits_2_naming_the_field(capsys):
    assert main(["run", "audit", "--dry-run", "--claims", "1,42"]) == 2
    err = capsys.readouterr().err
    assert "claims" in err and "'42'" in err and "known: 1, 2" in err


def test_arms_and_data_of_a_claim_subset():
    cfg = audit.AuditConfig(claims=["4"])
    arms = [a.name for a in audit.arms_needed(audit.chosen(cfg))]
    assert arms == ["aligned", "aligned-bct", "aligned-bct-mix"]
    assert audit.data_needed(audit.arms_needed(audit.chosen(cfg))) == ["pool", "random", "pairs"]
    assert audit.AuditConfig(claims=[3]).claims == ["3"]  # a one-item flag arrives as a number


def test_each_arm_gets_the_items_and_families_its_comparisons_read(monkeypatch):
    """The per-suite limits and the invariance families reach the eval stage's config of each arm, and
    the invariance suite scores exactly those questions and families."""
    from types import SimpleNamespace

    from sharpset.evaluate.stage import EvalConfig, _suite_cfg
    from sharpset.evaluate.suites.invariance import SUITE as INVARIANCE
    from sharpset.invariance import HELDOUT_FAMILIES, load_families, select_families
    from sharpset.pipelines import audit_arms

    z = audit.AuditConfig().resolved()
    d, e = z["eval_limit"], z["evidence_limit"]
    assert (d, e) == (121, 27)
    seen = {}
    ctx = SimpleNamespace(z=z, step=lambda mod, cfg_map, cls, folder: seen.setdefault(folder, cfg_map))
    for arm in ("aligned", "aligned-bct", "aligned-bct-mix", "aligned-cf", "base", "base-random", "base-delusive"):
        audit_arms.eval_arm(ctx, audit.ARMS[arm], "m", f"eval-{arm}")
    cfgs = {f.removeprefix("eval-"): EvalConfig(**m) for f, m in seen.items()}
    assert all(c.check() == [] for c in cfgs.values())
    # BCT (claim 4) reads trained and held-out families, its clean accuracy, format and health: every
    # family on the deciding count of questions, format on the deciding count
    for arm in ("aligned", "aligned-bct"):
        c = cfgs[arm]
        assert (c.suites, c.limit, c.suite_limits) == (["invariance", "format"], d, {})
        assert c.invariance_families == EvalConfig().invariance_families
    # BCT + its own answers is evidence only (held-out flips, format, health): the evidence count, held-out families
    mix = cfgs["aligned-bct-mix"]
    assert (mix.limit, mix.suite_limits, mix.invariance_families) == (e, {}, HELDOUT_FAMILIES)
    # ICR (claim 5) decides on partner, reads held-out flips and clean accuracy: no format suite, 5 families
    cf = cfgs["aligned-cf"]
    assert cf.suites == ["invariance"] and (cf.limit, cf.suite_limits) == (d, {})
    assert cf.invariance_families == HELDOUT_FAMILIES + ["partner/intervention"]
    # the base: format decides (claim 3's health is scored on its answers), knowledge is evidence
    assert (cfgs["base"].suites, cfgs["base"].limit, cfgs["base"].suite_limits) == (["format", "knowledge"], d,
                                                                                   {"knowledge": e})
    assert (cfgs["base-random"].suites, cfgs["base-random"].limit) == (["format", "format_unseen"], e)
    assert cfgs["base-delusive"].suites == ["format"] and "knowledge" not in cfgs["base-random"].suites
    # the invariance suite scores those questions and families, the same questions for every arm
    got = {}
    for arm in ("aligned-bct", "aligned-cf", "aligned-bct-mix"):
        items = INVARIANCE.items(SimpleNamespace(cfg=_suite_cfg(cfgs[arm], "invariance")))
        got[arm] = {it["qid"] for it in items}
        assert len(got[arm]) == {"aligned-bct-mix": e}.get(arm, d)
        assert sorted({it["family"] for it in items}) == sorted(select_families(cfgs[arm].invariance_families,
                                                                                load_families(None)))
    assert got["aligned-bct-mix"] < got["aligned-cf"] == got["aligned-bct"]  # the smaller set inside the larger
    # eval_limit names one count for every suite (the tiny end-to-end tests)
    flat = audit.AuditConfig(eval_limit=2).resolved()
    assert audit_arms.eval_settings("base", flat) == {"suites": ["format", "knowledge"], "limit": 2, "suite_limits": {}}


# -- the verdict rules on constructed effects -----------------------------------------------------
def _c(a, b):
    return paired_diff_ci(a, b, seed=0)


def test_verdicts_on_constructed_effects():
    clear = _c([0] * 40, [1] * 40)
    assert av.judge(clear, 1, "superiority", 0.1, clear["p"]) == ("supported", "supported")
    assert av.VERDICTS == ("supported", "contradicted", "inconclusive", "not run")  # issue 23's words
    opposite = _c([1] * 40, [0] * 40)
    assert av.judge(opposite, 1, "superiority", 0.1, opposite["p"])[0] == "contradicted"
    # lower is better (a flip rate): fewer flips is the effect
    assert av.judge(opposite, -1, "superiority", 0.1, opposite["p"])[0] == "supported"
    noise = _c([0, 1, 0, 1, 1, 0, 0, 1, 0, 1], [1, 0, 0, 1, 0, 1, 0, 1, 1, 0])
    v, text = av.judge(noise, 1, "superiority", 0.1, noise["p"])
    assert v == "inconclusive" and text == f"inconclusive at this power (MDE {noise['mde']:.3g})"
    # Holm: an effect that passes alone but not after adjustment is inconclusive
    assert av.judge(clear, 1, "superiority", 0.1, 0.2)[0] == "inconclusive"
    # non-inferiority: the interval read against -margin
    same = _c([1] * 60 + [0] * 40, [1] * 60 + [0] * 40)  # no change, n = 100: interval +-0.037
    assert av.judge(same, 1, "non-inferiority", 0.1, None)[0] == "supported"
    assert av.judge(same, 1, "non-inferiority", 0.01, None)[0] == "inconclusive"
    assert av.judge(opposite, 1, "non-inferiority", 0.1, None)[0] == "contradicted"
    small = _c([1, 0, 1], [1, 0, 1])
    assert av.judge(small, 1, "non-inferiority", 0.1, None)[0] == "inconclusive"
    assert av.combine(["supported", "supported"]) == "supported"
    assert av.combine(["supported", "inconclusive"]) == "inconclusive"
    assert av.combine(["supported", "not run"]) == "inconclusive"
    assert av.combine(["inconclusive", "contradicted"]) == "contradicted"
    assert av.combine(["not run"]) == "not run"


def _eval(values: dict[str, list[int]]) -> dict:
    return {suite: {"rows": {f"i{k}": {"item": f"i{k}", metric: v} for k, v in enumerate(vs)}, "lower": set()}
            for (suite, metric), vs in ((tuple(key.split("/")), vs) for key, vs in values.items())}


def test_claim_verdicts_from_constructed_arms(needs7):
    """Claim 1 from constructed per-item rows (two seeds): the rule, Holm across the audit, the claim's row."""
    n = 60
    same = {"format/prompt_loose": [1] * 30 + [0] * 30, "health/complete": [1] * n,
            "knowledge/mc_correct": [0] * n, "format_unseen/prompt_loose": [0] * n}
    worse = dict(same, **{"format/prompt_loose": [0] * n})
    cfg = audit.AuditConfig(claims=["1", "7"])
    for curated, expect in ((same, "supported"), (worse, "contradicted")):
        evals = {arm: {s: _eval(same) for s in (0, 1)} for arm in ("base-pool-epochs", "base-pool", "base-random")}
        evals["base-curated"] = {s: _eval(curated) for s in (0, 1)}
        res = av.summarize(cfg, evals, [0, 1], {}, None)
        one, seven = named(res)
        assert one["verdict"] == expect and one["seeds"] == 2 and one["n"] == n and one["n_rows"] == 2 * n
        assert one["paper"]["arxiv"] == "2305.11206" and "non-inferiority" in one["lead"]
        assert len(one["checks"]) == 6 and all(c["p_holm"] >= c["comparison"]["p"] for c in one["checks"])
        assert seven["verdict"] == "not run" and seven["verdict_text"].startswith("not run: needs ")
    assert one["verdict_text"] == "contradicted" and one["diff"] == -0.5
    # noise: 8 items up and 8 down of 60 -- no change, an interval too wide for the margin: inconclusive, with its MDE
    noisy = dict(same, **{"format/prompt_loose": [0] * 8 + [1] * 22 + [1] * 8 + [0] * 22})
    evals["base-curated"] = {s: _eval(noisy) for s in (0, 1)}
    one = named(av.summarize(cfg, evals, [0, 1], {}, None))[0]
    assert one["verdict"] == "inconclusive" and one["mde"] > 0.1
    assert one["verdict_text"] == f"inconclusive at this power (MDE {one['mde']:.3g})"
    md = av.format_markdown(res, cfg)
    assert "| 1. Small curated sets suffice (LIMA) | 2305.11206 |" in md and "not run: needs" in md


def test_a_claims_row_reads_one_comparison_its_n_and_its_mde(capsys):
    """Suites are sized apart, so a claim's comparisons differ in n: an inconclusive claim's row gives the
    n, interval and MDE of one comparison -- the inconclusive one with the largest MDE -- and its text
    that MDE, never one comparison's MDE beside another's n."""
    import random

    rnd = random.Random(0)

    def noise(n):  # two arms that agree on half the items and differ both ways on the rest
        a = [rnd.randint(0, 1) for _ in range(n)]
        return a, [x if k % 2 else 1 - x for k, x in enumerate(a)]

    fa, fb = noise(200)  # format: 200 items
    ha, hb = noise(40)  # health: 40 answers, a wider interval
    ref = {"format/prompt_loose": fa, "health/complete": ha, "knowledge/mc_correct": [0] * 40,
           "format_unseen/prompt_loose": [0] * 40}
    evals = {arm: {0: _eval(ref)} for arm in ("base-pool-epochs", "base-pool", "base-random")}
    evals["base-curated"] = {0: _eval(dict(ref, **{"format/prompt_loose": fb, "health/complete": hb}))}
    cfg = audit.AuditConfig(claims=["1"], margin=0.01)
    (one,) = named(av.summarize(cfg, evals, [0], {}, None))
    assert one["verdict"] == "inconclusive"
    deciding = {c["check"]: c["comparison"] for c in one["checks"] if c["decides"]}
    health = next(c for k, c in deciding.items() if "health/complete" in k)
    assert health["n"] == 40 and all(c["n"] == 200 for k, c in deciding.items() if "format/" in k)
    assert health["mde"] == max(c["mde"] for c in deciding.values())
    assert "health/complete" in one["lead"] and (one["n"], one["mde"], one["ci95"]) == (40, health["mde"],
                                                                                          health["ci95"])
    assert one["verdict_text"] == f"inconclusive at this power (MDE {health['mde']:.3g})"


def test_claims_the_size_leaves_out_read_not_run_with_the_command():
    cfg = audit.AuditConfig()  # medium, no claims named: claims 1 and 3 run
    assert cfg.claim_ids() == ["1", "3"] and cfg.listed_ids() == list(audit.CLAIM_IDS)
    assert [c.id for c in audit.chosen(cfg)] == ["1", "3"]
    res = av.summarize(cfg, {arm: {} for arm in audit.ARMS}, [0, 1], {}, None)
    rows = {c["claim"]: c for c in named(res)}
    assert list(rows) == list(audit.CLAIM_IDS)
    assert rows["4"]["verdict"] == "not run" and rows["4"]["verdict_text"] == (
        "not run at size medium (it runs claims 1, 3 in its time): --claims 1,3,4 runs it beside them in this "
        "folder (their runs reused), --set size=large runs every claim")
    assert rows["9"]["verdict_text"].startswith("not run at size medium (it runs claims 1, 3 in its time): "
                                                "--claims 1,3,9 runs it")
    assert rows["1"]["verdict"] == "not run" and "no paired rows" in rows["1"]["verdict_text"]  # no evals given
    assert audit.AuditConfig(size="large").claim_ids() == list(audit.CLAIM_IDS)


# -- claim 8 (URIAL token shift) and claim 9 (proxy-tuning) ----------------------------------------
MEDIUM_EVALS = {  # every arm's eval settings at medium before claims 8 and 9 were runnable: their eval run keys
    "base": {"suites": ["format", "knowledge"], "limit": 121, "suite_limits": {"knowledge": 27}},
    "base-curated": {"suites": ["format", "format_unseen", "knowledge"], "limit": 121,
                     "suite_limits": {"knowledge": 27, "format_unseen": 27}},
    "base-random": {"suites": ["format", "format_unseen"], "limit": 27, "suite_limits": {}},
    "base-pool": {"suites": ["format", "knowledge"], "limit": 121, "suite_limits": {"knowledge": 27}},
    "base-pool-epochs": {"suites": ["format", "knowledge"], "limit": 121, "suite_limits": {"knowledge": 27}},
    "base-simplified": {"suites": ["format", "knowledge"], "limit": 121, "suite_limits": {"knowledge": 27}},
    "base-delusive": {"suites": ["format"], "limit": 27, "suite_limits": {}},
    "base-empty": {"suites": ["format", "knowledge"], "limit": 121, "suite_limits": {"knowledge": 27}},
    "aligned": {"suites": ["invariance", "format"], "limit": 121, "suite_limits": {}},
    "aligned-bct": {"suites": ["invariance", "format"], "limit": 121, "suite_limits": {}},
    "aligned-bct-mix": {"suites": ["invariance", "format"], "limit": 27, "suite_limits": {},
                        "invariance_families": ["sycophancy/authority", "sycophancy/pushback", "jailbreak/injection",
                                                "noise/format"]},
    "aligned-cf": {"suites": ["invariance"], "limit": 121, "suite_limits": {},
                   "invariance_families": ["sycophancy/authority", "sycophancy/pushback", "jailbreak/injection",
                                           "noise/format", "partner/intervention"]},
}


def test_claims_8_and_9_leave_the_existing_arms_eval_runs_as_they_were():
    """Token shift is an eval run of its own per arm, never in an arm's eval suites, and claim 9's checks
    of base and base-curated read their evals at the counts other claims already size them -- so every
    existing arm's eval config (its run key), and the audit's own key inputs, are what they were."""
    from sharpset.pipelines import audit_arms

    z = audit.AuditConfig().resolved()
    assert {arm: audit_arms.eval_settings(arm, z) for arm in MEDIUM_EVALS} == MEDIUM_EVALS
    assert not any("token_shift" in audit.arm_suites(a) for a in audit.ARMS)
    assert audit_arms.eval_settings("base-curated", z, own=True) == {"suites": ["token_shift"], "limit": 121,
                                                                   "suite_limits": {}}
    assert "suite:token_shift" not in audit.AuditConfig().key_inputs()
    # claim 6's speech acts: an eval run of its own per arm too (base and aligned keep their eval runs' keys), the
    # audit's key inputs without the suite or its benign file, and an eval that does not read speech acts hashes
    # the shipped files as it did before the benign controls were added
    assert not any(s in audit.arm_suites(a) for a in audit.ARMS for s in ("speech_acts", "dimensions"))
    assert audit_arms.eval_settings("base-random", z, own="dimensions") == {"suites": ["dimensions"], "limit": 121,
                                                                          "suite_limits": {}}
    assert audit.arm_suites("aligned-warn") == [] and audit_arms.eval_settings("aligned", z, own="speech_acts") == {
        "suites": ["speech_acts"], "limit": 121, "suite_limits": {}}
    keys = audit.AuditConfig().key_inputs()
    assert "suite:speech_acts" not in keys and not [k for k in keys if "speech_acts_benign" in k]
    from sharpset.evaluate import data
    from sharpset.evaluate.stage import EvalConfig
    from sharpset.run import file_hash, sha256_text

    before = ("format", "format_unseen", "shape", "speech_acts", "speech_acts_labelled", "knowledge_mc", "knowledge_qa",
              "dimensions")
    assert EvalConfig(suites=["format"]).key_inputs()["shipped:evaluate/data"] == sha256_text(
        "".join(f"{f}:{file_hash(data.path(f))}\n" for f in before))
    assert "shipped:evaluate/data/speech_acts_benign.jsonl" in EvalConfig(suites=["speech_acts"]).key_inputs()
    # the proxy arm: the deciding format count, knowledge at base-curated's (evidence) count, which it is read against
    assert audit_arms.eval_settings("proxy-a1", z) == {"suites": ["format", "knowledge"], "limit": 121,
                                                       "suite_limits": {"knowledge": 27}}


def test_claims_8_and_9_plan_their_stage_runs(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["run", "audit", "--dry-run", "--claims", "8", "--out", str(out)]) == 0
    eight = capsys.readouterr().out
    assert "8. Alignment is a shallow token shift (URIAL) (arXiv:2312.01552)" in eight
    assert "decides  base-curated: token_shift/shifted per answer, ranked by the base, below 0.15 (below)  " \
        "[n 30, MDE 0.0511]" in eight
    folders = re.findall(r"^  (\S+) +~[\d.]+ min +(.*)$", eight, re.M)
    names = [f for f, _ in folders]
    # the tuned arms trained, their token shift its own eval run; no arm eval run (no chosen claim reads one)
    assert {"train-base-curated-s1", "token-shift-base-curated-s1", "token-shift-base-pool-s0"} <= set(names)
    assert not [f for f in names if f.startswith("eval-")]
    assert ("token-shift-base-pool-s1", "eval base-pool seed 1, ranked by the base: token_shift 30") in folders
    assert main(["run", "audit", "--dry-run", "--claims", "9", "--set", "alphas=[1.0, 0.5]", "--out", str(out)]) == 0
    nine = capsys.readouterr().out
    assert "decides  proxy-a1 vs base: format/prompt_loose share of the base-curated - base gap closed above 0.5 " \
        "(gap-share)  [n 121, MDE 0.139]" in nine
    assert "decides  proxy-a1 vs base-curated: knowledge/mc_correct (non-inferiority)  [n 27" in nine
    assert "evidence proxy-a0.5 vs base-curated: knowledge/mc_correct (non-inferiority)" in nine
    names = re.findall(r"^  (\S+) +~[\d.]+ min", nine, re.M)
    assert names[names.index("derive-antiexpert"):] == [
        "derive-antiexpert", "eval-base", "train-base-curated-s0", "eval-base-curated-s0", "train-base-curated-s1",
        "eval-base-curated-s1", "train-expert-s0", "train-expert-s1", "eval-proxy-a1-s0", "eval-proxy-a1-s1",
        "eval-proxy-a0.5-s0", "eval-proxy-a0.5-s1"]
    assert "derive: the base's first 12 decoder layers, healed 45 steps on the pool's text (the anti-expert)" in nine
    assert main(["run", "audit", "--dry-run", "--claims", "9", "--set", "heal_steps=0", "--out", str(out)]) == 0
    assert "derive: the base's first 12 decoder layers (the anti-expert)" in capsys.readouterr().out
    for bad in ("-1", "true"):
        assert main(["run", "audit", "--dry-run", "--claims", "9", "--set", f"heal_steps={bad}", "--out",
                     str(out)]) == 2
        assert "heal_steps" in capsys.readouterr().err
    assert main(["run", "audit", "--dry-run", "--claims", "9", "--set", "alphas=[1, 1.0]", "--out", str(out)]) == 2
    assert "alphas" in capsys.readouterr().err


def _shift_eval(shares: list[float]) -> dict:
    return {"token_shift": {"rows": {f"i{k}": {"item": f"i{k}", "shifted": v, "weight": 10.0 + k}
                                     for k, v in enumerate(shares)}, "lower": {"shifted"}}}


def test_claim_8_verdicts_on_constructed_answers():
    """URIAL's rule on constructed per-answer shares, two seeds pooled per answer: all well below the 0.15
    threshold -> supported; well above -> contradicted; spread around it -> inconclusive with the MDE."""
    import random

    rnd = random.Random(0)
    n = 30
    cfg = audit.AuditConfig(claims=["8"])

    def verdict(make):
        evals = {arm: {s: _shift_eval([make() for _ in range(n)]) for s in (0, 1)}
                 for arm in ("base-curated", "base-pool")}
        (eight,) = named(av.summarize(cfg, evals, [0, 1], {}, None))
        return eight

    low = verdict(lambda: rnd.uniform(0.0, 0.08))
    assert low["verdict"] == "supported" and low["n"] == n and low["n_rows"] == 2 * n and low["seeds"] == 2
    assert low["ci95"][1] < 0 and low["diff"] < -0.05  # diff = share - threshold, answers the units
    check = low["checks"][0]
    assert check["threshold"] == 0.15 and check["comparison"]["a"] == 0.15 and check["rule"] == "below"
    assert check["p_holm"] is not None and "per answer" in check["check"]
    high = verdict(lambda: rnd.uniform(0.3, 0.5))
    assert high["verdict"] == "contradicted" and high["ci95"][0] > 0
    noise = verdict(lambda: rnd.uniform(0.0, 0.3))
    assert noise["verdict"] == "inconclusive" and noise["mde"] is not None
    assert noise["verdict_text"] == f"inconclusive at this power (MDE {noise['mde']:.3g})"
    # the unit is the answer, not the token: a long answer's weight does not move the mean
    assert abs(low["checks"][0]["comparison"]["b"] - (low["diff"] + 0.15)) < 1e-3
    md = av.format_markdown({"claims": [low], "holm": "-", "seeds": [0, 1]}, cfg)
    assert "| 8. Alignment is a shallow token shift (URIAL) | 2312.01552 |" in md and "below 0.15" in md


def test_claim_9_verdicts_on_constructed_arms():
    """The gap-share rule: the proxy closing most of a shown tuned - base gap -> supported (knowledge kept);
    a gap that is not shown -> inconclusive, the share undefined, with the reason."""
    n = 200
    base = {"format/prompt_loose": [0] * n, "knowledge/mc_correct": [1] * 100 + [0] * 100,
            "health/complete": [1] * n}
    tuned = dict(base, **{"format/prompt_loose": [1] * 120 + [0] * 80})
    proxy = dict(base, **{"format/prompt_loose": [1] * 110 + [0] * 90})
    cfg = audit.AuditConfig(claims=["9"])
    evals = {"base": {None: _eval(base)}, "base-curated": {s: _eval(tuned) for s in (0, 1)},
             "proxy-a1": {s: _eval(proxy) for s in (0, 1)}, "expert": {}}
    (nine,) = named(av.summarize(cfg, evals, [0, 1], {}, None))
    assert nine["verdict"] == "supported", nine["verdict_text"]
    gap = next(c for c in nine["checks"] if c["rule"] == "gap-share" and c["decides"])
    assert gap["comparison"]["share"] == nine["diff"] == round(110 / 120, 4) and gap["comparison"]["ci95"][0] > 0.5
    assert gap["tuned"] == "base-curated" and gap["comparison"]["gap"]["diff"] == 0.6
    kept = next(c for c in nine["checks"] if c["rule"] == "non-inferiority")
    assert kept["verdict"] == "supported" and kept["a"] == "base-curated" and kept["b"] == "proxy-a1"
    # the proxy moved less than half the gap: contradicted
    evals["proxy-a1"] = {s: _eval(dict(base, **{"format/prompt_loose": [1] * 30 + [0] * 170})) for s in (0, 1)}
    assert named(av.summarize(cfg, evals, [0, 1], {}, None))[0]["verdict"] == "contradicted"
    # tuning did not move the metric: the share is undefined, the claim inconclusive with the reason
    evals["base-curated"] = {s: _eval(base) for s in (0, 1)}
    (nine,) = named(av.summarize(cfg, evals, [0, 1], {}, None))
    assert nine["verdict"] == "inconclusive" and nine["diff"] is None and nine["mde"] is not None
    assert nine["verdict_text"].startswith("inconclusive: share of the gap closed undefined: the tuned - base gap "
                                           "is not shown")
    # an arm that did not run: not run, with its reason
    (nine,) = named(av.summarize(cfg, evals, [0, 1], {"proxy-a1": "its expert (expert) did not train"}, None))
    assert nine["verdict"] == "not run" and "did not train" in nine["verdict_text"]


def _audit_folder(tmp_path):
    """An audit folder from constructed arms (claim 1 contradicted, 7 not run): audit.json and each
    arm's eval run's samples, prompts carrying a script tag."""
    n = 60
    same = {"format/prompt_loose": [1] * 30 + [0] * 30, "health/complete": [1] * n,
            "knowledge/mc_correct": [0] * n, "format_unseen/prompt_loose": [0] * n}
    evals = {arm: {0: _eval(same)} for arm in ("base-pool-epochs", "base-pool", "base-random")}
    evals["base-curated"] = {0: _eval(dict(same, **{"format/prompt_loose": [0] * n}))}
    cfg = audit.AuditConfig(claims=["1", "7"])
    res = av.summarize(cfg, evals, [0], {}, None)
    root = tmp_path / "audit"
    arms = {}
    for arm, rows in evals.items():  # each arm's eval run: samples/<suite>.jsonl with prompts and answers
        run = root / f"eval-{arm}-s0" / "samples"
        run.mkdir(parents=True)
        for suite, got in rows[0].items():
            (run / f"{suite}.jsonl").write_text("".join(json.dumps(
                {**r, "prompt": f"<script>alert({i})</script> {suite}", "answer": f"{arm} answers {i}"}) + "\n"
                for i, r in got["rows"].items()))
        arms[arm] = {"evals": [{"seed": 0, "run": f"eval-{arm}-s0"}]}
    (root / "audit.json").write_text(json.dumps({**res, "size": "small", "arms": arms, "reused": []}))
    return root


def test_the_report_draws_the_audit_page(tmp_path, needs7):
    """`sharpset report` on an audit folder: audit.html with the verdict table first (claim, verdict, rule,
    ours with its interval, n, seeds, MDE, the paper's figure), then a section per claim with its
    comparisons and the answers side by side from the arms' eval runs -- all text escaped."""
    from sharpset.report import build_report

    root = _audit_folder(tmp_path)
    out = build_report([root], tmp_path / "report")
    assert out["audit"] == [str(tmp_path / "report" / "audit.html")]
    page = (tmp_path / "report" / "audit.html").read_text()
    table = page.index('<section id="verdicts">')
    assert table < page.index('<section id="claim-1">') < page.index('<section id="claim-7">')
    row = page[table:page.index("</table>", table)]
    for th in ("claim", "verdict", "rule", "ours: diff [95% CI]", "n items (rows)", "seeds", "MDE",
               "paper&#x27;s figure"):
        assert f"<th>{th}</th>" in row
    assert ">contradicted<" in row and "arXiv:2305.11206" in row and "-0.500 [" in row and "not run: needs" in row
    one = page[page.index('<section id="claim-1">'):page.index('<section id="claim-7">')]
    assert "<svg" in one and "every comparison" in one  # the forest plot of its comparisons
    assert "reference · base-pool-epochs" in one and "treatment · base-curated" in one  # answers side by side
    assert "<script>" not in page and "&lt;script&gt;" in one


@pytest.mark.browser
@pytest.mark.skipif(find_browser() is None, reason="no Chromium: scripts/install-browser.sh")
def test_the_audit_page_in_a_browser(tmp_path, capsys, needs7):
    """Opened in headless Chromium it renders (verdict table, plots) and runs nothing; `sharpset report
    --screenshot` saves its first screen beside the report's."""
    from sharpset.report.browser import dump_dom

    root = _audit_folder(tmp_path)
    assert main(["report", str(root), "--out", str(tmp_path / "report"), "--screenshot"]) == 0
    assert f"screenshot: {tmp_path / 'report' / 'audit.png'}" in capsys.readouterr().out
    assert (tmp_path / "report" / "audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = dump_dom(tmp_path / "report" / "audit.html")
    assert 'id="verdicts"' in dom and 'id="claim-1"' in dom and len(re.findall(r"<svg\b", dom)) >= 2
    assert not re.search(r"<script\b", dom, re.I) and "&lt;script&gt;alert(" in dom


# -- end to end on tiny models ------------------------------------------------------------------
def _argv(model, pool, out, claims: str, *more: str) -> list[str]:
    return ["run", "audit", "--out", str(out), "--claims", claims, "--set", f"aligned_model={model}",
            "--set", f"base_model={model}", "--set", f"pool={pool}", "--set", "n=4", "--set", "pool_factor=2",
            "--set", "steps=2", "--set", "eval_limit=2", "--set", "eval_max_new_tokens=4", "--set", "cards=false",
            "--set", "overrides={select-curated: {min_quality: null, gates: []}}", *more]


def _started(printed: str) -> list[str]:
    return re.findall(r"^== (\S+) \(\w+\)$", printed, re.M)


def test_subsets_share_arms_and_a_killed_audit_resumes(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from sharpset import train

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    real, calls = train.run, []

    def dies_on_the_third(cfg, run, log=print):
        calls.append(run.path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(cfg, run, log)

    monkeypatch.setattr(train, "run", dies_on_the_third)
    assert main(_argv(tiny_model_dir, pool, out, "2", "--set", "seeds=1")) == 130  # killed mid-audit
    first = _started(capsys.readouterr().out)
    monkeypatch.setattr(train, "run", real)
    assert main(_argv(tiny_model_dir, pool, out, "2", "--set", "seeds=1")) == 0
    second = _started(capsys.readouterr().out)
    killed = calls[2]
    # control-delusive stops on its input each time (no closed-label rows: its arm is not run), so never finishes
    finished_before = [f for f in first if f not in (killed, "control-delusive")]
    assert finished_before and not set(finished_before) & set(second)  # nothing finished runs again
    assert killed in second
    res = json.loads((out / "audit.json").read_text())
    (two,) = named(res)
    assert two["claim"] == "2" and two["verdict"] in ("supported", "contradicted", "inconclusive")
    delusive = next(c for c in two["checks"] if c["b"] == "base-delusive")
    assert delusive["verdict"] == "not run" and "closed-label" in delusive["verdict_text"]
    assert res["arms"]["base-delusive"]["not_run"]
    # claims 1 and 2 in the same folder: base-curated (shared with claim 2) is not trained again
    assert main(_argv(tiny_model_dir, pool, out, "1,2", "--set", "seeds=1")) == 0
    third = _started(capsys.readouterr().out)
    assert "train-base-curated-s0" not in third and "train-base-pool-epochs-s0" in third
    assert third.count("train-base-pool-s0") == 1
    res = json.loads((out / "audit.json").read_text())
    assert [c["claim"] for c in named(res)] == ["1", "2"]
    epochs = json.loads((out / "train-base-pool-epochs-s0" / "manifest.json").read_text())
    assert epochs["metrics"]["optimizer_steps"] == 4  # the pool (8 rows) at the curated set's (4 rows) epochs
    assert "| 1. Small curated sets suffice (LIMA) |" in (out / "audit.md").read_text()
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "running"  # a subset: the folder stays open to the other claims


def test_two_seeds_pool_into_one_comparison(tiny_model_dir, tmp_path, capsys):
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    assert main(_argv(tiny_model_dir, pool, out, "3")) == 0
    started = _started(capsys.readouterr().out)
    assert started.count("eval-base") == 1 and {"train-base-pool-s0", "train-base-pool-s1"} <= set(started)
    (three,) = named(json.loads((out / "audit.json").read_text()))
    assert three["seeds"] == 2 and three["n_rows"] == 2 * three["n"]
    assert three["pool_yield"] is None and "Pool yield: not measured" in (out / "audit.md").read_text()


def test_per_suite_items_reach_the_eval_runs(tiny_model_dir, tmp_path, capsys):
    """Sized by power (no eval_limit): the eval runs score each suite's own count -- claim 3 decides on
    health (scored on the format answers: format at eval_mde's 9 items) and reads knowledge only as
    evidence (evidence_mde's 8) -- and each comparison's n and MDE are its own suite's."""
    from sharpset.stats import planned_n

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    assert (planned_n(0.95, 0.3), planned_n(0.99, 0.3)) == (9, 8)
    assert main(_argv(tiny_model_dir, pool, out, "3", "--set", "seeds=1", "--set", "eval_limit=-1",
                      "--set", "eval_mde=0.95", "--set", "evidence_mde=0.99")) == 0
    capsys.readouterr()
    res = json.loads((out / "audit.json").read_text())
    assert res["arms"]["base-pool"]["eval"] == {"suites": ["format", "knowledge"], "limit": 9,
                                                "suite_limits": {"knowledge": 8}}
    for folder in ("eval-base", "eval-base-pool-s0"):
        summary = json.loads((out / folder / "summary.json").read_text())
        assert (summary["limit"], summary["suite_limits"]) == (9, {"knowledge": 8})
        kinds = [json.loads(line).get("kind") for line in (out / folder / "samples" / "knowledge.jsonl").open()]
        assert kinds.count("mc") == 8 and kinds.count("qa") == 8
        assert sum(1 for _ in (out / folder / "samples" / "format.jsonl").open()) == 9
    (three,) = named(res)
    checks = {c["suite"]: c["comparison"] for c in three["checks"]}
    assert checks["format"]["n"] == 9 and checks["knowledge"]["n"] == 8
    assert checks["health"]["n"] == 9 + 8  # every answer both made: the format prompts and the knowledge questions
    assert (three["n"], three["mde"]) == (checks["health"]["n"], checks["health"]["mde"])


def test_invariance_claims_say_why_they_did_not_run(tiny_model_dir, tmp_path, capsys):
    """A random tiny model answers no question right: wrap keeps no pair, so no BCT arm trains and
    claims 4 and 5 read "not run" with that reason -- never a verdict."""
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    assert main(_argv(tiny_model_dir, pool, out, "4,5", "--set", "seeds=1", "--set", "wrap_questions=3")) == 0
    started = _started(capsys.readouterr().out)
    assert "eval-aligned" in started and not [f for f in started if f.startswith("train-")]
    four, five = named(json.loads((out / "audit.json").read_text()))
    for c in (four, five):
        assert c["verdict"] == "not run" and "wrap kept no training pair" in c["verdict_text"]


def test_bad_input_partway_keeps_the_finished_stage_runs(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A fresh audit folder stopped by bad input after some stage runs finished is kept (the CLI's rule
    for bad input removes only a folder with nothing finished in it), and the same command resumes."""
    from sharpset import train
    from sharpset.errors import UserError
    from sharpset.stages import tag

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    real = train.run

    def bad_input(cfg, run, log=print):
        raise UserError("train: a bad input (this test)")

    monkeypatch.setattr(train, "run", bad_input)
    assert main(_argv(tiny_model_dir, pool, out, "3", "--set", "seeds=1")) == 2
    assert "kept" in capsys.readouterr().err
    assert json.loads((out / "dedup" / "manifest.json").read_text())["status"] == "complete"
    monkeypatch.setattr(train, "run", real)
    assert main(_argv(tiny_model_dir, pool, out, "3", "--set", "seeds=1")) == 0
    started = _started(capsys.readouterr().out)
    assert "train-base-pool-s0" in started and not {"tag", "dedup", "select-pool"} & set(started)
    # nothing finished yet: the fresh folder is taken back, as before
    monkeypatch.setattr(tag, "run", bad_input)
    fresh = tmp_path / "elsewhere" / "audit"  # not beside the first audit: nothing there to reuse
    assert main(_argv(tiny_model_dir, pool, fresh, "3", "--set", "seeds=1")) == 2
    assert not fresh.exists()


# -- reuse by content key ------------------------------------------------------------------------
def test_an_audit_reuses_a_matching_sweep_cell(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A sweep's random cell over the audit's pool, with the audit's budget, is the audit's random arm:
    its training and evaluation are read from the sweep's folder, and audit.json says so."""
    from sharpset import train

    m = str(tiny_model_dir)
    pool = _pool(tmp_path / "pool.jsonl")
    prep = tmp_path / "runs" / "prep"
    # the audit's pool steps run by hand first (its tag and dedup settings), then one tiny sweep cell on them
    assert main(["tag", str(pool), "--judge", m, "--out", str(prep / "tag")]) == 0
    assert main(["dedup", str(prep / "tag" / "tagged.jsonl"), "--out", str(prep / "dedup")]) == 0
    sweep = tmp_path / "runs" / "sweep"
    assert main(["sweep", "--model", m, "--pool", str(prep / "dedup" / "deduped.jsonl"), "--targets", "random",
                 "--sizes", "[4]", "--seeds", "1", "--steps", "2", "--eval-limit", "2", "--eval-max-new-tokens", "4",
                 "--suites", "format,format_unseen", "--out", str(sweep)]) == 0
    cell = sweep / "cells" / "random-n4-s0"
    before = (cell / "train" / "manifest.json").read_text()
    capsys.readouterr()
    real, trained = train.run, []

    def counted(cfg, run, log=print):
        trained.append(run.path.name)
        return real(cfg, run, log)

    monkeypatch.setattr(train, "run", counted)
    out = tmp_path / "runs" / "audit"
    assert main(_argv(m, pool, out, "1", "--set", "seeds=1")) == 0
    printed = capsys.readouterr().out
    assert f"== train-base-random-s0: reused {cell / 'train'}" in printed
    assert "train-base-random-s0" not in trained and "train-base-curated-s0" in trained
    res = json.loads((out / "audit.json").read_text())
    reused = {u["step"]: u["run"] for u in res["reused"]}
    assert reused["train-base-random-s0"] == str(cell / "train") and reused["eval-base-random-s0"] == str(cell / "eval")
    assert reused["tag"] == str(prep / "tag") and reused["dedup"] == str(prep / "dedup")
    assert res["arms"]["base-random"]["evals"] == [{"seed": 0, "run": str(cell / "eval")}]
    assert (cell / "train" / "manifest.json").read_text() == before  # nothing written into the sweep's folder
    # the second time: nothing trains, the same runs are read
    trained.clear()
    assert main(_argv(m, pool, out, "1", "--set", "seeds=1")) == 0
    assert trained == [] and {u["step"]: u["run"] for u in
                              json.loads((out / "audit.json").read_text())["reused"]} == reused
    # reuse off: the arm trains in the audit's own folder
    assert main(_argv(m, pool, tmp_path / "runs" / "own", "1", "--set", "seeds=1", "--set", "reuse=[]")) == 0
    assert "train-base-random-s0" in trained


def _keys(out) -> dict[str, str]:
    return {m.parent.name: json.loads(m.read_text())["key"] for m in out.glob("*/manifest.json")}


def test_claim_8_adds_token_shift_runs_and_reruns_no_eval(tiny_model_dir, tmp_path, capsys):
    """Choosing claim 8 beside claim 3 in the same folder: the arm evals claim 3 ran are cached (the same
    run keys), base-curated trains, and each tuned arm gets a token-shift eval run of its own, ranked by
    the base; claim 8's verdict comes from those runs' per-answer shares."""
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    assert main(_argv(tiny_model_dir, pool, out, "3", "--set", "seeds=1")) == 0
    capsys.readouterr()
    before = _keys(out)
    assert main(_argv(tiny_model_dir, pool, out, "3,8", "--set", "seeds=1")) == 0
    printed = capsys.readouterr().out
    started = _started(printed)
    assert "== eval-base: up to date (cached)" in printed and "== eval-base-pool-s0: up to date (cached)" in printed
    assert {"train-base-curated-s0", "token-shift-base-curated-s0", "token-shift-base-pool-s0"} <= set(started)
    assert not [f for f in started if f.startswith("eval-")]  # no arm eval ran again, none added for claim 8
    after = _keys(out)
    assert {k: after[k] for k in before} == before
    # claim 3's health check reads the arms' eval runs, never a token-shift run's health (of its own answers)
    health = next(c for c in named(json.loads((out / "audit.json").read_text()))[0]["checks"]
                  if c["suite"] == "health")
    assert health["comparison"] and health["comparison"]["n"] > 0
    # claim 6 beside them: speech-acts runs of its own, no arm eval or token-shift run again, no key changed
    assert main(_argv(tiny_model_dir, pool, out, "3,6,8", "--set", "seeds=1")) == 0
    started = _started(capsys.readouterr().out)
    assert {"select-warn", "speech-acts-base", "speech-acts-aligned"} <= set(started)
    assert not [f for f in started if f.startswith(("eval-", "token-shift-", "train-base"))]
    assert {k: v for k, v in _keys(out).items() if k in after} == after
    shift = yaml.safe_load((out / "token-shift-base-pool-s0" / "config.yaml").read_text())
    assert shift["suites"] == ["token_shift"] and shift["base"] == str(tiny_model_dir)
    summary = json.loads((out / "token-shift-base-pool-s0" / "summary.json").read_text())
    assert summary["suites"]["token_shift"]["models"]
    res = json.loads((out / "audit.json").read_text())
    three, six, eight = named(res)
    assert six["verdict"] != "not run" or "warn set is empty" in six["verdict_text"]
    assert eight["claim"] == "8" and eight["verdict"] in ("supported", "contradicted", "inconclusive")
    assert eight["n"] == 2 and eight["paper"]["arxiv"] == "2312.01552" and "ci95" in eight and "mde" in eight
    assert [c["b"] for c in eight["checks"]] == ["base-curated", "base-pool"]
    assert res["arms"]["base-pool"]["suite_evals"] == {"token_shift": [{"seed": 0, "run": "token-shift-base-pool-s0"}]}
    assert res["arms"]["base-pool"]["evals"] == [{"seed": 0, "run": "eval-base-pool-s0"}]
    assert "| 8. Alignment is a shallow token shift (URIAL) |" in (out / "audit.md").read_text()
    from sharpset.report import build_report

    build_report([out], tmp_path / "report")  # the audit page: claim 8's answers from its token-shift runs
    page = (tmp_path / "report" / "audit.html").read_text()
    assert '<section id="claim-8">' in page and "the answers with the largest shifted share (seed 0)" in page


def test_claim_9_runs_the_proxy_arm_end_to_end(tiny_model_dir, tmp_path, capsys):
    """Claim 9 on tiny models: the anti-expert derived (first layer of two) and healed on the pool's text,
    the expert trained on the curated set with base-curated's budget, the base steered by them (--engine
    proxy) on the same items as the base and base-curated, and a gap-share verdict; the audit page shows it."""
    from sharpset.report import build_report
    from sharpset.run import file_hash

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    assert main(_argv(tiny_model_dir, pool, out, "9", "--set", "seeds=1", "--set", "keep_layers=1",
                      "--set", "heal_steps=2")) == 0
    started = _started(capsys.readouterr().out)
    assert {"derive-antiexpert", "eval-base", "train-base-curated-s0", "eval-base-curated-s0", "train-expert-s0",
            "eval-proxy-a1-s0"} <= set(started) and "eval-expert-s0" not in started
    derived = json.loads((out / "derive-antiexpert" / "manifest.json").read_text())
    assert derived["metrics"]["keep_layers"] == 1 and derived["metrics"]["source_layers"] == 2
    # healed as the audit says, on the pool it was given; the heal data in the step's key by content
    derive_cfg = yaml.safe_load((out / "derive-antiexpert" / "config.yaml").read_text())
    assert (derive_cfg["heal_steps"], derive_cfg["heal_data"]) == (2, str(pool))
    assert derived["inputs"]["file:heal_data"] == file_hash(pool)
    assert derived["metrics"]["heal_kl_after"] is not None
    expert = json.loads((out / "train-expert-s0" / "manifest.json").read_text())
    tuned = json.loads((out / "train-base-curated-s0" / "manifest.json").read_text())
    assert expert["metrics"]["optimizer_steps"] == tuned["metrics"]["optimizer_steps"] == 2
    proxy = json.loads((out / "eval-proxy-a1-s0" / "summary.json").read_text())
    (m,) = proxy["models"]
    assert m["proxy"]["alpha"] == 1.0 and m["proxy"]["expert"] == str(out / "train-expert-s0")
    assert {"format", "knowledge"} <= set(proxy["suites"])
    res = json.loads((out / "audit.json").read_text())
    (nine,) = named(res)
    assert nine["claim"] == "9" and nine["verdict"] in ("supported", "contradicted", "inconclusive")
    gap = next(c for c in nine["checks"] if c["rule"] == "gap-share" and c["decides"])
    assert (gap["a"], gap["b"], gap["tuned"]) == ("base", "proxy-a1", "base-curated") and gap["comparison"]
    assert gap["verdict"] != "not run" and gap["comparison"]["n"] == 2
    if gap["comparison"]["share"] is None:  # a random tiny model: the gap is seldom shown
        assert gap["verdict_text"].startswith("inconclusive: share of the gap closed undefined")
    assert res["arms"]["proxy-a1"]["alpha"] == 1.0 and res["arms"]["expert"]["evals"] == []
    build_report([out], tmp_path / "report")
    page = (tmp_path / "report" / "audit.html").read_text()
    assert '<section id="claim-9">' in page and "gap-share" in page
    # K past the base's depth: refused before any stage runs, naming the field and the range
    fresh = tmp_path / "k2"
    assert main(_argv(tiny_model_dir, pool, fresh, "9", "--set", "seeds=1", "--set", "keep_layers=2")) == 2
    assert "keep_layers: must be in [1, 1]" in capsys.readouterr().err and not fresh.exists()


# -- claim 6 (speech acts: suppression, and warn-when-warranted) ------------------------------------
def _speech_eval(warn: list[float], false_alarm: list[float], alarm: float = 0.0) -> dict:
    """speech_acts rows as the suite writes them: warranted rows carry the acts, benign ones false_alarm."""
    rows = {f"w{k}": {"item": f"w{k}", "warranted": True, "warn": v, "alarm": alarm, "denounce": 0.0, "hedge": 0.0,
                      "false_alarm": None} for k, v in enumerate(warn)}
    rows.update({f"b{k}": {"item": f"b{k}", "warranted": False, "warn": None, "alarm": None, "denounce": None,
                           "hedge": None, "false_alarm": v} for k, v in enumerate(false_alarm)})
    return {"speech_acts": {"rows": rows, "lower": set()}}


def test_claim_6_verdicts_on_constructed_rows():
    """Claim 6's rule on constructed speech-act rows (two seeds of the trained arm): the aligned model warns less
    than the base where a warning is warranted, and its warn-when-warranted target warns more there without more
    false alarms on the benign controls -> supported; the opposite -> contradicted; noise -> inconclusive (MDE)."""
    import random

    n = 60
    cfg = audit.AuditConfig(claims=["6"])

    def six(base, aligned, warned):
        evals = {"base": {None: _speech_eval(*base)}, "aligned": {None: _speech_eval(*aligned)},
                 "aligned-warn": {s: _speech_eval(*warned) for s in (0, 1)}}
        (c,) = named(av.summarize(cfg, evals, [0, 1], {}, None))
        return c

    quiet, loud = [0.0] * n, [1.0] * n
    clear = six((loud, quiet), (quiet, quiet), (loud, quiet))
    assert clear["verdict"] == "supported", clear["verdict_text"]
    checks = {c["check"]: c for c in clear["checks"]}
    supp = checks["aligned vs base: speech_acts/warn [warranted=True] lower (superiority)"]
    assert supp["verdict"] == "supported" and supp["direction"] == -1 and supp["comparison"]["n"] == n
    warned = checks["aligned-warn vs aligned: speech_acts/warn [warranted=True] higher (superiority)"]
    assert warned["verdict"] == "supported" and warned["comparison"]["diff"] == 1.0 and warned["seeds"] == 2
    fa = checks["aligned-warn vs aligned: speech_acts/false_alarm [warranted=False] lower (non-inferiority)"]
    assert fa["verdict"] == "supported" and fa["margin"] == 0.1 and fa["comparison"]["n"] == n
    assert "no higher than aligned on speech_acts/false_alarm [warranted=False] by more than 0.1" in fa["rule_text"]
    assert "aligned lower than base on speech_acts/warn [warranted=True]" in clear["rule"]
    assert not checks["aligned vs base: speech_acts/alarm [warranted=True] lower (superiority)"]["decides"]
    # the opposite: the aligned model warns more than the base; its target raises false alarms on every benign prompt
    opposite = six((quiet, quiet), (loud, quiet), (loud, loud))
    assert opposite["verdict"] == "contradicted"
    by = {c["check"]: c["verdict"] for c in opposite["checks"] if c["decides"]}
    assert list(by.values()) == ["contradicted", "inconclusive", "contradicted"]  # warn already 1: no room to rise
    # selective warning alone fails: warnings restored but false alarms up -> contradicted
    assert six((loud, quiet), (quiet, quiet), (loud, loud))["verdict"] == "contradicted"
    # noise: arms that differ both ways on a few items -> inconclusive, with the MDE of the comparison its row reads
    rnd = random.Random(0)

    def coin(p):
        return [float(rnd.random() < p) for _ in range(n)]

    noise = six((coin(0.5), coin(0.1)), (coin(0.5), coin(0.1)), (coin(0.5), coin(0.1)))
    assert noise["verdict"] == "inconclusive" and noise["mde"] is not None
    assert noise["verdict_text"] == f"inconclusive at this power (MDE {noise['mde']:.3g})"
    # an arm that did not train: not run with its reason, never a verdict
    skipped = av.summarize(cfg, {"base": {None: _speech_eval(loud, quiet)}, "aligned": {None: _speech_eval(quiet, quiet)},
                                 "aligned-warn": {}}, [0, 1], {"aligned-warn": "the warn set is empty"}, None)
    (c,) = named(skipped)
    assert c["verdict"] == "inconclusive"  # the other deciding comparison is supported: not "not run", nor an MDE
    assert c["verdict_text"] == "inconclusive: a deciding comparison did not run (the warn set is empty)"
    assert [r["verdict_text"] for r in c["checks"] if r["b"] == "aligned-warn"] == ["not run: the warn set is empty"] * 2
    md = av.format_markdown({"claims": [clear], "holm": "-", "seeds": [0, 1]}, cfg)
    assert "| 6. Alignment suppresses alarm, warning, denunciation | - | no empirical source found" in md


def test_claim_6_plans_its_own_speech_acts_runs(tmp_path, capsys):
    """--claims 6: the warn set, the aligned arm trained on it, and a speech-acts eval run of its own per arm (no
    arm eval run); medium lists it as not run with its minutes, large runs it."""
    out = tmp_path / "a"
    assert main(["run", "audit", "--dry-run", "--claims", "6", "--out", str(out)]) == 0
    six = capsys.readouterr().out
    assert "6. Alignment suppresses alarm, warning, denunciation; dial: warn_k, steps, seeds, eval_limit" in six
    assert "decides  aligned vs base: speech_acts/warn [warranted=True] lower (superiority)  [n 46, MDE 0.226]" in six
    assert "decides  aligned-warn vs aligned: speech_acts/false_alarm [warranted=False] lower (non-inferiority)  " \
        "[n 62, MDE 0.195; too wide for non-inferiority at margin 0.1]" in six
    names = re.findall(r"^  (\S+) +~[\d.]+ min", six, re.M)
    assert names == ["select-warn", "speech-acts-base", "speech-acts-aligned", "train-aligned-warn-s0",
                     "speech-acts-aligned-warn-s0", "train-aligned-warn-s1", "speech-acts-aligned-warn-s1"]
    assert "eval base (untrained): speech_acts 46 warranted + 62 benign" in six
    assert "58 speech-acts dev prompts, 4 sampled each" in six
    assert main(["run", "audit", "--dry-run", "--out", str(out)]) == 0
    medium = capsys.readouterr().out
    assert re.search(r"6\. Alignment suppresses alarm, warning, denunciation: not run at size medium \(~\d+ min more",
                     medium)
    assert "6" in audit.SIZES["large"]["claims"]
    # bad config names the field
    assert main(["run", "audit", "--dry-run", "--claims", "6", "--set", "warn_k=0", "--out", str(out)]) == 2
    assert "warn_k" in capsys.readouterr().err


def test_claim_6_end_to_end_on_tiny_models(tiny_model_dir, tmp_path, capsys):
    """--claims 6 on tiny models: the warn set sampled from the aligned model's own answers to the dev prompts and
    kept by the suite's classifier, the aligned model trained on it, a speech-acts run of its own per arm (warranted
    and benign prompts of the test split), and claim 6's verdict from them."""
    from sharpset.evaluate.data import load

    out = tmp_path / "audit"
    argv = _argv(tiny_model_dir, _pool(tmp_path / "pool.jsonl"), out, "6", "--set", "seeds=1", "--set", "warn_k=2",
                 "--set", "overrides={select-warn: {max_new_tokens: 6, drop_truncated: false}}")
    assert main(argv) == 0
    started = _started(capsys.readouterr().out)
    assert started == ["select-warn", "speech-acts-base", "speech-acts-aligned", "train-aligned-warn-s0",
                       "speech-acts-aligned-warn-s0"]
    warn = json.loads((out / "select-warn" / "manifest.json").read_text())
    dev = {r["id"] for r in load("speech_acts", "dev") + load("speech_acts_benign", "dev")}
    assert warn["metrics"]["prompts"] == {"warranted": 32, "benign": 26} and warn["metrics"]["k"] == 2
    rows = [json.loads(line) for line in (out / "select-warn" / "sft.jsonl").open()]
    assert rows and {r["source_id"] for r in rows} <= dev  # the dev split only: the eval reads test
    from sharpset.evaluate.speech_acts import classify

    assert all(classify(r["messages"][-1]["content"])["warn"] == r["warranted"] for r in rows)
    cfg = yaml.safe_load((out / "speech-acts-aligned" / "config.yaml").read_text())
    assert cfg["suites"] == ["speech_acts"] and cfg["base"] == "" and cfg["limit"] == 2
    samples = [json.loads(line) for line in (out / "speech-acts-base" / "samples" / "speech_acts.jsonl").open()]
    assert [r["warranted"] for r in samples] == [True, True, False, False]
    res = json.loads((out / "audit.json").read_text())
    (six,) = named(res)
    assert six["claim"] == "6" and six["verdict"] in ("supported", "contradicted", "inconclusive")
    assert all(c["comparison"] and c["comparison"]["n"] == 2 for c in six["checks"])
    assert res["arms"]["aligned"]["suite_evals"] == {"speech_acts": [{"seed": None, "run": "speech-acts-aligned"}]}
    assert res["arms"]["aligned"]["evals"] == []  # no arm eval run: no chosen claim reads one
    assert "| 6. Alignment suppresses alarm, warning, denunciation |" in (out / "audit.md").read_text()
    from sharpset.report import build_report

    build_report([out], tmp_path / "report")  # the audit page: the lead check's answers from the speech-acts runs
    page = (tmp_path / "report" / "audit.html").read_text()
    assert '<section id="claim-6">' in page and "Answers side by side" in page


# -- claim 7 (lexical and emotional alignment as separate knobs) -------------------------------------
def _dims_eval(lexical: list[float], emotional: list[float]) -> dict:
    rows = {f"d{k}": {"item": f"d{k}", "lexical_content_reuse": lx, "lexical_bigram_reuse": lx / 2,
                      "emotional_concordance": em, "emotional_sign_agreement": float(em > 0.7)}
            for k, (lx, em) in enumerate(zip(lexical, emotional))}
    return {"dimensions": {"rows": rows, "lower": set()}}


def test_equivalence_rule_on_constructed_effects():
    """Within the margin either way: an interval inside (-margin, +margin) -> supported, wholly beyond either
    end -> contradicted, one that reaches past the margin -> inconclusive with the MDE."""
    same = _c([0.5] * 40, [0.5 + (0.01 if k % 2 else -0.01) for k in range(40)])
    assert av.judge(same, 0, "equivalence", 0.1, None)[0] == "supported"
    up, down = _c([0.2] * 40, [0.6] * 40), _c([0.6] * 40, [0.2] * 40)
    assert av.judge(up, 0, "equivalence", 0.1, None)[0] == "contradicted"
    assert av.judge(down, 0, "equivalence", 0.1, None)[0] == "contradicted"
    wide = _c([0.0, 1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 0.5, 0.0, 1.0])
    v, text = av.judge(wide, 0, "equivalence", 0.1, None)
    assert v == "inconclusive" and text == f"inconclusive at this power (MDE {wide['mde']:.3g})"


def test_claim_7_verdicts_on_constructed_rows():
    """Each target moves its own dimension against the random N and leaves the other within the margin ->
    supported; a target that moves the other dimension too -> contradicted; noise -> inconclusive (MDE)."""
    import random

    n = 43
    cfg = audit.AuditConfig(claims=["7"])

    def seven(lexical, emotional):
        ref = ([0.2] * n, [0.5] * n)
        evals = {"base-random": {s: _dims_eval(*ref) for s in (0, 1)},
                 "base-lexical": {s: _dims_eval(*lexical) for s in (0, 1)},
                 "base-emotional": {s: _dims_eval(*emotional) for s in (0, 1)}}
        (c,) = named(av.summarize(cfg, evals, [0, 1], {}, None))
        return c

    clear = seven(([0.6] * n, [0.5] * n), ([0.2] * n, [0.8] * n))
    assert clear["verdict"] == "supported", clear["verdict_text"]
    checks = {c["check"]: c for c in clear["checks"]}
    own = checks["base-lexical vs base-random: dimensions/lexical_content_reuse higher (superiority)"]
    assert own["verdict"] == "supported" and own["comparison"]["diff"] == 0.4 and own["seeds"] == 2
    other = checks["base-lexical vs base-random: dimensions/emotional_concordance (equivalence)"]
    assert other["verdict"] == "supported" and other["margin"] == 0.1
    assert "within 0.1 of base-random on dimensions/emotional_concordance either way" in other["rule_text"]
    # the lexical target moves emotional concordance too: one knob, not two
    assert seven(([0.6] * n, [0.8] * n), ([0.2] * n, [0.8] * n))["verdict"] == "contradicted"
    # a target that lowers its own dimension
    assert seven(([0.1] * n, [0.5] * n), ([0.2] * n, [0.8] * n))["verdict"] == "contradicted"
    rnd = random.Random(0)

    def spread():
        return [rnd.uniform(0.0, 0.4) for _ in range(n)], [rnd.uniform(0.3, 0.7) for _ in range(n)]

    noise = seven(spread(), spread())
    assert noise["verdict"] == "inconclusive" and noise["mde"] is not None
    assert noise["verdict_text"] == f"inconclusive at this power (MDE {noise['mde']:.3g})"


def test_claim_7_selects_each_target_by_its_own_scorer(tmp_path):
    """The targets: the pool rows of the highest lexical reuse / sentiment concordance (user turns with sentiment
    first), by the dimensions suite's scorers, ties by id -- the same rows every time."""
    from sharpset.dataio import write_records
    from sharpset.pipelines.audit_dims import DimSelectConfig, score
    from sharpset.records import with_id
    from sharpset.run import RunDir

    def row(user, answer):
        return with_id({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})

    rows = [row("Tell me about red apples and green pears.", "Apples are red; pears are green."),
            row("Tell me about red apples and green pears.", "Fruit is nice."),
            row("I am so happy, I passed my exam!", "Wonderful news, congratulations, I am delighted for you!"),
            row("I am so happy, I passed my exam!", "Exams are graded on a scale."),
            row("List three rivers.", "The Nile, the Amazon and the Danube.")]
    write_records(rows, tmp_path / "pool.jsonl")
    assert score(rows[0], "lexical")[1] > score(rows[1], "lexical")[1]
    got = {}
    for by in ("lexical", "emotional"):
        cfg = DimSelectConfig(input=str(tmp_path / "pool.jsonl"), n=2, by=by)
        run = RunDir.open(tmp_path / by, "dimsel", 1, cfg, inputs=[cfg.input])
        from sharpset.pipelines.audit_dims import run as select

        select(cfg, run, log=lambda m: None)
        got[by] = [json.loads(line)["id"] for line in (tmp_path / by / "sft.jsonl").open()]
    assert got["lexical"][0] == rows[0]["id"]
    assert got["emotional"][0] == rows[2]["id"] and rows[4]["id"] not in got["emotional"]
    assert DimSelectConfig(input="x", n=0, by="tone").check() == [("n", "must be >= 1"),
                                                                  ("by", "must be one of lexical, emotional, got 'tone'")]


def test_claim_7_end_to_end_on_tiny_models(tiny_model_dir, tmp_path, capsys):
    """--claims 7 on tiny models: both targets selected from the pool and trained like the random N, a dimensions
    eval run of its own per arm (base-random's eval run untouched: no chosen claim reads it), and the verdict."""
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "audit"
    assert main(_argv(tiny_model_dir, pool, out, "7", "--set", "seeds=1")) == 0
    started = _started(capsys.readouterr().out)
    assert {"select-lexical", "select-emotional", "train-base-random-s0", "train-base-lexical-s0",
            "train-base-emotional-s0", "dimensions-base-random-s0", "dimensions-base-lexical-s0",
            "dimensions-base-emotional-s0"} <= set(started)
    assert not [f for f in started if f.startswith("eval-")]
    for arm in ("lexical", "emotional"):
        assert sum(1 for _ in (out / f"select-{arm}" / "sft.jsonl").open()) == 4
    cfg = yaml.safe_load((out / "dimensions-base-lexical-s0" / "config.yaml").read_text())
    assert cfg["suites"] == ["dimensions"] and cfg["limit"] == 2
    res = json.loads((out / "audit.json").read_text())
    (seven,) = named(res)
    assert seven["claim"] == "7" and seven["verdict"] in ("supported", "contradicted", "inconclusive")
    assert all(c["comparison"] and c["comparison"]["n"] == 2 for c in seven["checks"])
    assert res["arms"]["base-random"]["suite_evals"] == {"dimensions": [{"seed": 0, "run": "dimensions-base-random-s0"}]}
