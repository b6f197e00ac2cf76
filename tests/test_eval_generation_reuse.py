"""Eval copies answers a finished eval run already generated (evaluate/donors.py): only where the
generation key (model fingerprint, engine, max_new_tokens, stops, ...) and the logged prompt ids match,
never across a changed model or length limit, and not at all when turned off."""

from __future__ import annotations

import json
import shutil

import pytest

from sharpset.cli import main
from sharpset.engine.hf import TransformersEngine
from sharpset.run import RunDir

SUITES = "shape,knowledge"  # two generating calls: max_new_tokens from the config (shape) and fixed 32 (knowledge)


def _eval(out, model, *extra):
    return main(["eval", str(model), "--suites", SUITES, "--limit", "2", "--max-new-tokens", "8",
                 "--progress", "false", "--out", str(out), *map(str, extra)])


def _samples(out):
    return {f.stem: [json.loads(line) for line in f.read_text().splitlines()]
            for f in sorted((out / "samples").glob("*.jsonl"))}


def _logged(out):
    return {k: r for k, r in RunDir.view(out).done_samples().items() if k.startswith("gen|")}


@pytest.fixture(scope="module")
def donor(tiny_model_dir, tmp_path_factory):
    """A finished eval run, the donor every test here searches (``--reuse`` its parent)."""
    out = tmp_path_factory.mktemp("donors") / "a"
    assert _eval(out, tiny_model_dir) == 0
    return out


@pytest.fixture
def generated(monkeypatch):
    """The log keys (``gen|<model>|<suite>|<item>``) of every answer the engine is asked for."""
    keys: list[str] = []
    real = TransformersEngine.generate_iter

    def spy(self, requests, *a, **kw):
        keys.extend(r.key for r in requests)
        return real(self, requests, *a, **kw)

    monkeypatch.setattr(TransformersEngine, "generate_iter", spy)
    return keys


def test_a_suite_version_bump_regenerates_nothing(donor, tiny_model_dir, tmp_path, monkeypatch, generated, capsys):
    from sharpset.evaluate.suite import get_suite

    shape = get_suite("shape")
    monkeypatch.setattr(shape, "version", shape.version + 1)  # scoring changed: a new run key, same answers
    out = tmp_path / "b"
    assert _eval(out, tiny_model_dir, "--reuse", donor.parent) == 0
    assert generated == []
    assert _samples(out) == _samples(donor)
    n = len(_logged(donor))
    assert {r["reused_from"] for r in _logged(out).values()} == {str(donor)}
    label = f"m0:{tiny_model_dir.name}"
    model = json.loads((out / "summary.json").read_text())["models"][0]
    assert model["answers"] == n and model["reused_answers"] == {"shape": {str(donor): 2}, "knowledge": {str(donor): 2}}
    metrics = json.loads((out / "manifest.json").read_text())["metrics"]
    assert metrics["reused_answers"] == {label: model["reused_answers"]}
    printed = capsys.readouterr().out
    assert f"shape: 2 answers reused from {donor} (generation key" in printed and f"4 of {n} answers reused" in printed
    keys = json.loads((donor / "manifest.json").read_text())["generation_keys"]
    assert set(keys) == {"gen|0|shape", "gen|0|knowledge"} and keys["gen|0|shape"] != keys["gen|0|knowledge"]


def test_another_model_or_length_limit_is_generated(donor, tiny_model_dir, tmp_path, generated):
    from conftest import build_chatml_tokenizer, build_tiny_llama

    other = tmp_path / "other-model"  # the same tokenizer and config, other weights
    tok = build_chatml_tokenizer()
    build_tiny_llama(len(tok), seed=1).save_pretrained(other, safe_serialization=True)
    tok.save_pretrained(other)
    assert _eval(tmp_path / "b", other, "--reuse", donor.parent) == 0
    assert sorted(generated) == sorted(_logged(donor))
    assert not any("reused_from" in r for r in _logged(tmp_path / "b").values())
    generated.clear()
    # max_new_tokens 9: shape's answers are generated again; knowledge's (always 32 tokens) are copied
    assert _eval(tmp_path / "c", tiny_model_dir, "--reuse", donor.parent, "--max-new-tokens", "9") == 0
    assert sorted(generated) == sorted(k for k in _logged(donor) if k.startswith("gen|0|shape|"))
    assert {k for k, r in _logged(tmp_path / "c").items() if "reused_from" in r} == \
        {k for k in _logged(donor) if k.startswith("gen|0|knowledge|")}


def test_a_donor_answer_to_other_prompt_ids_is_generated(donor, tiny_model_dir, tmp_path, generated):
    copy = tmp_path / "donors" / "a"
    shutil.copytree(donor, copy)
    log = copy / RunDir.SAMPLES
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    changed = next(r["key"] for r in rows if r["key"].startswith("gen|0|shape|"))
    for r in rows:
        if r["key"] == changed:
            r["prompt_ids"] = [*r["prompt_ids"], 5]  # the item's prompt changed since that run
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "b"
    assert _eval(out, tiny_model_dir, "--reuse", copy.parent) == 0
    assert generated == [changed]
    assert "reused_from" not in _logged(out)[changed]
    assert _samples(out) == _samples(donor)


def test_reuse_generations_false_generates_every_answer(donor, tiny_model_dir, tmp_path, generated):
    out = tmp_path / "b"
    assert _eval(out, tiny_model_dir, "--reuse", donor.parent, "--reuse-generations", "false") == 0
    assert sorted(generated) == sorted(_logged(donor))
    assert "reused_answers" not in json.loads((out / "summary.json").read_text())["models"][0]


def test_a_pipeline_step_searches_the_pipelines_reuse_folders(tmp_path):
    """stage_run hands a config with a ``reuse`` field (eval's) the pipeline's folders, none without."""
    from dataclasses import dataclass
    from types import SimpleNamespace

    from sharpset.config import field
    from sharpset.pipelines.quickstart import stage_run
    from sharpset.pipelines.reuse import Reuse

    @dataclass
    class ProbeConfig:
        n: int = field(1, "n")
        reuse: list = field(["auto"], "folders", in_key=False)

    seen = []
    mod = SimpleNamespace(STAGE="probe", VERSION=1, ProbeConfig=ProbeConfig,
                          run=lambda cfg, run, log: (seen.append(cfg.reuse), run.finish()))
    stage_run(mod, {}, "ProbeConfig", tmp_path / "p1", lambda _: None, reuse=Reuse([tmp_path / "runs"], tmp_path))
    stage_run(mod, {"n": 2}, "ProbeConfig", tmp_path / "p2", lambda _: None)
    assert seen == [[str(tmp_path / "runs")], []]
