"""restyle: the URIAL-style prompt, the content check, and the stage end to end on tiny models
through ``sharpset.cli.main`` (drops counted by reason, conformance before/after, resume)."""

from __future__ import annotations

import json

import pytest

from sharpset.cli import main
from sharpset.dataio import write_records
from sharpset.records import validate
from sharpset.stages.restyle import REWRITE_TEMPLATE, build_messages, content_check
from sharpset.text.spec import load_spec, shipped_specs


@pytest.fixture
def rows_file(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"What causes the seasons on Earth? ({i})"},
                          {"role": "assistant", "content": "Sure! I think the tilt of the axis causes the seasons. "
                                                           "Let me know if you want more!"}],
             "quality": 4.0}
            for i in range(4)]
    p = tmp_path / "in.jsonl"
    write_records(rows, p)
    return p


def test_prompt_is_urial_style_examples_then_row():
    spec = load_spec("concise-plain")
    msgs = build_messages(spec, "Q?", "A.", 2)
    assert msgs[0]["role"] == "system" and "Do not use bullet lists." in msgs[0]["content"]
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[2]["content"] == spec.examples[0]["restyled"]
    assert msgs[-1]["content"] == REWRITE_TEMPLATE.format(instruction="Q?", response="A.")
    folded = build_messages(spec, "Q?", "A.", 1, system_role=False)
    assert folded[0]["role"] == "user" and folded[0]["content"].startswith("You rewrite answers")


def test_content_check_and_reference_rewrites_pass_the_defaults():
    from sharpset.stages.restyle import RestyleConfig

    assert content_check("The tilt of the axis.", "Sure. The axis tilt causes it.")["content_recall"] == 1.0
    assert content_check("The tilt of the axis.", "Bananas are yellow.")["content_recall"] == 0.0
    floor = RestyleConfig().min_content_recall
    for name in shipped_specs():  # the hand-written good rewrites must not be dropped as content loss
        for ex in load_spec(name).examples:
            assert content_check(ex["original"], ex["restyled"])["content_recall"] >= floor


def _cmd(model, src, out, *extra):
    return ["restyle", str(src), "--model", str(model), "--spec", "concise-plain", "--n-examples", "2",
            "--max-new-tokens", "12", "--temperature", "1.0", "--drop-truncated", "false",
            "--min-cosine", "null", "--out", str(out), *extra]


def test_restyle_drops_content_loss_and_counts_it(long_ctx_model, rows_file, tmp_path, capsys):
    # a random tiny model writes gibberish: every rewrite loses the original's content words
    assert main(_cmd(long_ctx_model, rows_file, tmp_path / "o")) == 0
    rep = json.loads((tmp_path / "o" / "restyle_report.json").read_text())
    assert rep["drop_reasons"]["content_words"] == 4 and rep["kept"] == 0
    assert rep["counts"] == {"read": 4, "written": 0, "dropped": 4, "rejected": 0}
    dropped = [json.loads(l) for l in (tmp_path / "o" / "restyle_dropped.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dropped] == ["content_words"] * 4
    assert all(d["content_recall"] < 0.25 for d in dropped)
    # nothing kept: "after" over all rows counts every row with its original response
    assert rep["all_rows"]["after"]["conformance"] == rep["all_rows"]["before"]["conformance"]
    assert "content_words 4" in capsys.readouterr().out


def test_restyle_keeps_rows_reports_conformance_and_resumes(long_ctx_model, rows_file, tmp_path):
    args = _cmd(long_ctx_model, rows_file, tmp_path / "o", "--min-content-recall", "0")
    assert main(args) == 0
    out = tmp_path / "o"
    kept = [json.loads(l) for l in (out / "restyled.jsonl").read_text().splitlines()]
    rep = json.loads((out / "restyle_report.json").read_text())
    assert rep["kept"] == len(kept) == 4 and rep["dropped"] == 0
    for r in kept:
        assert validate(r, "sft", strict_ids=True) == []
        assert r["provenance"]["original_response"].startswith("Sure! I think")
        assert r["restyle_spec"] == "concise-plain" and 0 <= r["conformance"] <= 1
        assert "quality" not in r  # scores of the old response do not carry over
    for side in ("before", "after"):
        assert rep["kept_rows"][side]["conformance"]["n"] == 4
        assert set(rep["kept_rows"][side]["pass_rates"]) == set(load_spec("concise-plain").criteria())
    # a kill after two rewrites: the same command resumes and ends with the same output
    samples = (out / "samples.partial.jsonl").read_text().splitlines()
    first = (out / "restyled.jsonl").read_text()
    man = json.loads((out / "manifest.json").read_text())
    man["status"] = "running"
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "samples.partial.jsonl").write_text("\n".join(samples[:2]) + "\n" + samples[2][:10])
    (out / "restyled.jsonl").unlink()
    assert main(args) == 0
    assert (out / "restyled.jsonl").read_text() == first


def test_restyle_too_long_for_the_model_context(tiny_model_dir, rows_file, tmp_path):
    # the conftest model has 512 positions: the rewrite prompt does not fit, and that is counted
    assert main(_cmd(tiny_model_dir, rows_file, tmp_path / "o")) == 0
    rep = json.loads((tmp_path / "o" / "restyle_report.json").read_text())
    assert rep["drop_reasons"]["too_long"] == 4


def test_spec_without_examples_is_a_user_error(long_ctx_model, rows_file, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nopening: direct\n")
    args = _cmd(long_ctx_model, rows_file, tmp_path / "o")
    args[args.index("concise-plain")] = str(spec)
    assert main(args) == 2
