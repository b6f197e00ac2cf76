"""sharpset constrain: rows kept only when every check passes, winners and tie-breaks, repair,
TRL preference pairs, per-type summary, held-out types, bad input, kill + resume on a tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sharpset.constraints as C
from sharpset.config import from_mapping
from sharpset.dataio import read_records, write_records
from sharpset.errors import UserError
from sharpset.records import validate
from sharpset.run import RunDir
from sharpset.stages.constrain import ConstrainConfig, pick_winner

TYPES = ["punctuation:no_comma", "change_case:english_lowercase", "startend:quotation", "detectable_format:title"]
# candidate texts by seed % 4: two meet all four constraints (of different lengths), two do not
TEXTS = (
    '"<<a day out>> we walked along the river in the morning and then went home for tea"',
    "We walked, then went home.",
    '"<<the plan>> we rest"',
    "<<no quotes>> this one is lowercase but has no quotation marks",
)
K = 2  # candidates per prompt: with 2 of 4 texts passing, about one row in four has none
REPAIRED = '"<<fixed>> here is the answer again without any commas at all"'


class ScriptedEngine:
    """Candidates chosen by seed (so some rows have passing candidates and some do not); a repair
    request (its last user turn asks to rewrite) gets a reply that meets every constraint."""

    def __init__(self, tok):
        self.tok = tok
        self.prompts: list[str] = []

    def generate_iter(self, requests, progress=True):
        from sharpset.engine import GenerationResult

        for j, r in enumerate(requests):
            prompt = self.tok.decode(r.prompt_ids)
            self.prompts.append(prompt)
            text = REPAIRED if "Rewrite your answer" in prompt else TEXTS[r.params.seed % 4]
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            yield j, GenerationResult(r.key, ids, text, "stop_token", False, len(r.prompt_ids), len(ids) + 1)


def _pool(tmp_path: Path, n: int = 10) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"Tell me about a walk number {i}."},
                          {"role": "assistant", "content": "A nice walk."}]} for i in range(n)]
    path = tmp_path / "pool.jsonl"
    write_records(rows, path)
    return path


def _scripted_run(tmp_path, monkeypatch, model, name, pool=None, **over):
    from sharpset.stage import Subject
    from sharpset.stages.constrain import run as constrain_run

    engines = []

    def engine(self, batch_size=16, **kw):
        engines.append(ScriptedEngine(self.tok))
        return engines[-1]

    monkeypatch.setattr(Subject, "engine", engine)
    cfg = from_mapping(ConstrainConfig, {"input": str(pool or _pool(tmp_path)), "model": str(model), "types": TYPES,
                                         "count_weights": [0, 0, 1], "k": K, "tie_break": "shortest",
                                         "pairs": True, **over})
    out = tmp_path / name
    metrics = constrain_run(cfg, RunDir.open(out, "constrain", 1, cfg), log=lambda *_: None)
    return cfg, metrics, out, engines


def test_rows_are_kept_only_when_every_constraint_passes(tiny_model_dir, tmp_path, monkeypatch):
    cfg, m, out, _ = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "a")
    rows = read_records(out / "constrain.jsonl", "sft").rows
    samples = [json.loads(line) for line in (out / "samples.partial.jsonl").read_text().splitlines()]
    by_row: dict[str, list[str]] = {}
    for s in samples:
        _, rid, j = s["key"].split(":")
        by_row.setdefault(rid, [None] * K)[int(j)] = s["text"]
    passing = {rid: [j for j, t in enumerate(ts) if t in (TEXTS[0], TEXTS[2])] for rid, ts in by_row.items()}
    assert 0 < m["kept"] < m["attempted"] == 10  # the seeds give some rows a passing candidate, not all
    assert {r["source_id"] for r in rows} == {rid for rid, p in passing.items() if p}
    for r in rows:
        assert validate(r, "sft") == []
        assert r["instruction_id_list"] and len(r["kwargs"]) == len(r["instruction_id_list"]) == 3
        assert set(r["instruction_id_list"]) <= set(TYPES)
        assert C.check(r["instruction_id_list"], r["kwargs"], r["prompt"], r["messages"][-1]["content"])["prompt_strict"]
        assert r["messages"][0]["content"] == r["prompt"] and r["prompt"].startswith("Tell me about a walk")
        p = passing[r["source_id"]]
        assert r["n_pass"] == len(p) and r["winner"] in p and r["k"] == K and not r["repaired"]
        # tie-break "shortest": the shorter passing text wins when both are there
        assert r["messages"][-1]["content"] == (TEXTS[2] if any(by_row[r["source_id"]][j] == TEXTS[2] for j in p)
                                                 else TEXTS[0])
        assert [c["strict"] for c in r["provenance"]["candidates"]] and r["provenance"]["rendered_prompt"]
    assert m["drop_reasons"]["no_pass"] == m["attempted"] - m["kept"]
    assert m["kept_rate"]["k"] == m["kept"] and m["kept_rate"]["n"] == 10
    # per type: every drawn type listed with Wilson intervals; quotation/no_comma fail on some candidates
    assert set(m["per_type"]) | set(m["types_not_drawn"]) == set(TYPES)
    assert sum(s["n"] for s in m["per_type"].values()) == 3 * 10  # three constraints on each of the 10 prompts
    for t, s in m["per_type"].items():
        assert s["kept"]["k"] == sum(t in r["instruction_id_list"] for r in rows) and s["kept"]["n"] == s["n"]
        assert s["pass@1"]["ci95"][0] <= s["pass@1"]["rate"] <= s["pass@1"]["ci95"][1]
        assert s["pass@k"]["k"] >= s["pass@1"]["k"]
    assert m["types_never_met"] == [] and m["types_zero_kept"] == []
    assert m["rows_per_min"] > 0
    man = json.loads((out / "manifest.json").read_text())
    c = man["counts"]
    assert c["read"] == 10 == c["written"] + c["dropped"] and c["written"] == m["kept"]
    # pairs: TRL preference format, chosen passes everything, rejected fails something
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert pairs and len(pairs) == m["pairs"]
    for p in pairs:
        assert [x["role"] for x in p["prompt"]] == ["user"]
        assert [x["role"] for x in p["chosen"]] == [x["role"] for x in p["rejected"]] == ["assistant"]
        assert C.check(p["instruction_id_list"], p["kwargs"], "", p["chosen"][0]["content"])["prompt_strict"]
        assert not C.check(p["instruction_id_list"], p["kwargs"], "", p["rejected"][0]["content"])["prompt_strict"]


def test_repair_rewrites_the_best_failing_candidate(tiny_model_dir, tmp_path, monkeypatch):
    cfg, m, out, engines = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "r", repair=True)
    rows = read_records(out / "constrain.jsonl", "sft").rows
    fixed = [r for r in rows if r["repaired"]]
    assert m["kept"] == m["attempted"] == 10 and m["repairs"]["tried"] == m["repairs"]["passed"] == len(fixed) > 0
    for r in fixed:
        assert r["winner"] == -1 and r["n_pass"] == 0 and r["messages"][-1]["content"] == REPAIRED
        rep = r["provenance"]["repair"]
        assert rep["passed"] and rep["unmet"] and "Rewrite your answer" in rep["request"]
        # the repair restates the unmet constraints in their own phrasing
        for t in rep["unmet"]:
            i = r["instruction_id_list"].index(t)
            assert C.render(t, r["kwargs"][i], r["provenance"]["constraints"][i]["phrasing"]) in rep["request"]
    asked = [p for e in engines for p in e.prompts if "Rewrite your answer" in p]
    assert len(asked) == len(fixed)


def test_a_known_answer_must_be_stated(tiny_model_dir, tmp_path, monkeypatch):
    """answer_check: a pool row with a known ``answer`` keeps only a passing candidate that states it
    (TEXTS[0] says "river", TEXTS[2] does not); answer_check off lets the shorter one win again."""
    pool = tmp_path / "qa.jsonl"
    write_records([{"messages": [{"role": "user", "content": f"Where did walk {i} go?"}], "answer": "the river"}
                   for i in range(10)], pool)
    _, m, out, _ = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "on", pool=pool)
    rows = read_records(out / "constrain.jsonl", "sft").rows
    assert rows and all(r["messages"][-1]["content"] == TEXTS[0] for r in rows)
    _, m_off, out_off, _ = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "off", pool=pool, answer_check=False)
    off = read_records(out_off / "constrain.jsonl", "sft").rows
    assert any(r["messages"][-1]["content"] == TEXTS[2] for r in off)
    wrong = m["drop_reasons"]["wrong_answer"]
    assert wrong > 0 and m["kept"] + wrong == m_off["kept"]  # the rows whose only passing answer was "we rest"
    kept_on = {r["source_id"] for r in rows}
    assert {r["source_id"] for r in off if r["source_id"] not in kept_on} == {
        r["source_id"] for r in off if r["messages"][-1]["content"] == TEXTS[2]
        and r["source_id"] not in kept_on}  # what answer_check dropped is exactly rows won by "we rest" alone
    assert len({r["source_id"] for r in off} - kept_on) == wrong


def test_given_constraints_are_used_as_written(tiny_model_dir, tmp_path, monkeypatch):
    """An IFEval-format pool: prompt + instruction_id_list + kwargs, used as given."""
    pool = tmp_path / "ifeval.jsonl"
    write_records([{"key": i, "prompt": f"Describe walk {i} in lowercase, in quotes, with a <<title>>.",
                    "instruction_id_list": ["change_case:english_lowercase", "startend:quotation"],
                    "kwargs": [{}, None]} for i in range(4)], pool)
    from sharpset.stage import Subject
    from sharpset.stages.constrain import run as constrain_run

    monkeypatch.setattr(Subject, "engine", lambda self, batch_size=16, **kw: ScriptedEngine(self.tok))
    cfg = from_mapping(ConstrainConfig, {"input": str(pool), "model": str(tiny_model_dir), "k": 4,
                                         "tie_break": "shortest"})
    m = constrain_run(cfg, RunDir.open(tmp_path / "g", "constrain", 1, cfg), log=lambda *_: None)
    rows = read_records(tmp_path / "g" / "constrain.jsonl", "sft").rows
    assert m["kept"] == len(rows) > 0
    for r in rows:
        assert r["prompt"].startswith("Describe walk") and r["prompt"] == r["messages"][0]["content"]
        assert r["instruction_id_list"] == ["change_case:english_lowercase", "startend:quotation"]
        assert r["kwargs"] == [{}, {}] and r["provenance"]["constraints_given"]


def test_config_never_draws_heldout_types_by_default():
    cfg = ConstrainConfig(input="x")
    assert cfg.draw_types() == list(C.TRAIN_TYPES) and not set(cfg.draw_types()) & set(C.HELDOUT_TYPES)
    with pytest.raises(UserError, match="types: .*held out.*allow_heldout"):
        from_mapping(ConstrainConfig, {"input": "x", "types": ["train", "count:numbers"]})
    ok = from_mapping(ConstrainConfig, {"input": "x", "types": ["count:numbers"], "allow_heldout": True})
    assert ok.draw_types() == ["count:numbers"]
    moved = from_mapping(ConstrainConfig, {"input": "x", "types": ["count:numbers"], "heldout_types": ["ifeval"]})
    assert moved.draw_types() == ["count:numbers"]
    for bad, needle in (({"types": ["words:start_verb"]}, "tagger"), ({"tie_break": "longest"}, "tie_break"),
                        ({"count_weights": [0, 0]}, "count_weights"), ({"k": 0}, "k"),
                        ({"types": ["custom:csv_city"], "allow_heldout": True}, "whole task")):
        with pytest.raises(UserError, match=needle):
            from_mapping(ConstrainConfig, {"input": "x", **bad})


def test_pick_winner():
    cands = [{"n_new_tokens": n} for n in (30, 10, 10, 50)]
    assert pick_winner([3], cands, None) == (3, "only")
    assert pick_winner([0, 1, 2], cands, None) == (1, "shortest")
    assert pick_winner([0, 1, 2], cands, {0: 0.9, 1: 0.5, 2: 0.5}) == (0, "quality_lm")
    assert pick_winner([0, 1, 2], cands, {0: 0.50001, 1: 0.5, 2: None}) == (1, "shortest")  # tie at 4 decimals


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("line,field,needle", [
    ({"prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"bogus": 1}]},
     "kwargs[0]", "bogus"),
    ({"prompt": "Say hi.", "instruction_id_list": ["nope:nope"], "kwargs": [{}]}, "instruction_id_list[0]", "nope"),
    ({"prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "kwargs", "entries"),
])
def test_bad_input_names_file_line_and_field(tmp_path, capsys, line, field, needle):
    from sharpset.cli import main

    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"prompt": "Fine."}) + "\n" + json.dumps(line) + "\n")
    out = tmp_path / "run"
    assert main(["constrain", str(pool), "--model", "nowhere", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{pool}:2: {field}" in err and needle in err, err
    assert not out.exists()  # nothing half-written


def _cmd(model_dir, inp, out):
    return [sys.executable, "-m", "sharpset", "constrain", str(inp), "--model", str(model_dir), "--k", "3",
            "--max-new-tokens", "6", "--types", "punctuation:no_comma,keywords:forbidden_words,startend:end_checker,"
            "length_constraints:number_words", "--keep-truncated", "true", "--batch-size", "1", "--pairs", "true",
            "--out", str(out)]


def test_kill_and_resume_equals_a_clean_run(tiny_model_dir, tmp_path):
    """The real tiny model (random text, quality_lm tie-break on its own likelihoods): a run killed
    mid-way and re-run writes exactly the rows and pairs of an uninterrupted run."""
    inp = _pool(tmp_path, 6)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_cmd(tiny_model_dir, inp, killed), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    log = killed / "samples.partial.jsonl"
    deadline = time.time() + 180
    while (not log.exists() or log.read_bytes().count(b"\n") < 5) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "constrain.jsonl").exists()
    r = subprocess.run(_cmd(tiny_model_dir, inp, killed), env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming" in r.stdout
    r2 = subprocess.run(_cmd(tiny_model_dir, inp, clean), env=_env(), capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr[-2000:]
    for name in ("constrain.jsonl", "pairs.jsonl"):
        assert (killed / name).read_text() == (clean / name).read_text()
    man = json.loads((clean / "manifest.json").read_text())
    assert man["metrics"]["kept"] == len((clean / "constrain.jsonl").read_text().splitlines()) > 0
    from sharpset.stages.constrain import show

    shown = show(str(clean), 2)
    assert shown.count("[assistant]") == min(2, man["metrics"]["kept"]) and "[user]" in shown


def test_a_candidate_failing_a_health_gate_never_wins(tiny_model_dir, tmp_path, monkeypatch):
    """gates (default loop, pseudo_refusal): a candidate that passes every constraint but apologises,
    then helps ("i'm sorry for the confusion. however here is ...") never wins; with gates [] it is
    the shortest passing candidate and wins again. Rows whose only passing answers are gated are
    dropped as 'gated'."""
    sorry = '"<<a walk>> i\'m sorry for the confusion. however here is the walk we took by the river"'
    monkeypatch.setattr(sys.modules[__name__], "TEXTS", (TEXTS[0], TEXTS[1], sorry, TEXTS[3]))
    from sharpset.text.degeneration import is_pseudo_refusal

    assert is_pseudo_refusal(sorry)
    _, m, out, _ = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "gated")
    kept = [r["messages"][-1]["content"] for r in read_records(out / "constrain.jsonl", "sft").rows]
    assert kept and sorry not in kept and set(kept) == {TEXTS[0]}
    _, m_off, out_off, _ = _scripted_run(tmp_path, monkeypatch, tiny_model_dir, "open", gates=[])
    kept_off = [r["messages"][-1]["content"] for r in read_records(out_off / "constrain.jsonl", "sft").rows]
    assert sorry in kept_off  # shorter than TEXTS[0]: the shortest passing candidate wins without the gate
    assert m["drop_reasons"]["gated"] > 0 and m["kept"] + m["drop_reasons"]["gated"] == m_off["kept"]
    assert [p for p, _ in ConstrainConfig(input="x", gates=["nope"]).check()] == ["gates"]
