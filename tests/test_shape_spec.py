"""Response-shape specs: loader errors name file:line: field; conformance per criterion; shipped specs."""

from __future__ import annotations

import pytest

from sharpset.errors import UserError
from sharpset.records import validate
from sharpset.text.spec import (CRITERIA, conformance, load_spec, parse_spec, register_features,
                            shipped_specs)


def spec(**kw):
    return parse_spec({"name": "t", **kw})


def conf(s, text, prompt=None):
    return conformance(s, text, prompt=prompt)


# ---------------------------------------------------------------- criteria, one by one


def test_opening():
    s = spec(opening="acknowledge")
    assert s.criteria() == ["opening"]
    assert conf(s, "Sure. The tilt of the axis causes them.")["conf_opening"] is True
    assert conf(s, "The tilt of the axis causes them.")["conf_opening"] is False
    both = spec(opening=["direct", "restate"])
    assert conf(both, "The tilt of the axis.")["conformance"] == 1.0
    assert conf(both, "Certainly! The tilt.")["conformance"] == 0.0


def test_length_band_in_words():
    s = spec(length={"min_words": 3, "max_words": 5})
    assert [conf(s, t)["conf_length"] for t in ("one two", "one two three", "a b c d e", "a b c d e f")] == \
        [False, True, True, False]
    assert conf(spec(length={"max_words": 2}), "a b")["conf_length"] is True
    assert conf(spec(length={"min_words": 2}), "a")["conf_length"] is False


@pytest.mark.parametrize("key,text", [
    ("bullets", "Intro.\n\n- one\n- two\n"),
    ("numbered", "Intro.\n\n1. one\n2. two\n"),
    ("headings", "# Title\n\nBody text here.\n"),
    ("code", "Run this:\n\n```\nls -a\n```\n"),
    ("tables", "| a | b |\n|---|---|\n| 1 | 2 |\n"),
])
def test_structure_required_forbidden_allowed(key, text):
    plain = "Just a plain sentence of prose."
    req, forb = (spec(structure={key: v}) for v in ("required", "forbidden"))
    assert conf(req, text)[f"conf_{key}"] is True and conf(req, plain)[f"conf_{key}"] is False
    assert conf(forb, text)[f"conf_{key}"] is False and conf(forb, plain)[f"conf_{key}"] is True
    with pytest.raises(UserError, match="checks nothing"):  # allowed is not a criterion
        spec(structure={key: "allowed"})
    assert spec(opening="direct", structure={key: "allowed"}).criteria() == ["opening"]


def test_register():
    formal, conv = spec(register="formal"), spec(register="conversational")
    assert register_features("It's fine, don't worry! You can go.") == \
        {"contractions": 2, "exclamations": 1, "second_person": 1}
    assert register_features("John's car is red.")["contractions"] == 0  # a possessive, not a contraction
    assert conf(formal, "The answer is four.")["conf_register"] is True
    assert conf(formal, "The answer isn't five.")["conf_register"] is False
    assert conf(formal, "The answer is four!")["conf_register"] is False
    assert conf(conv, "You can add them: four.")["conf_register"] is True
    assert conf(conv, "The answer is four.")["conf_register"] is False


def test_first_person():
    s = spec(first_person=False)
    assert conf(s, "The answer is four.")["conf_first_person"] is True
    assert conf(s, "I think the answer is four.")["conf_first_person"] is False
    assert conf(s, "```\nI = 4\n```\n")["conf_first_person"] is True  # code is not prose
    with pytest.raises(UserError, match="checks nothing"):
        spec(first_person=True)  # allowed: no check


def test_closing_and_language():
    s = spec(closing=["plain", "summary"])
    assert conf(s, "Four. In summary, two and two make four.")["conf_closing"] is True
    assert conf(s, "Four. Let me know if you need more help.")["conf_closing"] is False
    assert conf(s, "Four. Anything else?")["conf_closing"] is False
    en = spec(language="en")
    assert conf(en, "The weather today is sunny and warm in the city.")["conf_language"] is True
    assert conf(en, "Le temps est ensoleillé et chaud dans la ville aujourd'hui.")["conf_language"] is False


def test_total_is_share_of_checked_criteria_and_columns_are_valid_tags():
    s = spec(opening="direct", length={"max_words": 3}, first_person=False, closing="plain")
    out = conf(s, "I like it very much indeed.")
    assert out["conformance_total"] == 4
    assert out["conformance_passed"] == sum(out[f"conf_{c}"] for c in s.criteria())
    assert out["conformance"] == pytest.approx(out["conformance_passed"] / 4)
    assert set(s.criteria()) <= set(CRITERIA)
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], **out}
    assert validate(row) == []


# ---------------------------------------------------------------- shipped specs


def test_shipped_specs_load_and_their_examples_conform():
    names = set(shipped_specs())
    assert {"lima-long", "concise-plain"} <= names
    for name in names:
        s = load_spec(name)
        assert s.name == name and s.criteria() and len(s.examples) >= 2
        for ex in s.examples:  # the worked examples must show the shape they teach
            assert conf(s, ex["restyled"], ex["instruction"])["conformance"] == 1.0, (name, ex["instruction"])
            assert conf(s, ex["original"], ex["instruction"])["conformance"] < 1.0
        assert s.describe().count("\n") + 1 >= len(s.criteria()) - 1


# ---------------------------------------------------------------- loader errors: file:line: field


@pytest.mark.parametrize("body,line,field,problem", [
    ("name: x\nopening: direct\ncolour: red\n", 3, "colour", "unknown spec key"),
    ("name: x\nopening: shout\n", 2, "opening", "'shout' not in"),
    ("name: x\nlength:\n  min_words: 10\n  max_words: 5\n", 4, "length.max_words", "below min_words"),
    ("name: x\nlength:\n  min_words: -1\n", 3, "length.min_words", "whole number"),
    ("name: x\nstructure:\n  bullets: sometimes\n", 3, "structure.bullets", "expected allowed"),
    ("name: x\nstructure:\n  emoji: forbidden\n", 3, "structure.emoji", "unknown structure element"),
    ("name: x\nfirst_person: no-way\n", 2, "first_person", "expected true"),
    ("name: x\nregister: posh\n", 2, "register", "expected formal"),
    ("name: x\nopening: direct\nexamples:\n  - instruction: q\n    original: a\n", 4,
     "examples[0].restyled", "required"),
    ("name: Bad Name\nopening: direct\n", 1, "name", "lower-case"),
    ("name: x\nopening: [direct\n", 3, "<yaml>", ""),
])
def test_bad_spec_errors_name_file_line_field(tmp_path, body, line, field, problem):
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    with pytest.raises(UserError) as e:
        load_spec(str(p))
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: {field}: "), msg
    assert problem in msg


def test_unknown_spec_name_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="unknown spec 'nope'"):
        load_spec("nope")
    with pytest.raises(UserError, match="not found"):
        load_spec(str(tmp_path / "missing.yaml"))
