"""sharpset train on a tiny model through the CLI: parameters change, loss falls, BCT/ACT/cf terms
are logged, and a training process killed mid-run resumes from its checkpoint with the same data
order (same per-step losses and final weights as an uninterrupted run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sharpset.cli import main
from sharpset.config import from_mapping
from sharpset.dataio import write_records
from sharpset.stages.wrap import WrapConfig, load_families, make_pairs, select_families

ANSWERS = ["The tilt of the axis.", "Leaves fall, rain sings softly.", "Use reversed or slicing.",
           "Hello world.", "It is blue.", "Seven days.", "Paris is the capital.", "Eight legs."]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("train-data")
    sft = [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Question number {i}?"},
                                        {"role": "assistant", "content": a}]} for i, a in enumerate(ANSWERS)]
    write_records(sft, d / "sft.jsonl")
    fams = load_families()
    cfg = from_mapping(WrapConfig, {"families": ["sycophancy/suggested", "partner"], "heldout_families": ["noise"]})
    names = select_families(cfg.families, fams)
    pairs = []
    for i, a in enumerate(ANSWERS):
        row = {"id": f"q{i}", "messages": [{"role": "user", "content": f"What is item {i}?"}], "answer": a,
               "wrong": "nothing"}
        pairs += make_pairs(row, a, names, fams, set(), cfg)[0]
    write_records(pairs, d / "pairs.jsonl")
    return d


def _losses(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(l).items() if k != "elapsed_s"}
            for l in (run / "losses.jsonl").read_text().splitlines()]


def test_sft_lora_changes_parameters_and_loss_falls(tiny_model_dir, data, tmp_path):
    out = tmp_path / "sft"
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(data / "sft.jsonl"), "--objective", "sft",
               "--epochs", "10", "--min-steps", "0", "--batch-size", "4", "--lr", "3e-2", "--lora-r", "8", "--out", str(out)])
    assert rc == 0
    curve = _losses(out)
    assert len(curve) == 20
    # the tiny model's tied embedding (std 0.02) bounds how far LoRA can move the logits (~0.6 nats
    # at most), so "fell" is a margin, not a ratio
    assert sum(r["loss"] for r in curve[-3:]) / 3 < sum(r["loss"] for r in curve[:3]) / 3 - 0.05
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["metrics"]["loss_fell"]
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    merged = load_file(str(out / "merged" / "model.safetensors"))
    changed = [k for k in base if k in merged and not torch.equal(base[k], merged[k])]
    assert changed, "no parameter changed after training"
    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert any("lora_B" in k and float(v.abs().sum()) > 0 for k, v in adapter.items())


@pytest.mark.parametrize("objective,extra", [("bct+act+cf", []), ("act", ["--full-finetune", "true"])])
def test_bct_act_cf_terms_logged(tiny_model_dir, data, tmp_path, objective, extra):
    out = tmp_path / objective.replace("+", "_")
    rc = main(["train", "--model", str(tiny_model_dir), "--bct", str(data / "pairs.jsonl"), "--objective", objective,
               "--epochs", "2", "--min-steps", "0", "--batch-size", "4", "--lr", "1e-3", "--act-weight", "1e-2",
               "--save-merged", "false", "--out", str(out), *extra])
    assert rc == 0
    curve = _losses(out)
    if "bct" in objective:
        assert all("nll" in r and "act" in r and "cf" in r for r in curve)
        assert any(r["cf"] > 0 for r in curve)
    else:
        assert all("act" in r and "nll" not in r for r in curve)
        # ACT starts at zero-ish only where wrapped == clean; wrappers differ, so it is positive
        assert curve[0]["act"] > 0
        assert (out / "model" / "model.safetensors").exists()


def _cmd(model_dir, data, out):
    return [sys.executable, "-m", "sharpset", "train", "--model", str(model_dir), "--bct", str(data / "pairs.jsonl"),
            "--objective", "bct+act", "--epochs", "40", "--min-steps", "0", "--batch-size", "2", "--grad-accum", "2", "--lr", "1e-3",
            "--save-every", "3", "--save-merged", "false", "--threads", "1", "--out", str(out)]


def test_kill_mid_training_resumes_with_same_data_order(tiny_model_dir, data, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")])
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_cmd(tiny_model_dir, data, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    curve = killed / "losses.jsonl"
    deadline = time.time() + 180
    while (not curve.exists() or curve.read_bytes().count(b"\n") < 8) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((killed / "checkpoints" / "last" / "state.json").read_text())
    total = state.get("total_steps")
    assert 0 < state["step"] < total
    r = subprocess.run(_cmd(tiny_model_dir, data, killed), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from checkpoint" in r.stdout
    r2 = subprocess.run(_cmd(tiny_model_dir, data, clean), env=env, capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr[-3000:]
    a, b = _losses(killed), _losses(clean)
    assert len(a) == len(b) == total
    assert a == b  # same batches in the same order, same dropout draws, same optimizer state
    wa = load_file(str(killed / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(clean / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_sft_through_trl_sfttrainer_backend(tiny_model_dir, data, tmp_path):
    """--sft-backend trl: TRL's SFTTrainer on the same pre-tokenised rows (assistant-only loss)."""
    out = tmp_path / "trl"
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(data / "sft.jsonl"), "--objective", "sft",
               "--sft-backend", "trl", "--epochs", "3", "--min-steps", "0", "--batch-size", "4", "--lr", "3e-2", "--lora-r", "8",
               "--out", str(out)])
    assert rc == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete"
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    merged = load_file(str(out / "merged" / "model.safetensors"))
    assert any(not torch.equal(base[k], merged[k]) for k in base if k in merged)


def test_trl_backend_puts_no_loss_on_prompt_tokens(tiny_model_dir, data, tmp_path):
    """What TRL's SFTTrainer trains on: the batches it builds keep our labels (-100 on every prompt
    token), and its loss equals the NLL of the assistant tokens alone, not of the whole sequence."""
    from sharpset.config import from_mapping as fm
    from sharpset.dataio import read_records
    from sharpset.stage import load_subject
    from sharpset.train import TrainConfig
    from sharpset.train.losses import token_nll
    from sharpset.train.sft import sft_example, trl_trainer

    cfg = fm(TrainConfig, {"model": str(tiny_model_dir), "sft": str(data / "sft.jsonl"), "sft_backend": "trl",
                           "batch_size": 4, "full_finetune": True})
    s = load_subject(str(tiny_model_dir), log=lambda m: None)
    examples = [sft_example(r, s.profile, s.tok, cfg.max_length) for r in read_records(cfg.sft).rows]
    trainer = trl_trainer(cfg, s.model, s.tok, examples, tmp_path / "trl")
    batch = next(iter(trainer.get_train_dataloader()))
    by_ids = {tuple(e["ids"]): e for e in examples}
    n_prompt = 0
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        n = int(mask.sum())
        ex = by_ids[tuple(ids[:n].tolist())]
        assert labels[:n].tolist() == ex["labels"]  # our assistant-only labels, as given
        assert (labels[n:] == -100).all()  # padding carries no loss either
        prompt = [i for i, l in enumerate(ex["labels"]) if l == -100]
        assert prompt and all(labels[i] == -100 for i in prompt)
        n_prompt += len(prompt)
    assert n_prompt > 0
    s.model.eval()  # no dropout: the two losses below see the same logits
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(s.model, {k: v for k, v in batch.items()}))
        logits = s.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ours = float(token_nll(logits, batch["labels"], reduction="sum")) / int((batch["labels"][:, 1:] != -100).sum())
    every = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    all_tokens = float(token_nll(logits, every, reduction="sum")) / int((every[:, 1:] != -100).sum())
    assert trl_loss == pytest.approx(ours, rel=1e-4)
    assert abs(trl_loss - all_tokens) > 1e-3  # a loss over the prompt too would differ


def test_step_budget_gives_every_set_size_the_same_steps():
    from sharpset.config import from_mapping
    from sharpset.train import TrainConfig
    from sharpset.train.loop import step_plan

    def examples(n):
        return [{"kind": "sft", "ids": list(range(3 + i % 5))} for i in range(n)]

    for n in (3, 8, 21, 64):
        cfg = from_mapping(TrainConfig, {"sft": "x", "batch_size": 4, "max_steps": 10})
        steps, flat = step_plan(cfg, examples(n))
        assert len(flat) == 10
        # each epoch is a fresh shuffle of every example; the last one may be cut short
        for e in range(len(steps) - 1):
            assert sorted(i for st in steps[e] for b in st for i in b) == list(range(n))
    cfg = from_mapping(TrainConfig, {"sft": "x", "batch_size": 4, "epochs": 2, "min_steps": 0})
    assert len(step_plan(cfg, examples(8))[1]) == 4  # no budget: epochs x ceil(8 / 4)


def test_min_steps_extends_a_small_sets_epochs_and_leaves_a_big_one_alone():
    from sharpset.config import from_mapping
    from sharpset.train import TrainConfig
    from sharpset.train.loop import step_plan

    def examples(n):
        return [{"kind": "sft", "ids": list(range(3 + i % 5))} for i in range(n)]

    small = from_mapping(TrainConfig, {"sft": "x", "batch_size": 4, "epochs": 1, "min_steps": 10})
    steps, flat = step_plan(small, examples(8))  # 1 epoch = 2 steps < 10: fresh shuffles up to 10
    assert len(flat) == 10 and len(steps) == 5
    assert all(sorted(i for st in steps[e] for b in st for i in b) == list(range(8)) for e in range(5))
    big = from_mapping(TrainConfig, {"sft": "x", "batch_size": 4, "epochs": 1, "min_steps": 10})
    assert len(step_plan(big, examples(64))[1]) == 16  # 1 epoch = 16 steps >= 10: exactly the epochs
    budget = from_mapping(TrainConfig, {"sft": "x", "batch_size": 4, "max_steps": 3, "min_steps": 10})
    assert len(step_plan(budget, examples(64))[1]) == 3  # a step budget wins
    with pytest.raises(Exception, match="min_steps"):
        from_mapping(TrainConfig, {"sft": "x", "min_steps": -1})


def test_chat_token_rows_train_and_generation_config_ends_the_turn(tiny_model_dir, data, tmp_path):
    """issue 20: the end-of-turn row trains beside LoRA (PEFT trainable tokens, tied head included),
    no other embedding row moves, and the saved generation_config stops plain generate() at it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    out = tmp_path / "eot"
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(data / "sft.jsonl"), "--objective", "sft",
               "--epochs", "3", "--min-steps", "0", "--batch-size", "4", "--lr", "3e-2", "--trainable-tokens", "chat",
               "--out", str(out)])
    assert rc == 0
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    start = tok.convert_tokens_to_ids("<|im_start|>")
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir).get_input_embeddings().weight.detach()
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    after = merged.get_input_embeddings().weight.detach()
    moved = sorted(int(i) for i in torch.nonzero((after - before).abs().amax(1) > 0).flatten())
    assert moved == sorted({eot, start}), moved  # the chat control rows, and only those
    assert torch.equal(merged.get_output_embeddings().weight, after)  # still tied after the merge
    gc = GenerationConfig.from_pretrained(out / "merged")
    eos = [gc.eos_token_id] if isinstance(gc.eos_token_id, int) else list(gc.eos_token_id)
    assert eos[0] == eot


def test_trainable_tokens_off_and_bad_token(tiny_model_dir, data, tmp_path):
    out = tmp_path / "off"
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(data / "sft.jsonl"), "--objective", "sft",
               "--epochs", "1", "--min-steps", "0", "--trainable-tokens", "", "--out", str(out)])
    assert rc == 0
    weights = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert not any("trainable_tokens" in k or "token_adapter" in k for k in weights), list(weights)[:5]
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(data / "sft.jsonl"), "--objective", "sft",
               "--trainable-tokens", "hello there friend", "--out", str(tmp_path / "bad")])
    assert rc == 2


def test_auto_trains_token_rows_only_for_a_model_that_does_not_end_its_turns(tiny_model_dir, monkeypatch):
    import sharpset.train as tr
    from sharpset.config import from_mapping

    cfg = from_mapping(tr.TrainConfig, {"model": str(tiny_model_dir), "sft": "x.jsonl"})
    assert cfg.trainable_tokens == ["auto"]
    for rank, want in ((1, False), (200156, True)):
        monkeypatch.setattr(tr, "end_of_turn_rank", lambda *a, r=rank: r)
        model = tr.prepare_model(cfg, lambda m: None)[0]
        rows = [n for n, p in model.named_parameters() if "trainable_tokens_delta" in n and p.requires_grad]
        assert bool(rows) is want, (rank, rows)


def test_token_rows_get_their_own_learning_rate():
    from types import SimpleNamespace

    from sharpset.train.loop import param_groups

    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    cfg = SimpleNamespace(lr=2e-4, trainable_tokens_lr=5e-3)
    groups = param_groups(cfg, {"x.lora_A.weight": a, "embed.token_adapter.trainable_tokens_delta.default": b})
    assert [len(g["params"]) for g in groups] == [1, 1]
    assert groups[0]["lr_scale"] == 1.0 and abs(groups[1]["lr_scale"] - 25.0) < 1e-9
    assert param_groups(SimpleNamespace(lr=2e-4, trainable_tokens_lr=0.0), {"t.trainable_tokens_delta": b})[0]["lr_scale"] == 1.0
