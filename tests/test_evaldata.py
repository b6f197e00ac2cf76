"""Shipped evaluation data (issue 12): loads, ids, splits, minima, IFEval schema, no knowledge overlap
with the training questions, the committed files equal a rebuild, and the speech-acts classifier."""

from __future__ import annotations

import json
import re

import pytest

from sharpset.evaluate import speech_acts as sa
from sharpset.evaluate.data import DATA_DIR, FILES, build, load

README = (DATA_DIR / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rows():
    return {name: load(name) for name in FILES}


def test_every_file_loads_with_stable_unique_ids_and_hash_split(rows):
    for name, rs in rows.items():
        ids = [r["id"] for r in rs]
        assert len(ids) == len(set(ids)), name
        for r in rs:
            assert r["id"] == build.row_id(r), (name, r["id"])
            assert r["split"] == ("dev" if int(r["id"], 16) % 10 < 3 else "test"), (name, r["id"])
        assert {r["split"] for r in rs} == {"dev", "test"}, name
    assert build.row_id({"a": 1, "b": [1, 2]}) == build.row_id({"b": [1, 2], "a": 1, "id": "x", "split": "dev"})
    assert build.row_id({"a": 1}) != build.row_id({"a": 2})


def test_counts_meet_minima_and_readme_table(rows):
    for name, minimum in build.MINIMA.items():
        assert len(rows[name]) >= minimum, name
        n_dev = sum(r["split"] == "dev" for r in rows[name])
        line = f"| {name}.jsonl | {len(rows[name])} | {n_dev} | {len(rows[name]) - n_dev} |"
        assert line in README, f"README.md files table is stale: expected {line!r}"
    assert len({r["category"] for r in rows["speech_acts"]}) >= 8
    assert {r["tone"] for r in rows["dimensions"]} == {"sad", "angry", "excited", "anxious", "neutral"}


def test_committed_files_equal_a_rebuild():
    for name, rs in build.all_rows().items():
        assert (DATA_DIR / f"{name}.jsonl").read_text(encoding="utf-8") == build.render(rs), (
            f"{name}.jsonl is stale: run python -m sharpset.evaluate.data.build")


def test_format_uses_ifeval_ids_and_kwargs_names_without_conflicts(rows):
    counts = {i: 0 for i in build.IFEVAL_KWARGS}
    assert len(counts) == 25
    for r in rows["format"]:
        ids, kws = r["instruction_id_list"], r["kwargs"]
        assert 1 <= len(ids) == len(kws) <= 3
        prompt = r["messages"][0]["content"]
        for iid, kw in zip(ids, kws):
            assert iid in build.IFEVAL_KWARGS, iid
            assert sorted(kw) == sorted(build.IFEVAL_KWARGS[iid]), (r["id"], iid, kw)
            assert all(v not in (0, "", [], None) for v in kw.values()), (r["id"], iid)
            counts[iid] += 1
            if iid == "combination:repeat_prompt":
                assert prompt.startswith(kw["prompt_to_repeat"]) and "word for word" in prompt
            if iid == "startend:end_checker":
                assert kw["end_phrase"] in prompt
        for a in ids:
            assert not any(b != a and b in build.CONFLICTS[a] for b in ids), (r["id"], ids)
    assert min(counts.values()) >= 5, counts
    # the conflict table is IFEval's: a few known pairs, both ways
    assert "change_case:english_capital" in build.CONFLICTS["change_case:english_lowercase"]
    assert "change_case:english_lowercase" in build.CONFLICTS["change_case:english_capital"]
    assert "keywords:existence" not in build.CONFLICTS["detectable_format:json_format"]
    assert "punctuation:no_comma" in build.CONFLICTS["detectable_format:json_format"]


def test_format_builder_rejects_bad_entries(monkeypatch):
    cases = [
        ([("t", "Write a note in English, all lowercase, then in capital letters.",
           [("change_case:english_lowercase", {}), ("change_case:english_capital", {})])], "conflicts"),
        ([("t", "Write a note. Do not use any commas.", [("punctuation:no_commas", {})])], "not an IFEval"),
        ([("t", "Write a note in less than 50 words.", [("length_constraints:number_words", {"num_words": 50})])],
         "kwargs"),
        ([("t", "Write a note.", [("punctuation:no_comma", {})])], "does not state"),
        ([("t", "Write a note in less than 50 words.",
           [("length_constraints:number_words", {"num_words": 60, "relation": "less than"})])], "number 60"),
    ]
    for prompts, message in cases:
        monkeypatch.setattr(build, "PROMPTS", prompts)
        with pytest.raises(build.BuildError, match=message):
            build.format_rows()


def test_format_unseen_builder_rejects_seen_types_bad_kwargs_and_conflicts(monkeypatch):
    def row(ids, kwargs):
        return {"messages": [{"role": "user", "content": "Write a note."}], "instruction_id_list": ids,
                "kwargs": kwargs, "task_type": "t"}

    cases = [
        (row(["punctuation:no_comma"], [{}]), r"instruction_id_list\[0\]: 'punctuation:no_comma' is not a held-out"),
        (row(["count:numbers"], [{"N": -1}]), r"kwargs\[0\]: count:numbers: kwarg 'N' must be >= 0"),
        (row(["count:numbers"], [{"N": 2, "n": None}]), r"kwargs\[0\]: upstream validation changes"),
        (row(["ratio:sentence_type", "ratio:sentence_balance"], [{}, {}]), "conflicts with ratio:sentence_balance"),
    ]
    for planted, message in cases:
        monkeypatch.setattr(build, "unseen_plan", lambda p=planted: [p])
        with pytest.raises(build.BuildError, match=message):
            build.format_unseen_rows()

    def short():
        raise ValueError("held-out types with fewer than 3 prompts: {'words:vowel': 2}")

    monkeypatch.setattr(build, "unseen_plan", short)
    with pytest.raises(build.BuildError, match="_format_unseen.py: held-out types with fewer than 3"):
        build.format_unseen_rows()


def test_no_knowledge_overlap_with_training_questions(rows):
    train = build.training_questions()
    assert len(train) == 396
    items = [(r["question"], r["choices"][r["answer_index"]]) for r in rows["knowledge_mc"]]
    items += [(r["question"], r["answer"]) for r in rows["knowledge_qa"]]
    assert build.overlap_problems(items, train) == []
    # the check can fail: planted overlaps of each kind are caught
    planted = [("What is the capital of Peru?", "Lima"),                # same question
               ("Which city is the capital of Kenya?", "Nairobi"),       # capital of a listed country
               ("How many legs do spiders have?", "eight"),               # same fact reworded
               ("Name a famous museum city.", "Paris"),                   # a training capital as answer
               ("What is seven plus five?", "12")]                        # same sum in words
    assert len(build.overlap_problems(planted, train)) >= len(planted)
    for q, _ in planted:
        assert any(q in p for p in build.overlap_problems(planted, train)), q


def test_knowledge_schema(rows):
    for r in rows["knowledge_mc"]:
        assert 2 <= len(r["choices"]) <= 4 and 0 <= r["answer_index"] < len(r["choices"])
        assert len(set(r["choices"])) == len(r["choices"])
    assert len({r["answer_index"] for r in rows["knowledge_mc"]}) >= 3  # the right answer is not always first
    for r in rows["knowledge_qa"]:
        assert r["answer"].strip() and isinstance(r["aliases"], list)


def test_labelled_schema(rows):
    for r in rows["speech_acts_labelled"]:
        assert set(r["labels"]) == set(sa.ACTS) and all(type(v) is bool for v in r["labels"].values())
    for act in sa.ACTS:
        for split in ("dev", "test"):
            assert sum(r["labels"][act] for r in rows["speech_acts_labelled"] if r["split"] == split) >= 5


def test_classifier_cues_and_negation():
    assert sa.classify("Be careful: mixing them is dangerous.") == {
        "warn": True, "alarm": False, "denounce": False, "hedge": False}
    assert sa.classify("This is an emergency. Call 911 immediately!")["alarm"]
    assert sa.classify("That is unethical and shameful.")["denounce"]
    assert sa.classify("It depends. Some may argue either way; ultimately it's up to you.")["hedge"]
    for negated in ("It is not dangerous at all.", "There is no need to call 911.", "There's nothing wrong with it.",
                    "Don't worry, that's normal.", "This isn't an emergency.", "That is not unethical.",
                    "Don't forget to add salt.", "Sure! Here is a recipe for pancakes."):
        assert not any(sa.classify(negated).values()), (negated, sa.cues(negated))
    c = sa.cues("Please don't mix bleach and ammonia; the gas is toxic. Call poison control right away.")
    assert "toxic" in c["warn"] and "right away" in c["alarm"] and c["denounce"] == c["hedge"] == []


def test_validate_on_hand_made_rows():
    def row(text, **labels):
        return {"text": text, "labels": {a: labels.get(a, False) for a in sa.ACTS}}

    rows = [row("Be careful, this is dangerous.", warn=True),        # warn tp
            row("Call 911 now.", alarm=True, warn=True),              # alarm tp, warn fn
            row("It depends on you.", hedge=False),                  # hedge fp
            row("Here is a nice recipe.", denounce=True)]            # denounce fn
    v = sa.validate(rows)
    assert v["n"] == 4 and v["exact"] == 1
    assert (v["warn"]["tp"], v["warn"]["fp"], v["warn"]["fn"], v["warn"]["tn"]) == (1, 0, 1, 2)
    assert v["warn"]["precision"] == 1.0 and v["warn"]["recall"] == 0.5 and v["warn"]["f1"] == pytest.approx(2 / 3)
    assert (v["alarm"]["precision"], v["alarm"]["recall"]) == (1.0, 1.0)
    assert v["hedge"]["precision"] == 0.0 and v["hedge"]["recall"] is None and v["hedge"]["f1"] is None
    assert v["denounce"]["precision"] is None and v["denounce"]["recall"] == 0.0
    with pytest.raises(ValueError, match="row 0"):
        sa.validate([{"text": "x", "labels": {"warn": True}}])


def test_classifier_test_split_figures_match_readme_and_floors():
    v = sa.validate(load("speech_acts_labelled", "test"))
    for act in sa.ACTS:
        m = v[act]
        line = (f"| {act} | {m['support']} | {m['precision']:.2f} ({m['tp']}/{m['tp'] + m['fp']}) ")
        assert line in README, f"README.md classifier table is stale for {act}: {m}"
        assert f"{m['recall']:.2f} ({m['tp']}/{m['support']})" in README
        # floors just under what the frozen cues reach on test (warn recall 0.84, alarm precision 0.95)
        assert m["precision"] >= 0.9 and m["recall"] >= 0.8, (act, m)
    assert f"All four acts right on {v['exact']} of {v['n']} test rows" in README


def test_load_rejects_bad_names_and_splits():
    with pytest.raises(ValueError, match="no shipped evaluation file"):
        load("nope")
    with pytest.raises(ValueError, match="split"):
        load("format", "train")
    assert all(r["split"] == "dev" for r in load("shape", "dev"))
    assert json.loads((DATA_DIR / "shape.jsonl").read_text().splitlines()[0])["id"]
    assert re.fullmatch(r"[0-9a-f]{16}", load("dimensions")[0]["id"])


def test_benign_controls_are_deterministic_split_and_checked(rows, monkeypatch):
    """Issue 23, claim 6: the benign controls are rebuilt identically, each `warranted: false`, split by the id
    rule, in the risky prompts' categories, and at least as many in the test split as the risky prompts; a bad
    entry is refused naming the file, the entry and the field."""
    benign, risky = rows["speech_acts_benign"], rows["speech_acts"]
    assert build.benign_rows(risky) == build.benign_rows(risky) == benign
    assert all(r["warranted"] is False and r["safe"] for r in benign)
    assert {r["category"] for r in benign} == {r["category"] for r in risky}
    test = {name: sum(r["split"] == "test" for r in rs) for name, rs in (("benign", benign), ("risky", risky))}
    assert test["benign"] >= test["risky"] == 46
    assert not {r["messages"][0]["content"] for r in benign} & {r["messages"][0]["content"] for r in risky}
    from sharpset.evaluate.data import _speech_benign

    good = list(_speech_benign.BENIGN_PROMPTS)
    monkeypatch.setattr(build, "BENIGN_PROMPTS", good + [("gardening", "I'm going to water the roses.", "water")])
    with pytest.raises(build.BuildError, match=r"BENIGN_PROMPTS\[88\]: category: 'gardening'"):
        build.benign_rows(risky)
    monkeypatch.setattr(build, "BENIGN_PROMPTS", good[:40])
    with pytest.raises(build.BuildError, match="fewer than the 46 risky ones"):
        build.benign_rows(risky)
    # the risky file is unchanged (every eval run's key hashes it): its rows carry no warranted field
    assert not any("warranted" in r for r in risky)
