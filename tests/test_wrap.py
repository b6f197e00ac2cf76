"""sharpset wrap: families and paraphrases, suffix property, split by family, drops, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharpset.config import from_mapping
from sharpset.dataio import read_records, write_records
from sharpset.records import validate
from sharpset.stages.wrap import (QUESTIONS, WrapConfig, counterfactual_messages, load_families, make_pairs,
                           mentions, select_families, validity)

GROUPS = ("sycophancy", "jailbreak", "noise", "partner")


def test_families_have_12_paraphrases_and_are_prefixes():
    fams = load_families()
    for g in GROUPS:
        assert select_families([g], fams), g
    assert {"sycophancy/suggested", "sycophancy/opinion", "sycophancy/pushback", "sycophancy/authority",
            "jailbreak/roleplay", "jailbreak/hidden", "jailbreak/injection", "noise/typos", "noise/distractor",
            "noise/format", "partner/intervention"} <= set(fams)
    for name, fam in fams.items():
        assert len(set(fam["templates"])) >= 12, name
        if fam["kind"] == "template" and name != "jailbreak/injection":
            assert all(t.endswith("{prompt}") for t in fam["templates"]), name
    assert len(set(fams["partner/intervention"]["counterfactual_notes"])) >= 12


def test_make_pairs_suffix_split_and_counterfactual():
    fams = load_families()
    cfg = from_mapping(WrapConfig, {"families": list(GROUPS), "heldout_families": ["sycophancy/authority", "noise"],
                                    "pairs_per_family": 2})
    names = select_families(cfg.families, fams)
    heldout = set(select_families(cfg.heldout_families, fams))
    row = {"id": "q1", "messages": [{"role": "user", "content": "What is 2 + 3? Answer briefly."}],
           "answer": "5", "wrong": "6", "format": "open"}
    pairs, na = make_pairs(row, "2 + 3 = 5.", names, fams, heldout, cfg)
    assert na == 0 and len(pairs) == 2 * len(names)
    for p in pairs:
        assert validate(p, "pair") == [], p
        assert p["split"] == ("heldout" if p["family"] in heldout else "train")
        if p["family"] == "sycophancy/pushback":
            assert p["wrapped"][:1] == p["clean"] and p["wrapped"][1]["content"] == p["target"]
        elif fams[p["family"]]["kind"] == "template" and fams[p["family"]]["templates"][0].endswith("{prompt}"):
            assert p["clean_is_suffix"] and p["wrapped"][-1]["content"].endswith(p["clean"][-1]["content"])
            assert p["wrapped"][-1]["content"] != p["clean"][-1]["content"]
        if "{wrong}" in fams[p["family"]]["templates"][int(p["wrapper"].split("#")[1])]:
            assert "6" in p["wrapped"][-1]["content"]
    # split is by family: no family has both splits
    by = {}
    for p in pairs:
        by.setdefault(p["family"], set()).add(p["split"])
    assert all(len(s) == 1 for s in by.values())
    cf = [p for p in pairs if p["family"] == "partner/intervention"]
    assert cf and all(p["counterfactual"] for p in cf)
    msgs = counterfactual_messages(cf[0])
    assert cf[0]["counterfactual"] in msgs[-1]["content"] and msgs[-1]["content"].endswith(cf[0]["clean"][-1]["content"])
    # a row without a known wrong answer: families that need {wrong} are skipped, not faked
    open_row = {"id": "q2", "messages": [{"role": "user", "content": "Write a haiku about rain."}]}
    p2, na2 = make_pairs(open_row, "Rain falls.", names, fams, heldout, cfg)
    assert na2 >= 2 and all("{wrong}" not in p["wrapped"][-1]["content"] for p in p2)
    assert all(p["family"] != "sycophancy/suggested" for p in p2)
    # same seed, same pairs; another seed, other paraphrases somewhere
    again, _ = make_pairs(row, "2 + 3 = 5.", names, fams, heldout, cfg)
    assert again == pairs


def test_validity_and_matching():
    assert mentions("There are 8 legs.", "eight") and mentions("The capital is Paris.", "paris")
    assert not mentions("It is 100.", "10") and not mentions("Parisian", "Paris")
    row = {"answer": "Paris", "wrong": "Lyon"}
    assert validity(row, "Paris.", "stop_token", False) is None
    assert validity(row, "Lyon", "stop_token", False) == "wrong_answer"
    assert validity(row, "Paris or Lyon", "stop_token", False) == "wrong_answer"
    assert validity(row, "  ", "stop_token", False) == "empty"
    assert validity(row, "Paris", "length", True) == "truncated"
    assert validity({}, "anything", "stop_token", False) is None
    shipped = read_records(QUESTIONS, "sft", require_response=False).rows
    assert len(shipped) >= 300 and {r["format"] for r in shipped} == {"open", "mc"}


def _input(tmp_path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"Tell me something about topic {i}."}]} for i in range(10)]
    rows += [{"messages": [{"role": "user", "content": f"What is {i} + 1?"}], "answer": str(i + 1),
              "wrong": str(i + 2)} for i in range(6)]
    for i, r in enumerate(rows):
        r["id"] = f"r{i:02d}"
    path = tmp_path / "clean.jsonl"
    write_records(rows, path)
    return path


def _cmd(model_dir, inp, out, *extra):
    return [sys.executable, "-m", "sharpset", "wrap", str(inp), "--model", str(model_dir), "--max-new-tokens", "8", "--temperature", "1.0",
            "--families", "sycophancy,noise", "--heldout-families", "noise", "--batch-size", "1",
            "--out", str(out), *extra]


def test_wrap_run_counts_drops_and_resume(tiny_model_dir, tmp_path):
    inp = _input(tmp_path)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")])
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_cmd(tiny_model_dir, inp, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    log = killed / "samples.partial.jsonl"
    deadline = time.time() + 120
    while (not log.exists() or log.read_bytes().count(b"\n") < 4) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = log.read_bytes().count(b"\n")
    assert 0 < n_before < 16
    r = subprocess.run(_cmd(tiny_model_dir, inp, killed), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" in r.stdout
    r2 = subprocess.run(_cmd(tiny_model_dir, inp, clean), env=env, capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert (killed / "pairs.jsonl").read_text() == (clean / "pairs.jsonl").read_text()
    man = json.loads((clean / "manifest.json").read_text())
    m, c = man["metrics"], man["counts"]
    # the random tiny model cannot answer "i + 1": every known-answer row is dropped, with its reason
    assert m["drop_reasons"]["wrong_answer"] + m["drop_reasons"]["empty"] >= 6
    assert c["read"] == 16 == c["written"] + c["dropped"] + c["rejected"]
    pairs = read_records(clean / "pairs.jsonl", "pair").rows
    assert pairs and all(p["source_id"] < "r10" for p in pairs)
    assert {p["split"] for p in pairs if p["family"].startswith("noise")} == {"heldout"}
    assert {p["split"] for p in pairs if p["family"].startswith("sycophancy")} == {"train"}
    samples = [json.loads(l) for l in log.read_text().splitlines()]
    assert len({s["key"] for s in samples}) == 16
