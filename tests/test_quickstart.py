"""The quickstart pipeline end to end on tiny in-process models (the real run is the README's line 1)."""

from __future__ import annotations

import json
from pathlib import Path

from sharpset.cli import main
from sharpset.dataio import read_records, write_records
from sharpset.records import with_id

TOPICS = ["tea", "bread", "rain", "maps", "chess", "bees", "glass", "clocks", "rivers", "salt", "ink", "kites"]


def _pool(path):
    rows = [{"messages": [{"role": "user", "content": f"Tell me one fact about {t}."},
                          {"role": "assistant", "content": f"Here is a fact about {t}: people have used {t} for "
                                                           f"a very long time, in many places."}]} for t in TOPICS]
    write_records([with_id(r) for r in rows], path)
    return path


def _argv(tiny_model_dir, pool, out, overrides: str, *more: str) -> list[str]:
    return ["run", "quickstart", "--out", str(out), "--set", f"aligned_model={tiny_model_dir}",
            "--set", f"base_model={tiny_model_dir}", "--set", f"pool={pool}", "--set", "n_select=4",
            "--set", "train_steps=2", "--set", "eval_limit=2", "--set", "eval_max_new_tokens=6",
            "--set", "wrap_questions=3", "--set", f"overrides={overrides}", "--set", "report=false", *more]


def test_quickstart_runs_end_to_end_and_is_a_cache_hit_after(tiny_model_dir, tmp_path, capsys):
    """constraint_share 0: the arm is the curated Magpie set alone, as before VERSION 4 (no constrain step)."""
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "qs"
    overrides = ("{select-curated: {min_quality: null, gates: []}, select-random: {gates: []}, eval-base: {suites: [shape, knowledge, token_shift]}, "
                 "eval-aligned: {suites: [invariance]}, wrap: {families: [sycophancy], heldout_families: "
                 "[sycophancy/authority]}}")
    argv = _argv(tiny_model_dir, pool, out, overrides, "--set", "constraint_share=0")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for step in ("tag", "dedup", "select-curated", "select-random", "train-base-curated", "train-base-random",
                 "wrap", "eval-base"):
        man = json.loads((out / step / "manifest.json").read_text())
        assert man["status"] == "complete", step
        assert f"== {step}" in printed
    assert not (out / "constrain").exists() and not (out / "select-targeted").exists()
    plan = json.loads((out / "plan.json").read_text())
    assert [m["train_run"] for m in plan["models"]] == ["train-base-curated", "train-base-random"]
    assert "constrain" not in plan and plan["targeted"]["constraint_rows"] == 0
    assert plan["targeted"]["magpie_rows"] == 4 and plan["targeted"]["set"] == "select-curated/selected.jsonl"
    # the previous arm: all n_select rows from curate's quality-diversity selection, trained as they are
    train_cfg = (out / "train-base-curated" / "config.yaml").read_text()
    assert f"sft: {out / 'select-curated' / 'selected.jsonl'}" in train_cfg
    assert "n: 4" in (out / "select-curated" / "config.yaml").read_text()
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


def _scripted_constrain(monkeypatch):
    """`constrain` (only it) answers through test_constrain's scripted engine, so some candidates pass
    every check; the other stages keep the tiny model's engine."""
    from test_constrain import ScriptedEngine

    from sharpset.stage import Subject
    from sharpset.stages import constrain

    real = constrain.run

    def scripted(cfg, run, log=print):
        with monkeypatch.context() as m:
            m.setattr(Subject, "engine", lambda self, batch_size=16, **kw: ScriptedEngine(self.tok))
            return real(cfg, run, log)

    monkeypatch.setattr(constrain, "run", scripted)


def test_the_targeted_arm_mixes_constraint_rows_at_the_stated_share(tiny_model_dir, tmp_path, capsys, monkeypatch):
    _scripted_constrain(monkeypatch)
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "qs"
    argv = _argv(tiny_model_dir, pool, out, _targeted_overrides(), "--set", "constraint_share=0.5",
                 "--set", "constrain_prompts=6", "--set", "constrain_k=2")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for step in ("constrain", "select-curated", "select-targeted", "train-base-targeted", "train-base-random"):
        assert json.loads((out / step / "manifest.json").read_text())["status"] == "complete", step
        assert f"== {step}" in printed
    con = json.loads((out / "constrain" / "manifest.json").read_text())
    assert con["metrics"]["attempted"] == 6 and con["metrics"]["kept"] >= 2  # 6 prompts x k=2
    kept = {r["id"] for r in read_records(out / "constrain" / "constrain.jsonl", "sft").rows}
    magpie = {r["id"] for r in read_records(out / "select-curated" / "selected.jsonl", "sft").rows}
    assert len(magpie) == 2  # n_select - the constraint rows
    rows = read_records(out / "select-targeted" / "selected.jsonl", "sft").rows
    parts = {p: [r for r in rows if r["part"] == p] for p in ("constraints", "magpie")}
    assert len(rows) == 4 and len(parts["constraints"]) == len(parts["magpie"]) == 2  # share 0.5 of 4
    assert {r["id"] for r in parts["constraints"]} <= kept and {r["id"] for r in parts["magpie"]} == magpie
    assert all(r["instruction_id_list"] and r["kwargs"] for r in parts["constraints"])
    # the targeted arm trains on the mix; the random arm on n_select Magpie rows; same step budget
    tr = {a: json.loads((out / f"train-base-{a}" / "manifest.json").read_text()) for a in ("targeted", "random")}
    assert str(out / "select-targeted" / "selected.jsonl") in tr["targeted"]["inputs"]
    assert tr["targeted"]["metrics"]["optimizer_steps"] == tr["random"]["metrics"]["optimizer_steps"] == 2
    assert len(read_records(out / "select-random" / "selected.jsonl", "sft").rows) == 4
    plan = json.loads((out / "plan.json").read_text())
    assert [m["train_run"] for m in plan["models"]] == ["train-base-targeted", "train-base-random"]
    assert plan["models"][0]["label"] == "base + targeted" and "2 verified-constraint rows" in plan["models"][0]["selection"]
    assert plan["targeted"] == {"constraint_share": 0.5, "rows": 4, "constraint_rows": 2, "magpie_rows": 2,
                                "share_realised": 0.5, "set": "select-targeted/selected.jsonl",
                                "magpie_run": "select-curated", "constrain_run": "constrain"}
    assert plan["constrain"]["run"] == "constrain" and plan["constrain"]["prompts"] == 6 and plan["constrain"]["k"] == 2
    assert plan["constrain"]["kept"] == con["metrics"]["kept"]
    # the default selection: quality-diversity, no LESS anywhere (issue 25 added selection: less)
    assert "strategy: quality-diversity" in (out / "select-curated" / "config.yaml").read_text()
    assert "target: ''" in (out / "select-curated" / "config.yaml").read_text()
    assert not (out / "less-datastores").exists() and "LESS" not in json.dumps(plan)
    summary = json.loads((out / "eval-base" / "summary.json").read_text())
    assert "m1:train-base-targeted vs m0:" in next(iter(summary["comparisons"]["shape"]))


def test_the_size_dial_sizes_the_constrain_step_to_the_share():
    from sharpset.pipelines.quickstart import QuickstartConfig, draw_part

    z = QuickstartConfig().resolved()
    assert (z["n_constraint"], z["constrain_prompts"], z["constrain_k"]) == (8, 32, 8)  # small: half of 16, 1 in 4
    z = QuickstartConfig(constraint_share=0.25, constrain_k=6).resolved()
    assert (z["n_constraint"], z["constrain_prompts"], z["constrain_k"]) == (4, 16, 6)
    z = QuickstartConfig(constraint_share=0).resolved()
    assert z["n_constraint"] == z["constrain_prompts"] == 0  # no constrain step
    assert QuickstartConfig(constrain_prompts=5).resolved()["constrain_prompts"] == 5
    assert [p for p, _ in QuickstartConfig(constraint_share=1.5).check()] == ["constraint_share"]
    # the constraint types: the writer's reachable train types by default, any ids or groups, nothing unknown
    from sharpset.constraints import TRAIN_TYPES, resolve_types
    from sharpset.pipelines.quickstart import WRITER_TYPES

    assert QuickstartConfig().constrain_types == WRITER_TYPES and set(WRITER_TYPES) < set(TRAIN_TYPES)
    assert len(resolve_types(WRITER_TYPES)) == 15
    assert QuickstartConfig(constrain_types=["train"]).check() == []
    for bad in (["keywords:nope"], [], ["count:word_count_range"]):  # unknown, none, a held-out (IFBench) type
        assert [p for p, _ in QuickstartConfig(constrain_types=bad).check()] == ["constrain_types"], bad
    rows = [{"id": f"r{i}"} for i in range(10)]
    assert draw_part(rows, 3, 0, "c") == draw_part(rows[::-1], 3, 0, "c") and len(draw_part(rows, 3, 0, "c")) == 3
    assert draw_part(rows, 0, 0, "c") == draw_part(rows, 99, 0, "c") == rows


def _targeted_overrides(select: str = "{min_quality: null, gates: []}") -> str:
    from test_constrain import TYPES

    return (f"{{select-curated: {select}, select-random: {{gates: []}}, "
            f"constrain: {{types: [{', '.join(TYPES)}], count_weights: [0, 0, 1], tie_break: shortest}}, "
            "eval-base: {suites: [shape]}, wrap: {families: [sycophancy], heldout_families: "
            "[sycophancy/authority]}}")


def test_selection_less_picks_the_magpie_part_toward_the_constraint_rows(tiny_model_dir, tmp_path, capsys,
                                                                         monkeypatch):
    """selection less (issue 25): the targeted arm's Magpie part is curate --strategy less over the
    deduplicated pool, toward constrain.jsonl, selector = the aligned model, datastore in the run
    folder, n = n_select - the constraint rows; less_options reach curate; plan.json says so."""
    _scripted_constrain(monkeypatch)
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "qs"
    argv = _argv(tiny_model_dir, pool, out, _targeted_overrides("{gates: []}"), "--set", "constraint_share=0.5",
                 "--set", "constrain_prompts=6", "--set", "constrain_k=2", "--set", "selection=less",
                 "--set", "less_options={warmup_epochs: 1, proj_dim: 64, chunk_rows: 8, warmup_min_rows: 4}")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    kept = read_records(out / "constrain" / "constrain.jsonl", "sft").rows
    assert len(kept) >= 2 and f"the Magpie part by LESS toward the {len(kept)} rows constrain kept" in printed
    rep = json.loads((out / "select-curated" / "curate_report.json").read_text())
    info = rep["strategy_info"]
    assert rep["strategy"] == "less" and rep["n_requested"] == rep["n_selected"] == 2  # 4 - 2 constraint rows
    assert info["target"] == str(out / "constrain" / "constrain.jsonl") and info["target_rows"] == len(kept)
    assert len(info["checkpoints"]) == 1  # less_options reached curate: one warm-up epoch
    assert rep["input"] == str(out / "dedup") and "selector: " + str(tiny_model_dir) in (
        out / "select-curated" / "config.yaml").read_text()
    assert Path(info["datastore"]).parent == out / "less-datastores"
    magpie = {r["id"] for r in read_records(out / "select-curated" / "selected.jsonl", "sft").rows}
    rows = read_records(out / "select-targeted" / "selected.jsonl", "sft").rows
    assert {r["id"] for r in rows if r["part"] == "magpie"} == magpie and len(rows) == 4
    plan = json.loads((out / "plan.json").read_text())
    assert plan["targeted"]["magpie_selection"] == "less" and plan["targeted"]["less_target_rows"] == len(kept)
    assert plan["targeted"]["less_target"] == "constrain/constrain.jsonl" and plan["targeted"]["magpie_rows"] == 2
    assert f"2 gated Magpie rows (LESS toward {len(kept)} constraint rows)" in plan["models"][0]["selection"]


def test_selection_less_refuses_a_run_without_constraint_rows(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """constraint_share 0 is refused from the config (exit 2, naming the field, nothing run); an
    unknown selection or LESS field too; constrain keeping no row stops with the constrain folder named."""
    from sharpset.pipelines.quickstart import QuickstartConfig
    from sharpset.stages import constrain

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "qs"
    base = _argv(tiny_model_dir, pool, out, "{}")
    for more, field, why in ((["selection=less", "constraint_share=0"], "constraint_share", "selection less"),
                             (["selection=deita"], "selection", "quality-diversity, less"),
                             (["selection=less", "less_options={warmup_epoch: 1}"], "less_options", "warmup_epoch")):
        assert main([*base, *(a for m in more for a in ("--set", m))]) == 2, more
        err = capsys.readouterr().err
        assert field in err and why in err, err
        assert not out.exists()
    assert [p for p, _ in QuickstartConfig(selection="less", n_select=4, constraint_share=0.1).check()] == \
        ["constraint_share"]  # a share that rounds to no row of n_select
    assert QuickstartConfig(selection="less").check() == []

    def kept_none(cfg, run, log=print):  # constrain as it ends when no candidate passes every check
        from sharpset.dataio import write_records

        write_records([], run.path / "constrain.jsonl")
        run.finish(counts={"read": 0, "written": 0, "dropped": 0, "rejected": 0}, outputs=["constrain.jsonl"],
                   metrics={"attempted": 2, "kept": 0})

    monkeypatch.setattr(constrain, "run", kept_none)
    assert main([*base, "--set", "selection=less", "--set", "constrain_prompts=2"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'constrain'} kept none" in err and "selection less" in err
    assert not (out / "select-curated").exists() and not (out / "less-datastores").exists()
