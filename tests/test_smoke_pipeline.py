"""quickstart end to end: resume after a kill, and a smoke test on the real embedded model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _cmd(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sharpset", "run", "smoke", "--out", str(out),
            "--set", f"aligned_model={model_dir}", "--set", "base_model=null", "--set", "embedder=null",
            *extra]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_mid_run_then_resume_equals_clean_run(tiny_model_dir, tmp_path):
    extra = ["--set", "n_prompts=60", "--set", "max_new_tokens=24", "--set", "batch_size=1",
             "--set", "temperature=0.9", "--set", "seed=3"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(tiny_model_dir, killed, *extra), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = killed / "samples.partial.jsonl"
    deadline = time.time() + 120
    while _lines(log) < 10 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"finished or died before the kill: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = _lines(log)
    assert 10 <= n_before < 60
    man = json.loads((killed / "manifest.json").read_text())
    assert man["status"] == "running" and not (killed / "answers.jsonl").exists()

    resumed = subprocess.run(_cmd(tiny_model_dir, killed, *extra), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming: {n_before} of 60" in resumed.stdout + resumed.stderr
    clean = tmp_path / "clean"
    fresh = subprocess.run(_cmd(tiny_model_dir, clean, *extra), env=env, capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    a = (killed / "answers.jsonl").read_text()
    b = (clean / "answers.jsonl").read_text()
    rows = [json.loads(l) for l in a.splitlines()]
    assert len(rows) == 60 and len({r["id"] for r in rows}) == 60  # none twice, none missing
    assert a == b
    # the finished run is a cache hit
    again = subprocess.run(_cmd(tiny_model_dir, killed, *extra), env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "up to date (cached)" in again.stdout


@pytest.mark.embedded
def test_smoke_quickstart_on_embedded_aligned_model(tmp_path):
    """The real SmolLM2-135M-Instruct: answers are real text, provenance is complete."""
    out = tmp_path / "qs"
    r = subprocess.run([sys.executable, "-m", "sharpset", "run", "smoke", "--out", str(out),
                        "--set", "n_prompts=4", "--set", "max_new_tokens=48", "--set", "base_model=null"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(l) for l in (out / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        answer = row["messages"][-1]["content"]
        assert row["messages"][-1]["role"] == "assistant" and len(answer.split()) >= 3
        assert "<|im_end|>" not in answer and "<|im_start|>" not in answer
        prov = row["provenance"]
        assert prov["prompt"].startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
        assert prov["prompt"].endswith("<|im_start|>assistant\n")
        assert row["n_new_tokens"] >= 1 and isinstance(row["truncated"], bool)
    # "What is 17 times 23?" is not among the first 4; the seasons question is: a real answer mentions the axis/tilt/sun
    seasons = rows[0]["messages"][-1]["content"].lower()
    assert any(w in seasons for w in ("tilt", "axis", "sun", "orbit")), seasons
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["models"]["aligned"]["chat_family"] == "chatml"
    assert man["metrics"]["answers_mean_pairwise_cosine"] < 0.99
