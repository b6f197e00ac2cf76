"""Run folders serve only what this run wrote (issue 10): ``--force`` clears an earlier run whole
and nothing else; the latest TRL checkpoint is the highest step; a curate folder with a control set
reads as its selection; a recipe name or a manifest ``outputs`` entry cannot point outside its folder.

Each test here failed before the fix (``--force`` kept ``checkpoints/`` and ``trl/checkpoint-*``
and deleted a file it had not written; ``checkpoint-50`` was picked over ``checkpoint-100``; the
folder read as the control rows; ``../`` names were followed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from sharpset.config import field
from sharpset.dataio import read_records, write_records
from sharpset.errors import UserError
from sharpset.records import RecordError
from sharpset.run import RunDir


@dataclass
class Cfg:
    lr: float = field(1e-3, "a learning rate")


def _listing(out: Path) -> list[str]:
    """A run folder's entries, less the lock an open run holds there (issue 21)."""
    return sorted(p.name for p in out.iterdir() if p.name != RunDir.LOCK)


def _sft(i: int) -> dict:
    return {"id": f"r{i}", "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def test_force_clears_what_the_earlier_run_wrote_subfolders_included(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "NOTES.md").write_text("the user's own file, there before any run")
    (out / "user-data").mkdir()
    (out / "user-data" / "keep.jsonl").write_text("{}\n")
    first = RunDir.open(out, "train", 1, Cfg(lr=1e-3))
    first.log_sample("a", {"x": 1})
    (out / "checkpoints" / "last").mkdir(parents=True)
    (out / "checkpoints" / "last" / "state.json").write_text('{"step": 7}')
    (out / "trl" / "checkpoint-5").mkdir(parents=True)
    (out / "losses.jsonl").write_text('{"step": 0}\n')
    first.finish(outputs=["losses.jsonl"])

    with pytest.raises(UserError, match="holds a different run"):
        RunDir.open(out, "train", 1, Cfg(lr=5e-4))
    second = RunDir.open(out, "train", 1, Cfg(lr=5e-4), force=True)
    assert (out / RunDir.LOCK).exists()  # held by the open (unfinished) run
    left = _listing(out)
    assert left == ["NOTES.md", "config.yaml", "manifest.json", "user-data"]
    assert (out / "user-data" / "keep.jsonl").exists() and second.done_samples() == {}
    assert second.manifest["foreign"] == ["NOTES.md", "user-data"]
    # and a third forced run still knows what is foreign
    (out / "checkpoints").mkdir()
    RunDir.open(out, "train", 1, Cfg(lr=1e-4), force=True)
    assert _listing(out) == ["NOTES.md", "config.yaml", "manifest.json", "user-data"]


def test_force_on_a_folder_from_before_foreign_was_recorded(tmp_path):
    out = tmp_path / "old"
    run = RunDir.open(out, "train", 1, Cfg())
    del run.manifest["foreign"]
    (out / "checkpoints" / "last").mkdir(parents=True)
    (out / "adapter").mkdir()
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"x")
    (out / "someone-elses-folder").mkdir()
    run.finish(outputs=["adapter/adapter_model.safetensors"])
    RunDir.open(out, "train", 1, Cfg(lr=0.5), force=True)
    assert _listing(out) == ["config.yaml", "manifest.json", "someone-elses-folder"]


def test_a_fresh_run_that_stops_on_bad_input_leaves_nothing(tmp_path):
    from sharpset.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "robot", "content": "x"}]}\n')
    assert main(["tag", str(bad), "--scores", "shape", "--out", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep")
    assert main(["tag", str(bad), "--scores", "shape", "--out", str(existing)]) == 2
    assert sorted(p.name for p in existing.iterdir()) == ["mine.txt"]


def test_latest_trl_checkpoint_is_the_highest_step(tmp_path, monkeypatch):
    import trl

    from sharpset.train import TrainConfig
    from sharpset.train.sft import train_trl

    seen = {}

    class FakeTrainer:
        def __init__(self, **kw):
            pass

        def train(self, resume_from_checkpoint=None):
            seen["resume"] = resume_from_checkpoint

    monkeypatch.setattr(trl, "SFTTrainer", FakeTrainer)
    monkeypatch.setattr(trl, "SFTConfig", lambda **kw: kw)
    out = tmp_path / "trl"
    for step in (50, 100, 9):
        (out / f"checkpoint-{step}").mkdir(parents=True)
    ex = [{"ids": [1, 2, 3], "labels": [-100, 2, 3]}]
    train_trl(TrainConfig(sft="x"), None, None, ex, out, log=lambda m: None)
    assert Path(seen["resume"]).name == "checkpoint-100"


def test_curate_folder_with_a_control_reads_as_the_selection(tmp_path):
    import numpy as np

    from sharpset.stages import curate

    src = tmp_path / "pool.jsonl"
    rows = [dict(_sft(i), quality=4.0, difficulty=3.0, task="parity") for i in range(6)]
    for i, r in enumerate(rows):
        r["messages"][1]["content"] = "yes" if i % 2 else "no"
    write_records(rows, src)
    cfg = curate.CurateConfig(input=str(src), n=3, strategy="random", control="simplified")
    run = RunDir.open(tmp_path / "curated", "curate", curate.VERSION, cfg)
    curate.run(cfg, run, log=lambda m: None,
               embed=lambda texts: np.eye(len(texts), 8, dtype=np.float32))
    got = read_records(tmp_path / "curated").rows
    assert len(got) == 3 and all("curate_rank" in r and "control" not in r for r in got)
    ctl = read_records(tmp_path / "curated" / "control_simplified.jsonl").rows
    assert ctl and all(r["control"] == "simplified" for r in ctl)


@pytest.mark.parametrize("entry", ["../outside.jsonl", "sub/../../outside.jsonl", "ABS"])
def test_manifest_outputs_cannot_point_outside_the_folder(tmp_path, entry):
    outside = tmp_path / "outside.jsonl"
    write_records([_sft(1)], outside)
    run = tmp_path / "run"
    run.mkdir()
    name = str(outside) if entry == "ABS" else entry
    (run / "manifest.json").write_text(json.dumps({"status": "complete", "outputs": {name: "x"}}))
    with pytest.raises(RecordError, match="points outside the run folder"):
        read_records(run)


def test_manifest_output_link_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.jsonl"
    write_records([_sft(1)], outside)
    run = tmp_path / "run"
    run.mkdir()
    (run / "data.parquet").symlink_to(outside)
    (run / "manifest.json").write_text(json.dumps({"status": "complete", "outputs": {"data.parquet": "x"}}))
    with pytest.raises(RecordError, match="points outside"):
        read_records(run)


@pytest.mark.parametrize("name", ["../../escape", "a/b", "/tmp/x", ".hidden", ""])
def test_recipe_name_must_be_a_plain_name(tmp_path, name):
    from sharpset import recipes

    f = tmp_path / "r.yaml"
    f.write_text(f"name: {json.dumps(name)}\npipeline: quickstart\nconfig: {{}}\n")
    with pytest.raises(UserError, match=rf"{f}:1: name: "):
        recipes.load(str(f))


def test_a_plain_recipe_name_is_accepted(tmp_path):
    from sharpset import recipes

    f = tmp_path / "r.yaml"
    f.write_text("name: my-run_2.b\npipeline: quickstart\nconfig: {}\n")
    assert recipes.load(str(f)).name == "my-run_2.b"
