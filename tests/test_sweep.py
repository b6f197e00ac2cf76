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


def _ifeval_pool(path, n: int = 8):
    """SFT rows that carry IFEval's fields: `constrain` uses their constraints as given (test_constrain's
    types, which its scripted engine's answers meet or miss by seed)."""
    from test_constrain import TYPES

    from sharpset.dataio import write_records

    rows = [{"messages": [{"role": "user", "content": f"Describe walk {i} in a few words."},
                          {"role": "assistant", "content": "A walk."}],
             "instruction_id_list": TYPES[:3] if i % 2 else TYPES[1:], "kwargs": [{}, {}, {}]} for i in range(n)]
    write_records(rows, path)
    return path


def test_the_constraints_target_trains_cells_on_constrain_rows(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """...and the random target draws from the pool, and every cell is compared with the random cell of
    its n and seed, paired (sweep VERSION 3)."""
    from test_quickstart import _scripted_constrain

    from sharpset.dataio import read_records

    _scripted_constrain(monkeypatch)
    pool = _ifeval_pool(tmp_path / "pool.jsonl")
    out = tmp_path / "sw"
    argv = ["sweep", "--model", str(tiny_model_dir), "--targets", "constraints,random", "--sizes", "[2]", "--seeds",
            "1", "--pool", str(pool), "--constrain-prompts", "6", "--constrain-k", "2", "--steps", "2",
            "--constrain-model", str(tiny_model_dir),
            "--eval-limit", "2", "--eval-max-new-tokens", "6", "--suites", "shape", "--out", str(out)]
    assert main(argv) == 0
    con = json.loads((out / "constraints" / "manifest.json").read_text())
    assert con["stage"] == "constrain" and con["metrics"]["attempted"] == 6 and con["metrics"]["kept"] >= 2
    kept = {r["id"]: r for r in read_records(out / "constraints" / "constrain.jsonl", "sft").rows}
    cell = read_records(out / "cells" / "constraints-n2-s0" / "sft.jsonl", "sft").rows
    assert len(cell) == 2 and all(r["id"] in kept and r["instruction_id_list"] for r in cell)
    res = json.loads((out / "sweep.json").read_text())
    assert {(r["target"], r["n"]) for r in res["cells"]} == {("constraints", 2), ("random", 2)}
    pool_ids = {r["id"] for r in read_records(pool, "sft").rows}
    rnd = read_records(out / "cells" / "random-n2-s0" / "sft.jsonl", "sft").rows
    assert len(rnd) == 2 and {r["id"] for r in rnd} <= pool_ids
    vs = res["vs_random"]
    assert vs and {(r["target"], r["n"], r["seed"]) for r in vs} == {("constraints", 2, 0)}
    by_metric = {(r["suite"], r["metric"]): r for r in res["cells"] if r["target"] == "random"}
    for r in vs:  # before = the random cell's score, after = the constraints cell's, on the same items
        assert r["before"] == by_metric[r["suite"], r["metric"]]["after"]
    assert res["candidates"]["constraints"].startswith(f"{len(kept)} verified-constraint rows kept of 6 prompts")
    for r in res["cells"]:
        assert r["per_example"] == round(r["diff"] / r["n_examples"], 6) and r["n_examples"] == 2
    md = (out / "sweep.md").read_text()
    assert "- constraints: " in md and "| constraints | 2 | 0 | shape |" in md and "diff/example" in md
    assert "against the `random` cell" in md and "- random: 8 pool rows" in md


def test_mixed_is_constraint_rows_plus_invariance_pairs():
    from sharpset.pipelines.sweep import cell_data

    cand = {"constraints": [{"id": f"c{i}"} for i in range(10)], "invariance": [{"id": f"p{i}"} for i in range(10)],
            "format": [{"id": f"f{i}"} for i in range(10)]}
    sft, pairs, objective = cell_data("mixed", 5, 0, "mixed-n5-s0", cand)
    assert len(sft) == 3 and len(pairs) == 2 and objective == "sft+bct"
    assert all(r["id"].startswith("c") for r in sft) and all(r["id"].startswith("p") for r in pairs)
    assert cell_data("mixed", 1, 0, "m", cand)[1:] == ([], "sft")
    sft, pairs, objective = cell_data("constraints", 4, 1, "constraints-n4-s1", cand)
    assert len(sft) == 4 and not pairs and objective == "sft" and all(r["id"].startswith("c") for r in sft)
    sft, pairs, objective = cell_data("invariance", 3, 0, "i", cand)
    assert not sft and len(pairs) == 3 and objective == "bct"


def test_constraint_rows_from_an_earlier_constrain_run_need_no_pool(tiny_model_dir, tmp_path, monkeypatch):
    """`constraint_rows` reuses a constrain run (no pool, no synth, no constrain in the sweep), and
    `order size-desc` runs the largest size first."""
    from sharpset.dataio import read_records, write_records
    from sharpset.pipelines.sweep import SweepConfig, cells

    rows = [{"messages": [{"role": "user", "content": f"Name colour {i} in lowercase."},
                          {"role": "assistant", "content": f"colour {i}"}],
             "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]} for i in range(5)]
    con = tmp_path / "con"
    con.mkdir()
    write_records(rows, con / "constrain.jsonl")
    out = tmp_path / "sw"
    argv = ["sweep", "--model", str(tiny_model_dir), "--targets", "constraints", "--sizes", "[3]", "--seeds", "1",
            "--constraint-rows", str(con), "--steps", "1", "--eval-limit", "2", "--eval-max-new-tokens", "4",
            "--suites", "shape", "--out", str(out)]
    assert main(argv) == 0
    assert not (out / "pool-synth").exists() and not (out / "constraints").exists()
    ids = {r["id"] for r in read_records(con / "constrain.jsonl", "sft").rows}
    assert {r["id"] for r in read_records(out / "cells" / "constraints-n3-s0" / "sft.jsonl", "sft").rows} <= ids
    res = json.loads((out / "sweep.json").read_text())
    assert res["candidates"]["constraints"].startswith("5 verified-constraint rows from")
    order = cells(SweepConfig(targets=["random", "constraints"], sizes=[16, 64], seeds=2, order="size-desc"))
    assert [c[1] for c in order] == [64, 64, 64, 64, 16, 16, 16, 16] and order[0] == ("constraints", 64, 0)


def test_proxy_arms_give_each_cell_the_paired_proxy_table(tiny_model_dir, tmp_path, capsys):
    """`proxy: {antiexpert: K, alphas}` (issue 22): one derived anti-expert per sweep, per cell an expert
    trained from it on the cell's rows with the cell's budget and the proxy at each alpha, every step a
    cached, resumable stage run; sweep.json's proxy table pairs base, anti-expert, expert alone, proxy per alpha and
    the cell's direct tuning, as `sharpset report` finds it; alpha 0 scores exactly as the base."""
    from sharpset.report import build_report

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "sw"
    argv = ["sweep", "--model", str(tiny_model_dir), "--targets", "format,knowledge", "--sizes", "[2]",
            "--seeds", "1", "--pool", str(pool), "--min-conformance", "0", "--steps", "2", "--eval-limit", "2",
            "--eval-max-new-tokens", "6", "--suites", "shape,knowledge,token_shift", "--out", str(out),
            "--proxy", "{antiexpert: 1, alphas: [0, 1.5], targets: [format]}"]
    assert main([*argv, "--max-cells", "1"]) == 0  # the format cell with its arms, then stop
    assert "1 of 2 cells done" in capsys.readouterr().out
    assert main(argv) == 0  # resumed: the format cell's steps are cache hits, the knowledge cell runs
    again = capsys.readouterr().out
    for step in ("proxy-antiexpert", "proxy-antiexpert-eval", "expert", "expert-eval", "alpha-0", "alpha-1.5"):
        assert f"== {step}: up to date (cached)" in again
    derive = json.loads((out / "proxy-antiexpert" / "manifest.json").read_text())
    assert derive["stage"] == "derive" and derive["metrics"]["keep_layers"] == 1
    assert derive["metrics"]["source_layers"] == 2 and derive["metrics"]["parameters"] > 0
    anti = str(out / "proxy-antiexpert" / "model")
    cell = out / "cells" / "format-n2-s0"
    expert = json.loads((cell / "proxy" / "expert" / "manifest.json").read_text())
    direct = json.loads((cell / "train" / "manifest.json").read_text())
    assert expert["metrics"]["optimizer_steps"] == direct["metrics"]["optimizer_steps"] == 2
    assert {k: v for k, v in expert["inputs"].items() if k.endswith("sft.jsonl")} == \
        {k: v for k, v in direct["inputs"].items() if k.endswith("sft.jsonl")}  # the cell's rows
    assert not (out / "cells" / "knowledge-n2-s0" / "proxy").exists()  # proxy.targets: format only
    res = json.loads((out / "sweep.json").read_text())
    p = res["proxy"]
    assert (p["antiexpert"], p["keep_layers"], p["alphas"], p["targets"]) == (anti, 1, [0.0, 1.5], ["format"])
    (t,) = p["cells"]
    assert (t["target"], t["n"], t["seed"], t["cell"]) == ("format", 2, 0, "format-n2-s0")
    assert [c["key"] for c in t["columns"]] == ["base", "antiexpert", "expert", "proxy@0", "proxy@1.5", "tuned"]
    cols = {c["key"]: c["eval_run"] for c in t["columns"]}
    assert cols == {"base": "baseline", "antiexpert": "proxy-antiexpert-eval",
                    "expert": "cells/format-n2-s0/proxy/expert-eval", "proxy@0": "cells/format-n2-s0/proxy/alpha-0",
                    "proxy@1.5": "cells/format-n2-s0/proxy/alpha-1.5", "tuned": "cells/format-n2-s0/eval"}
    rows = {(r["suite"], r["metric"]): r for r in t["rows"]}
    assert {"shape", "knowledge", "token_shift"} <= {s for s, _ in rows} and all(r["n"] >= 1 for r in rows.values())
    # token_shift ranks each answer by the swept model, which every eval names as its base: the tuned cell and the
    # expert have rows (a one-model eval had no base: skipped), and the base's own greedy answers shift nothing
    shift = rows[("token_shift", "shifted")]
    assert shift["cells"]["tuned"]["mean"]["n"] >= 1 and shift["cells"]["expert"]["mean"]["n"] >= 1
    assert shift["cells"]["base"]["mean"]["mean"] == 0
    assert all(set(r["gap_share"]) == {"proxy@0", "proxy@1.5"} for r in rows.values())
    assert all(set(r["kept"]) == {"proxy@0", "proxy@1.5"} for (s, _), r in rows.items() if s == "knowledge")
    for r in rows.values():  # alpha 0 is the base alone: the same mean, a paired difference of exactly 0
        assert r["cells"]["proxy@0"]["mean"]["mean"] == r["cells"]["base"]["mean"]["mean"]
        assert r["cells"]["proxy@0"]["vs_base"]["diff"] == 0
    for suite in ("shape", "knowledge"):  # item by item, every score the base's
        def scores(d):
            return {(r["item"], k): v for line in (d / "samples" / f"{suite}.jsonl").read_text().splitlines()
                    for r in [json.loads(line)] for k, v in r.items() if k not in ("model", "model_index", "proxy")}
        assert scores(cell / "proxy" / "alpha-0") == scores(out / "baseline")
    md = (out / "sweep.md").read_text()
    assert "### format-n2-s0: proxy-tuning (format, n=2, seed 0)" in md and "Share of the gap closed" in md
    assert "Knowledge kept" in md and "first 1 decoder layers" in md
    # `sharpset report` over the sweep finds the same table
    res_report = build_report([out], tmp_path / "report")
    (rt,) = json.loads((tmp_path / "report" / "proxy.json").read_text())
    assert rt["columns"] == t["columns"] and rt["rows"] == t["rows"]
    # the effect rows are the plan's cells against the baseline; the expert (the anti-expert tuned) is
    # in the proxy table alone, not an effect row of its own without a target
    effects = json.loads((tmp_path / "report" / "effects.json").read_text())
    assert {(r["target"], r["n_examples"], r["eval_run"]) for r in effects} == \
        {(tg, 2, f"cells/{tg}-n2-s0/eval with baseline") for tg in ("format", "knowledge")}
    assert res_report["tuned_models"] == 2
    # the same sweep beside it reads every step from this one's folder (reuse: auto), the proxy table too
    again = tmp_path / "sw-again"
    assert main([*argv[:argv.index("--out")], "--out", str(again), *argv[argv.index("--out") + 2:]]) == 0
    res2 = json.loads((again / "sweep.json").read_text())
    assert not (again / "baseline").exists() and not (again / "proxy-antiexpert").exists()
    assert res2["reused"]["cells/format-n2-s0/proxy/alpha-1.5"] == str(cell / "proxy" / "alpha-1.5")
    (t2,) = res2["proxy"]["cells"]
    assert t2["rows"] == t["rows"] and not t2["notes"]
    assert {c["key"]: c["eval_run"] for c in t2["columns"]} == {k: str(out / v) for k, v in cols.items()}


def test_proxy_chat_template_expert_reaches_the_engine_through_the_sweep(tiny_model_dir, tmp_path, monkeypatch,
                                                                         capsys):
    """`proxy: {..., chat_template: expert}` (the paper's way): the proxy eval runs, its manifest,
    summary and rows record chat_template expert, and the three lanes see what `all` would not give
    them -- the expert the prompt as the stage rendered it with the chat template (what every lane sees
    under `all`, the baseline's own prompt), base and anti-expert the plain format of the user's text."""
    from sharpset.engine.proxy import OPTIONS, PromptViews
    from sharpset.models.profiles import encode_text, profile_for
    from sharpset.models.registry import load_tokenizer
    from sharpset.run import RunDir

    seen = []
    real = PromptViews.views

    def spy(self, ids, *args, **kwargs):
        got = real(self, ids, *args, **kwargs)
        seen.append((self.mode, list(ids), got))
        return got

    monkeypatch.setattr(PromptViews, "views", spy)
    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "sw"
    argv = ["sweep", "--model", str(tiny_model_dir), "--targets", "format", "--sizes", "[2]", "--seeds", "1",
            "--pool", str(pool), "--min-conformance", "0", "--steps", "1", "--eval-limit", "2",
            "--eval-max-new-tokens", "4", "--suites", "shape,knowledge", "--out", str(out),
            "--proxy", "{antiexpert: 1, alphas: [1], chat_template: expert}"]
    assert main(argv) == 0
    capsys.readouterr()
    arm = out / "cells" / "format-n2-s0" / "proxy" / "alpha-1"
    manifest = json.loads((arm / "manifest.json").read_text())
    assert manifest["backend"]["engine"] == "proxy"
    assert manifest["backend"]["engine_options"]["chat_template"] == "expert"
    assert manifest["backend"]["proxy"]["chat_template"] == "expert"
    summary = json.loads((arm / "summary.json").read_text())
    assert summary["backend"]["proxy"]["chat_template"] == "expert"
    assert summary["models"][0]["proxy"]["chat_template"] == "expert"
    for suite in ("shape", "knowledge"):
        rows = [json.loads(line) for line in (arm / "samples" / f"{suite}.jsonl").read_text().splitlines()]
        assert rows and all(r["proxy"]["chat_template"] == "expert" for r in rows), suite
    res = json.loads((out / "sweep.json").read_text())
    assert res["proxy"]["chat_template"] == "expert"
    (t,) = res["proxy"]["cells"]
    assert t["rows"] and not t.get("notes") and t["chat_template"] == "expert"
    mc = [r for line in (arm / "samples" / "knowledge.jsonl").read_text().splitlines()
          for r in [json.loads(line)] if r["kind"] == "mc"]
    # scoring lines the choices up across the three views: every log-probability a finite number
    assert mc and all(lp == lp and abs(lp) != float("inf") for r in mc for lp in r["choice_logprobs"])
    assert "chat template expert" in (out / "sweep.md").read_text()

    # what each lane saw: every prompt the proxy eval asked for starts with one user turn, so each is split
    assert seen and {mode for mode, _, _ in seen} == {"expert"}
    assert all(split for _, _, (_, _, split) in seen)
    tok, _ = load_tokenizer(str(tiny_model_dir))
    prof = profile_for(tok)
    baseline = [json.loads(line) for line in (out / "baseline" / RunDir.SAMPLES).read_text().splitlines()]
    base_prompts = {tuple(r["prompt_ids"]) for r in baseline if r.get("key", "").startswith("gen|")}
    asked = set()
    for _, ids, ((b, e, a), head, _) in seen:
        text = tok.decode(ids[:head], skip_special_tokens=False)
        assert e == ids  # the expert: the templated prompt, as under `all`
        assert b == a != ids  # base and anti-expert: the plain format of the user's text
        user = text[len(prof.query_prefix()):len(text) - len(prof.layout.user[1] + prof.assistant_header)]
        assert b == encode_text(prof, tok, OPTIONS["plain_format"].format(prompt=user)) + ids[head:]
        assert prof.assistant_header not in tok.decode(b)
        asked.add(tuple(ids))
    # the generated prompts are the baseline's own (what `all` feeds all three lanes)
    assert base_prompts and base_prompts <= asked


def test_bad_proxy_settings_name_the_field(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from conftest import build_chatml_tokenizer, build_tiny_llama
    from sharpset import models

    base = ["sweep", "--model", str(tiny_model_dir), "--targets", "knowledge", "--out", str(tmp_path / "sw")]
    for value, field in (("{alphas: [1]}", "proxy.antiexpert"), ("{antiexpert: 0}", "proxy.antiexpert"),
                         ("{antiexpert: -1}", "proxy.antiexpert"), ("{antiexpert: true}", "proxy.antiexpert"),
                         ("{antiexpert: 1, alphas: []}", "proxy.alphas"),
                         ("{antiexpert: 1, alphas: [1, 1.0]}", "proxy.alphas"),
                         ("{antiexpert: 1, chat_template: plain}", "proxy.chat_template"),
                         ("{antiexpert: 1, targets: [format]}", "proxy.targets"),
                         ("{antiexpert: 1, alpha: 1}", "proxy.alpha"), ("[1]", "proxy")):
        assert main([*base, "--proxy", value]) == 2, value
        assert field in capsys.readouterr().err, value
    assert not (tmp_path / "sw").exists()
    # K at or past the model's depth (2 layers): refused from its config, naming the field and the range,
    # before any weights load or any run starts (no derive run, no baseline eval)
    loaded = []

    def no_weights(*a, **k):
        loaded.append(a)
        raise AssertionError("weights loaded before K was checked")

    monkeypatch.setattr(models, "load_model", no_weights)
    for k in (2, 5):
        assert main([*base, "--sizes", "[1]", "--seeds", "1", "--steps", "1", "--eval-limit", "1",
                     "--eval-max-new-tokens", "2", "--suites", "shape", "--proxy", f"{{antiexpert: {k}}}"]) == 2
        err = capsys.readouterr().err
        assert f"proxy.antiexpert: K (the swept model's first K decoder layers) must be in [1, 1] for " \
               f"{tiny_model_dir} (2 decoder layers), got {k}" in err, err
        assert not (tmp_path / "sw" / "baseline").exists() and not (tmp_path / "sw" / "proxy-antiexpert").exists()
    assert not loaded
    monkeypatch.undo()
    # a given anti-expert of another vocabulary: refused before anything runs, naming the token
    other = tmp_path / "other-vocab"
    tok = build_chatml_tokenizer()
    tok.add_tokens(["<|odd|>"], special_tokens=True)
    build_tiny_llama(len(tok), seed=3).save_pretrained(other, safe_serialization=True)
    tok.save_pretrained(other)
    assert main([*base, "--out", str(tmp_path / "sw2"), "--proxy", f"{{antiexpert: {other}}}"]) == 2
    err = capsys.readouterr().err
    assert "proxy.antiexpert: engine_options.antiexpert: the antiexpert's tokenizer differs" in err and "<|odd|>" in err
    assert not (tmp_path / "sw2" / "baseline").exists()


def test_a_cell_whose_proxy_evals_are_missing_says_so(tmp_path):
    from sharpset.pipelines import sweep_proxy

    s = sweep_proxy.settings({"antiexpert": 2}, ["format"])
    assert s == {"antiexpert": 2, "alphas": [0.5, 1.0, 1.5], "chat_template": "all", "targets": ["format"]}
    p = sweep_proxy.summarize(tmp_path, "base-model", s, "anti", [("format", 2, 0, "format-n2-s0", 2)])
    (c,) = p["cells"]
    assert c["cell"] == "format-n2-s0" and not c["rows"] and "no proxy eval run" in c["notes"][0]
    md = "\n".join(sweep_proxy.markdown(p))
    assert "### format-n2-s0" in md and "no proxy eval run" in md


# -- reuse by content key ------------------------------------------------------------------------
def _reuse_argv(model, pool, out, targets: str, *more: str) -> list[str]:
    return ["sweep", "--model", str(model), "--targets", targets, "--sizes", "[2]", "--seeds", "1", "--pool", str(pool),
            "--min-conformance", "0", "--steps", "2", "--eval-limit", "2", "--eval-max-new-tokens", "6",
            "--suites", "shape", "--out", str(out), *more]


def test_a_second_sweep_reads_the_first_ones_random_cell_and_baseline(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """Two sweeps side by side over one pool and model (format + random, then knowledge + random): the
    second trains only its knowledge cell and reads the random cell's train and eval and the baseline
    from the first's folder (found by content key), with the same figures; its plan points at the train
    run where it is. `reuse: []` recomputes; a pool with one row edited is another random cell."""
    from sharpset import train
    from sharpset.report import build_report

    pool = _pool(tmp_path / "pool.jsonl")
    first, second = tmp_path / "runs" / "sw-format", tmp_path / "runs" / "sw-knowledge"
    assert main(_reuse_argv(tiny_model_dir, pool, first, "format,random")) == 0
    real, trained = train.run, []

    def counted(cfg, run, log=print):
        trained.append(run.path)
        return real(cfg, run, log)

    monkeypatch.setattr(train, "run", counted)
    capsys.readouterr()
    # random first, one new cell per call: the reused random cell is the one
    argv = _reuse_argv(tiny_model_dir, pool, second, "random,knowledge", "--order", "target", "--max-cells", "1")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    was, cell = first / "cells" / "random-n2-s0", second / "cells" / "random-n2-s0"
    assert trained == [] and "1 of 2 cells done" in printed
    assert f"== train: reused {was / 'train'}" in printed
    # the next call: the random cell counts as done (reused.json remembers it), the knowledge cell runs
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert trained == [second / "cells" / "knowledge-n2-s0" / "train"] and "cells done" not in printed
    assert not (cell / "train").exists() and not (cell / "eval").exists() and not (second / "baseline").exists()
    assert (cell / "sft.jsonl").read_text() == (was / "sft.jsonl").read_text()  # the cell's data, in its folder
    reused = {"baseline": str(first / "baseline"), "cells/random-n2-s0/train": str(was / "train"),
              "cells/random-n2-s0/eval": str(was / "eval")}
    assert json.loads((second / "reused.json").read_text()) == reused
    res1, res2 = (json.loads((d / "sweep.json").read_text()) for d in (first, second))
    assert res2["reused"] == reused and res2["baseline"] == str(first / "baseline")
    assert f"reused: cells/random-n2-s0/train <- {was / 'train'}" in printed
    def random_rows(res):
        return [r for r in res["cells"] if r["target"] == "random"]

    assert random_rows(res2) == random_rows(res1) and random_rows(res1)
    assert {r["target"] for r in res2["vs_random"]} == {"knowledge"}  # against the reused random cell's eval
    plan = json.loads((second / "plan.json").read_text())
    assert {m["target"]: m["train_run"] for m in plan["models"]} == {"knowledge": "cells/knowledge-n2-s0/train",
                                                                    "random": str(was / "train")}
    build_report([second], tmp_path / "report")  # the reused runs are found where reused.json says they are
    rows = json.loads((tmp_path / "report" / "effects.json").read_text())
    assert {(r["target"], r["train_run"]) for r in rows} >= {("random", f"{first.name}/cells/random-n2-s0/train"),
                                                               ("knowledge", "cells/knowledge-n2-s0/train")}
    trained.clear()
    # reuse off: everything runs in the sweep's own folder
    own = tmp_path / "runs" / "sw-own"
    assert main(_reuse_argv(tiny_model_dir, pool, own, "random", "--reuse", "[]")) == 0
    assert trained == [own / "cells" / "random-n2-s0" / "train"] and (own / "baseline" / "manifest.json").is_file()
    assert json.loads((own / "sweep.json").read_text())["reused"] == {} and not (own / "reused.json").exists()
    # one pool row the random cell drew, edited: the cell trains again; the baseline (no pool) is read
    trained.clear()
    drawn = json.loads((was / "sft.jsonl").read_text().splitlines()[0])["id"]
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(line.replace("a very long time", "a short time") if json.loads(line)["id"] == drawn
                              else line for line in pool.read_text().splitlines(keepends=True)))
    assert edited.read_text() != pool.read_text()
    changed = tmp_path / "runs" / "sw-changed"
    assert main(_reuse_argv(tiny_model_dir, edited, changed, "random")) == 0
    assert trained == [changed / "cells" / "random-n2-s0" / "train"]
    assert set(json.loads((changed / "sweep.json").read_text())["reused"]) == {"baseline"}
