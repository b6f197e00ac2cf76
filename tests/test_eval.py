"""`sharpset eval` on tiny in-process models: outputs, pairing, determinism, resume, token shift."""

from __future__ import annotations

import json

import pytest
import torch

from sharpset.cli import main
from sharpset.run import RunDir

SUITES = "shape,knowledge,invariance,speech_acts,dimensions,token_shift"
# generate every answer: not copied from the earlier run beside it (evaluate/donors.py), which would
# make a determinism or resume test compare that run with itself
FRESH = ("--reuse-generations", "false")


def _eval(out, *models, extra=()):
    argv = ["eval", *map(str, models), "--suites", SUITES, "--limit", "2", "--max-new-tokens", "8",
            "--progress", "false", "--out", str(out), *extra]
    return main(argv)


def _samples(out):
    rows = {}
    for f in sorted((out / "samples").glob("*.jsonl")):
        rows[f.stem] = [json.loads(line) for line in f.read_text().splitlines()]
    return rows


def test_eval_writes_samples_summary_and_pairs_models(tiny_model_dir, tmp_path):
    out = tmp_path / "ev"
    assert _eval(out, tiny_model_dir, tiny_model_dir) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [m["label"] for m in summary["models"]] == [f"m0:{tiny_model_dir.name}", f"m1:{tiny_model_dir.name}"]
    assert set(summary["suites"]) == set(SUITES.split(",")) | {"health"}
    for sname, entry in summary["suites"].items():
        for lab, res in entry["models"].items():
            for m in entry["metrics"]:
                assert {"mean", "ci95", "n"} <= set(res[m]), (sname, lab, m)
    # the same model twice: every paired difference is exactly zero, nothing fixed or broken
    comp = summary["comparisons"]
    for sname, pairs in comp.items():
        for metrics in pairs.values():
            for m, c in metrics.items():
                if c["n"]:
                    assert c["diff"] == 0 and c["fixed"] == 0 and c["broken"] == 0, (sname, m)
    # knowledge always carries its closed-label baselines
    kb = summary["suites"]["knowledge"]["models"][f"m0:{tiny_model_dir.name}"]["extra"]["mc_baselines"]
    assert 0 < kb["random_guess"] < 1 and kb["n"] == 2
    # per-sample rows load with datasets
    import datasets

    ds = datasets.load_dataset("json", data_files=str(out / "samples" / "shape.jsonl"), split="train")
    assert ds.num_rows == 4 and {"model", "item", "prompt", "answer", "conformance"} <= set(ds.column_names)


def test_same_model_twice_gives_identical_verdicts(tiny_model_dir, tmp_path):
    assert _eval(tmp_path / "a", tiny_model_dir) == 0
    assert _eval(tmp_path / "b", tiny_model_dir, extra=FRESH) == 0
    assert _samples(tmp_path / "a") == _samples(tmp_path / "b")


def test_killed_eval_resumes_to_the_same_output(tiny_model_dir, tmp_path, monkeypatch):
    assert _eval(tmp_path / "full", tiny_model_dir) == 0
    real = RunDir.log_sample
    calls = {"n": 0}

    def dying(self, key, payload):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real(self, key, payload)

    monkeypatch.setattr(RunDir, "log_sample", dying)
    assert _eval(tmp_path / "killed", tiny_model_dir, extra=FRESH) == 130
    monkeypatch.setattr(RunDir, "log_sample", real)
    logged = (tmp_path / "killed" / RunDir.SAMPLES).read_text().splitlines()
    assert len(logged) == 8  # what finished before the kill is kept
    assert _eval(tmp_path / "killed", tiny_model_dir, extra=FRESH) == 0
    assert _samples(tmp_path / "killed") == _samples(tmp_path / "full")


def test_token_shift_of_a_model_against_itself_is_all_unshifted(tiny_model_dir, tmp_path):
    out = tmp_path / "ts"
    assert main(["eval", str(tiny_model_dir), "--base", str(tiny_model_dir), "--suites", "token_shift",
                 "--limit", "3", "--max-new-tokens", "10", "--progress", "false", "--out", str(out)]) == 0
    rows = _samples(out)["token_shift"]
    assert rows and all(r["n_tokens"] > 0 and r["unshifted"] == 1.0 and set(r["classes"]) == {"unshifted"}
                        for r in rows)


def test_answer_token_ranks_match_a_direct_computation(tiny_model_dir):
    from sharpset.engine.scoring import answer_token_ranks
    from sharpset.models import load_model

    model, tok = load_model(str(tiny_model_dir))
    # labels at the end, labels mid-sequence with unlabelled tokens after them (the logits are kept from
    # the batch's first labelled column on), and a row with none
    seqs = [[5, 9, 14, 3, 7, 30], [8, 2, 11], [4, 6, 12, 13, 15, 16, 17, 18], [3, 4, 5]]
    labs = [[-100, -100, 14, 3, 7, 30], [-100, 2, 11], [-100, -100, 12, 13, -100, -100, -100, -100], [-100] * 3]
    got = answer_token_ranks(model, tok, seqs, labs, batch_size=4)
    assert got[3] is None and answer_token_ranks(model, tok, seqs[3:], labs[3:]) == [None]
    for s, lab, g in zip(seqs[:3], labs[:3], got[:3]):
        with torch.no_grad():
            logits = model(torch.tensor([s])).logits[0]
        want = [int((logits[t - 1] > logits[t - 1, s[t]]).sum()) + 1 for t in range(1, len(s)) if lab[t] != -100]
        assert g == want


def test_a_run_folder_model_resolves_to_its_merged_model(tmp_path):
    from sharpset.errors import UserError
    from sharpset.evaluate.stage import resolve_model

    run = tmp_path / "run"
    (run / "merged").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    with pytest.raises(UserError, match="without a merged"):
        resolve_model(str(run))
    (run / "merged" / "config.json").write_text("{}")
    assert resolve_model(str(run)) == str(run / "merged")
    assert resolve_model("smollm2-135m-instruct") == "smollm2-135m-instruct"


def test_bad_eval_config_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--suites", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "models" in err or "suites" in err


def test_echo_flags_answers_that_begin_by_repeating_the_request():
    from sharpset.evaluate.suites.health import echoes_prompt

    q = "Write a short email to my landlord asking him to fix the heater."
    assert echoes_prompt(q, "Write a short email to my landlord asking him to fix the heater. Dear Sir,")
    assert echoes_prompt(q, "write a SHORT email to my landlord, asking him... and then")
    assert not echoes_prompt(q, "Dear landlord, the heater in the living room is broken. Could you fix it?")
    assert not echoes_prompt("Hi", "Hi")  # too short to call an echo
    assert echoes_prompt("Why is the sky blue?", "Why is the sky blue? Because of Rayleigh scattering.")


def test_echo_flags_a_garbled_repetition_of_a_long_request():
    """Answers of a 12-layer derivative of gemma3-270m that decodes noise (issue 22): the request repeated with
    words merged, recased or swapped escaped the verbatim rule; plain answers that restate a question do not echo."""
    from sharpset.evaluate.suites.health import echoes_prompt

    q = 'Write a description of a yoga mat in lowercase letters only, in English. The word "grip" should appear at least 2 times.'
    assert echoes_prompt(q, 'Write a descripción of a yoga mat in lowercase letters ONLY, in English. The word "grip" '
                            'shouldappear atthe least 2 veces. Políticaisyonorme')
    m = "Write two different descriptions of a ceramic coffee mug, separated by six asterisks (******)."
    assert echoes_prompt(m, "1. Write two different descriptions of a ceramic coffeemug,separated by six asterisks "
                            "(******.). trastorno musculaire seleccione modelos")
    assert not echoes_prompt(m, "A sturdy white mug with a glossy glaze that keeps coffee warm.\n******\nA speckled "
                                "stoneware mug, hand-thrown, with a wide handle.")
    # a plain answer that restates a short question is not an echo (the garbled rule needs 64 characters)
    assert not echoes_prompt("What is the hardest natural material?", "The hardest natural material is diamond, a "
                             "form of carbon whose atoms are bonded in a rigid lattice.")
    # a long request whose topic the answer names (under 80% of its first 64 characters copied) is not an echo
    assert not echoes_prompt("Describe a waterproof backpack for daily cycling commutes.  Each line must be indented "
                             "further than the line above it.", "A waterproof backpack keeps your laptop dry on wet "
                             "mornings.\n  It rolls shut at the top.")


def test_comparisons_count_questions_not_rows():
    """Constructed rows: 3 questions x 11 wrapper families; the tuned model changes one question's plain
    answer, which moves all 11 of its rows. Paired by item and resampled by question that is 1 changed
    unit of 3 (sign-flip p = 1, no verdict), where counting rows would call it a clear improvement."""
    from sharpset.evaluate.stage import compare, format_table
    from sharpset.evaluate.suite import Suite
    from sharpset.stats import paired_diff_ci, verdict

    suite = Suite("invariance", 1, "constructed", metrics=("clean_correct",))
    base = [{"item": f"q{q}/f{f}", "unit": f"q{q}", "clean_correct": 0.0} for q in range(3) for f in range(11)]
    tuned = [{**r, "clean_correct": float(r["unit"] == "q0")} for r in base]
    tuned.append({"item": "q9/f0", "unit": "q9", "clean_correct": 1.0})  # only the tuned model has it: unpaired
    comp = compare([{"invariance": base}, {"invariance": tuned}], {"invariance": suite}, ["m0", "m1"], seed=0)
    c = comp["invariance"]["m1 vs m0"]["clean_correct"]
    assert (c["n"], c["n_rows"], c["fixed"], c["broken"], c["same"]) == (3, 33, 11, 0, 22)
    assert c["diff"] == pytest.approx(11 / 33, abs=1e-4)
    # unit totals (11, 0, 0): the two sign patterns of the one non-zero total are both as extreme -> p = 1
    assert c["p"] == 1.0 and verdict(c, 1) == "null"
    rows = paired_diff_ci([r["clean_correct"] for r in base], [r["clean_correct"] for r in tuned[:33]], seed=0)
    assert rows["n"] == 33 and verdict(rows, 1) == "better"  # the row count's false verdict (issue 21)
    summary = {"models": [{"label": "m0"}, {"label": "m1"}], "comparisons": comp,
               "suites": {"invariance": {"metrics": ["clean_correct"], "lower_is_better": [], "models": {
                   "m0": {"clean_correct": {"mean": 0.0, "ci95": [0.0, 0.0], "n": 3, "n_rows": 33}},
                   "m1": {"clean_correct": {"mean": 1.0, "ci95": None, "n": 1, "n_rows": 1, "note": "n too small"}}}}}}
    table = format_table(summary)
    assert "n=3/33 rows p=1" in table and "no effect larger than" in table and "(11 better, 0 worse)" in table
    assert "1.000 (n too small) n=1" in table


def test_suite_limits_override_the_limit_for_the_suites_named(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["eval", str(tiny_model_dir), "--suites", "shape,knowledge", "--limit", "2", "--max-new-tokens", "4",
            "--suite-limits", "{shape: 3}", "--progress", "false", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    label = summary["models"][0]["label"]
    assert summary["suites"]["shape"]["models"][label]["n_items"] == 3  # named: its own count
    assert summary["suites"]["knowledge"]["models"][label]["n_items"] == 4  # not named: --limit 2 (mc + qa)
    assert summary["limit"] == 2 and summary["suite_limits"] == {"shape": 3}
    capsys.readouterr()
    for bad, words in (("{shapes: 3}", "unknown suite 'shapes'"),
                       ("{knowledge: -1}", "knowledge: must be an integer >= 0")):
        assert main(["eval", str(tiny_model_dir), "--suite-limits", bad, "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert "suite_limits" in err and words in err, err
        assert not (tmp_path / "b").exists()
