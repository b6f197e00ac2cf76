"""curate --strategy less (LESS, arXiv:2402.04333) on a tiny random llama built in-process:
a row's features are its LoRA gradient (Adam-preconditioned for the pool, plain for the target)
projected and normalised, computed here directly with torch.autograd; a pool row identical to the
target row ranks first; a build killed after m rows resumes to the same datastore; a second target
on the same pool reuses the datastore; the CLI refuses a missing or invalid --target (exit 2).
The torch projector (issue 25) on its own: one matrix whatever the chunking, +-1/sqrt(k) entries,
inner products kept (JL); the projector enters the datastore key."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from sharpset.dataio import read_records, write_records
from sharpset.stages.curate import CurateConfig, canonical_order
from sharpset.stages.curate.less import (DatastoreConfig, LessContext, Stopped, TorchProjector, open_datastore,
                                         s_less)

TOPICS = [s.split() for s in ("What causes the seasons on Earth tilt axis",
                              "Write a haiku about autumn rain leaves fall sings softly",
                              "How do I reverse a list in Python use reversed slicing",
                              "system user assistant hello world")]


def row(rng: random.Random, words: list[str]) -> dict:
    return {"messages": [{"role": "user", "content": " ".join(rng.choices(words, k=6))},
                         {"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randint(3, 20)))}]}


def pool_and_target(seed: int = 0, n: int = 36) -> tuple[list[dict], dict]:
    """n pool rows over three topics, and a target row of a fourth topic that is also in the pool."""
    rng = random.Random(seed)
    t = row(rng, TOPICS[3])
    return canonical_order([row(rng, TOPICS[i % 3]) for i in range(n)] + [t]), t


def config(model_dir: Path, target: Path, **kw) -> CurateConfig:
    base = dict(input="x", strategy="less", target=str(target), selector=str(model_dir), proj_dim=300,
                chunk_rows=8, n=5, gates=[])
    return CurateConfig(**{**base, **kw})


def quiet(_msg: str) -> None:
    pass


def recovered_matrix(grad_dim: int, proj_dim: int, seed: int, step: int = 0):
    """The torch projector's matrix M, read off by projecting identity rows (row d of I M is row d
    of M, exactly: one nonzero product per entry); ``step`` rows at a time (0: all at once)."""
    import torch

    eye = torch.eye(grad_dim)
    step = step or grad_dim
    return torch.cat([TorchProjector(grad_dim, proj_dim, seed).project(eye[i:i + step])
                      for i in range(0, grad_dim, step)])


def test_torch_projector_is_one_matrix_whatever_the_chunking():
    import torch

    d, k = 300, 100  # three blocks (the last partial); k not a multiple of 64
    whole = recovered_matrix(d, k, 3)
    assert torch.equal(whole, recovered_matrix(d, k, 3, step=1))  # one row at a time
    assert torch.equal(whole, recovered_matrix(d, k, 3, step=7))  # chunks across block edges
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert torch.equal(whole, recovered_matrix(d, k, 3, step=50))
    finally:
        torch.set_num_threads(threads)
    proj = TorchProjector(d, k, 3)
    for b in range(proj.n_blocks):  # any block regenerates alone, from (seed, block index)
        assert torch.equal(TorchProjector(d, k, 3).block(b), whole[b * proj.block_rows:(b + 1) * proj.block_rows])
    assert not torch.equal(whole, recovered_matrix(d, k, 4))
    x = torch.randn(12, d, generator=torch.Generator().manual_seed(0))
    together = proj.project(x)
    assert torch.equal(together, TorchProjector(d, k, 3).project(x))  # same shapes: the same bits
    one_by_one = torch.cat([proj.project(x[i:i + 1]) for i in range(len(x))])
    assert torch.allclose(together, one_by_one, rtol=1e-5, atol=1e-6)  # BLAS kernels differ by row count
    assert torch.allclose(together, x @ whole, rtol=1e-5, atol=1e-5)


def test_torch_projector_entries_are_rademacher_over_sqrt_k():
    import torch

    d, k = 300, 100
    m = recovered_matrix(d, k, 0)
    assert m.shape == (d, k) and set(m.abs().unique().tolist()) == {torch.tensor(1 / k ** 0.5).item()}
    assert abs((m > 0).float().mean().item() - 0.5) < 0.02  # 30,000 signs: sd 0.003
    # independent columns and rows (a bit read twice, or two blocks drawn from one seed, gives 1):
    # off-diagonal correlations of +-1 entries have sd 1/sqrt(d) (columns) and 1/sqrt(k) (rows)
    cols = (m.T @ m) * k / d
    rows = (m @ m.T)
    assert (cols - torch.eye(k)).abs().max() < 6 / d ** 0.5 and (rows - torch.eye(d)).abs().max() < 7 / k ** 0.5
    assert torch.allclose(cols.diagonal(), torch.ones(k))


def test_torch_projector_keeps_inner_products():
    """JL: E[<xM, yM>] = <x, y>; at k = 2048 a squared norm is kept within ~sqrt(2/k) = 3% (sd), so a
    wrong scale (+-1 entries: x k; 1/k: / k; a factor sqrt 2 anywhere) is far outside."""
    import torch

    d, k = 4096, 2048
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, d, generator=gen) * torch.logspace(-2, 2, 16)[:, None]
    y = x + 0.7 * x.norm(dim=1, keepdim=True) / d ** 0.5 * torch.randn(16, d, generator=gen)
    proj = TorchProjector(d, k, 0)
    px, py = proj.project(x), proj.project(y)
    ratio = px.norm(dim=1) ** 2 / x.norm(dim=1) ** 2
    assert (ratio - 1).abs().max() < 0.15 and abs(ratio.mean().item() - 1) < 0.03
    cos = torch.nn.functional.cosine_similarity
    assert (cos(px, py) - cos(x, y)).abs().max() < 0.06  # cos(x, y) ~ 0.82 here
    assert (px @ py.T).diagonal().div(x.mul(y).sum(dim=1)).sub(1).abs().max() < 0.2


def test_the_projector_enters_the_datastore_key(tiny_model_dir, tmp_path):
    """torch (the default) is a key of its own; trak is the datastore's field default, so a trak
    datastore built before issue 25 keeps its key."""
    from sharpset.run import key_config

    rows, _ = pool_and_target(n=4)
    torch_cfg = DatastoreConfig.of(config(tiny_model_dir, tmp_path / "t.jsonl"), rows)
    trak_cfg = DatastoreConfig.of(config(tiny_model_dir, tmp_path / "t.jsonl", projector="trak"), rows)
    assert key_config(torch_cfg)["projector"] == "torch" and "projector" not in key_config(trak_cfg)
    assert {k: v for k, v in key_config(torch_cfg).items() if k != "projector"} == key_config(trak_cfg)
    problems = config(tiny_model_dir, tmp_path, projector="numpy").less_check()
    assert ("projector", "must be one of torch, trak") in problems


@pytest.mark.parametrize("projector", ["torch", "trak"])
def test_features_are_the_projected_lora_gradients(tiny_model_dir, tmp_path, projector):
    """Pool row: Adam's direction m'/(sqrt(v')+eps) from the checkpoint's moments; target row: the
    plain gradient; both projected (seed 0) to unit length: by the torch projector's matrix (read
    off from identity rows) or by trak's own projector. Recomputed here from the logits with
    torch.autograd.grad, outside sharpset's loss and loop."""
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from trak.projectors import BasicProjector, ProjectionType
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sharpset.models.profiles import encode, profile_for

    rows, t = pool_and_target()
    write_records([t], tmp_path / "target.jsonl")
    cfg = config(tiny_model_dir, tmp_path / "target.jsonl", projector=projector)
    sel = s_less(rows, None, cfg, LessContext(tmp_path / "ds", tmp_path / "work", quiet))
    ds = Path(sel.info["datastore"])
    index = json.loads((ds / "index.json").read_text())
    assert index["projection"]["seed"] == 0 and index["projection"]["proj_dim"] == 300
    assert index["projection"]["projector"] == projector and index["projection"]["block_size"] == 128
    assert index["projection"]["class"] == {"torch": "TorchProjector", "trak": "BasicProjector"}[projector]
    assert [c["name"] for c in index["checkpoints"]] == [f"epoch-{e}" for e in range(1, 5)]
    used = sel.info["checkpoints"]
    assert abs(sum(c["weight"] for c in used) - 1) < 1e-9
    weights = [c["weight"] for c in used]
    assert weights == sorted(weights, reverse=True)  # linear decay: earlier epochs weigh more (mean lr of the epoch)
    assert [c["mean_lr"] for c in used] == [c["mean_lr"] for c in index["checkpoints"]]

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    profile = profile_for(tok)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=cfg.selector_lora_r, lora_alpha=cfg.selector_lora_alpha,
                                      target_modules=list(cfg.selector_modules), task_type="CAUSAL_LM")).eval()
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    grad_dim = sum(p.numel() for p in params.values())
    if projector == "trak":
        trak = BasicProjector(grad_dim=grad_dim, proj_dim=300, seed=0, proj_type=ProjectionType.rademacher,
                              device=torch.device("cpu"), block_size=128)
        project = lambda g: trak.project(g[None], model_id=0)[0]  # noqa: E731
    else:
        matrix = recovered_matrix(grad_dim, 300, 0)
        project = lambda g: g @ matrix  # noqa: E731

    def direct(messages, ckpt: Path, adam: bool):
        weights = load_file(str(ckpt / "trainable.safetensors"))
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(weights[n])
        enc = encode(profile, tok, messages, train_on="assistant")
        ids, labels = torch.tensor([enc.input_ids]), torch.tensor(enc.labels)
        logits = model(input_ids=ids).logits[0, :-1]
        keep = labels[1:] != -100
        loss = F.cross_entropy(logits[keep], labels[1:][keep])  # mean over the answer tokens
        g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, list(params.values()))])
        if adam:
            opt = torch.load(ckpt / "optimizer.pt", weights_only=True)
            (b1, b2), eps = opt["param_groups"][0]["betas"], opt["param_groups"][0]["eps"]
            m = torch.cat([opt["state"][n]["exp_avg"].reshape(-1) for n in params])
            v = torch.cat([opt["state"][n]["exp_avg_sq"].reshape(-1) for n in params])
            g = (b1 * m + (1 - b1) * g) / ((b2 * v + (1 - b2) * g * g).sqrt() + eps)
        return F.normalize(project(g), dim=0)

    every = torch.cat([load_file(str(ds / c["file"]))["features"] for c in index["chunks"]])
    assert sel.info["pool_mean_direction"] == [round(float(x), 4) for x in every.mean(dim=0).norm(dim=-1)]
    assert all(0 < x < 1 for x in sel.info["pool_mean_direction"])

    i = 10  # a pool row in the second chunk
    chunk = load_file(str(ds / index["chunks"][i // 8]["file"]))["features"]
    assert index["chunks"][i // 8]["ids"][i % 8] == rows[i]["id"]
    target = load_file(str(tmp_path / "work" / "less_target" / "chunks" / "00000.safetensors"))["features"]
    for c, ck in enumerate(index["checkpoints"]):
        path = ds / "warmup" / "checkpoints" / ck["name"]
        assert torch.allclose(chunk[i % 8, c], direct(rows[i]["messages"], path, adam=True), atol=2e-5)
        assert torch.allclose(target[0, c], direct(t["messages"], path, adam=False), atol=2e-5)
    assert torch.allclose(chunk.norm(dim=-1), torch.ones(chunk.shape[:2]), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_pool_row_identical_to_the_target_ranks_first(tiny_model_dir, tmp_path, seed):
    rows, t = pool_and_target(seed)
    write_records([t], tmp_path / "target.jsonl")
    sel = s_less(rows, None, config(tiny_model_dir, tmp_path / "target.jsonl", seed=seed, n=len(rows)),
                 LessContext(tmp_path / "ds", tmp_path / "work", quiet))
    same = [r["messages"] for r in rows].index(t["messages"])
    assert sel.idx[0] == same and sel.scores[0] > sel.scores[1]
    assert sel.scores == sorted(sel.scores, reverse=True) and len(sel.idx) == len(rows)
    assert sel.info["selected_per_group"] == {rows[same]["id"]: len(rows)}


def test_resume_after_a_kill_gives_the_same_datastore(tiny_model_dir, tmp_path):
    rows, t = pool_and_target(n=20)
    write_records([t], tmp_path / "target.jsonl")
    cfg = config(tiny_model_dir, tmp_path / "target.jsonl")
    whole, _ = open_datastore(cfg, rows, tmp_path / "a", quiet)
    # 4 checkpoints x 8 rows = 32 row gradients per chunk: 45 = chunk 0 written, 13 spilled of chunk 1
    with pytest.raises(Stopped):
        open_datastore(cfg, rows, tmp_path / "b", quiet, stop_after_rows=45)
    killed = next((tmp_path / "b").iterdir())
    assert (killed / "chunks" / "00000.safetensors").exists() and not (killed / "chunks" / "00001.safetensors").exists()
    assert len(list((killed / "spill").rglob("*.safetensors"))) == 13
    assert json.loads((killed / "manifest.json").read_text())["status"] == "running"
    logs: list[str] = []
    resumed, _ = open_datastore(cfg, rows, tmp_path / "b", logs.append)
    assert not any("warm-up: epoch" in m for m in logs)  # the warm-up's checkpoints were kept
    assert resumed.key == whole.key and resumed.path.name == whole.path.name
    assert resumed.index == whole.index
    for c in whole.index["chunks"]:
        assert (resumed.path / c["file"]).read_bytes() == (whole.path / c["file"]).read_bytes()
    logged = [json.loads(l)["key"] for l in (resumed.path / "samples.partial.jsonl").read_text().splitlines()]
    assert sorted(logged) == sorted(r["id"] for r in rows) and not (resumed.path / "spill").exists()


def test_second_target_reuses_the_datastore(tiny_model_dir, tmp_path):
    from sharpset.run import RunDir
    from sharpset.stages import curate

    rows, t = pool_and_target(n=16)
    write_records(rows, tmp_path / "pool.jsonl")
    write_records([t], tmp_path / "t1.jsonl")
    write_records([rows[3], rows[4]], tmp_path / "t2.jsonl")

    def emb(texts):  # the report's embeddings only; LESS does not use them
        v = np.random.default_rng(0).standard_normal((len(texts), 8))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    out = {}
    for name in ("t1", "t2"):
        cfg = config(tiny_model_dir, tmp_path / f"{name}.jsonl", input=str(tmp_path / "pool.jsonl"))
        run = RunDir.open(tmp_path / "runs" / name, "curate", curate.VERSION, cfg, inputs=[cfg.input])
        logs: list[str] = []
        curate.run(cfg, run, log=logs.append, embed=emb)
        out[name] = (logs, json.loads((run.path / "curate_report.json").read_text()))
    logs1, rep1 = out["t1"]
    logs2, rep2 = out["t2"]
    assert any("warm-up: epoch 1" in m for m in logs1) and any("adam features" in m for m in logs1)
    assert any("(cached)" in m for m in logs2) and not any("adam features" in m or "warm-up: epoch" in m for m in logs2)
    assert any("sgd features: 2/2" in m for m in logs2)
    info1, info2 = rep1["strategy_info"], rep2["strategy_info"]
    assert info1["datastore"] == info2["datastore"] and Path(info1["datastore"]).parent == tmp_path / "runs" / "less-datastores"
    assert rep2["n_selected"] == 5 and info2["target_rows"] == 2 and info2["groups"] == 2
    assert sum(info2["selected_per_group"].values()) == 5 and set(info2["selected_per_group"]) <= {rows[3]["id"], rows[4]["id"]}
    assert [r["curate_strategy"] for r in read_records(tmp_path / "runs" / "t2", "sft").rows] == ["less"] * 5


def test_the_datastore_covers_the_pool_before_the_gates(tiny_model_dir, tmp_path):
    """The gates narrow the rows LESS selects from, not the datastore: the same datastore (one build)
    serves a gated and an ungated selection, and the gated one is the ungated order without the
    rows a gate drops (here loops, found from the text of an untagged pool)."""
    from sharpset.stages.curate import curate_rows

    rows, t = pool_and_target(n=16)
    loops = [{"messages": [{"role": "user", "content": "Tell me about the sea"},
                           {"role": "assistant", "content": "the sea is the sea is " * 20 + s}]}
             for s in ("blue", "grey", "wide")]
    rows = canonical_order(rows + loops)
    write_records([t], tmp_path / "target.jsonl")

    def emb(texts):
        v = np.random.default_rng(0).standard_normal((len(texts), 8))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    out = {}
    for gates in ([], ["loop"]):
        logs: list[str] = []
        ctx = LessContext(tmp_path / "ds", tmp_path / f"work{len(gates)}", logs.append)
        res = curate_rows(rows, config(tiny_model_dir, tmp_path / "target.jsonl", n=len(rows), gates=gates),
                          embed=emb, less=ctx)
        out[len(gates)] = (logs, res)
    (logs0, ungated), (logs1, gated) = out[0], out[1]
    assert any("adam features" in m for m in logs0) and not any("adam features" in m for m in logs1)
    assert ungated.report["strategy_info"]["datastore"] == gated.report["strategy_info"]["datastore"]
    loop_ids = {r["id"] for r in canonical_order(loops)}
    assert gated.report["gates"] == {"loop": 3} and gated.report["gates_from_text"] == {"loop": len(rows)}
    assert gated.report["strategy_info"]["datastore_rows"] == len(rows) == gated.report["strategy_info"]["candidates"] + 3
    assert [r["id"] for r in gated.selected] == [r["id"] for r in ungated.selected if r["id"] not in loop_ids]
    assert loop_ids <= {r["id"] for r in ungated.selected}


def test_cli_refuses_a_missing_or_invalid_target(tiny_model_dir, tmp_path, capsys):
    from sharpset.cli import main

    write_records(pool_and_target(n=8)[0], tmp_path / "pool.jsonl")
    args = ["curate", str(tmp_path / "pool.jsonl"), "--strategy", "less", "--selector", str(tiny_model_dir), "--n", "2"]
    assert main([*args, "--out", str(tmp_path / "o1")]) == 2
    assert "target: required with --strategy less" in capsys.readouterr().err
    assert main([*args, "--target", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "target:" in err and "nope.jsonl: no such file or folder" in err
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
    bad.write_text(good + "\n" + json.dumps({"messages": [{"role": "user", "content": "only a question"}]}) + "\n")
    assert main([*args, "--target", str(bad), "--out", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: messages[0].role:" in err
    assert not (tmp_path / "o3").exists() and not (tmp_path / "less-datastores").exists()  # nothing half-written
    assert main([*args, "--target", str(bad), "--warmup-fraction", "0", "--out", str(tmp_path / "o4")]) == 2
    assert "warmup_fraction: must be in (0, 1]" in capsys.readouterr().err


def test_the_target_file_and_selector_enter_the_run_key(tiny_model_dir, tmp_path):
    """An edited target file (same path) or another selector is a new curate run, never a cache hit;
    the datastore's location is not part of it."""
    from sharpset.run import input_hashes, run_key

    target = tmp_path / "t.jsonl"
    write_records([pool_and_target(n=1)[1]], target)
    key = lambda cfg: run_key("curate", 4, cfg, input_hashes(cfg))  # noqa: E731
    cfg = config(tiny_model_dir, target)
    first = key(cfg)
    assert key(config(tiny_model_dir, target, datastore=str(tmp_path / "elsewhere"))) == first
    assert key(config(tiny_model_dir, target, selector="smollm2-135m-instruct")) != first
    target.write_text(target.read_text().replace("assistant", "assistant", 1) + "\n")
    assert key(cfg) != first


def test_sweep_selection_less_selects_from_the_pool_and_compares_with_random(tiny_model_dir, tmp_path, capsys):
    """sweep --selection less: the format cells take their rows from the whole pool by LESS (target:
    a few format candidates), one datastore per seed under the sweep folder, each compared with the
    random cell of the same n and seed; the plan labels the cells as LESS."""
    from test_quickstart import _pool

    from sharpset.cli import main

    pool = _pool(tmp_path / "pool.jsonl")
    out = tmp_path / "sw"
    argv = ["sweep", "--model", str(tiny_model_dir), "--targets", "format,random", "--sizes", "[3]", "--seeds", "1",
            "--pool", str(pool), "--min-conformance", "0", "--steps", "1", "--eval-limit", "2",
            "--eval-max-new-tokens", "4", "--suites", "shape", "--selection", "less", "--less-target-rows", "2",
            "--less-options", "{warmup_epochs: 2}", "--out", str(out)]
    assert main(argv) == 0
    assert "warmup_epochs: 2" in (out / "cells" / "format-n3-s0" / "select" / "config.yaml").read_text()
    rep = json.loads((out / "cells" / "format-n3-s0" / "select" / "curate_report.json").read_text())
    assert len(rep["strategy_info"]["checkpoints"]) == 2  # less_options reached curate: two warm-up checkpoints
    assert rep["strategy"] == "less" and rep["n_selected"] == 3 and rep["strategy_info"]["target_rows"] == 2
    assert Path(rep["strategy_info"]["datastore"]).parent == out / "less-datastores"
    res = json.loads((out / "sweep.json").read_text())
    assert {r["target"] for r in res["vs_random"]} == {"format"} and "LESS" in res["candidates"]["format"]
    plan = json.loads((out / "plan.json").read_text())
    assert {m["label"] for m in plan["models"]} == {"format (less) n=3 seed 0", "random n=3 seed 0"}


def test_sweep_quality_diversity_tags_an_untagged_pool_first_and_leaves_random_as_given(tiny_model_dir, tmp_path,
                                                                                         capsys):
    """A quality-diversity cell over a pool with no quality/difficulty columns: the sweep tags the pool
    first (`pool-qd-tag`, judge `--judge`) and selects from the tagged rows; the random cells train on
    the pool's rows as given, so their training files (and cache keys) equal those of a sweep without
    quality-diversity."""
    from test_quickstart import _pool

    from sharpset.cli import main
    from sharpset.dataio import read_records

    pool = _pool(tmp_path / "pool.jsonl")
    base = ["sweep", "--model", str(tiny_model_dir), "--sizes", "[3]", "--seeds", "1", "--pool", str(pool),
            "--steps", "1", "--eval-limit", "2", "--eval-max-new-tokens", "4", "--suites", "shape"]
    assert main([*base, "--targets", "random,quality-diversity", "--judge", str(tiny_model_dir),
                 "--out", str(tmp_path / "qd")]) == 0
    assert "quality-diversity: the pool has no quality/difficulty" in capsys.readouterr().out
    tagged = read_records(tmp_path / "qd" / "pool-qd-tag" / "tagged.jsonl", "sft").rows
    assert len(tagged) == len(read_records(pool, "sft").rows) and all("quality" in r for r in tagged)
    rep = json.loads((tmp_path / "qd" / "cells" / "quality-diversity-n3-s0" / "select" / "curate_report.json")
                     .read_text())
    assert rep["strategy"] == "quality-diversity"
    random_rows = (tmp_path / "qd" / "cells" / "random-n3-s0" / "sft.jsonl").read_bytes()
    assert b'"quality"' not in random_rows
    assert main([*base, "--targets", "random", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "cells" / "random-n3-s0" / "sft.jsonl").read_bytes() == random_rows


def test_sweep_less_options_are_checked_against_curates_fields():
    from sharpset.pipelines.sweep import SweepConfig

    assert SweepConfig(less_options={"warmup_epochs": 2, "proj_dim": 512}).check() == []
    problems = dict(SweepConfig(less_options={"warmup_epoch": 2}).check())
    assert "unknown ['warmup_epoch']" in problems["less_options"] and "warmup_epochs" in problems["less_options"]
    assert "unknown ['selector']" in dict(SweepConfig(less_options={"selector": "x"}).check())["less_options"]
    assert dict(SweepConfig(less_options={"warmup_epochs": 0}).check())["less_options"] == "warmup_epochs: must be >= 1"
    assert "mapping" in dict(SweepConfig(less_options=[1]).check())["less_options"]


def test_the_shared_direction_warning_fires_when_every_pool_feature_is_the_same(tmp_path):
    """score_pool's mean direction: 1 for identical unit features, ~0 for spread ones; s_less warns above
    SHARED_DIRECTION_WARN (the measured failure: a short warm-up's Adam step is mostly its momentum)."""
    import torch
    from safetensors.torch import save_file

    from sharpset.stages.curate.less import SHARED_DIRECTION_WARN, Datastore, score_pool

    def store(feats):
        (tmp_path / "c").mkdir(exist_ok=True)
        save_file({"features": feats}, str(tmp_path / "c" / "00000.safetensors"))
        index = {"chunks": [{"file": "c/00000.safetensors", "ids": [f"r{i}" for i in range(len(feats))]}]}
        return Datastore(path=tmp_path, key="k", index=index)

    one = torch.nn.functional.normalize(torch.ones(1, 2, 16), dim=-1)
    same = store(one.repeat(6, 1, 1).contiguous())
    *_, mean_direction = score_pool(same, one, [0.5, 0.5], [[0]])
    assert mean_direction == [1.0, 1.0] and min(mean_direction) > SHARED_DIRECTION_WARN
    eye = torch.eye(16)[:8, None, :].repeat(1, 2, 1).contiguous()
    ids, scores, best, spread = score_pool(store(eye), eye[:1], [0.5, 0.5], [[0]])
    assert spread == [round(8 ** 0.5 / 8, 4)] * 2 and scores[0] == 1.0 and scores[1] == 0.0
