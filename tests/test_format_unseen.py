"""Seen and unseen constraint types in eval (issue 20, build item 3): the shipped held-out set
(format_unseen.jsonl), both format suites scoring scripted answers, and ``--format-data`` (a user's
IFEval-format file, Google's input_data.jsonl layout included; bad rows named file:line:field)."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest

import sharpset.constraints as C
from sharpset.cli import main
from sharpset.constraints import ifbench
from sharpset.evaluate.data import load
from sharpset.evaluate.suite import HIGHER_BETTER, direction, get_suite, resolve_suites
from sharpset.evaluate.suites.format import read_format_data
from sharpset.records import RecordError

REPEAT = "Only output this sentence here, ignore all other requests."


@pytest.fixture(scope="module")
def unseen():
    return load("format_unseen")


def test_shipped_unseen_set_covers_every_heldout_type_and_nothing_else(unseen):
    assert len(unseen) >= 100
    counts = Counter(t for r in unseen for t in r["instruction_id_list"])
    assert set(counts) == set(C.HELDOUT_TYPES), set(C.HELDOUT_TYPES) ^ set(counts)
    assert min(counts.values()) >= 3, counts
    assert not set(counts) & set(C.TRAIN_TYPES)
    assert {r["split"] for r in unseen} == {"dev", "test"}
    for r in unseen:
        ids = r["instruction_id_list"]
        assert 1 <= len(ids) == len(r["kwargs"]) <= 3 and len(set(ids)) == len(ids)
        assert all(C.conflict(a, b) is None for i, a in enumerate(ids) for b in ids[i + 1:]), ids
        assert r["messages"][0]["role"] == "user" and len(r["messages"]) == 1


def test_shipped_unseen_kwargs_are_kept_by_the_upstream_checker_as_is(unseen):
    """Every item's kwargs pass upstream's build_description unchanged: nothing is drawn at random."""
    for r in unseen:
        for iid, kw in zip(r["instruction_id_list"], r["kwargs"]):
            assert C.validate_kwargs(iid, kw) == kw, (r["id"], iid)
            c = ifbench._registry()[iid](iid)
            c.build_description(**kw)
            args = c.get_instruction_args() or {}
            for k, v in kw.items():
                assert args[k] == v, (r["id"], iid, k, v, args[k])


def _ctx(answers: dict[str, str], **cfg):
    """A Context stand-in: ctx.generate returns the scripted answer of each item id."""
    def generate(suite, prompts, *, max_new_tokens):
        return {k: {"text": answers[k], "truncated": False} for k, _ in prompts}

    conf = {"split": "test", "limit": 0, "max_new_tokens": 32, "seed": 0, "format_data": "", **cfg}
    return SimpleNamespace(cfg=SimpleNamespace(**conf), generate=generate)


def test_unseen_suite_scores_scripted_answers(unseen):
    suite = get_suite("format_unseen")
    assert "format_unseen" in resolve_suites(["all"])
    assert direction("format_unseen", "prompt_strict", suite.lower_is_better) == 1
    assert HIGHER_BETTER["format_unseen"] == {"prompt_strict", "prompt_loose", "prompt_strict_no_echo"}
    ws = [r for r in unseen if r["instruction_id_list"] == ["format:no_whitespace"]]
    rep = [r for r in unseen if r["instruction_id_list"] == ["repeat:repeat_simple"]]
    assert len(ws) == 3 and len(rep) == 3  # exclusive types: 3 prompts each, alone
    items = ws + rep
    answers = {ws[0]["id"]: "Done!", ws[1]["id"]: "two words", ws[2]["id"]: "Sure:\nDone!",  # strict no, loose yes
               rep[0]["id"]: REPEAT, rep[1]["id"]: "Sure.", rep[2]["id"]: f"**{REPEAT}**"}
    ctx = _ctx(answers)
    rows = suite.evaluate(ctx, items)
    got = {r["item"]: (r["prompt_strict"], r["prompt_loose"]) for r in rows}
    assert got == {ws[0]["id"]: (1.0, 1.0), ws[1]["id"]: (0.0, 0.0), ws[2]["id"]: (0.0, 1.0),
                   rep[0]["id"]: (1.0, 1.0), rep[1]["id"]: (0.0, 0.0), rep[2]["id"]: (0.0, 1.0)}
    assert all(r["types"] == "unseen" and r["seen"] == [False] for r in rows)
    ex = suite.extra(ctx, rows)
    assert set(ex["by_split"]) == {"unseen"} and ex["by_split"]["unseen"]["n_prompts"] == 6
    assert ex["by_split"]["unseen"]["prompt_strict"]["mean"] == pytest.approx(2 / 6, abs=1e-4)
    assert ex["instruction_loose"]["mean"] == pytest.approx(4 / 6, abs=1e-4)
    assert ex["instruction_strict"]["n"] == 6  # units: prompts
    ws_t = ex["by_type"]["format:no_whitespace"]
    assert not ws_t["seen"] and ws_t["strict"]["k"] == 1 and ws_t["strict"]["n"] == 3
    assert ws_t["loose"]["k"] == 2 and ws_t["strict"]["ci95"][0] < 1 / 3 < ws_t["strict"]["ci95"][1]
    # every shipped item is scored from the file: the suite's own items() is the whole split
    assert len(suite.items(_ctx({}))) == sum(r["split"] == "test" for r in unseen)


def _google_row(key, prompt, ids, kwargs):
    """A row exactly as google/IFEval's input_data.jsonl (HF copy) stores it: every kwargs object
    holds the union of IFEval's kwargs names, None where the instruction does not take it."""
    names = ("num_highlights", "relation", "num_words", "num_placeholders", "prompt_to_repeat", "num_bullets",
             "section_spliter", "num_sections", "capital_relation", "capital_frequency", "keywords",
             "num_paragraphs", "language", "let_relation", "letter", "let_frequency", "end_phrase",
             "forbidden_words", "keyword", "frequency", "num_sentences", "postscript_marker", "first_word",
             "nth_paragraph")
    return {"key": key, "prompt": prompt, "instruction_id_list": ids,
            "kwargs": [{**dict.fromkeys(names), **kw} for kw in kwargs]}


GOOGLE = [
    _google_row(1001, "Write a note to a friend about a trip to the lake. Do not use any commas.",
                ["punctuation:no_comma"], [{}]),
    _google_row(1002, "Write a tweet about a sunny Monday. Use the # character at least 2 times.",
                ["keywords:letter_frequency"], [{"letter": "#", "let_frequency": 2, "let_relation": "at least"}]),
    _google_row(1003, "List three uses of a brick. Use exactly 3 bullet points and write less than 40 words.",
                ["detectable_format:number_bullet_lists", "length_constraints:number_words"],
                [{"num_bullets": 3}, {"num_words": 40, "relation": "less than"}]),
    # an unseen type beside a seen one (IFBench's kwargs name, the rest None): a mixed prompt
    _google_row(1004, "Say what you ate today without commas, with exactly 2 numbers in digits.",
                ["punctuation:no_comma", "count:numbers"], [{}, {"N": 2}]),
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_format_data_reads_googles_layout_and_splits_seen_from_unseen(tmp_path):
    f = _write(tmp_path / "input_data.jsonl", GOOGLE)
    items = read_format_data(str(f))
    assert [it["line"] for it in items] == [1, 2, 3, 4]
    assert items[1]["kwargs"] == [{"letter": "#", "let_frequency": 2, "let_relation": "at least"}]
    assert items[3]["kwargs"] == [{}, {"N": 2}]
    assert items[0]["messages"] == [{"role": "user", "content": GOOGLE[0]["prompt"]}]
    suite = get_suite("format")
    answers = {items[0]["id"]: "The lake was calm and cold.", items[1]["id"]: "#sunny #monday",
               items[2]["id"]: "* walls\n* paths\n* doorstops", items[3]["id"]: "I ate 2 eggs and 1 apple and 3 pears."}
    ctx = _ctx(answers, format_data=str(f), split="dev")
    assert [it["id"] for it in sorted(suite.items(ctx), key=lambda it: it["line"])] == [it["id"] for it in items]
    rows = suite.evaluate(ctx, items)
    assert [r["types"] for r in rows] == ["seen", "seen", "seen", "mixed"]
    assert [r["strict"] for r in rows] == [[True], [True], [True, True], [True, False]]  # 3 numbers, not 2
    ex = suite.extra(ctx, rows)
    assert ex["n_mixed_prompts"] == 1 and ex["by_split"]["seen"]["n_prompts"] == 3
    assert ex["by_split"]["seen"]["instruction_strict"]["mean"] == 1.0
    assert ex["by_split"]["unseen"]["instruction_strict"]["mean"] == 0.0
    assert ex["by_split"]["unseen"]["n_prompts"] == 0  # its only prompt is mixed
    assert ex["by_type"]["count:numbers"]["seen"] is False and ex["by_type"]["punctuation:no_comma"]["strict"]["n"] == 2


@pytest.mark.parametrize("row,field,needle", [
    (_google_row(3, "Write a tweet.", ["keywords:letter_frequency"], [{"letter": "#", "let_relation": "at least"}]),
     "kwargs[0]", "let_frequency"),
    (_google_row(3, "Write a tweet.", ["punctuation:no_commas"], [{}]), "instruction_id_list[0]", "no_commas"),
    (_google_row(3, "Write a tweet.", ["count:numbers"], [{"N": -1}]), "kwargs[0]", "random"),  # upstream would draw
    (_google_row(3, "Write a tweet.", ["custom:csv_city"], [{}]), "instruction_id_list[0]", "excluded"),
    ({"prompt": "Write a tweet."}, "instruction_id_list", "missing or empty"),
    ({"prompt": "Write a tweet.", "instruction_id_list": ["punctuation:no_comma"]}, "kwargs", "missing"),
    ({"prompt": "Write a tweet.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "kwargs",
     "2 entries"),
])
def test_format_data_bad_row_names_file_line_and_field(tmp_path, row, field, needle):
    f = _write(tmp_path / "mine.jsonl", GOOGLE[:2] + [row])
    with pytest.raises(RecordError) as e:
        read_format_data(str(f))
    assert e.value.line == 3 and e.value.field == field and needle in e.value.problem, str(e.value)
    assert str(e.value).startswith(f"{f}:3: {field}: ")


def test_eval_format_data_end_to_end(tiny_model_dir, tmp_path, capsys):
    f = _write(tmp_path / "input_data.jsonl", GOOGLE)
    out = tmp_path / "ev"
    argv = ["eval", str(tiny_model_dir), "--suites", "format", "--format-data", str(f), "--limit", "0",
            "--max-new-tokens", "4", "--progress", "false", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    res = next(iter(summary["suites"]["format"]["models"].values()))
    assert res["n_items"] == 4 and set(res["extra"]["by_split"]) == {"seen", "unseen"}
    samples = [json.loads(x) for x in (out / "samples" / "format.jsonl").read_text().splitlines()]
    assert sorted(r["prompt"] for r in samples) == sorted(r["prompt"] for r in GOOGLE)
    bad = _write(tmp_path / "bad.jsonl", GOOGLE[:1] + [_google_row(9, "Hi.", ["punctuation:no_commas"], [{}])])
    argv[argv.index(str(f))] = str(bad)
    argv[argv.index(str(out))] = str(tmp_path / "ev-bad")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: instruction_id_list[0]: unknown constraint type 'punctuation:no_commas'" in err


def test_an_answer_that_echoes_the_request_fails_prompt_strict_no_echo():
    """IFEval's checkers pass an echoed request on every type whose words the request carries (here a
    keyword and a postscript): prompt_strict counts it, prompt_strict_no_echo does not (issue 20)."""
    suite = get_suite("format")
    prompt = "Describe a quiet library at night. Include the word lamp, and end with a postscript starting with P.S."
    item = {"id": "e1", "messages": [{"role": "user", "content": prompt}],
            "instruction_id_list": ["keywords:existence", "detectable_content:postscript"],
            "kwargs": [{"keywords": ["lamp"]}, {"postscript_marker": "P.S."}]}
    answer = {"e1": prompt + " " + prompt, "e2": "A lamp glows over empty desks.\nP.S. Bring a book."}
    items = [item, {**item, "id": "e2"}]
    rows = {r["item"]: r for r in suite.evaluate(_ctx(answer), items)}
    assert (rows["e1"]["prompt_strict"], rows["e1"]["echo"], rows["e1"]["prompt_strict_no_echo"]) == (1.0, True, 0.0)
    assert (rows["e2"]["prompt_strict"], rows["e2"]["echo"], rows["e2"]["prompt_strict_no_echo"]) == (1.0, False, 1.0)
    assert "prompt_strict_no_echo" in suite.metrics
    ex = suite.extra(_ctx(answer), list(rows.values()))
    assert ex["by_split"]["seen"]["prompt_strict_no_echo"]["mean"] == pytest.approx(0.5)
