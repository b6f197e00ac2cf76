"""Where a stage's model runs (issue 15): ``engine``, ``engine_options``, ``cluster`` and
``cluster_options`` -- one mechanism (sharpset.stage.BackendFields) on synth, restyle, wrap, tag and
eval. Tiny in-process models; Ray and vLLM are not needed (their absence is what two tests check).

- the fields parse from flags and from YAML; bad values are errors naming the field;
- at their defaults they leave every run key as it was (keys computed before the fields existed);
- ``--engine vllm`` / ``--cluster local`` without the extra installed: exit 3 with the pip command;
- a recording engine registered in sharpset.engine.ENGINES is the one each stage generates and
  scores with (routing shown, not assumed), and records and manifests name it;
- a combination the engine cannot run is refused naming the field, never run on transformers;
- ``--cluster``: the stage's work goes through engine/ray_fanout.py (its Ray step replaced by an
  in-process stand-in here) with the same results, logged by content hash so a rerun skips them.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from sharpset.cli import build_parser, main
from sharpset.config import from_args, from_mapping, read_yaml_mapping
from sharpset.dataio import write_records
from sharpset.engine import ENGINES, SCORE_METHODS
from sharpset.errors import UserError
from sharpset.run import RunDir, run_key


CALLS: list[tuple[str, str]] = []  # (method, the engine's label option), in call order


class RecordingEngine:
    """The transformers engine behind the backend contract, recording every call."""

    LOADS_WEIGHTS = True
    SCORES = frozenset(SCORE_METHODS)

    def __init__(self, model, tokenizer, *, batch_size: int = 16, label: str = "", **kw):
        from sharpset.engine.hf import TransformersEngine

        self.inner = TransformersEngine(model, tokenizer, batch_size=batch_size, **kw)
        self.label = label
        CALLS.append(("__init__", label))

    def generate(self, requests, *, progress=True):
        return [r for _, r in sorted(self.generate_iter(requests, progress=progress), key=lambda x: x[0])]

    def generate_iter(self, requests, *, progress=True):
        CALLS.append(("generate_iter", self.label))
        yield from self.inner.generate_iter(requests, progress=progress)


def _recorded(name):
    def method(self, *args, **kwargs):
        CALLS.append((name, self.label))
        return getattr(self.inner, name)(*args, **kwargs)

    return method


for _m in SCORE_METHODS:
    setattr(RecordingEngine, _m, _recorded(_m))


class RanklessEngine(RecordingEngine):
    SCORES = frozenset(SCORE_METHODS) - {"answer_token_ranks"}


class GenerationOnlyEngine(RecordingEngine):
    SCORES = frozenset()


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setitem(ENGINES, "recording", f"{__name__}:RecordingEngine")
    monkeypatch.setitem(ENGINES, "rankless", f"{__name__}:RanklessEngine")
    monkeypatch.setitem(ENGINES, "genonly", f"{__name__}:GenerationOnlyEngine")
    CALLS.clear()
    yield CALLS
    CALLS.clear()


def _called(label: str = "x") -> set[str]:
    return {m for m, lab in CALLS if lab == label}


@pytest.fixture
def rows_file(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"What causes the seasons on Earth? ({i})"},
                          {"role": "assistant", "content": "The tilt of the axis causes the seasons."}]}
            for i in range(3)]
    p = tmp_path / "in.jsonl"
    write_records(rows, p)
    return p


def _run(module: str, mapping: dict, out):
    import importlib

    mod = importlib.import_module(module)
    cls = next(v for k, v in vars(mod).items() if k.endswith("Config") and isinstance(v, type)
               and v.__module__ == mod.__name__)
    cfg = from_mapping(cls, mapping)
    rd = RunDir.open(out, mod.STAGE, mod.VERSION, cfg)
    metrics = mod.run(cfg, rd, log=lambda *_: None)
    return metrics, rd


def _manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- the fields
def test_fields_parse_from_flags_and_yaml(tmp_path):
    from sharpset.stages.tag import TagConfig
    from sharpset.stages.wrap import WrapConfig

    args = build_parser().parse_args(["wrap", "--engine", "vllm", "--engine-options",
                                      "{tensor_parallel_size: 2, max_model_len: 4096}", "--cluster",
                                      "ray://head:10001", "--cluster-options", "{num_workers: 4, ray_remote_args: {num_gpus: 2}}"])
    cfg = from_args(WrapConfig, args)
    assert cfg.engine == "vllm" and cfg.engine_options == {"tensor_parallel_size": 2, "max_model_len": 4096}
    assert cfg.cluster == "ray://head:10001"
    assert cfg.fanout_options()["num_workers"] == 4 and cfg.fanout_options()["ray_remote_args"] == {"num_gpus": 2}
    y = tmp_path / "c.yaml"
    y.write_text("input: in.jsonl\nengine: vllm\nengine_options:\n  tensor_parallel_size: 2\ncluster: local\n")
    data, lines = read_yaml_mapping(y)
    cfg = from_mapping(TagConfig, data, where=str(y), lines=lines)
    assert (cfg.engine, cfg.engine_options, cfg.cluster) == ("vllm", {"tensor_parallel_size": 2}, "local")
    assert cfg.backend_info() == {"engine": "vllm", "engine_options": {"tensor_parallel_size": 2}, "cluster": "local"}
    assert cfg.backend_info(cluster=False) == {"engine": "vllm", "engine_options": {"tensor_parallel_size": 2}}
    for bad, field in (({"engine": "nope"}, "engine"), ({"cluster": "10.0.0.1:6379"}, "cluster"),
                       ({"cluster_options": {"workers": 3}}, "cluster_options"),
                       ({"engine_options": "[1, 2]"}, "engine_options")):
        with pytest.raises(UserError, match=rf"\b{field}: "):
            from_mapping(WrapConfig, bad)


# keys computed with the code before these fields existed (main at 7828e8c), inputs {"in.jsonl": "abc"},
# at the transform VERSION each stage had then (a later VERSION bump changes every key of its stage on
# purpose -- test_stage_versions.py pins those -- and is not what this test is about)
OLD_VERSIONS = {"synth": 2, "restyle": 1, "wrap": 2, "tag": 2, "eval": 1}
OLD_KEYS = {
    "sharpset.stages.synth:SynthConfig": ({"n": 5}, "0473c6c894eb14e09431b81439feb44698d43009455ca6a9310bbf961e077e5f"),
    "sharpset.stages.restyle:RestyleConfig": ({"input": "in.jsonl"},
                                              "9bc7f0d67835c88c91cb9a81816cd95b0e74b6aa65352171524f23ef9ae7b31b"),
    "sharpset.stages.wrap:WrapConfig": ({}, "62fae9cbcc6d8fea4161584b26973eff8ddaf3814406221bb32bb34b79faa973"),
    "sharpset.stages.tag:TagConfig": ({"input": "in.jsonl"},
                                      "3689aa669b21600804615eb1c7a80d2166968f31e6720f1fad328544165b08c7"),
    "sharpset.evaluate.stage:EvalConfig": ({"models": ["m"]},
                                           "41e8f1eef6e64e4a9dacb278b70706a2197cf4575be2240f33c2052e3fe590a2"),
}


@pytest.mark.parametrize("ref", sorted(OLD_KEYS))
def test_default_backend_keeps_old_run_keys(ref):
    import importlib

    module, cls_name = ref.split(":")
    mod = importlib.import_module(module)
    cls = getattr(mod, cls_name)
    mapping, old = OLD_KEYS[ref]
    key = lambda extra: run_key(mod.STAGE, OLD_VERSIONS[mod.STAGE], from_mapping(cls, {**mapping, **extra}),  # noqa: E731
                                {"in.jsonl": "abc"})
    assert key({}) == old
    assert key({"engine": "transformers", "engine_options": {}}) == old  # spelled out: the same run
    # the cluster and its knobs change where the work runs, not what it produces: a run resumes anywhere
    assert key({"cluster": "ray://head:10001", "cluster_options": {"num_workers": 8}}) == old
    assert key({"engine_options": {"strategy": "bucket"}}) != old


# --------------------------------------------------------------------------- missing extras
def _without(monkeypatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))


@pytest.mark.parametrize("flags,module,extra", [(["--engine", "vllm"], "vllm", "vllm"),
                                               (["--cluster", "local"], "ray", "ray")])
def test_missing_extra_is_an_install_error_with_the_pip_command(tiny_model_dir, tmp_path, monkeypatch, capsys,
                                                                flags, module, extra):
    _without(monkeypatch, module)
    out = tmp_path / "o"
    assert main(["wrap", "--model", str(tiny_model_dir), "--limit", "2", *flags, "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(l for l in err.splitlines() if l.startswith("error:"))
    assert f"'{extra}' extra" in line and f"pip install 'sharpset[{extra}]'" in line, line
    assert not out.exists()  # a fresh run stopped before any work leaves nothing behind


def test_vllm_engine_import_failure_is_an_install_error(monkeypatch):
    import builtins

    from sharpset.engine import vllm as vmod
    from sharpset.errors import InstallError

    real = builtins.__import__

    def no_vllm(name, *a, **k):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'", name="vllm")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(InstallError, match=r"pip install 'sharpset\[vllm\]'") as e:
        vmod.VLLMEngine(model="x")
    assert e.value.exit_code == 3


# --------------------------------------------------------------------------- refusals
def test_combinations_an_engine_cannot_run_are_refused_naming_the_field(recording):
    from sharpset.evaluate.stage import EvalConfig
    from sharpset.stages.synth import SynthConfig
    from sharpset.stages.tag import TagConfig

    # token ranks: the rankless engine cannot compute them, so eval refuses token_shift with it
    with pytest.raises(UserError, match=r"engine: the token_shift suite .* needs answer_token_ranks, which engine "
                                        r"rankless does not compute"):
        from_mapping(EvalConfig, {"models": ["m"], "engine": "rankless"})
    assert from_mapping(EvalConfig, {"models": ["m"], "engine": "rankless", "suites": ["format", "knowledge"]})
    with pytest.raises(UserError, match="token_shift"):  # vLLM offers no ranks either
        from_mapping(EvalConfig, {"models": ["m"], "engine": "vllm"})
    # vLLM does not apply sharpset's repetition controls: refused on the field that asks for them
    with pytest.raises(UserError, match=r"response_repetition_penalty: engine vllm does not apply repetition_penalty"):
        from_mapping(SynthConfig, {"engine": "vllm"})
    assert from_mapping(SynthConfig, {"engine": "vllm", "response_repetition_penalty": 1.0}).engine == "vllm"
    # a generation-only engine (no SCORES) cannot tag
    with pytest.raises(UserError, match=r"engine: the judge scores needs next_token_probs, which engine genonly"):
        from_mapping(TagConfig, {"input": "x", "engine": "genonly", "scores": ["quality", "shape"]})
    assert from_mapping(TagConfig, {"input": "x", "engine": "genonly", "scores": ["shape"]}).engine == "genonly"


def test_vllm_refuses_repetition_controls_in_the_shared_request_check():
    from sharpset.engine import GenerationRequest, SamplingParams
    from sharpset.engine.base import check_request

    r = GenerationRequest([1, 2], SamplingParams(max_new_tokens=4, repetition_penalty=1.1))
    check_request(0, r, vocab=10, max_len=16)  # the transformers engine applies it
    with pytest.raises(ValueError, match=r"requests\[0\].params.repetition_penalty: 1.1: engine vllm"):
        check_request(0, r, vocab=10, max_len=16, backend="vllm", unsupported=("repetition_penalty",))
    with pytest.raises(ValueError, match=r"exceeds vLLM's max_model_len \(5\)"):
        check_request(3, GenerationRequest([1, 2], SamplingParams(max_new_tokens=4)), vocab=10, max_len=5,
                      max_len_name="vLLM's max_model_len")


# --------------------------------------------------------------------------- routing, stage by stage
def test_synth_generates_on_the_configured_engine(recording, tiny_model_dir, tmp_path):
    _, rd = _run("sharpset.stages.synth", {"model": str(tiny_model_dir), "n": 3, "min_instruction_words": 1,
                                           "instruction_max_tokens": 8, "response_max_tokens": 8,
                                           "engine": "recording", "engine_options": {"label": "x"}}, tmp_path / "s")
    assert {"__init__", "generate_iter"} <= _called()
    assert all(lab == "x" for _, lab in CALLS)  # no other engine was built
    man = _manifest(tmp_path / "s")
    assert man["backend"] == {"engine": "recording", "engine_options": {"label": "x"}}
    assert man["models"]["subject"]["engine"] == "recording"
    for row in _lines(tmp_path / "s" / "synth.jsonl"):
        assert row["provenance"]["engine"] == "recording" and row["provenance"]["engine_options"] == {"label": "x"}


def test_restyle_generates_on_the_configured_engine(recording, long_ctx_model, rows_file, tmp_path):
    m, _ = _run("sharpset.stages.restyle", {"input": str(rows_file), "model": str(long_ctx_model), "spec": "concise-plain",
                                            "n_examples": 1, "max_new_tokens": 12, "temperature": 1.0,
                                            "drop_truncated": False,
                                            "min_content_recall": 0.0, "min_cosine": None,
                                            "engine": "recording", "engine_options": {"label": "x"}}, tmp_path / "r")
    assert "generate_iter" in _called() and m["kept"] == 3
    assert _manifest(tmp_path / "r")["models"]["rewriter"]["engine"] == "recording"
    assert all(r["provenance"]["engine"] == "recording" for r in _lines(tmp_path / "r" / "restyled.jsonl"))


def test_wrap_generates_on_the_configured_engine(recording, tiny_model_dir, tmp_path):
    _run("sharpset.stages.wrap", {"model": str(tiny_model_dir), "limit": 3, "max_new_tokens": 6,
                                  "engine": "recording", "engine_options": {"label": "x"}}, tmp_path / "w")
    assert "generate_iter" in _called()
    assert _manifest(tmp_path / "w")["backend"]["engine"] == "recording"
    assert all(p["provenance"]["engine"] == "recording" for p in _lines(tmp_path / "w" / "pairs.jsonl"))


def test_tag_scores_on_the_configured_engine(recording, tiny_model_dir, rows_file, tmp_path):
    _run("sharpset.stages.tag", {"input": str(rows_file), "judge": str(tiny_model_dir),
                                 "scores": ["quality", "category", "ifd", "lm"], "engine": "recording",
                                 "engine_options": {"label": "x"}}, tmp_path / "t")
    # judge (next-token probabilities), IFD and the lm signals (per-token NLL, one pair of passes): all on it
    assert {"next_token_probs", "answer_token_nll"} <= _called()
    assert _manifest(tmp_path / "t")["models"]["judge"]["engine"] == "recording"
    # the same scores as the default engine: routing changes where, not what
    CALLS.clear()
    _run("sharpset.stages.tag", {"input": str(rows_file), "judge": str(tiny_model_dir),
                                 "scores": ["quality", "category", "ifd", "lm"]}, tmp_path / "t0")
    assert not CALLS
    assert (tmp_path / "t" / "tagged.jsonl").read_text() == (tmp_path / "t0" / "tagged.jsonl").read_text()
    assert _manifest(tmp_path / "t0")["backend"] == {"engine": "transformers"}


def test_eval_generates_and_scores_on_the_configured_engine(recording, tiny_model_dir, tmp_path):
    out = tmp_path / "e"
    assert main(["eval", str(tiny_model_dir), str(tiny_model_dir), "--suites", "knowledge,invariance,token_shift",
                 "--limit", "2", "--max-new-tokens", "6", "--progress", "false", "--engine", "recording",
                 "--engine-options", "{label: x}", "--out", str(out)]) == 0
    # answers, multiple-choice / invariance likelihoods and the base's token ranks
    assert {"generate_iter", "answer_token_nll", "answer_token_ranks"} <= _called()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == {"engine": "recording", "engine_options": {"label": "x"}}
    assert all(m["engine"] == "recording" for m in _manifest(out)["models"].values())


# --------------------------------------------------------------------------- --cluster
FANS: list[tuple[str, int]] = []  # (task, how many items it had to compute)


def _local_fan(task, items, factory, log, **kw):
    """ray_fanout._fan without Ray: one _Worker (the class Ray Data would run in each actor) in
    this process, the driver's logging and resume logic unchanged."""
    from sharpset.engine import ray_fanout

    done = log.done_samples()
    todo = [(k, it) for k, it in items if k not in done]
    FANS.append((task, len(todo)))
    if todo:
        worker = ray_fanout._Worker(factory, task)
        out = worker({"key": [k for k, _ in todo], "item": [json.dumps({"key": k, **it}) for k, it in todo]})
        for key, raw in zip(out["key"], out["payload"]):
            payload = json.loads(raw)
            log.log_sample(key, payload)
            done[key] = {"key": key, **payload}
    return done


@pytest.fixture
def fake_ray(monkeypatch):
    from sharpset.engine import ray_fanout

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "ray" else real(name, *a))
    monkeypatch.setattr(ray_fanout, "_fan", _local_fan)
    FANS.clear()
    yield FANS


def test_cluster_routes_generation_through_the_fanout_with_the_same_output(fake_ray, tiny_model_dir, tmp_path):
    base = {"model": str(tiny_model_dir), "limit": 4, "max_new_tokens": 6, "batch_size": 4}
    _run("sharpset.stages.wrap", base, tmp_path / "local")
    _run("sharpset.stages.wrap", {**base, "cluster": "local"}, tmp_path / "c")
    assert [t for t, _ in FANS] == ["generate"] and FANS[0][1] == 4
    assert (tmp_path / "c" / "pairs.jsonl").read_text() == (tmp_path / "local" / "pairs.jsonl").read_text()
    fan = _lines(tmp_path / "c" / "fanout.partial.jsonl")
    assert len(fan) == 4 and all(r["engine"] == "transformers" and r["key"].startswith("gen:") for r in fan)
    assert _manifest(tmp_path / "c")["backend"] == {"engine": "transformers", "cluster": "local"}


def test_cluster_scoring_matches_and_resumes_from_the_fanout_log(fake_ray, tiny_model_dir, rows_file, tmp_path):
    cfg = {"input": str(rows_file), "judge": str(tiny_model_dir), "scores": ["quality", "ifd", "lm"]}
    _run("sharpset.stages.tag", cfg, tmp_path / "local")
    _, rd = _run("sharpset.stages.tag", {**cfg, "cluster": "local"}, tmp_path / "c")
    assert {t for t, _ in FANS} == {"next_token_probs", "answer_token_nll"}  # IFD reads the lm passes
    want = _lines(tmp_path / "local" / "tagged.jsonl")
    got = _lines(tmp_path / "c" / "tagged.jsonl")
    for w, g in zip(want, got):
        for k in ("quality", "ifd_loss", "lm_nll", "quality_lm"):
            assert g[k] == pytest.approx(w[k], rel=1e-5, abs=1e-6), k
    # a killed run (manifest running, its own sample log gone): the rerun computes nothing again
    man = _manifest(tmp_path / "c")
    man["status"] = "running"
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(man))
    (tmp_path / "c" / "samples.partial.jsonl").unlink()
    FANS.clear()
    _run("sharpset.stages.tag", {**cfg, "cluster": "local"}, tmp_path / "c")
    assert FANS and all(n == 0 for _, n in FANS)
    assert _lines(tmp_path / "c" / "tagged.jsonl") == got
