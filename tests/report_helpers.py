"""A small pipeline folder for the report tests, made in seconds on tiny random models.

``make_pipeline(root, tiny_model_dir)`` writes: a synth run (with drop reasons), two train runs
(8 and 16 rows, each with a loss curve and a ``merged/`` tiny model of its own seed), a real
``sharpset eval`` of the start model and both train runs (shape, token_shift, invariance), and a
plan.json. Then it plants XSS payloads in what the report reads (a prompt, an answer, a token, a
summary key, a plan label), as a hostile record would.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
# payloads that leave a trace in the DOM if they ever run (the browser test looks for it)
TITLE_PAYLOAD = "<script>document.title='PWNED'</script>"
ATTR_PAYLOAD = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
LABEL = f"size-16 {SCRIPT}"


def _manifest(path: Path, stage: str, counts: dict, metrics: dict, config: dict, outputs: list[str],
              inputs: dict | None = None, models: dict | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "manifest.json").write_text(json.dumps({
        "key": f"key-{path.name}", "stage": stage, "transform_version": 1, "status": "complete",
        "created": f"2026-01-01T00:00:0{len(list(path.parent.iterdir()))}Z", "git": {"sha": "0123456789abcdef", "dirty": False},
        "inputs": inputs or {}, "models": models or {}, "counts": counts, "metrics": metrics, "elapsed_s": 3.2,
        "outputs": {o: "x" for o in outputs}}))


def _train_run(root: Path, name: str, n: int, seed: int, tiny_model_dir: Path) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import build_tiny_llama

    from transformers import AutoTokenizer

    tr = root / name
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    build_tiny_llama(len(tok), seed=seed).save_pretrained(tr / "merged", safe_serialization=True)
    tok.save_pretrained(tr / "merged")
    steps = [{"step": s, "epoch": 0, "lr": 2e-4, "loss": round(3.0 * 0.8 ** s, 4)} for s in range(6)]
    (tr / "losses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in steps))
    _manifest(tr, "train", {"read": n + 1, "written": n, "dropped": 1, "rejected": 0},
              {"rows_used": n, "rows_too_long": 1, "optimizer_steps": 6, "loss_first": 3.0, "loss_last": 0.98},
              {"model": str(tiny_model_dir), "objective": "sft", "lr": 2e-4, "epochs": 3, "min_steps": 0, "seed": 0,
               "sft": str(root / "synth" / "synth.jsonl")},
              ["merged/model.safetensors", "losses.jsonl"], inputs={str(root / "synth" / "synth.jsonl"): "abc"},
              models={"start": {"name": str(tiny_model_dir)}})
    return tr


def make_pipeline(root: Path, tiny_model_dir: Path) -> Path:
    from sharpset.cli import main

    root.mkdir(parents=True, exist_ok=True)
    synth = root / "synth"
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": f"question {i}"},
                                         {"role": "assistant", "content": f"answer {i}"}]} for i in range(7)]
    synth.mkdir()
    (synth / "synth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _manifest(synth, "synth", {"read": 10, "written": 7, "dropped": 3, "rejected": 0},
              {"drop_reasons": {"empty_response": 2, "not_english": 1}}, {"model": "smollm2-135m-instruct"},
              ["synth.jsonl"])
    a = _train_run(root, "train-n8", 8, 1, tiny_model_dir)
    b = _train_run(root, "train-n16", 16, 2, tiny_model_dir)
    ev = root / "eval"
    rc = main(["eval", str(tiny_model_dir), str(a), str(b), "--base", str(tiny_model_dir),
               "--suites", "shape,token_shift,invariance", "--invariance-families", "sycophancy", "--limit", "2",
               "--max-new-tokens", "8",
               "--progress", "false", "--out", str(ev)])
    assert rc == 0
    (root / "plan.json").write_text(json.dumps({"title": "tiny pipeline", "models": [
        {"train_run": "train-n8", "target": "shape", "label": "size-8"},
        {"train_run": "train-n16", "target": "shape", "label": LABEL}]}))
    _plant_payloads(ev)
    return root


def _plant_payloads(ev: Path) -> None:
    f = ev / "samples" / "shape.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    item = next(r["item"] for r in rows if r["model"].startswith("m1:"))
    for r in rows:
        if r["item"] == item:
            r["prompt"] = f"Tell me {SCRIPT} and {IMG} please"
            if r["model"].startswith("m1:"):
                r["answer"] = f"{IMG} {TITLE_PAYLOAD} {ATTR_PAYLOAD}"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    f = ev / "samples" / "token_shift.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    for r in rows:
        if r["tokens"]:
            r["tokens"][0] = SCRIPT
            r["prompt"] = IMG
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = json.loads((ev / "summary.json").read_text())
    for lab, res in s["suites"]["shape"]["models"].items():
        res["extra"]["opening_distribution"] = {SCRIPT: 1, "direct": 1}
    (ev / "summary.json").write_text(json.dumps(s))


_MADE: dict[str, Path] = {}


def shared_pipeline(tmp_path_factory, tiny_model_dir: Path) -> Path:
    """One pipeline folder per test session (the eval takes a while on 2 busy cores); tests that
    change it work on a copy (shutil.copytree)."""
    key = str(tiny_model_dir)
    if key not in _MADE:
        _MADE[key] = make_pipeline(tmp_path_factory.mktemp("report-pipeline") / "pipe", tiny_model_dir)
    return _MADE[key]
