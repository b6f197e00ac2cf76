"""Content keys and reuse (issue 23): the same work in another folder is found by what it computed,
never by path; only a finished run with every output is read, and nothing is written into it."""

from __future__ import annotations

import json


def test_content_key_finds_the_same_work_in_another_folder(tmp_path):
    """Two runs of one step on equal data in different folders: different run keys, one content key;
    only a finished run with all its outputs is found, and a different input is a different key."""
    from sharpset.pipelines.quickstart import MIX, stage_run
    from sharpset.pipelines.reuse import Reuse

    rows = "".join(json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"q{i}"},
                                                            {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                   for i in range(4))
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "rows.jsonl").write_text(rows)

    def step(d: str, out: str, reuse=None):
        src = str(tmp_path / d / "rows.jsonl")
        return stage_run(MIX, {"parts": [{"name": "p", "path": src, "n": 2}]}, "MixConfig", tmp_path / out,
                         lambda _: None, inputs=[src], reuse=reuse)

    first = step("a", "runs/sweep/cells/x/mix")
    man = json.loads((first.path / "manifest.json").read_text())
    reuse = Reuse([tmp_path / "runs"], tmp_path / "audit")
    found = step("b", "audit/mix", reuse)
    assert found.path == first.path and not (tmp_path / "audit" / "mix").exists()
    assert reuse.used == [{"step": "mix", "stage": "mix", "run": str(first.path)}]
    other = step("b", "other/mix")  # run here: the same content, another path key
    assert json.loads((other.path / "manifest.json").read_text())["content_key"] == man["content_key"]
    assert json.loads((other.path / "manifest.json").read_text())["key"] != man["key"]
    (tmp_path / "b" / "rows.jsonl").write_text(rows.replace("a3", "changed"))
    assert step("b", "audit/mix2", Reuse([tmp_path / "runs"], tmp_path / "audit")).path == tmp_path / "audit" / "mix2"
    (tmp_path / "b" / "rows.jsonl").write_text(rows)
    (first.path / "selected.jsonl").unlink()  # an output gone: never reused
    assert step("b", "audit/mix3", Reuse([tmp_path / "runs"], tmp_path / "audit")).path == tmp_path / "audit" / "mix3"
