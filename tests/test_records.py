"""Records: validation messages (exact `path:line: field: problem`), ids, I/O round trips, atomicity."""

import json
import os
import pickle

import pytest

from sharpset.dataio import (Counts, ReadResult, append_jsonl, iter_jsonl, read_records, write_records,
                             write_rejected)
from sharpset.records import RecordError, content_id, detect_kind, validate, with_id


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


def s(text):
    return {"role": "system", "content": text}


GOOD_SFT = {"id": "x1", "messages": [u("hi"), a("hello")], "source": "seed"}
GOOD_PAIR = {"id": "p1", "clean": [u("2+2?")], "wrapped": [s("be terse"), u("Q: 2+2?")],
             "family": "prefix", "wrapper": "qa", "target": "4", "split": "train"}


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def dump(row):
    return json.dumps(row, ensure_ascii=False)


ALT = "(turns alternate user/assistant)"
BAD = [  # (kind, line text, expected "field: problem")
    ("sft", dump({"messages": [{"role": "bot", "content": "x"}, a("y")]}),
     "messages[0].role: 'bot' is not a valid role (system, user, assistant)"),
    ("sft", dump({"messages": [u("x"), {"role": "assistant", "content": 3}]}),
     "messages[1].content: expected a string, got number"),
    ("sft", dump({"messages": [u("x"), {"role": "assistant"}]}), "messages[1].content: missing"),
    ("sft", dump({"messages": [{"content": "x"}, a("y")]}), "messages[0].role: missing"),
    ("sft", dump({"source": "seed"}), "messages: missing"),
    ("sft", dump({"messages": []}), "messages: empty list; need at least one message"),
    ("sft", dump({"messages": "hi"}), "messages: expected a list of messages, got string"),
    ("sft", dump({"messages": ["hi", a("y")]}),
     "messages[0]: expected an object with role and content, got string"),
    ("sft", dump({"messages": [u("x"), {**a("y"), "name": "bob"}]}),
     "messages[1].name: unexpected key (a message holds only role and content)"),
    ("sft", dump({"messages": [u("x"), a("y"), s("late"), u("q"), a("r")]}),
     "messages[2].role: system message is only allowed as the first message"),
    ("sft", dump({"messages": [s("sys"), u("x"), u("y"), a("z")]}),
     f"messages[2].role: expected 'assistant' {ALT}, got 'user'"),
    ("sft", dump({"messages": [a("x"), u("y"), a("z")]}),
     f"messages[0].role: expected 'user' {ALT}, got 'assistant'"),
    ("sft", dump({"messages": [u("x"), a("y"), u("z")]}),
     "messages[2].role: last message must be 'assistant' (a training example ends with the response),"
     " got 'user'"),
    ("sft", dump({"messages": [s("only")]}),
     "messages[0].role: last message must be 'assistant' (a training example ends with the response),"
     " got 'system'"),
    ("sft", dump({**GOOD_SFT, "tags": ["a"]}),
     "tags: tag columns must be scalars (string, number, boolean or null), got array"),
    ("sft", dump({**GOOD_SFT, "provenance": "gen"}), "provenance: expected an object, got string"),
    ("sft", dump({**GOOD_SFT, "id": 7}), "id: expected a non-empty string, got number"),
    ("sft", '{"messages": [', "<json>: invalid JSON: Expecting value (column 15)"),
    ("sft", '{"a": 1,}', "<json>: invalid JSON: Expecting property name enclosed in double quotes (column 9)"),
    ("sft", '{"messages": [], "messages": []}', "<json>: duplicate key 'messages'"),
    ("sft", "[1, 2]", "<row>: expected a JSON object, got array"),
    ("sft", '"just text"', "<row>: expected a JSON object, got string"),
    ("pair", dump({k: v for k, v in GOOD_PAIR.items() if k != "target"}), "target: missing"),
    ("pair", dump({**GOOD_PAIR, "target": "  "}), "target: empty string"),
    ("pair", dump({**GOOD_PAIR, "family": 3}), "family: expected a non-empty string, got number"),
    ("pair", dump({**GOOD_PAIR, "split": "test"}), "split: 'test' is not one of train, heldout"),
    ("pair", dump({**GOOD_PAIR, "clean": [u("q"), a("r")]}),
     "clean[1].role: last message must be 'user' (a prompt ends with the user turn), got 'assistant'"),
    ("pair", dump({k: v for k, v in GOOD_PAIR.items() if k != "wrapped"}), "wrapped: missing"),
    ("prompt_completion", dump({"prompt": "q", "completion": [a("r")]}),
     "completion: expected a string like prompt, got array"),
    ("prompt_completion", dump({"prompt": [u("q")], "completion": [u("r")]}),
     f"completion[0].role: expected 'assistant' {ALT}, got 'user'"),
    ("prompt_completion", dump({"prompt": "q"}), "completion: missing"),
    ("prompt_completion", dump({"prompt": 5, "completion": "x"}),
     "prompt: expected a string or a list of messages, got number"),
]


@pytest.mark.parametrize("kind,line,expected", BAD, ids=[b[2][:50] for b in BAD])
def test_bad_row_gives_exact_error(tmp_path, kind, line, expected):
    good = dump(GOOD_PAIR if kind == "pair" else {"prompt": "q", "completion": "r"}
                if kind == "prompt_completion" else GOOD_SFT)
    # blank lines (including whitespace-only) are skipped but counted: the bad row is on line 5
    path = write_lines(tmp_path / "in.jsonl", ["", good, "   ", "", line])
    with pytest.raises(RecordError) as info:
        read_records(path, kind)
    assert str(info.value) == f"{path}:5: {expected}"
    err = info.value
    assert (err.line, f"{err.field}: {err.problem}") == (5, expected)


def test_validate_is_pure_and_reports_all_shape_problems():
    row = {"messages": [{"role": "bot", "content": 1}, a("y")], "t": [1]}
    before = json.dumps(row)
    assert validate(row, "sft") == [
        ("messages[0].role", "'bot' is not a valid role (system, user, assistant)"),
        ("messages[0].content", "expected a string, got number"),
        ("t", "tag columns must be scalars (string, number, boolean or null), got array")]
    assert json.dumps(row) == before
    assert validate(GOOD_SFT) == [] and validate(GOOD_PAIR) == []
    assert validate({"prompt": [s("x"), u("q")], "completion": [a("r")]}) == []


def test_require_response_false_allows_prompt_only():
    prompt_only = {"messages": [s("sys"), u("q")]}
    assert validate(prompt_only, "sft")[0][0] == "messages[1].role"
    assert validate(prompt_only, "sft", require_response=False) == []
    assert validate(GOOD_SFT, "sft", require_response=False) == []
    assert validate({"prompt": "q"}, require_response=False) == []


def test_unknown_kind_and_kind_fixed_by_first_row(tmp_path):
    unknown = ("<row>: cannot tell the record kind: expected 'messages' (sft), "
               "'clean'/'wrapped' (pair) or 'prompt'/'completion' (prompt_completion)")
    path = write_lines(tmp_path / "in.jsonl", [dump({"foo": 1}), dump(GOOD_SFT), dump({"foo": 2})])
    res = read_records(path, on_error="skip")
    # kind=None takes the first row whose kind can be told (line 2: sft) and holds later rows to it
    assert [f"{r['line']}: {r['field']}: {r['problem']}" for r in res.rejected] == [
        f"1: {unknown}", "3: messages: missing"]
    assert validate({"foo": 1}) == [tuple(unknown.split(": ", 1))]
    with pytest.raises(ValueError, match="unknown record kind"):
        validate(GOOD_SFT, "dpo")


def test_detect_kind():
    assert detect_kind(GOOD_SFT) == "sft"
    assert detect_kind(GOOD_PAIR) == "pair"
    assert detect_kind({"prompt": "q", "completion": "r"}) == "prompt_completion"
    assert detect_kind({"prompt": "q", "chosen": "a", "rejected": "b"}) is None
    assert detect_kind([1]) is None


def test_raise_mode_raises_first_error(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [dump(GOOD_SFT), "{bad", dump({"messages": []})])
    with pytest.raises(RecordError, match=r":2: <json>: "):
        read_records(path)


def test_skip_mode_collects_all_and_counts_add_up(tmp_path):
    lines = [dump(GOOD_SFT), "", "{bad", dump({"messages": [u("q")], "x": {}}),
             dump({**GOOD_SFT, "id": "x2"}), "[]"]
    path = write_lines(tmp_path / "in.jsonl", lines)
    res = read_records(path, on_error="skip")
    assert isinstance(res, ReadResult)
    assert [r["id"] for r in res.rows] == ["x1", "x2"]
    assert [(r["line"], r["field"]) for r in res.rejected] == [(3, "<json>"), (4, "messages[0].role"),
                                                               (6, "<row>")]
    assert res.rejected[0]["row"] is None and res.rejected[0]["text"] == "{bad"
    assert res.rejected[1]["row"] == {"messages": [u("q")], "x": {}}
    assert res.rejected[1]["other_problems"] == [
        "x: tag columns must be scalars (string, number, boolean or null), got object"]
    assert res.n_read == 5
    counts = res.counts(written=1, dropped=1)
    assert counts.check().as_dict() == {"read": 5, "written": 1, "dropped": 1, "rejected": 3}
    out = write_rejected(res.rejected, tmp_path)
    assert out == tmp_path / "rejected.jsonl"
    assert list(iter_jsonl(out)) == res.rejected


def test_counts_invariant():
    Counts(read=3, written=1, dropped=1, rejected=1).check()
    with pytest.raises(AssertionError, match="read 3 != written 1"):
        Counts(read=3, written=1, dropped=0, rejected=1).check()


ROWS = [  # heterogeneous on purpose: missing tags, explicit None, int next to float, mixed provenance
    {"id": "a", "messages": [u("héllo ✓"), a("line\u2028sep\nnewline")], "score": 1, "lang": "fr",
     "provenance": {"model": "m", "sampling": {"temperature": 0.7, "top_p": 1}, "seed": 3}},
    {"messages": [s("sys"), u("q"), a("r")], "score": 2.5, "lang": None, "ok": True,
     "provenance": {"model": "m", "truncated": False}},
    {"id": "c", "messages": [u("q2"), a("r2")], "big": 2 ** 70},
    {"messages": [u("q3"), a("r3")], "score": None, "provenance": None},
]
ROWS_EMPTY_DICTS = [  # `{}` infers to a field-less struct, which parquet cannot store
    {"id": "e1", "messages": [u("q"), a("r")], "provenance": {"sampling": {}}},
    {"id": "e2", "messages": [u("q"), a("r")], "provenance": {"sampling": {}}},
]


@pytest.mark.parametrize("name,fmt", [("d.jsonl", None), ("d.parquet", None), ("dsdir", "datasets")])
def test_round_trip_identical(tmp_path, name, fmt):
    path = tmp_path / name
    assert write_records(ROWS, path, format=fmt) == path
    got = read_records(path).rows
    want = [with_id(r) for r in ROWS]  # a row without an id gets its content id on read (issue 10)
    assert any("id" not in r for r in ROWS) and got == want
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)  # 1 stays 1, not 1.0
    for row, orig in zip(got, want):
        assert row.keys() == orig.keys()  # absent keys stay absent, None stays None
    if fmt is None and name.endswith(".jsonl"):
        assert [list(r) for r in got] == [list(r) for r in want]  # JSONL keeps key order
    write_records(ROWS_EMPTY_DICTS, path, format=fmt)  # overwrite in place
    assert read_records(path).rows == ROWS_EMPTY_DICTS


def test_round_trip_pairs_and_empty(tmp_path):
    pairs = [GOOD_PAIR, {**GOOD_PAIR, "id": "p2", "split": "heldout", "family": "suffix"}]
    for name, fmt in [("p.jsonl", None), ("p.parquet", None), ("pdir", "datasets")]:
        write_records(pairs, tmp_path / name, format=fmt)
        assert read_records(tmp_path / name, "pair").rows == pairs
        write_records([], tmp_path / name, format=fmt)
        assert read_records(tmp_path / name).rows == []
    write_records([{}, {}], tmp_path / "e.parquet")
    assert read_records(tmp_path / "e.parquet", on_error="skip").n_read == 2


def test_parquet_keeps_native_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": "a", "messages": [u("q"), a("r")], "score": 1}, {"id": "b", "messages": [u("q")], "score": 2}]
    write_records(rows, tmp_path / "n.parquet")
    schema = pq.read_schema(tmp_path / "n.parquet")
    assert schema.field("messages").type == pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert schema.field("score").type == pa.int64()
    # parquet errors carry the row number as the line
    with pytest.raises(RecordError) as info:
        read_records(tmp_path / "n.parquet")
    assert str(info.value) == (f"{tmp_path / 'n.parquet'}:2: messages[0].role: last message must be "
                               "'assistant' (a training example ends with the response), got 'user'")
    assert read_records(tmp_path / "n.parquet", require_response=False).rows == rows


def test_folder_with_one_data_file_and_bad_paths(tmp_path):
    write_records([GOOD_SFT], tmp_path / "run" / "data.jsonl")
    write_rejected([], tmp_path / "run" / "rejected.jsonl")
    assert read_records(tmp_path / "run").rows == [GOOD_SFT]
    with pytest.raises(RecordError, match="no such file or folder"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(RecordError, match=r"x\.csv: <file>: unsupported file type '\.csv'"):
        read_records(tmp_path / "x.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordError, match="folder holds no data file"):
        read_records(tmp_path / "empty")


def test_content_id_and_with_id():
    base = {"messages": [u("q"), a("r")]}
    cid = content_id(base, "sft")
    assert len(cid) == 16 and int(cid, 16) >= 0
    retagged = {"score": 5, "provenance": {"model": "x"}, "id": "whatever",
                "messages": [{"content": "q", "role": "user"}, {"content": "r", "role": "assistant"}]}
    assert content_id(retagged, "sft") == cid  # tags, provenance, id, key order do not count
    assert content_id({"messages": [u("q"), a("r!")]}, "sft") != cid
    assert content_id(GOOD_PAIR, "pair") == content_id({**GOOD_PAIR, "target": "5", "split": "heldout"}, "pair")
    assert content_id(GOOD_PAIR, "pair") != content_id({**GOOD_PAIR, "wrapper": "other"}, "pair")
    assert content_id({"prompt": "q", "completion": "r"}, "prompt_completion") != content_id(
        {"prompt": "q", "completion": "r2"}, "prompt_completion")

    row = {**base, "tag": 1}
    out = with_id(row, "sft")
    assert out == {"id": cid, **row} and list(out)[0] == "id" and "id" not in row  # a copy
    assert with_id({**row, "id": "given"}, "sft")["id"] == "given"  # present ids are kept
    assert validate({**row, "id": "given"}, "sft") == []
    assert validate({**row, "id": "given"}, "sft", strict_ids=True) == [
        ("id", f"does not match content hash (expected {cid})")]
    assert validate(out, "sft", strict_ids=True) == []


@pytest.mark.parametrize("name,fmt", [("o.jsonl", None), ("o.parquet", None), ("odir", "datasets")])
def test_atomic_write_leaves_old_file_and_no_temps(tmp_path, name, fmt):
    path = tmp_path / name
    write_records([GOOD_SFT], path, format=fmt)
    snapshot = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    bad_rows = [GOOD_SFT, {**GOOD_SFT, "id": "x2", "blob": object()}]
    with pytest.raises(RecordError, match=r":2: (blob|<row>): cannot be serialised"):
        write_records(bad_rows, path, format=fmt)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == snapshot
    assert sorted(os.listdir(tmp_path)) == [name]
    assert read_records(path).rows == [GOOD_SFT]


def test_write_records_needs_a_known_format(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the output format"):
        write_records([GOOD_SFT], tmp_path / "out")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        write_records([GOOD_SFT], tmp_path / "mine", format="datasets")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_iter_jsonl_tolerates_only_a_truncated_last_line(tmp_path):
    log = tmp_path / "log.jsonl"
    assert list(iter_jsonl(log)) == []  # nothing logged yet
    for i in range(3):
        append_jsonl(log, {"i": i, "text": "é"})
    full = log.read_bytes()
    log.write_bytes(full + b'{"i": 3, "te')  # killed mid-write
    assert [r["i"] for r in iter_jsonl(log)] == [0, 1, 2]
    append_jsonl(log, {"i": 3})  # the partial line is cut, not fused with the new one
    assert [r["i"] for r in iter_jsonl(log)] == [0, 1, 2, 3]
    assert log.read_bytes() == full + b'{"i": 3}\n'
    log.write_bytes(full + b'{"i": 3}')  # a whole last row without its newline is kept
    assert [r["i"] for r in iter_jsonl(log)] == [0, 1, 2, 3]
    append_jsonl(log, {"i": 4})
    assert [r["i"] for r in iter_jsonl(log)] == [0, 1, 2, 3, 4]
    log.write_bytes(b'{"i": 0, "te')  # a file holding only a partial line
    append_jsonl(log, {"i": 1})
    assert log.read_bytes() == b'{"i": 1}\n'

    lines = full.split(b"\n")
    log.write_bytes(b"\n".join([lines[0], b'{"i": 1, "te', lines[2], b""]))  # a bad middle line
    with pytest.raises(RecordError, match=r"log\.jsonl:2: <json>: invalid JSON"):
        list(iter_jsonl(log))
    log.write_bytes(full + b'{"i": 3, "te\n')  # complete line (newline written) but bad: an error
    with pytest.raises(RecordError, match=":4: <json>"):
        list(iter_jsonl(log))
    with pytest.raises(TypeError):
        append_jsonl(log, [1])


def test_record_error_format_and_pickle(tmp_path):
    err = RecordError(tmp_path / "f.jsonl", 3, "messages[0].role", "bad")
    assert str(err) == f"{tmp_path / 'f.jsonl'}:3: messages[0].role: bad"
    assert isinstance(err, ValueError)
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
    assert str(RecordError("f", None, "<file>", "gone")) == "f: <file>: gone"
