"""The quickstart pipeline end to end on tiny in-process models (the real run is the README's line 1)."""

from __future__ import annotations

import json

from sharpset.cli import main
from sharpset.dataio import write_records
from sharpset.records import with_id

TOPICS = ["tea", "bread", "rain", "maps", "chess", "bees", "glass", "clocks", "rivers", "salt", "ink", "kites"]


def _pool(path):
    rows = [{"messages": [{"role": "user", "content": f"Tell me one fact about {t}."},
                          {"role": "assistant", "content": f"Here is a fact about {t}: people have used {t} for "
                                                           f"a very long time, in many places."}]} for t in TOPICS]
    write_records([with_id(r) for r in rows], path)
    return path


def test_quickstart_runs_end_to_end_and_is_a_cache_hit_after(tiny_model_dir, tmp_path, capsys):
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "qs"
    overrides = ("{select-curated: {min_quality: null, gates: []}, select-random: {gates: []}, eval-base: {suites: [shape, knowledge, token_shift]}, "
                 "eval-aligned: {suites: [invariance]}, wrap: {families: [sycophancy], heldout_families: "
                 "[sycophancy/authority]}}")
    argv = ["run", "quickstart", "--out", str(out), "--set", f"aligned_model={tiny_model_dir}",
            "--set", f"base_model={tiny_model_dir}", "--set", f"pool={pool}", "--set", "n_select=4",
            "--set", "train_steps=2", "--set", "eval_limit=2", "--set", "eval_max_new_tokens=6",
            "--set", "wrap_questions=3", "--set", f"overrides={overrides}", "--set", "report=false"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for step in ("tag", "dedup", "select-curated", "select-random", "train-base-curated", "train-base-random",
                 "wrap", "eval-base"):
        man = json.loads((out / step / "manifest.json").read_text())
        assert man["status"] == "complete", step
        assert f"== {step}" in printed
    plan = json.loads((out / "plan.json").read_text())
    assert [m["train_run"] for m in plan["models"]] == ["train-base-curated", "train-base-random"]
    # a random tiny model answers no question right, so wrap keeps no pair: BCT is skipped, and says why
    assert "no training pair" in plan["skipped"]["train-aligned-bct"]
    assert not (out / "train-aligned-bct").exists()
    summary = json.loads((out / "eval-base" / "summary.json").read_text())
    assert len(summary["models"]) == 3 and "m1:train-base-curated vs m0:" in next(iter(summary["comparisons"]["shape"]))
    # selections: the same size, different rows
    sel = {k: [json.loads(line)["id"] for line in (out / f"select-{k}" / "selected.jsonl").read_text().splitlines()]
           for k in ("curated", "random")}
    assert len(sel["curated"]) == len(sel["random"]) == 4
    ov = plan["selection_overlap"]
    assert ov == {"n_curated": 4, "n_random": 4, "shared": len(set(sel["curated"]) & set(sel["random"])),
                  "identical": set(sel["curated"]) == set(sel["random"])}
    assert f"selections: {ov['shared']} of 4 curated rows are also in the random baseline" in printed
    # a rerun is a cache hit at the top
    assert main(argv) == 0
    assert "up to date (cached)" in capsys.readouterr().out
