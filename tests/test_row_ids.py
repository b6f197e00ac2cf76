"""Row ids on read (issue 10): a row without an ``id`` gets its content id, and two rows sharing an
id are bad input -- ``file:line: id: duplicate of line N`` (or a reject with that reason under
``--on-error skip``) -- so no stage keys two rows' results under one id.

Each stage test here failed before the fix: a missing id was a ``KeyError`` traceback in tag, wrap
and train, and duplicate ids made tag and restyle give one row the other's result (wrap: one target).
"""

from __future__ import annotations

import json

import pytest

from sharpset.cli import main
from sharpset.dataio import read_records, write_records
from sharpset.records import RecordError, content_id


def sft(q: str, a: str | None = "An answer.", **extra) -> dict:
    msgs = [{"role": "user", "content": q}] + ([{"role": "assistant", "content": a}] if a is not None else [])
    return {"messages": msgs, **extra}


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- read_records itself


def test_a_row_without_an_id_gets_its_content_id_first(tmp_path):
    f = tmp_path / "d.jsonl"
    write_jsonl(f, [sft("What is two plus two?", "Four.", quality=3), sft("Hi?", "Hello.", id="given")])
    rows = read_records(f).rows
    assert rows[0]["id"] == content_id(sft("What is two plus two?", "Four."), "sft")
    assert list(rows[0]) == ["id", "messages", "quality"]
    assert rows[1]["id"] == "given"


@pytest.mark.parametrize("name", ["d.jsonl", "d.parquet"])
def test_two_rows_with_one_id_name_the_first_line(tmp_path, name):
    f = tmp_path / name
    rows = [sft("first?", id="x"), sft("other?", id="y"), sft("second?", id="x")]
    if name.endswith(".jsonl"):
        f.write_text("\n" + "".join(json.dumps(r) + "\n" for r in rows))  # a blank line 1: lines are physical
        first, dup = 2, 4
    else:
        write_records(rows, f)
        first, dup = 1, 3  # parquet: row numbers
    with pytest.raises(RecordError) as e:
        read_records(f)
    assert str(e.value) == f"{f}:{dup}: id: duplicate of line {first}"
    res = read_records(f, on_error="skip")
    assert [r["id"] for r in res.rows] == ["x", "y"] and res.lines == [first, first + 1]
    assert [(r["line"], r["field"], r["problem"]) for r in res.rejected] == [(dup, "id", f"duplicate of line {first}")]
    assert res.counts().check().as_dict() == {"read": 3, "written": 2, "dropped": 0, "rejected": 1}


def test_identical_rows_without_ids_are_duplicates_by_content(tmp_path):
    f = tmp_path / "d.jsonl"
    write_jsonl(f, [sft("same?"), sft("other?"), sft("same?")])
    with pytest.raises(RecordError, match=r":3: id: duplicate of line 1$"):
        read_records(f)


def test_a_rejected_row_does_not_claim_its_id(tmp_path):
    # the first row is bad, so the later row with its id is the first good one: kept
    f = tmp_path / "d.jsonl"
    write_jsonl(f, [{"id": "x", "messages": [{"role": "robot", "content": "?"}]}, sft("q?", id="x")])
    res = read_records(f, on_error="skip")
    assert [r["id"] for r in res.rows] == ["x"] and res.rejected[0]["field"] == "messages[0].role"


# ---------------------------------------------------------------- the stages (through the CLI)


def test_tag_without_ids_tags_every_row_under_its_content_id(tmp_path):
    f = tmp_path / "pool.jsonl"
    rows = [sft("How do tides work?", "The moon pulls the sea."), sft("Name a prime.", "Seven.")]
    write_jsonl(f, rows)
    assert main(["tag", str(f), "--scores", "shape", "--out", str(tmp_path / "t")]) == 0
    got = read_jsonl(tmp_path / "t" / "tagged.jsonl")
    assert [r["id"] for r in got] == [content_id(r, "sft") for r in rows]
    assert [r["messages"] for r in got] == [r["messages"] for r in rows]


def test_tag_rejects_a_duplicate_id_instead_of_copying_a_result(tmp_path, capsys):
    f = tmp_path / "pool.jsonl"
    write_jsonl(f, [sft("How do tides work?", "The moon pulls the sea.", id="x"),
                    sft("Name a prime.", "Seven is one.", id="x")])
    assert main(["tag", str(f), "--scores", "shape", "--out", str(tmp_path / "t")]) == 2
    assert f"error: {f}:2: id: duplicate of line 1" in capsys.readouterr().err
    assert main(["tag", str(f), "--scores", "shape", "--on-error", "skip", "--out", str(tmp_path / "s")]) == 0
    got = read_jsonl(tmp_path / "s" / "tagged.jsonl")
    assert len(got) == 1 and got[0]["messages"][1]["content"] == "The moon pulls the sea."
    rej = read_jsonl(tmp_path / "s" / "rejected.jsonl")
    assert [(r["line"], r["field"], r["problem"]) for r in rej] == [(2, "id", "duplicate of line 1")]
    assert rej[0]["row"]["messages"][1]["content"] == "Seven is one."
    man = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert man["counts"] == {"read": 2, "written": 1, "dropped": 0, "rejected": 1}


def _wrap(model, src, out):
    return ["wrap", str(src), "--model", str(model), "--max-new-tokens", "4", "--families", "noise",
            "--heldout-families", "noise", "--batch-size", "2", "--out", str(out)]


def test_wrap_without_ids_and_with_a_duplicate(tiny_model_dir, tmp_path, capsys):
    f = tmp_path / "q.jsonl"
    rows = [sft("What is the capital of France?", None), sft("How many legs has a spider?", None)]
    write_jsonl(f, rows)
    assert main(_wrap(tiny_model_dir, f, tmp_path / "w")) == 0
    pairs = read_jsonl(tmp_path / "w" / "pairs.jsonl")
    assert {p["source_id"] for p in pairs} <= {content_id(r, "sft") for r in rows}
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["counts"]["read"] == 2
    write_jsonl(f, [{**r, "id": "same"} for r in rows])
    assert main(_wrap(tiny_model_dir, f, tmp_path / "d")) == 2
    assert f"{f}:2: id: duplicate of line 1" in capsys.readouterr().err


def test_train_without_ids(tiny_model_dir, tmp_path):
    f = tmp_path / "sft.jsonl"
    write_jsonl(f, [sft(f"Question {i}?", f"Answer {i}.") for i in range(4)])
    assert main(["train", "--model", str(tiny_model_dir), "--sft", str(f), "--epochs", "1", "--batch-size", "4",
                 "--lora-r", "2", "--save-merged", "false", "--out", str(tmp_path / "r")]) == 0
    man = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert man["metrics"]["rows_used"] == 4


def test_restyle_rejects_a_duplicate_id(tiny_model_dir, tmp_path, capsys):
    f = tmp_path / "in.jsonl"
    write_jsonl(f, [sft("What causes the seasons?", "The tilt of the axis.", id="x"),
                    sft("Why is the sky blue?", "Scattering of sunlight.", id="x")])
    args = ["restyle", str(f), "--model", str(tiny_model_dir), "--spec", "concise-plain", "--n-examples", "1",
            "--max-new-tokens", "4", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert f"{f}:2: id: duplicate of line 1" in capsys.readouterr().err
