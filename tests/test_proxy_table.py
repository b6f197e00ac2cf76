"""Proxy-tuning's table and the paper's two numbers (issue 22, item 3): stats.gap_share_ci on
constructed rows, the report's paired table over hand-made eval run folders, and the CLI path from
real `sharpset eval` runs of tiny models to `sharpset report`'s proxy.json / report.md."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from sharpset.cli import main
from sharpset.evaluate.pairing import common_items, compare_rows, gap_share_rows
from sharpset.stats import gap_share_ci

BASE = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
TUNED_GAIN = [0.5, 0.4, 0.6, 0.5, 0.5, 0.4, 0.6, 0.5]  # mean 0.5
PROXY_GAIN = [0.2, 0.3, 0.1, 0.4, 0.2, 0.3, 0.1, 0.4]  # mean 0.25


# --------------------------------------------------------------------------- the share of the gap closed
def test_gap_share_equals_the_hand_computed_value():
    tuned = [b + g for b, g in zip(BASE, TUNED_GAIN)]
    proxy = [b + g for b, g in zip(BASE, PROXY_GAIN)]
    s = gap_share_ci(BASE, proxy, tuned, seed=0)
    assert s["share"] == pytest.approx(0.25 / 0.5)  # (proxy - base) / (tuned - base) of the means
    assert s["gap"]["diff"] == pytest.approx(0.5) and s["moved"]["diff"] == pytest.approx(0.25)
    assert s["n"] == 8 and s["ci95"][0] < 0.5 < s["ci95"][1]
    # a missing value drops that row for all three; weighted: sum w (p - b) / sum w (t - b)
    w = [1, 1, 1, 1, 2, 2, 2, 2]
    s = gap_share_ci(BASE + [0.0], proxy + [None], tuned + [1.0], seed=0, weights=w + [1])
    want = sum(wi * g for wi, g in zip(w, PROXY_GAIN)) / sum(wi * g for wi, g in zip(w, TUNED_GAIN))
    assert s["share"] == pytest.approx(want, abs=1e-4) and s["n"] == 8


def test_gap_share_resamples_the_three_models_jointly():
    # proxy = base + 0.3 (tuned - base) on every row: each joint resample gives exactly 0.3;
    # resampling the numerator and the denominator apart would not
    tuned = [b + g for b, g in zip(BASE, TUNED_GAIN)]
    proxy = [b + 0.3 * g for b, g in zip(BASE, TUNED_GAIN)]
    s = gap_share_ci(BASE, proxy, tuned, seed=3)
    assert s["share"] == pytest.approx(0.3) and s["ci95"] == pytest.approx([0.3, 0.3])
    # units: two rows of one unit move together (n counts units)
    s = gap_share_ci(BASE * 2, proxy * 2, tuned * 2, seed=3, groups=[i // 2 for i in range(16)])
    assert s["n"] == 8 and s["n_rows"] == 16 and s["ci95"] == pytest.approx([0.3, 0.3])
    # 4 units all the same way: sign-flip p = 2/16, the gap not shown at 4 units: undefined
    assert gap_share_ci(BASE, proxy, tuned, seed=3, groups=[i // 2 for i in range(8)])["share"] is None


def test_gap_share_is_undefined_when_tuned_equals_base():
    proxy = [b + g for b, g in zip(BASE, PROXY_GAIN)]
    s = gap_share_ci(BASE, proxy, list(BASE), seed=0)
    assert s["share"] is None and s["ci95"] is None and s["note"].startswith("undefined")
    assert s["moved"]["diff"] == pytest.approx(0.25)  # the proxy's own move is still reported
    # 0/1 scores, tuned == base, n < 30 (Newcombe's interval around 0): undefined too
    b01 = [1, 0, 1, 0, 1, 1, 0, 0, 1, 0]
    s = gap_share_ci(b01, [1] * 10, list(b01), seed=0)
    assert s["share"] is None and "undefined" in s["note"]
    # a gap whose interval includes 0 (gains of both signs) is not a gap either
    s = gap_share_ci(BASE, proxy, [b + g for b, g in zip(BASE, [0.3, -0.3, 0.2, -0.2, 0.1, -0.1, 0.05, -0.04])],
                     seed=0)
    assert s["share"] is None and "not shown" in s["note"]


def test_gap_share_rows_pairs_by_item_over_the_items_all_three_have():
    ids = [f"i{k}" for k in range(8)]
    base = [{"item": i, "x": b} for i, b in zip(ids, BASE)]
    tuned = [{"item": i, "x": b + g} for i, b, g in zip(ids, BASE, TUNED_GAIN)] + [{"item": "extra", "x": 9.0}]
    proxy = [{"item": i, "x": b + g} for i, b, g in zip(ids, BASE, PROXY_GAIN)]
    random.Random(0).shuffle(proxy)
    got = gap_share_rows(base, proxy[:-1], tuned, ["x"], seed=0)["x"]  # proxy lacks one item
    keep = [k for k, i in enumerate(ids) if i != proxy[-1]["item"]]
    want = sum(PROXY_GAIN[k] for k in keep) / sum(TUNED_GAIN[k] for k in keep)
    assert got["share"] == pytest.approx(want, abs=1e-4) and got["n"] == 7
    assert common_items(base, proxy, tuned) == sorted(ids)
    assert gap_share_rows(base, [{"item": "other", "x": 1}], tuned, ["x"], 0) is None


# --------------------------------------------------------------------------- the table over eval run folders
def _run(path: Path, stage: str, config: dict, inputs: dict | None = None, created: str = "2026-01-01T00:00:00Z"):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "manifest.json").write_text(json.dumps({"stage": stage, "status": "complete", "created": created,
                                                    "inputs": inputs or {}, "counts": {"written": 8}}))


def _train(root: Path, name: str, start: Path, data: str) -> Path:
    tr = root / name
    _run(tr, "train", {"model": str(start), "sft": str(root / data), "epochs": 3, "seed": 0},
         inputs={str(root / data): f"sha-{data}"})
    (tr / "merged").mkdir()
    (tr / "merged" / "config.json").write_text("{}")
    return tr


def _eval(path: Path, models: list[tuple[str, str, dict | None, dict[str, float]]], engine: str = "transformers",
          limit: int = 8):
    """An eval run folder written by hand: models = (name, path, proxy options, item -> knowledge mc_correct)."""
    _run(path, "eval", {"models": [m[0] for m in models], "split": "test", "limit": limit, "seed": 0,
                        "engine": engine})
    summary = {"models": [], "split": "test", "limit": limit, "seed": 0, "decoding": {"temperature": 0.0},
               "suites": {"knowledge": {"metrics": ["mc_correct"], "lower_is_better": [], "models": {}}}}
    rows = []
    for i, (name, mpath, proxy, scores) in enumerate(models):
        label = f"m{i}:{Path(name).name}"
        summary["models"].append({"index": i, "name": name, "label": label, "path": mpath,
                                  **({"proxy": proxy} if proxy else {})})
        items = list(scores.items())
        random.Random(i).shuffle(items)  # row order never matters: rows pair by item id
        rows += [{"model": label, "item": k, "mc_correct": v} for k, v in items]
    (path / "samples").mkdir()
    (path / "samples" / "knowledge.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    base, anti = root / "base-model", root / "anti-model"
    for d in (base, anti):
        d.mkdir()
        (d / "config.json").write_text("{}")
    expert = _train(root, "train-expert", anti, "set.jsonl")
    tuned = _train(root, "train-tuned", base, "set.jsonl")
    decoy = _train(root, "train-other-set", base, "other.jsonl")  # the base tuned on other data
    items = [f"q{k}" for k in range(10)]
    sc = {"base": [0, 0, 0, 1, 0, 0, 1, 0, 0, 0], "expert": [1, 0, 1, 1, 0, 1, 0, 1, 0, 1],
          "tuned": [1, 1, 1, 1, 1, 1, 1, 1, 0, 1], "decoy": [0] * 10,
          0.5: [1, 1, 0, 1, 0, 0, 1, 1, 0, 0], 1.0: [1, 1, 1, 1, 1, 0, 1, 1, 0, 0]}
    col = {k: dict(zip(items, v)) for k, v in sc.items()}
    del col["tuned"]["q9"]  # the tuned model lacks one item: every column is read on q0..q8
    _eval(root / "ev-plain", [(str(base), str(base), None, col["base"]),
                              (str(expert), str(expert / "merged"), None, col["expert"]),
                              (str(decoy), str(decoy / "merged"), None, col["decoy"]),
                              (str(tuned), str(tuned / "merged"), None, col["tuned"])])
    for alpha in (1.0, 0.5):
        opts = {"expert": str(expert), "antiexpert": str(anti), "alpha": alpha, "chat_template": "all"}
        _eval(root / f"ev-proxy-{alpha}", [(str(base), str(base), opts, col[alpha])], engine="proxy")
    # same proxy, other item settings: never mixed into the table above
    _eval(root / "ev-proxy-limit4", [(str(base), str(base), {**opts, "alpha": 2.0}, col[1.0])], engine="proxy",
          limit=4)
    return root


def test_the_table_pairs_the_same_items_across_models_and_runs(runs):
    from sharpset.report.collect import collect
    from sharpset.report.proxy import tables

    ts = tables(collect([runs]))
    main_t = next(t for t in ts if len(t["columns"]) > 1)
    assert [c["key"] for c in main_t["columns"]] == ["base", "expert", "proxy@0.5", "proxy@1", "tuned"]
    assert next(c for c in main_t["columns"] if c["key"] == "tuned")["train_run"] == "train-tuned"  # not the decoy
    other = next(t for t in ts if t is not main_t)  # limit 4: its own group, no plain base with its settings
    assert [c["key"] for c in other["columns"]] == ["proxy@2"] and other["notes"]
    row = main_t["rows"][0]
    assert (row["suite"], row["metric"], row["n"]) == ("knowledge", "mc_correct", 9)  # q0..q8
    items = [f"q{k}" for k in range(9)]
    base = [0, 0, 0, 1, 0, 0, 1, 0, 0]
    tuned = [1, 1, 1, 1, 1, 1, 1, 1, 0]
    proxy = [1, 1, 0, 1, 0, 0, 1, 1, 0]  # alpha 0.5
    cells = row["cells"]
    assert cells["base"]["mean"]["mean"] == pytest.approx(sum(base) / 9, abs=1e-4)
    assert cells["proxy@0.5"]["vs_base"]["diff"] == pytest.approx((sum(proxy) - sum(base)) / 9, abs=1e-4)
    assert cells["tuned"]["vs_base"]["diff"] == pytest.approx((sum(tuned) - sum(base)) / 9, abs=1e-4)
    # the same numbers as pairing.compare_rows on those items
    by = lambda v: [{"item": i, "mc_correct": x} for i, x in zip(items, v)]  # noqa: E731
    assert cells["proxy@0.5"]["vs_base"] == compare_rows(by(base), by(proxy), ["mc_correct"], 0)["mc_correct"]
    share = row["gap_share"]["proxy@0.5"]
    assert share["share"] == pytest.approx((sum(proxy) - sum(base)) / (sum(tuned) - sum(base)), abs=1e-4)
    kept = row["kept"]["proxy@0.5"]  # knowledge kept: proxy - tuned, paired
    assert kept["diff"] == pytest.approx((sum(proxy) - sum(tuned)) / 9, abs=1e-4)


def test_a_suite_scored_against_the_base_has_rows_without_a_base_column(runs):
    """token_shift ranks a model's answer tokens by the base: the base has no rows of its own. Its rows show
    the other columns (each answer weighted by its own tokens, as the suite pools them), no Δ from the
    base and no share of the gap; a suite the base lacks for another reason is still left out."""
    from sharpset.report.collect import collect
    from sharpset.report.proxy import grids, tables

    shifted = {"expert": [0.1, 0.3], "tuned": [0.2, 0.0], 1.0: [0.5, 0.1]}
    tokens = {"expert": [10, 30], "tuned": [20, 20], 1.0: [40, 10]}

    def add(folder: Path, suite: str, labels: list[str], keys: list):
        summary = json.loads((folder / "summary.json").read_text())
        summary["suites"][suite] = {"metrics": ["shifted"], "lower_is_better": [], "models": {}}
        (folder / "summary.json").write_text(json.dumps(summary))
        (folder / "samples" / f"{suite}.jsonl").write_text("".join(
            json.dumps({"model": lab, "item": f"p{j}", "unit": f"p{j}", "weight": tokens[k][j],
                        "shifted": shifted[k][j]}) + "\n" for lab, k in zip(labels, keys) for j in range(2)))

    plain = json.loads((runs / "ev-plain" / "summary.json").read_text())["models"]
    add(runs / "ev-plain", "token_shift", [plain[1]["label"], plain[3]["label"]], ["expert", "tuned"])
    add(runs / "ev-proxy-1.0", "token_shift", ["m0:base-model"], [1.0])
    add(runs / "ev-plain", "other", [plain[1]["label"], plain[3]["label"]], ["expert", "tuned"])
    add(runs / "ev-proxy-1.0", "other", ["m0:base-model"], [1.0])
    t = next(t for t in tables(collect([runs])) if len(t["columns"]) > 1)
    rows = {r["suite"]: r for r in t["rows"]}
    assert "other" not in rows  # not a suite scored against the base: without the base it is no row
    r = rows["token_shift"]
    assert r["cells"]["base"] == {"reference": True} and r["cells"]["proxy@0.5"] is None
    assert "gap_share" not in r and "vs_base" not in r["cells"]["proxy@1"]
    assert r["cells"]["expert"]["mean"]["mean"] == pytest.approx((0.1 * 10 + 0.3 * 30) / 40, abs=1e-4)
    assert r["cells"]["proxy@1"]["mean"]["mean"] == pytest.approx((0.5 * 40 + 0.1 * 10) / 50, abs=1e-4)
    line = next(x for x in grids(t)[0][2] if x[0] == "token_shift")
    assert line[3] == "the reference" and line[5] == "not evaluated"


def test_without_a_directly_tuned_model_the_table_says_so(runs):
    from sharpset.report.collect import collect
    from sharpset.report.proxy import tables

    summary = json.loads((runs / "ev-plain" / "summary.json").read_text())
    summary["models"] = summary["models"][:3]  # drop the tuned model
    (runs / "ev-plain" / "summary.json").write_text(json.dumps(summary))
    t = next(t for t in tables(collect([runs])) if len(t["columns"]) > 1)
    assert "tuned" not in [c["key"] for c in t["columns"]]
    assert "gap_share" not in t["rows"][0] and any("tuned directly" in n for n in t["notes"])


def test_the_proxys_expert_is_not_an_effect_row_of_its_own(runs):
    """The expert (a train run a proxy eval names) is the proxy table's "expert alone" column; the
    report's effect rows (collect's tuned pairs) leave it out -- unless a plan entry names it, or no
    proxy eval here names it."""
    import shutil

    from sharpset.report.collect import collect, effect_rows

    def trained(col):
        return sorted(t.train.name for t in col.tuned)

    col = collect([runs])
    assert trained(col) == ["train-other-set", "train-tuned"]
    assert {r["train_run"] for r in effect_rows(col)} == {"train-other-set", "train-tuned"}
    # the proxy table still has the expert alone
    from sharpset.report.proxy import tables

    t = next(t for t in tables(col) if len(t["columns"]) > 1)
    assert next(c for c in t["columns"] if c["key"] == "expert")["train_run"] == "train-expert"
    # a plan entry naming the expert's train run keeps it, with the plan's target
    (runs / "plan.json").write_text(json.dumps({"models": [{"train_run": "train-expert", "target": "knowledge"}]}))
    col = collect([runs])
    assert trained(col) == ["train-expert", "train-other-set", "train-tuned"]
    assert next(t for t in col.tuned if t.train.name == "train-expert").target == "knowledge"
    # without proxy evals naming it, the expert is a tuned model like any other
    (runs / "plan.json").unlink()
    for d in runs.glob("ev-proxy-*"):
        shutil.rmtree(d)
    assert trained(collect([runs])) == ["train-expert", "train-other-set", "train-tuned"]


# --------------------------------------------------------------------------- the CLI path on tiny models
def test_eval_of_tiny_models_then_report_writes_the_proxy_table(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """Real `sharpset eval` runs -- the base, the expert and the directly tuned model in one, the proxy
    at two alphas in two more, models named by relative paths as the README's commands do -- then
    `sharpset report` over the folder from another folder: proxy.json and report.md."""
    from conftest import build_chatml_tokenizer
    from test_proxy import _expert

    from sharpset.run import models_read

    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    root.mkdir()
    tok = build_chatml_tokenizer()
    anti = root / "anti"
    _expert(len(tok), 2).save_pretrained(anti, safe_serialization=True)
    tok.save_pretrained(anti)
    (root / "set.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                                             {"role": "assistant", "content": "hello"}]}) + "\n")
    for name, start, seed, scale in (("train-expert", anti, 1, 4.0), ("train-tuned", tiny_model_dir, 5, 1.0)):
        _run(root / name, "train", {"model": str(start), "sft": str(root / "set.jsonl"), "seed": 0},
             inputs={str(root / "set.jsonl"): "sha-set", **models_read(str(start))})  # as train keys them
        _expert(len(tok), seed, scale).save_pretrained(root / name / "merged", safe_serialization=True)
        tok.save_pretrained(root / name / "merged")
    common = ["--suites", "knowledge,shape", "--limit", "3", "--max-new-tokens", "6", "--progress", "false"]
    assert main(["eval", str(tiny_model_dir), str(root / "train-expert"), str(root / "train-tuned"), *common,
                 "--out", str(root / "ev-plain")]) == 0
    for alpha in (0.5, 1.5):
        opts = f"{{expert: {root / 'train-expert'}, antiexpert: {anti}, alpha: {alpha}}}"
        assert main(["eval", str(tiny_model_dir), *common, "--engine", "proxy", "--engine-options", opts,
                     "--out", str(root / f"ev-proxy-{alpha}")]) == 0
    capsys.readouterr()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 0
    assert "proxy-tuning: 1 table(s)" in capsys.readouterr().out
    (t,) = json.loads((tmp_path / "rep" / "proxy.json").read_text())
    assert [c["key"] for c in t["columns"]] == ["base", "expert", "proxy@0.5", "proxy@1.5", "tuned"], t["notes"]
    rows = {(r["suite"], r["metric"]): r for r in t["rows"]}
    assert {"knowledge", "shape", "health"} <= {s for s, _ in rows}
    mc = rows[("knowledge", "mc_correct")]
    assert mc["n"] == 3 and set(mc["kept"]) == set(mc["gap_share"]) == {"proxy@0.5", "proxy@1.5"}
    assert all(c["mean"]["n"] == 3 for c in mc["cells"].values())
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Proxy-tuning" in md and "Share of the gap closed" in md and "Knowledge kept" in md
    assert 'id="proxy"' in (tmp_path / "rep" / "report.html").read_text()


def test_a_derived_folder_has_its_embedded_sources_chat_family(tmp_path):
    """`sharpset derive gemma3-270m` writes a folder whose tokenizer, like gemma3-270m's, has no chat
    template: its family comes from the source it records, so train and eval load it (the table's
    expert is trained from it, its anti-expert column evaluates it)."""
    from sharpset.models.registry import chat_family

    for name, source, want in (("g3", "gemma3-270m", "gemma"), ("other", "not-embedded", None)):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"sharpset_derived": {"source": source, "keep_layers": 9}}))
        assert chat_family(str(d)) == want
    assert chat_family(str(tmp_path / "missing")) is None and chat_family("gemma3-270m") == "gemma"
