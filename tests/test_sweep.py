"""`sharpset sweep` on a tiny model: cells, the step budget, resumable under a cell budget, paired effects."""

from __future__ import annotations

import json

from sharpset.cli import main
from sharpset.pipelines.sweep import SweepConfig, cells, draw, knowledge_rows
from test_quickstart import _pool


def test_cells_order_and_draws_are_deterministic():
    cfg = SweepConfig(targets=["format", "knowledge"], sizes=[16, 4], seeds=2)
    cs = cells(cfg)
    assert len(cs) == 8 and [c[1] for c in cs[:4]] == [4, 4, 4, 4]  # small sizes first
    rows = knowledge_rows()
    assert draw(rows, 5, 0, "k") == draw(list(reversed(rows)), 5, 0, "k")  # input order does not matter
    assert draw(rows, 5, 0, "k") != draw(rows, 5, 1, "k")
    assert len(draw(rows, 10 ** 6, 0, "k")) == len(rows)


def test_sweep_runs_cells_under_a_budget_then_completes(tiny_model_dir, tmp_path, capsys):
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "sw"
    argv = ["sweep", "--model", str(tiny_model_dir), "--targets", "format,knowledge", "--sizes", "2,3",
            "--seeds", "1", "--pool", str(pool), "--min-conformance", "0", "--steps", "2",
            "--eval-limit", "2", "--eval-max-new-tokens", "6", "--suites", "shape,knowledge", "--out", str(out)]
    assert main([*argv, "--max-cells", "1"]) == 0
    assert "1 of 4 cells done" in capsys.readouterr().out
    # the budget flag is not part of the run's identity: the same folder continues under another value
    assert main([*argv, "--max-cells", "0"]) == 0
    second = capsys.readouterr().out
    assert "== eval: up to date (cached)" in second and "== baseline: up to date (cached)" in second
    res = json.loads((out / "sweep.json").read_text())
    got = {(r["target"], r["n"]) for r in res["cells"]}
    assert got == {("format", 2), ("format", 3), ("knowledge", 2), ("knowledge", 3)}
    for r in res["cells"]:
        assert r["n_items"] >= 1 and len(r["ci95"]) == 2
        assert r["per_example"] == round(r["diff"] / r["n_examples"], 6)
    # every cell trained for the same number of optimizer steps, whatever its size
    steps = {json.loads((out / "cells" / c / "train" / "manifest.json").read_text())["metrics"]["optimizer_steps"]
             for c in ("format-n2-s0", "format-n3-s0", "knowledge-n2-s0", "knowledge-n3-s0")}
    assert steps == {2}
    # the plan names each cell's target and size, so `sharpset report` draws a curve per target; every
    # cell's train folder is named `train`, so cells must be matched by path, not by folder name
    plan = json.loads((out / "plan.json").read_text())
    assert {(m["target"], m["n_examples"]) for m in plan["models"]} == {("format", 2), ("format", 3),
                                                                       ("knowledge", 2), ("knowledge", 3)}
    from sharpset.report import build_report

    build_report([out], tmp_path / "report")
    rows = json.loads((tmp_path / "report" / "effects.json").read_text())
    assert {(r["target"], r["n_examples"]) for r in rows} == {("format", 2), ("format", 3), ("knowledge", 2),
                                                              ("knowledge", 3)}
