"""`sharpset report` and dataset cards on a tiny pipeline folder (real eval of tiny random models)."""

from __future__ import annotations

import json
import re

import pytest
from report_helpers import ATTR_PAYLOAD, IMG, LABEL, SCRIPT, TITLE_PAYLOAD, shared_pipeline

from sharpset.cli import main
from sharpset.errors import UserError

SECTIONS = ("summary", "effects", "size", "invariance", "shape", "token-shift", "training", "answers", "pipeline")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model_dir):
    return shared_pipeline(tmp_path_factory, tiny_model_dir)


@pytest.fixture(scope="module")
def report(pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-out")
    assert main(["report", str(pipeline), "--out", str(out)]) == 0
    return out


def test_report_has_every_section_and_inline_plots(report):
    html = (report / "report.html").read_text()
    for s in SECTIONS:
        assert f'<section id="{s}">' in html, s
    # plots: effect vs size (two sizes of one target), invariance per family x2, shape bars, token
    # positions, two loss curves
    assert html.count("<svg") >= 8
    assert "<h1>tiny pipeline</h1>" in html  # the plan's title
    assert "Only one training-set size" not in html  # two sizes: a curve, not the note
    assert (report / "report.md").read_text().startswith("# tiny pipeline")


def test_effect_per_example_is_diff_over_training_rows(report):
    rows = json.loads((report / "effects.json").read_text())
    assert {r["n_examples"] for r in rows} == {8, 16}
    assert {r["train_run"] for r in rows} == {"train-n8", "train-n16"}
    assert {r["target"] for r in rows} == {"shape"}
    with_diff = [r for r in rows if r["diff"] is not None]
    assert with_diff
    for r in with_diff:
        assert r["per_example"] == pytest.approx(r["diff"] / r["n_examples"])
        if r["ci95"] is None:  # fewer than 2 independent units
            assert r["verdict"] == "n too small" and r["per_example_ci95"] is None
            continue
        assert r["per_example_ci95"] == pytest.approx([c / r["n_examples"] for c in r["ci95"]])
        lo, hi = r["ci95"]
        assert lo <= r["diff"] <= hi and r["p"] is not None and r["mde"] is not None
        if lo <= 0 <= hi or r["p"] >= 0.05:
            assert r["verdict"] == "null" and r["verdict_text"] == f"no effect larger than {max(abs(lo), abs(hi)):.3g}"
        else:  # past the interval and the test: the sign and the better direction name it
            want = {1: ("better", "worse"), -1: ("worse", "better"), 0: ("up", "down")}[r["direction"]]
            assert r["verdict"] == want[0 if r["diff"] > 0 else 1]


def test_paired_n_counts_independent_units(pipeline, report):
    """n of a paired comparison = the independent units (a row's ``unit``, else its item) among the
    items both models have, counted here from the samples; n_rows = those items."""
    rows = [r for r in json.loads((report / "effects.json").read_text())
            if r["suite"] == "invariance" and r["metric"] == "clean_correct"]
    assert rows
    samples = [json.loads(x) for x in (pipeline / "eval" / "samples" / "invariance.jsonl").read_text().splitlines()]
    for r in rows:
        base = {s["item"]: s for s in samples if s["model"] == r["base"]}
        mine = {s["item"] for s in samples if s["model"] == r["eval_label"]}
        shared = set(base) & mine
        assert r["n_rows"] == len(shared)
        assert r["n"] == len({str(base[i].get("unit", i)) for i in shared})
        if any("unit" in s for s in samples):  # a question's wrapper families are one unit
            assert r["n"] < r["n_rows"]


def test_data_text_is_escaped_everywhere(report):
    html = (report / "report.html").read_text()
    for payload in (SCRIPT, IMG, TITLE_PAYLOAD, ATTR_PAYLOAD):
        assert payload not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html.lower()  # the report carries no script of its own either
    assert not re.search(r"<[^>]*\son\w+\s*=", html)  # no event-handler attribute on any tag
    assert "<img" not in html.lower()
    md = (report / "report.md").read_text()
    assert SCRIPT not in md and IMG not in md and "&lt;script&gt;" in md
    assert LABEL not in md


def test_no_resource_is_loaded_from_anywhere(report):
    html = (report / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""\b(src|href|srcset|action|poster|data)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(|@import|<link|<iframe|<object|<embed", html, re.I)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_training_section_shows_curves_and_changed_answers(report):
    html = (report / "report.html").read_text()
    training = html.split('<section id="training">')[1].split("</section>")[0]
    assert training.count("<svg") == 2
    assert "answers differing from" in training


def test_pipeline_counts_show_drop_reasons_and_manifests(report):
    html = (report / "report.html").read_text()
    pipe = html.split('<section id="pipeline">')[1]
    assert "empty_response: 2" in pipe and "not_english: 1" in pipe
    assert "longer than max_length: 1" in pipe
    assert pipe.count("<details>") == 4  # synth, 2 train, eval


def test_runs_without_plan_are_matched_by_model_path(pipeline, tmp_path):
    from sharpset.report import build_report

    (pipeline / "plan.json").rename(tmp_path / "plan.json")
    try:
        build_report([pipeline], tmp_path / "out")
    finally:
        (tmp_path / "plan.json").rename(pipeline / "plan.json")
    rows = json.loads((tmp_path / "out" / "effects.json").read_text())
    assert {r["train_run"] for r in rows} == {"train-n8", "train-n16"}
    assert {r["target"] for r in rows} == {None}


def test_a_bad_plan_names_file_and_field(pipeline, tmp_path):
    from sharpset.report import build_report

    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"models": [{"train_run": "nowhere", "target": "x"}]}))
    with pytest.raises(UserError, match=r"plan.json: models\[0\].train_run"):
        build_report([pipeline], tmp_path / "o", plan=bad)
    bad.write_text(json.dumps({"models": [{"train_run": "train-n8", "n_examples": 0}]}))
    with pytest.raises(UserError, match=r"models\[0\].n_examples"):
        build_report([pipeline], tmp_path / "o", plan=bad)


def test_a_folder_without_comparisons_still_reports(tmp_path):
    from sharpset.report import build_report

    run = tmp_path / "synth"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"stage": "synth", "counts": {"read": 3, "written": 3}}))
    res = build_report([run], tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert res["tuned_models"] == 0 and "No comparison to report" in html


# -- dataset cards --------------------------------------------------------------------------------
def test_cards_carry_metadata_and_load_with_datasets(pipeline, tmp_path):
    import shutil

    import datasets
    from huggingface_hub import DatasetCard

    from sharpset.report.cards import card_all

    root = tmp_path / "pipe"
    shutil.copytree(pipeline, root)
    # a curate run downstream of synth: its rows were written by synth's model (lineage)
    cur = root / "curate"
    cur.mkdir()
    rows = [json.loads(line) for line in (root / "synth" / "synth.jsonl").read_text().splitlines()][:3]
    rows[0]["note"] = SCRIPT + " | a|b"
    (cur / "selected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (cur / "config.yaml").write_text("embedder: minilm-l6\nn: 3\n")
    (cur / "manifest.json").write_text(json.dumps({
        "stage": "curate", "status": "complete", "git": {"sha": "feedbeef", "dirty": False},
        "inputs": {str(root / "synth" / "synth.jsonl"): "0" * 64}, "models": {"embedder": {"name": "minilm-l6"}},
        "counts": {"read": 7, "written": 3, "dropped": 4, "rejected": 0},
        "outputs": {"selected.jsonl": "x", "curate_report.json": "y"}}))
    cards = {p.parent.name: p for p in card_all(root)}
    assert set(cards) == {"synth", "curate", "eval"}  # train runs hold no dataset output
    card = DatasetCard.load(cards["curate"])
    assert card.data.license == ["apache-2.0", "mit"]  # synth's SmolLM2 + curate's embedder
    assert card.data.size_categories == ["n<1K"] and card.data.task_categories == ["text-generation"]
    assert card.data.configs[0]["data_files"][0]["path"] == "selected.jsonl"
    text = cards["curate"].read_text()
    assert "feedbeef" in text and "| messages | list[message] |" in text
    assert SCRIPT not in text and "&lt;script&gt;" in text
    ds = datasets.load_dataset(str(cur))  # the README present, loading the folder still works
    assert ds["train"].num_rows == 3
    ev = DatasetCard.load(cards["eval"])
    # tiny local models (unknown) tuned on rows SmolLM2 wrote (synth, Apache-2.0): the lineage carries both
    assert ev.data.license == ["apache-2.0", "unknown"]
    assert "fine-tuned from" in cards["eval"].read_text()
    assert {c["config_name"] for c in ev.data.configs} >= {"samples_shape", "samples_invariance"}
    for c in ev.data.configs:
        d = datasets.load_dataset(str(root / "eval"), c["config_name"])
        assert d["train"].num_rows > 0
    assert datasets.load_dataset("json", data_files=str(root / "synth" / "synth.jsonl"))["train"].num_rows == 7


def test_card_for_one_data_file_and_bad_input(tmp_path):
    from sharpset.report.cards import size_category, write_card

    f = tmp_path / "d" / "rows.jsonl"
    f.parent.mkdir()
    f.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": null}\n')
    readme = write_card(f)
    assert readme == tmp_path / "d" / "README.md"
    assert "| b | string (nullable) |" in readme.read_text()
    with pytest.raises(UserError, match="no such"):
        write_card(tmp_path / "missing")
    assert [size_category(n) for n in (5, 1000, 25_000)] == ["n<1K", "1K<n<10K", "10K<n<100K"]


N_HAND = 12  # items of the hand-made eval: enough for an exact test to find 12 of 12 changed (p = 0.00049)
BASE_ANSWERS = [f"Short answer {k}." for k in range(N_HAND)]


def _handmade_eval(root, answers_tuned, *, ends: bool = True):
    """An eval folder written by hand: start m0 and tuned m1 on 12 shape items, the health rows of
    those answers, and a stored comparison for a suite with no samples on disk (format, as runs
    written before issue 21 carry: no p). Shape: conformance 0 -> 1 on every item. Health: truncated
    1 -> 0 and complete 0 -> 1 on every answer (``ends=False``: stays 1 / 0), loop 1 -> 0 on 2 of 12
    answers, 10 -> 4 words on every answer."""
    ev = root / "eval"
    (ev / "samples").mkdir(parents=True)
    rows, health = [], []
    for lab, ans, tuned in (("m0:start", BASE_ANSWERS, False), ("m1:tuned", answers_tuned, True)):
        for k, a in enumerate(ans):
            rows.append({"model": lab, "item": f"i{k}", "prompt": f"p{k}", "answer": a, "conformance": float(tuned)})
            end = tuned and ends
            health.append({"model": lab, "item": f"shape/i{k}", "suite": "shape", "prompt": f"p{k}", "answer": a,
                           "truncated": float(not end), "complete": float(end),
                           "loop": float(not tuned and k < 2), "words": 4 if tuned else 10})
    (ev / "samples" / "shape.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ev / "samples" / "health.jsonl").write_text("".join(json.dumps(r) + "\n" for r in health))
    comp = {"format": {"m1:tuned vs m0:start": {"prompt_strict": {"a": 0.3, "b": 0.5, "diff": 0.2, "ci95": [0.1, 0.3],
                                                                  "n": 40, "fixed": 9, "broken": 1, "same": 30}}}}
    suites = {"shape": {"metrics": ["conformance"], "lower_is_better": [], "models": {}},
              "format": {"metrics": ["prompt_strict"], "lower_is_better": [], "models": {}},
              "health": {"metrics": ["complete", "loop", "truncated", "words"], "lower_is_better": ["loop", "truncated"],
                         "models": {}}}
    (ev / "summary.json").write_text(json.dumps({"models": [{"index": 0, "label": "m0:start", "name": "start"},
                                                            {"index": 1, "label": "m1:tuned", "name": "tuned"}],
                                                 "suites": suites, "comparisons": comp, "seed": 0}))
    (root / "plan.json").write_text(json.dumps({"models": [{"eval_label": "m1:tuned", "target": "shape",
                                                            "n_examples": 4}]}))
    return root


def test_verdicts_follow_the_better_direction(tmp_path):
    from sharpset.report import build_report

    build_report([_handmade_eval(tmp_path / "p", [f"Other {k}." for k in range(N_HAND)])], tmp_path / "out")
    rows = {r["metric"]: r for r in json.loads((tmp_path / "out" / "effects.json").read_text())}
    # 12 of 12 items 0 -> 1: exact McNemar p = 2 * 0.5^12
    assert rows["conformance"]["verdict"] == "better" and rows["conformance"]["per_example"] == 0.25
    assert rows["conformance"]["p"] == pytest.approx(2 * 0.5 ** 12, rel=1e-3)
    assert rows["truncated"]["verdict"] == "better"  # went down on every answer, and lower is better
    assert rows["complete"]["verdict"] == "better" and rows["complete"]["headline"]  # health's headline
    # loop 1 -> 0 on 2 of 12: McNemar p = 0.5, so no verdict -- "no effect larger than" the interval's end
    assert rows["loop"]["verdict"] == "null" and rows["loop"]["p"] == pytest.approx(0.5)
    assert rows["loop"]["verdict_text"] == f"no effect larger than {max(map(abs, rows['loop']['ci95'])):.3g}"
    assert rows["words"]["verdict"] == "down"  # no better direction for length
    # a stored comparison written before p values (no samples for format): judged by its interval
    assert rows["prompt_strict"]["verdict"] == "better" and rows["prompt_strict"]["p"] is None
    assert all(r["health_gate"] is None for r in rows.values())
    # Holm over the 5 metrics with a p: conformance, complete, truncated and words stay below 0.05
    assert rows["conformance"]["p_holm"] == pytest.approx(5 * 2 * 0.5 ** 12, rel=1e-3)
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"{N_HAND} of {N_HAND} answers differ" in html and "training changed nothing" not in html
    assert f"{N_HAND} improved, 0 worsened" in html  # truncated: every answer went down = improved
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    assert "6 paired metrics compared" in summary and "4 improved" in summary
    assert "4 after Holm adjustment for 5 comparisons" in summary
    assert "no effect larger than" in summary
    md = (tmp_path / "out" / "report.md").read_text()
    assert "6 paired metrics compared: 4 improved (4 after Holm adjustment for 5 comparisons)" in md


def test_the_health_gate_names_the_eval_token_cap():
    """At a low cap (quickstart small: 80) an answer still under way and one that never ends read the
    same: the reason names the cap so the reader sees which it may be."""
    from sharpset.report.collect import health_gate

    rows = [{"suite": "health", "metric": "complete", "start": 0.0, "tuned": 0.4, "verdict": "better"},
            {"suite": "health", "metric": "truncated", "start": 1.0, "tuned": 0.97, "verdict": "better"}]
    gate = health_gate(rows, 80)
    assert "only 40% of its answers end on their own within 80 new tokens" in gate
    assert "97% of its answers run into the token limit of 80 new tokens" in gate
    assert "within" not in health_gate(rows) and health_gate(rows[:1] + [{**rows[1], "tuned": 0.2}], 80) is not None
    assert health_gate([{**rows[0], "tuned": 0.9}], 80) is None


def test_a_model_whose_answers_do_not_end_is_never_summarised_as_improved(tmp_path):
    """Issue 20: complete 0.00 -> 0.00 and truncated 1.00 -> 1.00 while loop and shape get better."""
    from sharpset.report import build_report

    build_report([_handmade_eval(tmp_path / "p", [f"Other {k}." for k in range(N_HAND)], ends=False)],
                 tmp_path / "out")
    rows = {r["metric"]: r for r in json.loads((tmp_path / "out" / "effects.json").read_text())}
    assert rows["conformance"]["verdict"] == "better"  # the metric still moved ...
    gate = rows["conformance"]["health_gate"]
    assert "0% of its answers end on their own" in gate and "100% of its answers run into the token limit" in gate
    html = (tmp_path / "out" / "report.html").read_text()
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    assert "Not summarised as improved: only 0% of its answers end on their own" in summary
    assert "not counted as improved" in summary
    assert summary.count(" improved</b>") == summary.count("not counted as improved</b>")  # no "N improved"
    assert ">improved<" not in summary  # no "improved" chip either
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**Not summarised as improved:** only 0% of its answers end on their own" in md
    assert ": improved," not in md


def test_a_model_that_learned_nothing_is_flagged(tmp_path):
    from sharpset.report import build_report

    build_report([_handmade_eval(tmp_path / "p", BASE_ANSWERS)], tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"All {N_HAND} of its answers are identical to the starting model" in html
    assert "identical to the start: learned nothing visible" in (tmp_path / "out" / "report.md").read_text()


def _handmade_sweep(root):
    """A sweep-like eval folder by hand: 2 targets x 2 sizes x 2 seeds, paired on shape and format."""
    ev = root / "eval"
    (ev / "samples").mkdir(parents=True)
    models = [{"index": 0, "label": "m0:start", "name": "start"}]
    comps: dict = {"shape": {}, "format": {}}
    plan, rows = [], []
    k = 0
    for target in ("format", "shape"):
        for n in (8, 16):
            for seed in (0, 1):
                k += 1
                lab = f"m{k}:{target}-{n}-s{seed}"
                models.append({"index": k, "label": lab, "name": lab.split(":")[1]})
                plan.append({"eval_label": lab, "target": target, "n_examples": n, "seed": seed})
                for suite, metric in (("shape", "conformance"), ("format", "prompt_strict")):
                    d = (0.02 * n if suite == target else -0.01) + 0.01 * seed
                    comps[suite][f"{lab} vs m0:start"] = {metric: {"a": 0.3, "b": 0.3 + d, "diff": d,
                                                                   "ci95": [d - 0.05, d + 0.05], "n": 20,
                                                                   "fixed": 3, "broken": 1, "same": 16}}
                rows.append({"model": lab, "item": "i0", "prompt": "p", "answer": f"answer of {lab}"})
    rows.append({"model": "m0:start", "item": "i0", "prompt": "p", "answer": "start answer"})
    (ev / "samples" / "shape.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suites = {"shape": {"metrics": ["conformance"], "lower_is_better": [], "models": {}},
              "format": {"metrics": ["prompt_strict"], "lower_is_better": [], "models": {}}}
    (ev / "summary.json").write_text(json.dumps({"models": models, "suites": suites, "comparisons": comps, "seed": 0}))
    (root / "plan.json").write_text(json.dumps({"title": "sweep", "models": plan}))
    return root


def test_a_sweep_gets_a_compact_summary_size_curves_and_cross_effects(tmp_path):
    from sharpset.report import build_report

    build_report([_handmade_sweep(tmp_path / "p")], tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    assert '<table class="compact">' in summary and summary.count("<tr>") == 9  # header + 8 models
    size = html.split('<section id="size">')[1].split("</section>")[0]
    assert size.count("<svg") == 2  # shape conformance and format prompt_strict vs size
    assert "Cross-effects" in size
    # format-trained at n=16: format diff = mean over seeds of (0.32, 0.33); shape diff = mean of (-0.01, 0.0)
    row = size.split("<td>format <span")[1].split("</tr>")[0]
    assert "+0.325" in row and "-0.005" in row


def test_models_evaluated_in_separate_runs_pair_like_one_run(pipeline, tiny_model_dir, tmp_path):
    """A sweep may evaluate the start once and each tuned model alone: the report pairs them across
    runs (same split, limit, seed, decoding, families...) and gets what one joint eval run computes."""
    import shutil

    from sharpset.report import build_report

    root = tmp_path / "sep"
    shutil.copytree(pipeline / "train-n8", root / "train-n8")
    common = ["--suites", "shape,invariance", "--invariance-families", "sycophancy", "--limit", "2",
              "--max-new-tokens", "8", "--progress", "false"]
    assert main(["eval", str(root / "train-n8"), *common, "--out", str(root / "eval-n8")]) == 0
    other = [c if c != "sycophancy" else "noise" for c in common]  # other items: must not be paired
    assert main(["eval", str(tiny_model_dir), *other, "--out", str(root / "eval-start-noise")]) == 0
    assert build_report([root], tmp_path / "none")["tuned_models"] == 0
    assert main(["eval", str(tiny_model_dir), *common, "--out", str(root / "eval-start")]) == 0
    res = build_report([root], tmp_path / "out")
    assert res["tuned_models"] == 1
    sep = {(r["suite"], r["metric"]): r for r in json.loads((tmp_path / "out" / "effects.json").read_text())}
    build_report([pipeline], tmp_path / "joint")
    joint = {(r["suite"], r["metric"]): r for r in json.loads((tmp_path / "joint" / "effects.json").read_text())
             if r["train_run"] == "train-n8"}
    same = {k for k in joint if k[0] in ("shape", "invariance")}
    assert same and same == {k for k in sep if k[0] in ("shape", "invariance")}
    for k in same:
        assert (sep[k]["diff"], sep[k]["ci95"], sep[k]["n"]) == (joint[k]["diff"], joint[k]["ci95"], joint[k]["n"]), k
    assert sep[("shape", "conformance")]["n_examples"] == 8
    assert "eval-n8 with eval-start" in (tmp_path / "out" / "report.html").read_text()


def test_identical_selections_are_a_warning_at_the_top(pipeline, tmp_path):
    """A plan whose curated and random selections are the same rows (issue 14's first real run) makes
    the comparison empty: the report says so in a warning box and in the markdown."""
    from sharpset.report import build_report

    plan = json.loads((pipeline / "plan.json").read_text())
    for m in plan["models"]:  # train_run is relative to the plan file, which moves here
        m["train_run"] = str(pipeline / m["train_run"])
    plan["selection_overlap"] = {"n_curated": 10, "n_random": 10, "shared": 10, "identical": True}
    pf = tmp_path / "plan.json"
    pf.write_text(json.dumps(plan))
    build_report([pipeline], tmp_path / "out", plan=pf)
    html = (tmp_path / "out" / "report.html").read_text()
    assert re.search(r'class="warnbox">The curated and random selections are the same 10 rows', html)
    assert "**Warning:** The curated and random selections are the same 10 rows" in (
        tmp_path / "out" / "report.md").read_text()
    plan["selection_overlap"]["identical"] = False
    pf.write_text(json.dumps(plan))
    build_report([pipeline], tmp_path / "out2", plan=pf)
    assert "selections are the same" not in (tmp_path / "out2" / "report.html").read_text()


# -- verified-constraint data ---------------------------------------------------------------------
BULLETS = "detectable_format:number_bullet_lists"  # the scripted answers have no bullets: never met


def test_a_constrain_run_gets_a_section_listing_every_type(tiny_model_dir, tmp_path, monkeypatch, report):
    from test_constrain import TYPES, _scripted_run

    from sharpset.report import build_report
    from sharpset.report.cards import write_card

    _, m, out, _ = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "constrain", types=[*TYPES, BULLETS],
                             max_new_tokens=64)
    assert BULLETS in m["types_zero_kept"] and m["kept"] > 0
    build_report([out], tmp_path / "rep")
    html = (tmp_path / "rep" / "report.html").read_text()
    assert '<a href="#constrain">' in html
    sec = html.split('<section id="constrain">')[1].split("</section>")[0]
    rows = sec.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == len(m["per_type"])  # every drawn type, the one with 0 kept rows included
    for t, s in m["per_type"].items():
        row = next(r for r in rows if r.startswith(f"<td>{t}</td>"))
        for key in ("pass@1", "pass@k", "kept"):  # rate [Wilson 95%] k/n
            w = s[key]
            assert f"{w['rate']:.2f} [{w['ci95'][0]:.2f}, {w['ci95'][1]:.2f}] {w['k']}/{w['n']}" in row
    bullets = next(r for r in rows if r.startswith(f"<td>{BULLETS}</td>"))
    assert "never met by any candidate" in bullets and "warncell" in bullets
    assert rows[0].startswith(f"<td>{BULLETS}</td>")  # hardest first
    assert f"Never met by any candidate (1 type; the bar was not lowered): {BULLETS}" in sec
    assert f"{m['attempted']} prompts attempted with 2 candidates each" in sec
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Verified-constraint data: constrain" in md and BULLETS.replace("_", "\\_") in md
    # its dataset gets a card, tagged synthetic: a model wrote the rows
    card = write_card(out).read_text()
    assert "- synthetic" in card and "Written by `sharpset constrain`" in card
    # a report without a constrain run has no such section
    assert 'id="constrain"' not in (report / "report.html").read_text()


# -- training sets: gates and pseudo-refusals (issue 20) ------------------------------------------
PSEUDO = ("I'm sorry for any misunderstanding, but as an AI designed to assist with baking, I don't have the "
          "capability to taste food. However, I can certainly help with that! Here is a simple recipe.")


def _sft(path, answers, parts=None):
    rows = [{"id": f"{path.parent.name}-{i}", "messages": [{"role": "user", "content": f"question {i}"},
                                                           {"role": "assistant", "content": a}],
             **({"part": parts[i]} if parts else {})} for i, a in enumerate(answers)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _selection_runs(root):
    """select-curated (gated, 4 pseudo-refusals dropped), select-random (no gates), select-targeted (a
    mix with parts), an older curate run whose pool had no pseudo_refusal column, and three train runs:
    on the targeted file, on the random run folder, and on a file of their own."""
    from report_helpers import _manifest

    gates = ["empty", "loop", "incomplete", "pseudo_refusal"]
    ok = "Here is a simple recipe: mix, knead, rest and bake for forty minutes."
    for name, cfg_gates, got, answers in (
            ("select-curated", gates, {"empty": 1, "loop": 2, "incomplete": 33, "pseudo_refusal": 4}, [ok] * 3),
            ("select-random", [], {}, [PSEUDO, ok, PSEUDO, ok]),
            ("select-old", gates, {"empty": 0, "loop": 0, "incomplete": 5,
                                   "pseudo_refusal": "skipped: no 'pseudo_refusal' column (tag with scores including lm)"},
             [PSEUDO, ok])):
        run = root / name
        _sft(run / "selected.jsonl", answers)
        (run / "curate_report.json").write_text(json.dumps({"gates": got, "sets": {}}))
        _manifest(run, "curate", {"read": 53, "written": len(answers), "dropped": 53 - len(answers), "rejected": 0},
                  {"report": "curate_report.json"}, {"gates": cfg_gates, "strategy": "random"},
                  ["selected.jsonl", "curate_report.json"])
    mix = root / "select-targeted"
    _sft(mix / "selected.jsonl", [PSEUDO, ok, ok, ok], ["constraints", "constraints", "magpie", "magpie"])
    _manifest(mix, "mix", {"read": 8, "written": 4, "dropped": 4, "rejected": 0}, {"parts": {}}, {"parts": []},
              ["selected.jsonl"])
    own = _sft(root / "data" / "own.jsonl", [PSEUDO, ok])
    for name, sft in (("train-base-targeted", mix / "selected.jsonl"), ("train-base-random", root / "select-random"),
                      ("train-own", own)):
        _manifest(root / name, "train", {"read": 4, "written": 4, "dropped": 0, "rejected": 0}, {},
                  {"model": "m", "sft": str(sft)}, ["losses.jsonl"])


def test_report_counts_gate_drops_and_pseudo_refusals_per_training_set(tmp_path):
    from sharpset.report import build_report
    from sharpset.report.collect import collect
    from sharpset.report.selections import gate_rows, set_rows

    _selection_runs(tmp_path / "p")
    col = collect([tmp_path / "p"])
    g = {r["run"]: r for r in gate_rows(col)}
    assert g["select-curated"]["gates"] == {"empty": 1, "loop": 2, "incomplete": 33, "pseudo_refusal": 4}
    assert g["select-random"]["gates"] == dict.fromkeys(["empty", "loop", "incomplete", "pseudo_refusal"], "off")
    assert g["select-old"]["gates"]["pseudo_refusal"].startswith("skipped")
    s = {r["set"]: r for r in set_rows(col)}
    assert set(s) == {"select-curated", "select-random", "select-old", "select-targeted", "train-own: own.jsonl"}
    assert s["select-random"]["pseudo_refusal"]["k"] == 2 and s["select-random"]["n"] == 4
    assert s["select-random"]["trained_by"] == ["train-base-random"]  # named by its run folder
    assert s["select-curated"]["pseudo_refusal"]["k"] == 0 and s["select-curated"]["trained_by"] == []
    assert s["select-targeted"]["trained_by"] == ["train-base-targeted"]
    assert s["select-targeted"]["by_part"] == {"constraints": [1, 2], "magpie": [0, 2]}
    assert s["train-own: own.jsonl"]["pseudo_refusal"]["k"] == 1
    build_report([tmp_path / "p"], tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<a href="#selections">' in html
    sec = html.split('<section id="selections">')[1].split("</section>")[0]
    head = sec.split("<thead>")[1].split("</thead>")[0]
    assert [h for h in ("empty", "loop", "incomplete", "pseudo_refusal") if f">{h}</th>" in head] == [
        "empty", "loop", "incomplete", "pseudo_refusal"]
    curated = next(r for r in sec.split("<tr>") if r.startswith("<td>select-curated</td>") and "33" in r)
    assert re.findall(r'<td class="num">(\d+)</td>', curated) == ["53", "1", "2", "33", "4", "3"]
    assert "skipped" in next(r for r in sec.split("<tr>") if r.startswith("<td>select-old</td>"))
    assert "2 of 4 (50%, 95%" in sec and "constraints 1/2, magpie 0/2" in sec
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Training sets: gates and pseudo-refusals" in md
    assert "| select-curated | 53 | 1 | 2 | 33 | 4 | 3 | - |" in md
    assert "| select-random | curate | train-base-random | 4 | 2 of 4 (50%, 95%" in md
    # a report with no curate run and no training set has no such section
    run = tmp_path / "synth"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"stage": "synth", "counts": {"read": 3, "written": 3}}))
    build_report([run], tmp_path / "out2")
    assert 'id="selections"' not in (tmp_path / "out2" / "report.html").read_text()


# -- a sweep's cells against its baselines (issue 25) ---------------------------------------------
SWEEP_HITS = {"baseline": (0, 0), "random": (3, 6), "quality-diversity": (5, 5), "constraints": (11, 7)}


def _sweep_folder(root):
    """A sweep folder as `sharpset sweep` leaves it, made without a model: the baseline's and each cell's
    per-item samples (12 items, shape conformance and format prompt_strict; SWEEP_HITS: items scoring 1
    per suite), then sweep.json and plan.json written by the sweep's own summarize and plan (selection
    less: the constraints cells are "constraints (less)")."""
    from sharpset.pipelines.sweep import SweepConfig, plan, summarize

    def samples(ev, hits):
        (ev / "samples").mkdir(parents=True)
        for suite, metric, k in (("shape", "conformance", hits[0]), ("format", "prompt_strict", hits[1])):
            (ev / "samples" / f"{suite}.jsonl").write_text("".join(
                json.dumps({"model": "m0:x", "item": f"i{i}", "prompt": f"p{i}", "answer": "a",
                            metric: float(i < k)}) + "\n" for i in range(12)))

    samples(root / "baseline", SWEEP_HITS["baseline"])
    (root / "baseline" / "summary.json").write_text(json.dumps({
        "models": [{"index": 0, "label": "m0:x", "name": "x"}], "seed": 0,
        "suites": {"shape": {"metrics": ["conformance"], "models": {}},
                   "format": {"metrics": ["prompt_strict"], "models": {}}}}))
    targets = ["constraints", "quality-diversity", "random"]
    done = [(t, 8, seed, f"{t}-n8-s{seed}", 8) for t in targets for seed in (0, 1)]
    for t, _, seed, name, _ in done:
        hits = SWEEP_HITS[t] if seed == 0 else (SWEEP_HITS[t][0], SWEEP_HITS[t][1] - 2)
        samples(root / "cells" / name / "eval", hits)
        (root / "cells" / name / "train").mkdir(parents=True)
        (root / "cells" / name / "train" / "manifest.json").write_text(json.dumps({"stage": "train"}))
    cand = {"constraints": f"40 verified-constraint rows {SCRIPT}; cells select from the pool by LESS toward 8 of them"}
    res = {"candidates": cand, **summarize(root, root / "baseline", done), "reused": {}}
    (root / "sweep.json").write_text(json.dumps(res))
    (root / "plan.json").write_text(json.dumps(plan(SweepConfig(targets=targets, selection="less"), done)))
    (root / "manifest.json").write_text(json.dumps({"stage": "sweep", "status": "complete"}))
    return res


def test_a_sweep_shows_each_target_against_random_and_quality_diversity(tmp_path):
    from sharpset.report import build_report

    res = _sweep_folder(tmp_path / "sw")
    assert res["vs_random"] and res["vs_quality_diversity"]
    build_report([tmp_path / "sw"], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    assert "## Against the baselines, same n and seed" in md and '<a href="#baselines">' in html
    sec = html.split('<section id="baselines">')[1].split("</section>")[0]
    md_sec = md.split("## Against the baselines, same n and seed")[1].split("\n## ")[0]
    # one table per target, the LESS cells named as the sweep names them; targeted first
    assert re.findall(r"<h3>(.*?)</h3>", sec) == ["constraints (less)", "quality-diversity", "random"]
    assert re.findall(r"^### (.*)$", md_sec, re.M) == ["constraints (less)", "quality-diversity", "random"]
    # every row of sweep.json, with its numbers as sweep.json has them
    rows = [(r, "random") for r in res["vs_random"]] + [(r, "quality-diversity") for r in res["vs_quality_diversity"]]
    for r, against in rows:
        lo, hi = r["ci95"]
        figures = [f"{r['before']:.3f}", f"{r['after']:.3f}", f"{r['diff']:+.3f} [{lo:.3f}, {hi:.3f}]",
                   f"n={r['n_items']}", f"p={r['p']:.2g} · detectable ≥{r['mde']:.2g}"]
        esc_md = str.maketrans({"_": "\\_", "[": "\\[", "]": "\\]"})  # report.md's escapes
        assert (f"| {r['n']} | {r['seed']} | {r['suite']} | {r['metric']} | {against} | " + " | ".join(figures)
                + " |").translate(esc_md) in md_sec, (r, against)
        assert (f"<tr><td>{r['n']}</td><td>{r['seed']}</td><td>{r['suite']}</td><td>{r['metric']}</td>"
                f"<td>{against}</td>" + "".join(f"<td class=num>{x}</td>" for x in figures) + "</tr>") in sec
    assert md_sec.count("\n| 8 | ") == len(rows) and sec.count("<tr><td>8</td>") == len(rows)
    # the per-target line counts the intervals on the better side of 0, the worse side and across it
    # (conformance and prompt_strict: higher is better, so better = above 0)
    assert {r["direction"] for key in ("vs_random", "vs_quality_diversity") for r in res[key]} == {1}
    for target, label in (("constraints", "constraints (less)"), ("random", "random")):
        parts = []
        for key, against in (("vs_random", "random"), ("vs_quality_diversity", "quality-diversity")):
            mine = [r for r in res[key] if r["target"] == target]
            if not mine:
                continue
            above = sum(r["ci95"][0] > 0 for r in mine)
            below = sum(r["ci95"][1] < 0 for r in mine)
            parts.append(f"against {against}, {above} of {len(mine)} rows better, {below} worse, "
                         f"{len(mine) - above - below} straddling 0")
        line = f"{label}: " + "; ".join(parts) + "."
        assert line in md_sec and line in sec
    assert "constraints (less): against random, 2 of 4 rows better" in md_sec  # shape 11 vs 3 of 12 items
    # data text escaped in both files
    assert SCRIPT not in html and SCRIPT not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in sec
    # a sweep.json without the baseline rows (an older sweep) adds no section
    del res["vs_random"], res["vs_quality_diversity"]
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(res))
    build_report([tmp_path / "sw"], tmp_path / "out2")
    assert 'id="baselines"' not in (tmp_path / "out2" / "report.html").read_text()
    assert "Against the baselines" not in (tmp_path / "out2" / "report.md").read_text()
    # a broken row names the file and the row, not a traceback
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps({**res, "vs_random": [{"target": "format"}]}))
    with pytest.raises(UserError, match=r"sweep\.json: vs_random\[0\]: expected a row with target, n, seed"):
        build_report([tmp_path / "sw"], tmp_path / "out3")


def test_a_row_counts_as_better_on_its_metrics_better_side_of_zero():
    """Lower is better (health echo): an interval below 0 is better; no direction (a length): up/down,
    counted apart; a sweep.json from before rows carried a direction reads as no direction."""
    from sharpset.report.baselines import side, summary

    rows = [{"ci95": [-0.2, -0.05], "direction": -1}, {"ci95": [0.05, 0.2], "direction": -1},
            {"ci95": [0.05, 0.2], "direction": 1}, {"ci95": [-0.1, 0.1], "direction": 1},
            {"ci95": [2.0, 9.0], "direction": 0}, {"ci95": [-9.0, -2.0]}, {"ci95": None, "direction": 1}]
    assert [side(r) for r in rows] == ["better", "worse", "better", "straddling", "up", "down", "no interval"]
    counts = {s: [side(r) for r in rows].count(s) for s in ("better", "worse", "straddling", "up", "down",
                                                              "no interval")}
    t = {"label": "constraints (less)", "counts": {"random": {"rows": len(rows), **counts}}}
    assert summary(t) == ("constraints (less): against random, 2 of 7 rows better, 1 worse, 1 straddling 0, "
                          "2 with no better direction moved (1 up, 1 down), 1 without an interval (n too small).")


def test_a_report_over_runs_that_are_no_sweep_has_no_baseline_section(tmp_path):
    from sharpset.report import build_report

    for name, folder in (("eval", _handmade_eval(tmp_path / "p", BASE_ANSWERS)),
                         ("sweep-like eval", _handmade_sweep(tmp_path / "q"))):
        build_report([folder], tmp_path / f"out-{folder.name}")
        html = (tmp_path / f"out-{folder.name}" / "report.html").read_text()
        assert 'id="baselines"' not in html and "Against the baselines" not in html, name
        assert "Against the baselines" not in (tmp_path / f"out-{folder.name}" / "report.md").read_text(), name
