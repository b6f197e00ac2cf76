"""Fuzz (hypothesis) over record files and ``--config`` YAML files (issue 10): every malformed input
ends in exit 2 with one ``file:line: field: problem`` line naming the first bad line, and nothing is
written to the output folder.

The stage under test is ``tag --scores shape`` (no model is loaded, so each example runs in
milliseconds); what it exercises -- reading and validating records, reading a config file, building
the config, opening and discarding the run folder -- is what every stage shares.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharpset.cli import main
from sharpset.records import ROLES

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
name = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


def run_cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    return rc, err.getvalue()


def assert_clean_failure(rc: int, err: str, path: Path, line: int | None, out: Path) -> None:
    errors = [l for l in err.splitlines() if l.startswith("error")]
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err, err
    where = re.escape(str(path)) + (f":{line}" if line is not None else r":\d+")
    assert re.fullmatch(rf"error: {where}: \S+: \S.*", errors[0]), errors[0]
    assert not out.exists(), sorted(p.name for p in out.iterdir())


# ---------------------------------------------------------------- record files


def good_row(i: int, q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": f"{i}: {q}"}, {"role": "assistant", "content": a}]}


MSG = st.fixed_dictionaries({"role": st.sampled_from(ROLES), "content": text})


@st.composite
def bad_line(draw, earlier_ids: list[str]) -> bytes:
    """One JSONL line that ``read_records(..., "sft")`` must reject."""
    ok = {"messages": [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]}
    kinds = ["json", "not_object", "no_kind", "role", "content_type", "missing_content", "ends_user", "empty",
             "not_list", "extra_key", "tag_not_scalar", "id_type", "provenance", "utf8"]
    if earlier_ids:
        kinds.append("duplicate")
    kind = draw(st.sampled_from(kinds))
    if kind == "json":
        return draw(st.sampled_from(['{"messages": [', "{'single': 'quotes'}", "not json at all", '{"a": 1,}',
                                     '{"a": 1} trailing', '{"id": "x", "id": "y", "messages": []}'])).encode()
    if kind == "not_object":
        return json.dumps(draw(st.one_of(st.integers(), text, st.lists(st.integers(), max_size=3), st.none()))).encode()
    if kind == "no_kind":
        return json.dumps({draw(name) + "_x": draw(text)}).encode()
    if kind == "role":
        ok["messages"][0]["role"] = draw(text.filter(lambda r: r not in ROLES))
    elif kind == "content_type":
        ok["messages"][1]["content"] = draw(st.one_of(st.integers(), st.none(), st.lists(text, max_size=2)))
    elif kind == "missing_content":
        del ok["messages"][draw(st.integers(0, 1))]["content"]
    elif kind == "ends_user":
        ok["messages"] = ok["messages"][:1]
    elif kind == "empty":
        ok["messages"] = []
    elif kind == "not_list":
        ok["messages"] = draw(st.one_of(text, st.integers(), st.dictionaries(name, text, max_size=2)))
    elif kind == "extra_key":
        ok["messages"][0][draw(name) + "_k"] = draw(text)
    elif kind == "tag_not_scalar":
        ok[draw(name) + "_tag"] = draw(st.one_of(st.lists(st.integers(), max_size=2), st.dictionaries(name, text, max_size=2)))
    elif kind == "id_type":
        ok["id"] = draw(st.one_of(st.integers(), st.just(""), st.lists(text, max_size=1), st.booleans()))
    elif kind == "provenance":
        ok["provenance"] = draw(st.one_of(text, st.integers(), st.lists(text, max_size=1)))
    elif kind == "utf8":
        return b'{"messages": "\xff\xfe"}'
    elif kind == "duplicate":
        ok["id"] = draw(st.sampled_from(earlier_ids))
    return json.dumps(ok).encode()


@st.composite
def record_file(draw) -> tuple[bytes, int]:
    """A JSONL file with good rows, then at least one bad line: ``(bytes, line of the first bad one)``."""
    n_good = draw(st.integers(0, 4))
    rows = [good_row(i, draw(text), draw(text)) for i in range(n_good)]
    with_ids = [dict(r, id=f"row{i}") if draw(st.booleans()) else r for i, r in enumerate(rows)]
    lines = [json.dumps(r).encode() for r in with_ids]
    blanks = draw(st.lists(st.integers(0, len(lines)), max_size=2))  # blank lines still count
    for at in sorted(blanks, reverse=True):
        lines.insert(at, b"")
    ids = [r["id"] for r in with_ids if "id" in r]
    lines.append(draw(bad_line(ids)))
    first_bad = len(lines)
    tail = draw(st.lists(st.sampled_from([b"", b"{}", json.dumps(good_row(99, "q", "a")).encode()]), max_size=2))
    return b"\n".join(lines + tail) + b"\n", first_bad


@FUZZ
@given(record_file())
def test_malformed_record_files_exit_2_naming_the_line_and_write_nothing(case):
    data, line = case
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "pool.jsonl", Path(d) / "out"
        src.write_bytes(data)
        rc, err = run_cli(["tag", str(src), "--scores", "shape", "--out", str(out)])
        assert_clean_failure(rc, err, src, line, out)


# ---------------------------------------------------------------- --config files

GOOD = {"scores": "[shape]", "chunk": "8", "batch_size": "4", "min_mass": "0.01", "on_error": "raise"}


def _not_an_int(t: str) -> bool:
    """A flag/config text that does not read as a whole number (config.coerce parses it as YAML)."""
    import yaml

    try:
        v = yaml.safe_load(t) if t.strip() else t
    except yaml.YAMLError:
        return True
    return not ((isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()))


@st.composite
def bad_entry(draw) -> tuple[str, str | None]:
    """``(yaml line, field the error must name or None)`` for one bad key of a TagConfig file."""
    kind = draw(st.sampled_from(["unknown", "int", "float", "list", "check", "str_list", "null", "key_type"]))
    if kind == "unknown":
        key = draw(name.filter(lambda k: k not in ("input", "judge", "scorer", "scores", "min_mass", "max_length",
                                                      "batch_size", "chunk", "on_error")))
        return f"{key}: {json.dumps(draw(text))}", key
    if kind == "int":
        value = draw(st.one_of(text.filter(_not_an_int), st.floats(0.5, 9.5).filter(lambda f: not f.is_integer())))
        return f"chunk: {json.dumps(value)}", "chunk"
    if kind == "float":
        return f"min_mass: {json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=2), st.just('abc'))))}", "min_mass"
    if kind == "list":
        return "scores: {a: 1}", "scores"
    if kind == "check":
        return draw(st.sampled_from([("min_mass: 2", "min_mass"), ("scores: [bogus]", "scores"),
                                     ("on_error: explode", "on_error"), ("min_mass: -0.5", "min_mass")]))
    if kind == "str_list":
        return "judge: [a, b]", "judge"
    if kind == "null":
        return "chunk: null", "chunk"
    return f"{draw(st.integers(0, 99))}: x", None


@st.composite
def config_file(draw) -> tuple[str, int | None]:
    """A config text with one bad part: ``(text, its line, or None where YAML decides the line)``."""
    shape = draw(st.sampled_from(["entry", "entry", "entry", "not_mapping", "syntax"]))
    pad = draw(st.lists(st.sampled_from(["", "# a comment"]), max_size=2))
    if shape == "not_mapping":
        body = draw(st.sampled_from(["- a\n- b", "just words", "42", "[1, 2]", "true"]))
        return "\n".join(pad + [body]) + "\n", len(pad) + 1
    lines = list(pad)
    keys = draw(st.permutations(list(GOOD)))[: draw(st.integers(1, len(GOOD)))]
    if "scores" not in keys:
        keys = ["scores", *keys]
    bad, bad_field = draw(bad_entry()) if shape == "entry" else ("chunk: [1, 2", None)
    keys = [k for k in keys if not bad.startswith(f"{k}:")]
    at = draw(st.integers(0, len(keys)))
    for i, k in enumerate(keys):
        if i == at:
            lines.append(bad)
            bad_line = len(lines)
        lines.append(f"{k}: {GOOD[k]}")
        if draw(st.booleans()):
            lines.append("")
    if at == len(keys):
        lines.append(bad)
        bad_line = len(lines)
    return "\n".join(lines) + "\n", bad_line if shape == "entry" else None


@FUZZ
@given(config_file())
def test_malformed_config_files_exit_2_naming_the_line_and_write_nothing(case):
    body, line = case
    with tempfile.TemporaryDirectory() as d:
        src, cfg, out = Path(d) / "pool.jsonl", Path(d) / "cfg.yaml", Path(d) / "out"
        src.write_text(json.dumps(good_row(0, "q", "a")) + "\n")
        cfg.write_text(body)
        rc, err = run_cli(["tag", str(src), "--config", str(cfg), "--out", str(out)])
        assert_clean_failure(rc, err, cfg, line, out)
