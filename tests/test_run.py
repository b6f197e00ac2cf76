"""Run folders, config dataclasses and recipes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from sharpset.records import RecordError

from sharpset import recipes
from sharpset.config import field, from_mapping, parse_set
from sharpset.errors import UserError
from sharpset.run import RunDir, derive_seed, run_key


@dataclass
class Cfg:
    model: str = field("m", "model")
    n: int = field(3, "count")
    temp: float = field(0.0, "temperature")
    skip: str | None = field(None, "optional")
    DEPRECATED = {"old_n": "n"}


def test_from_mapping_coerces_and_rejects_unknown_with_line():
    cfg = from_mapping(Cfg, {"n": "5", "temp": "0.7", "skip": "null"})
    assert (cfg.n, cfg.temp, cfg.skip) == (5, 0.7, None)
    with pytest.raises(UserError, match=r"r\.yaml:7: nn: unknown field for Cfg"):
        from_mapping(Cfg, {"nn": 1}, where="r.yaml", lines={"nn": 7})
    with pytest.raises(UserError, match=r"n: expected int, got 'abc'"):
        from_mapping(Cfg, {"n": "abc"})
    with pytest.raises(UserError, match=r"n: expected int"):
        from_mapping(Cfg, {"n": 2.5})


def test_deprecated_name_maps_with_warning():
    with pytest.warns(DeprecationWarning, match="'old_n' is deprecated, use 'n'"):
        cfg = from_mapping(Cfg, {"old_n": 9})
    assert cfg.n == 9


def test_parse_set():
    assert parse_set(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UserError, match="expected key=value"):
        parse_set(["novalue"])


def test_derive_seed_is_keyed_not_global():
    a = derive_seed(0, "synth", "row1")
    assert a == derive_seed(0, "synth", "row1")
    assert len({a, derive_seed(1, "synth", "row1"), derive_seed(0, "tag", "row1"), derive_seed(0, "synth", "row2")}) == 4


def test_run_dir_manifest_resume_and_key_guard(tmp_path):
    cfg = Cfg()
    run = RunDir.open(tmp_path / "r", "stage", 1, cfg, seeds={"seed": 0})
    man = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert man["status"] == "running" and man["key"] == run_key("stage", 1, cfg, {})
    assert {"sha", "dirty"} <= set(man["git"]) and man["packages"]["torch"]
    assert (tmp_path / "r" / "config.yaml").read_text().startswith("model: m")
    run.log_sample("a", {"x": 1})
    run.log_sample("b", {"x": 2})
    with open(tmp_path / "r" / RunDir.SAMPLES, "a") as fh:
        fh.write('{"key": "c", "x"')  # torn last line: a kill mid-write
    again = RunDir.open(tmp_path / "r", "stage", 1, cfg)
    assert set(again.done_samples()) == {"a", "b"}
    again.log_sample("c", {"x": 3})  # appends on a clean line after the torn one was dropped
    assert set(again.done_samples()) == {"a", "b", "c"}
    again.finish(counts={"read": 3})
    assert RunDir.open(tmp_path / "r", "stage", 1, cfg).complete
    # same folder, different config -> refuse unless forced
    with pytest.raises(UserError, match="holds a different run"):
        RunDir.open(tmp_path / "r", "stage", 1, Cfg(n=4))
    forced = RunDir.open(tmp_path / "r", "stage", 1, Cfg(n=4), force=True)
    assert not forced.complete and forced.done_samples() == {}


def test_corrupt_middle_line_is_an_error(tmp_path):
    run = RunDir.open(tmp_path / "r", "stage", 1, Cfg())
    (tmp_path / "r" / RunDir.SAMPLES).write_text('{"key": "a"}\n{bad\n{"key": "b"}\n')
    # the run folder's log is dataio's resumable log: its errors are RecordErrors (exit 2 in the CLI)
    with pytest.raises(RecordError, match=r"samples.partial.jsonl:2: <json>"):
        run.done_samples()


def test_every_shipped_recipe_validates():
    found = recipes.shipped()
    assert "quickstart" in found
    for name in found:
        recipes.validate(name)


def test_a_folder_named_like_a_shipped_recipe_does_not_hide_it(tmp_path, monkeypatch):
    # `sharpset run audit` beside a run folder called audit/ once read the folder as the recipe file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit").mkdir()
    assert recipes.resolve_file("audit") == recipes.shipped()["audit"]
    (tmp_path / "mine.yaml").mkdir()
    with pytest.raises(UserError, match=r"mine\.yaml: recipe file not found \(it is a folder\)"):
        recipes.resolve_file("mine.yaml")


def test_recipe_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npipeline: smoke\nconfig:\n  n_prompts: 4\n  max_new_tokenz: 3\n")
    with pytest.raises(UserError, match=r"bad\.yaml:5: max_new_tokenz: unknown field"):
        recipes.validate(str(bad))
    bad.write_text("name: x\npipeline: smoke\nconfig:\n  n_prompts: 0\n")
    with pytest.raises(UserError, match=r"bad\.yaml:4: n_prompts: must be >= 1"):
        recipes.validate(str(bad))
    bad.write_text("name: x\npipeline: smoke\nconfig: [1\n")
    with pytest.raises(UserError, match=r"bad\.yaml:\d+: <yaml>"):
        recipes.validate(str(bad))
    bad.write_text("name: x\npipeline: nope\n")
    with pytest.raises(UserError, match="unknown pipeline 'nope'"):
        recipes.validate(str(bad))


@dataclass
class CfgV1:  # Cfg as an older release knew it: no `temp`, no `skip`
    model: str = field("m", "model")
    n: int = field(3, "count")


def test_run_key_covers_non_default_fields_only():
    assert run_key("s", 1, Cfg(n=5), {}) == run_key("s", 1, CfgV1(n=5), {})  # an added option keeps keys
    assert run_key("s", 1, Cfg(n=5), {}) != run_key("s", 1, Cfg(n=5, temp=0.5), {})
    assert run_key("s", 1, Cfg(n=5), {}) != run_key("s", 2, Cfg(n=5), {})


def test_run_folder_from_older_key_scheme_is_resumed_not_refused(tmp_path):
    import dataclasses

    from sharpset.run import canonical_json, sha256_text

    out = tmp_path / "r"
    run = RunDir.open(out, "s", 1, CfgV1(n=5))
    run.log_sample("k1", {"x": 1})
    # rewrite the folder as the older release left it: config.yaml of its own fields, and a key
    # that hashed every field
    man = json.loads((out / "manifest.json").read_text())
    man["key"] = sha256_text(canonical_json({"stage": "s", "version": 1, "config": dataclasses.asdict(CfgV1(n=5)),
                                             "inputs": {}}))
    (out / "manifest.json").write_text(json.dumps(man))
    again = RunDir.open(out, "s", 1, Cfg(n=5))  # new release: more fields, same run
    assert again.key == run_key("s", 1, Cfg(n=5), {}) and "k1" in again.done_samples()
    with pytest.raises(UserError, match="holds a different run"):
        RunDir.open(out, "s", 1, Cfg(n=6))


def test_list_and_dict_fields_from_flags():
    from sharpset.stages.synth import SynthConfig

    sp = [{"text": "t", "category": "math"}]
    cfg = from_mapping(SynthConfig, {"system_prompts": sp, "quotas": "{math: 2}"})
    assert cfg.quotas == {"math": 2}
    from sharpset.stages.tag import TagConfig

    assert from_mapping(TagConfig, {"input": "x", "scores": "quality, category"}).scores == ["quality", "category"]
    assert from_mapping(TagConfig, {"input": "x", "scores": "[quality, ifd]"}).scores == ["quality", "ifd"]
    with pytest.raises(UserError, match="quotas: expected dict"):
        from_mapping(SynthConfig, {"system_prompts": sp, "quotas": "{math: 2"})


def test_a_one_item_list_flag_is_a_list():
    """`sharpset sweep --sizes 16` arrives as the number 16 (flag values are read as YAML scalars)."""
    from sharpset.pipelines.sweep import SweepConfig

    assert from_mapping(SweepConfig, {"sizes": "16"}).sizes in (["16"], [16])
    assert from_mapping(SweepConfig, {"sizes": 16}).sizes == [16]
    with pytest.raises(UserError, match=r"sizes: expected list"):
        from_mapping(SweepConfig, {"sizes": {"a": 1}})
