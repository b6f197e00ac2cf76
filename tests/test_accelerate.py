"""`sharpset train --launch accelerate`: 2 CPU processes -- gloo DDP (shipped config cpu-2proc) and
FSDP2 (cpu-2proc-fsdp: each rank holds half of every weight) -- give the same loss curve and adapter
as one process with the same global batch; FSDP's checkpoints and merged model gather the shards.

Tolerance: per-step losses within 1e-5 relative (the ACT term 1e-4, see REL_ACT), adapter weights within 1e-4 absolute (they move
by ~1e-1 over the run). Why not bit-identical: the two ranks sum their halves of each micro-batch
separately and gloo adds the two gradients, a different fp32 summation order from one process
summing all rows at once (loss differences seen here ~1e-6 relative); Adam divides each update by
the gradient's running RMS, which turns those ~1e-7 gradient differences into weight differences
of up to ~2e-5 at lr 2e-2 (seen: 1.7e-5). Dropout is 0: each rank would draw its own masks.
Seven SFT rows (or 14 pairs) in micro-batches of 3 make the last micro-batch one row, so one rank has nothing
in it and must still join the gradient all-reduce and, under FSDP, the all-gathers (train/distributed.py).
FSDP's gradient clipping takes the norm over both ranks' shards: max_grad_norm 1.0 clips here (the
gradients of lr 2e-2 on a random tiny model are larger), so a per-shard norm would break the match.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate", reason="accelerate not installed")
torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402

from sharpset.dataio import write_records  # noqa: E402

# Default tier: the three tests take ~50 s on 2 cores (five accelerate launches of 2 processes each).

ANSWERS = ["The tilt of the axis.", "Leaves fall, rain sings softly.", "Use reversed or slicing.",
           "Hello world.", "It is blue.", "Seven days.", "Paris is the capital."]
REL = 1e-5
# ACT is a squared difference of two passes' hidden states: the cancellation turns ~1e-7 weight
# differences into ~2e-5 relative on it by the last steps (seen: 2.2e-5 at step 7 under DDP)
REL_ACT = 1e-4


def _run(args, env):
    r = subprocess.run([sys.executable, "-m", "sharpset", *args], env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:  # plain text, whole stderr (a repr inside an assertion cut the cause of a rare SIGABRT)
        pytest.fail(f"sharpset {' '.join(args[:1])} exited {r.returncode}\n--- stdout (tail) ---\n{r.stdout[-4000:]}"
                    f"\n--- stderr ---\n{r.stderr}", pytrace=False)
    return r


def _curve(out: Path):
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


def _pairs(path: Path) -> None:
    from sharpset.config import from_mapping
    from sharpset.stages.wrap import WrapConfig, load_families, make_pairs, select_families

    fams = load_families()
    cfg = from_mapping(WrapConfig, {"families": ["sycophancy/suggested", "partner"], "heldout_families": ["noise"]})
    names = select_families(cfg.families, fams)
    pairs = []
    for i, a in enumerate(ANSWERS):
        row = {"id": f"q{i}", "messages": [{"role": "user", "content": f"What is item {i}?"}], "answer": a,
               "wrong": "nothing"}
        pairs += make_pairs(row, a, names, fams, set(), cfg)[0]
    write_records(pairs, path)


# sft: 7 rows; bct+act+cf: 14 pairs, some with a counterfactual note, so one rank may hold
# counterfactual rows and the other none (under DDP their forward must not be a collective; under
# FSDP every rank must make it), and ACT's frozen pass goes through PEFT's disable_adapter.
@pytest.mark.parametrize("objective,steps", [("sft", 6), ("bct+act+cf", 9)])
def test_two_cpu_processes_match_one_process(tiny_model_dir, tmp_path, objective, steps):
    sft = tmp_path / "sft.jsonl"
    write_records([{"id": f"s{i}", "messages": [{"role": "user", "content": f"Question number {i}?"},
                                                {"role": "assistant", "content": a}]} for i, a in enumerate(ANSWERS)],
                  sft)
    _pairs(tmp_path / "pairs.jsonl")
    data = (["--sft", str(sft)] if objective == "sft" else ["--bct", str(tmp_path / "pairs.jsonl"), "--act-weight", "1e-2"])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")])
    env.pop("WORLD_SIZE", None)
    env.pop("SHARPSET_LAUNCHED", None)
    common = ["train", "--model", str(tiny_model_dir), *data, "--objective", objective,
              "--epochs", "3", "--min-steps", "0", "--batch-size", "3", "--grad-accum", "2", "--lr", "2e-2", "--lora-r", "8",
              "--lora-dropout", "0", "--save-every", "2", "--threads", "1"]
    one = tmp_path / "one"
    _run([*common, "--out", str(one)], env)
    a = _curve(one)
    assert [x["step"] for x in a] == list(range(len(a)))
    # sft: 3 epochs x (3 micro-batches of <= 3 rows, 2 per step -> 2 steps); pairs: 3 x (5 -> 3)
    assert len(a) == steps
    assert a[-1]["loss"] != a[0]["loss"]  # the model did train
    wa = load_file(str(one / "adapter" / "adapter_model.safetensors"))
    assert any(float(wa[k].abs().sum()) > 0 for k in wa if "lora_B" in k)  # lora_B starts at 0: it moved
    moved = max(float(wa[k].abs().max()) for k in wa if "lora_B" in k)
    merged_a = load_file(str(one / "merged" / "model.safetensors"))
    for config, kind in (("cpu-2proc", "multi_cpu"), ("cpu-2proc-fsdp", "fsdp")):
        two = tmp_path / config
        r = _run([*common, "--out", str(two), "--launch", "accelerate", "--accelerate-config", config], env)
        assert "accelerate.commands.launch" in r.stderr  # it did go through accelerate launch
        man = json.loads((two / "manifest.json").read_text())
        assert man["status"] == "complete"
        assert man["metrics"]["processes"] == 2 and man["metrics"]["distributed"] == kind
        b = _curve(two)
        assert [x["step"] for x in b] == [x["step"] for x in a], config
        for x, y in zip(a, b):
            assert set(x) == set(y)
            for k in ("loss", "nll", "act", "cf"):
                if k in x:  # logged values are rounded to 6 decimals, hence the absolute part
                    rel = REL_ACT if k == "act" else REL
                    assert y[k] == pytest.approx(x[k], rel=rel, abs=2e-6), (config, k, x, y)
            assert y["lr"] == x["lr"]
        wb = load_file(str(two / "adapter" / "adapter_model.safetensors"))
        assert wa.keys() == wb.keys()
        worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
        assert worst < 1e-4 and worst < 1e-3 * moved, (config, worst, moved)
        # the merged export (FSDP: rebuilt on rank 0 from the gathered shards) and the last
        # checkpoint (full tensors) are those of the one-process run
        merged_b = load_file(str(two / "merged" / "model.safetensors"))
        assert merged_a.keys() == merged_b.keys() and all(merged_a[k].shape == merged_b[k].shape for k in merged_a)
        assert max(float((merged_a[k] - merged_b[k]).abs().max()) for k in merged_a) < 1e-4, config
        ca = load_file(str(one / "checkpoints" / "last" / "trainable.safetensors"))
        cb = load_file(str(two / "checkpoints" / "last" / "trainable.safetensors"))
        assert ca.keys() == cb.keys() and all(ca[k].shape == cb[k].shape for k in ca)
        assert max(float((ca[k] - cb[k]).abs().max()) for k in ca) < 1e-4, config
        oa = torch.load(one / "checkpoints" / "last" / "optimizer.pt", weights_only=True)["state"]
        ob = torch.load(two / "checkpoints" / "last" / "optimizer.pt", weights_only=True)["state"]
        assert oa.keys() == ob.keys() and all(oa[k]["exp_avg"].shape == ob[k]["exp_avg"].shape for k in oa), config


def test_one_process_checkpoint_resumes_under_fsdp(tiny_model_dir, tmp_path, monkeypatch):
    """A run interrupted in one process (checkpoint at step 2 of 6) resumes under the FSDP launch:
    the checkpoint's full tensors and name-keyed optimizer state are sharded on load, and the whole
    curve matches an uninterrupted one-process run."""
    from sharpset.cli import main
    from sharpset.train import loop

    sft = tmp_path / "sft.jsonl"
    write_records([{"id": f"s{i}", "messages": [{"role": "user", "content": f"Question number {i}?"},
                                                {"role": "assistant", "content": a}]} for i, a in enumerate(ANSWERS)],
                  sft)
    common = ["train", "--model", str(tiny_model_dir), "--sft", str(sft), "--epochs", "3", "--min-steps", "0",
              "--batch-size", "3", "--grad-accum", "2", "--lr", "2e-2", "--lora-r", "8", "--lora-dropout", "0",
              "--save-every", "2", "--save-merged", "false", "--threads", "1"]
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    assert main([*common, "--out", str(clean)]) == 0
    real = loop.train_loop

    def interrupted(*a, **k):  # two steps, then a Ctrl-C
        real(*a, **{**k, "stop_after": 2})
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train_loop", interrupted)
    assert main([*common, "--out", str(resumed)]) == 130
    monkeypatch.setattr(loop, "train_loop", real)
    assert json.loads((resumed / "checkpoints" / "last" / "state.json").read_text())["step"] == 2
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")])
    env.pop("WORLD_SIZE", None)
    env.pop("SHARPSET_LAUNCHED", None)
    r = _run([*common, "--out", str(resumed), "--launch", "accelerate", "--accelerate-config", "cpu-2proc-fsdp"], env)
    assert "resuming from checkpoint at step 2/6" in r.stdout + r.stderr
    a, b = _curve(clean), _curve(resumed)
    assert [x["step"] for x in a] == [x["step"] for x in b] == list(range(6))
    for x, y in zip(a, b):
        assert y["loss"] == pytest.approx(x["loss"], rel=REL, abs=2e-6), (x, y)
    assert json.loads((resumed / "manifest.json").read_text())["metrics"]["distributed"] == "fsdp"
    wa = load_file(str(clean / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(resumed / "adapter" / "adapter_model.safetensors"))
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-4
