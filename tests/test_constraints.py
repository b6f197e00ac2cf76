"""The verifiable-constraint registry (sharpset.constraints, issue 20): samplers give kwargs the
upstream checkers keep, phrasings render, conflicts never share a prompt, held-out types are never
drawn by default, known passing/failing responses per type, IFBench offline, IFEval's letter
kwargs ('#', '!') read literally."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import sharpset.constraints as C
from sharpset.constraints import conflicts, ifbench
from sharpset.evaluate import ifeval

INSTRUCTIONS = (
    "Explain how a bicycle gear works, and why riders change gears on hills.",
    "Write a haiku about rain.",
    "Hi",
    "What should I cook tonight with eggs, rice and spinach? I have twenty minutes.",
)


def _upstream(type_id: str, kwargs: dict):
    cls = ifeval._registry()[0][type_id] if C.family(type_id) == "ifeval" else ifbench._registry()[type_id]
    c = cls(type_id)
    c.build_description(**kwargs)
    return c


def test_type_counts_split_and_exclusions():
    assert len(C.TRAIN_TYPES) == 25 and set(C.TRAIN_TYPES) == set(ifeval.SUPPORTED)
    assert len(C.HELDOUT_TYPES) == 45 and not set(C.TRAIN_TYPES) & set(C.HELDOUT_TYPES)
    assert len(C.HELDOUT_TYPES) + len(C.EXCLUDED) == 58 == len(ifbench.ALL_TYPES)
    assert {"words:start_verb", "ratio:stop_words"} <= set(C.EXCLUDED)
    assert sum(t.startswith("custom:") for t in C.EXCLUDED) == 11
    assert "tagger" in C.EXCLUDED["words:start_verb"] and "stopwords" in C.EXCLUDED["ratio:stop_words"]
    for t in C.EXCLUDED:
        with pytest.raises(ValueError, match="excluded"):
            C.family(t)
    assert C.resolve_types(["train"]) == list(C.TRAIN_TYPES)
    assert C.resolve_types(["ifbench", "punctuation:no_comma"])[0] == "punctuation:no_comma"
    with pytest.raises(ValueError, match="types: unknown constraint type 'nope'"):
        C.resolve_types(["nope"])


@pytest.mark.parametrize("type_id", list(C.TYPES))
def test_sampler_kwargs_are_kept_by_the_upstream_checker_and_phrasings_render(type_id):
    spec = C.TYPES[type_id]
    assert len(spec.phrasings) >= 3 and len(set(spec.phrasings)) == len(spec.phrasings)
    seen = 0
    for seed in range(25):
        for ins in INSTRUCTIONS:
            kw = spec.sample(random.Random(seed), ins)
            if kw is None:  # the type does not apply to this instruction (e.g. a span of a 1-word request)
                continue
            seen += 1
            assert C.validate_kwargs(type_id, kw) == kw
            # what upstream's build_description kept is exactly what was drawn: nothing randomised
            args = _upstream(type_id, kw).get_instruction_args() or {}
            for k, v in kw.items():
                assert (sorted(args[k]) == sorted(v)) if isinstance(v, list) else args[k] == v, (k, v, args[k])
            for p in range(len(spec.phrasings)):
                text = C.render(type_id, kw, p)
                assert text.strip() and "{" not in text.replace("{}", ""), text
    assert seen >= 25


def test_phrasings_name_their_source_and_quote_what_the_checker_compares():
    assert "issue 20" in C.PHRASING_SOURCE
    kw = {"N": 3}
    assert "Jonathan" in C.render("count:person_names", kw, 1)  # the checker's own name list is given
    simple = C.render("repeat:repeat_simple", {}, 0)
    assert "Only output this sentence here, ignore all other requests." in simple


def test_conflict_table_is_symmetric_and_draws_never_hold_a_conflict():
    types = list(C.TYPES)
    for a in types:
        for b in types:
            assert bool(conflicts.conflict(a, b)) == bool(conflicts.conflict(b, a)), (a, b)
    assert conflicts.conflict("change_case:english_lowercase", "change_case:english_capital")
    assert conflicts.conflict("detectable_format:json_format", "detectable_format:number_bullet_lists")
    assert conflicts.conflict("detectable_format:json_format", "punctuation:no_comma")
    assert conflicts.conflict("language:response_language", "keywords:existence")
    assert conflicts.conflict("format:options", "punctuation:no_comma")  # exclusive: the whole reply
    assert conflicts.conflict("punctuation:no_comma", "detectable_format:title") is None
    for pool, n in ((list(C.TRAIN_TYPES), 400), (types, 1500)):  # an exclusive type: only in 1-constraint draws
        sizes, drawn = Counter(), Counter()
        for seed in range(n):
            ins = INSTRUCTIONS[seed % len(INSTRUCTIONS)]
            got = C.draw(random.Random(seed), ins, pool)
            assert 1 <= len(got) <= 3
            sizes[len(got)] += 1
            ids = [c["id"] for c in got]
            drawn.update(ids)
            assert len(set(ids)) == len(ids) and set(ids) <= set(pool)
            for i, c in enumerate(got):
                assert all(conflicts.conflict(c["id"], d["id"]) is None for d in got[:i])
                assert conflicts.kwargs_problem(got[:i], c, ins) is None
                C.validate_kwargs(c["id"], c["kwargs"])
            assert "\n\n" in C.user_turn(ins, got)
        assert sizes[2] + sizes[3] > 3 * sizes[1], sizes  # weights 0.2 / 0.4 / 0.4: towards 2-3 constraints
        assert set(drawn) == set(pool), set(pool) - set(drawn)  # no type is silently never drawn


def test_kwargs_rules_block_impossible_combinations():
    ins = "Tell me, briefly, about tea."
    words = {"id": "length_constraints:number_words", "kwargs": {"num_words": 20, "relation": "less than"}}
    many = {"id": "length_constraints:number_sentences", "kwargs": {"num_sentences": 15, "relation": "at least"}}
    assert "words budget" in conflicts.kwargs_problem([words], many, ins)
    span = {"id": "count:word_count_range", "kwargs": {"min_words": 100, "max_words": 120}}
    assert conflicts.kwargs_problem([], span, ins) is None
    assert conflicts.kwargs_problem([{"id": "length_constraints:number_words",
                                      "kwargs": {"num_words": 90, "relation": "at least"}}], span, ins) is None
    assert "words budget" in conflicts.kwargs_problem([words], span, ins)
    rep = {"id": "combination:repeat_prompt", "kwargs": {"prompt_to_repeat": ins}}
    assert "comma" in conflicts.kwargs_problem([rep], {"id": "punctuation:no_comma", "kwargs": {}}, ins)
    low = {"id": "change_case:english_lowercase", "kwargs": {}}
    sec = {"id": "detectable_format:multiple_sections", "kwargs": {"section_spliter": "Section", "num_sections": 2}}
    assert conflicts.kwargs_problem([low], sec, ins)
    assert conflicts.kwargs_problem([low], {**sec, "kwargs": {"section_spliter": "PART", "num_sections": 2}}, ins)
    assert conflicts.kwargs_problem([{"id": "change_case:english_capital", "kwargs": {}}],
                                    {**sec, "kwargs": {"section_spliter": "PART", "num_sections": 2}}, ins) is None


def test_draws_are_keyed_by_seed_stage_and_row():
    ins = INSTRUCTIONS[0]
    a = C.draw(C.rng_for(0, "constrain", "row1"), ins, C.TRAIN_TYPES)
    assert a == C.draw(C.rng_for(0, "constrain", "row1"), ins, C.TRAIN_TYPES)
    others = [C.draw(C.rng_for(0, "constrain", f"row{i}"), ins, C.TRAIN_TYPES) for i in range(2, 8)]
    assert any(o != a for o in others)
    assert any(C.draw(C.rng_for(s, "constrain", "row1"), ins, C.TRAIN_TYPES) != a for s in range(1, 6))


# type -> (kwargs, passing response, failing response), judged strictly
KNOWN = {
    "punctuation:no_comma": ({}, "Tea is warm and calm.", "Tea is warm, and calm."),
    "keywords:forbidden_words": ({"forbidden_words": ["very"]}, "A calm cup.", "A very calm cup."),
    "detectable_format:title": ({}, "<<Tea Time>>\nBrew it.", "Tea Time\nBrew it."),
    "startend:end_checker": ({"end_phrase": "Good luck!"}, "Brew for three minutes. Good luck!",
                             "Good luck! Brew for three minutes."),
    "length_constraints:number_words": ({"num_words": 5, "relation": "less than"}, "Brew it hot.",
                                        "Brew it hot for three long minutes."),
    "count:numbers": ({"N": 2}, "Use 2 spoons and 90 degrees.", "Use 2 spoons."),
    "count:conjunctions": ({"small_n": 2}, "Tea or coffee, but not both.", "Tea is nice."),
    "words:words_position": ({"keyword": "tea"}, "Hot tea is calm tea today", "Hot coffee is calm tea today"),
    "format:no_whitespace": ({}, "Tea!", "Tea is hot."),
    "format:options": ({"options": "yes/no/maybe"}, "Maybe.", "I think yes."),
    "repeat:repeat_span": ({"prompt_to_repeat": "please tell me about green tea", "n_start": 3, "n_end": 5},
                           "about green", "me about"),  # words 4-5, counted from 1
    "format:emoji": ({}, "Tea is warm 🍵. I like it ☕.", "Tea is warm. I like it ☕."),
    "sentence:increment": ({"small_n": 1}, "Tea is. Tea is hot. Tea is very hot.", "Tea is hot. Tea is."),
}


@pytest.mark.parametrize("type_id", sorted(KNOWN))
def test_known_passing_and_failing_responses(type_id):
    kw, good, bad = KNOWN[type_id]
    assert C.check([type_id], [kw], "p", good)["strict"] == [True]
    assert C.check([type_id], [kw], "p", bad)["strict"] == [False]
    assert C.check([type_id], [kw], "p", "   ")["strict"] == [False]  # an empty reply meets nothing


def test_mixed_check_keeps_order_and_applies_the_loose_rule():
    ids = ["count:numbers", "punctuation:no_comma", "format:no_whitespace"]
    kws = [{"N": 1}, {}, {}]
    got = C.check(ids, kws, "p", "Answer:\n42")
    assert got["strict"] == [True, True, False]
    # loose: without its first line the reply is "42" -- no whitespace
    assert got["loose"] == [True, True, True] and got["prompt_loose"] and not got["prompt_strict"]
    with pytest.raises(ValueError, match="one dict per instruction"):
        C.check(ids, kws[:2], "p", "x")


@pytest.mark.parametrize("iid,kw,needle", [
    ("count:numbers", {"N": -1}, "N"),  # upstream would draw a random N
    ("count:numbers", {}, "N"),
    ("count:words_japanese", {"N": 0}, "N"),
    ("sentence:keyword", {"word": "tea", "N": 0}, "N"),
    ("repeat:repeat_span", {"prompt_to_repeat": "a b c", "n_start": 0, "n_end": 2}, "n_start"),
    ("repeat:repeat_span", {"prompt_to_repeat": "a b c", "n_start": 2, "n_end": 2}, "n_end"),
    ("count:word_count_range", {"min_words": 10, "max_words": 5}, "max_words"),
    ("format:list", {"sep": " "}, "sep"),
    ("count:numbers", {"N": 2, "n": 1}, "'n'"),
])
def test_ifbench_kwargs_that_upstream_would_randomise_are_refused(iid, kw, needle):
    with pytest.raises(ValueError) as e:
        C.check([iid], [kw], "p", "r")
    assert iid in str(e.value) and needle in str(e.value)


def test_ifeval_letter_frequency_reads_symbols_literally():
    """IFEval's own data asks for letters such as '#' and '!' (issue 20): accepted and counted as
    written; upstream would swap them for a random letter. No single-character reading: refused."""
    hashes = {"letter": "#", "let_frequency": 4, "let_relation": "at least"}
    assert ifeval.check(["keywords:letter_frequency"], [hashes], "p", "#one #two #three #four")["strict"] == [True]
    assert ifeval.check(["keywords:letter_frequency"], [hashes], "p", "#one #two #three")["strict"] == [False]
    bang = {"letter": "!", "let_frequency": 2, "let_relation": "less than"}
    assert ifeval.check(["keywords:letter_frequency"], [bang], "p", "Wow!")["strict"] == [True]
    assert ifeval.check(["keywords:letter_frequency"], [bang], "p", "Wow!!")["strict"] == [False]
    for _ in range(5):  # the same verdict every time: nothing is randomised
        assert C.check(["keywords:letter_frequency"], [hashes], "p", "no hashes here")["strict"] == [False]
    upper = {"letter": "Z", "let_frequency": 2, "let_relation": "at least"}  # letters: case-insensitive, as upstream
    assert ifeval.check(["keywords:letter_frequency"], [upper], "p", "zig Zag")["strict"] == [True]
    for bad in ("", " ", "ab", 3):
        with pytest.raises(ValueError, match="letter"):
            ifeval.validate_kwargs("keywords:letter_frequency", {**hashes, "letter": bad})


def test_records_carry_ifeval_fields_on_sft_rows():
    from sharpset.records import validate

    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
           "prompt": "q", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    assert validate(row, "sft") == []
    assert validate({**row, "kwargs": [{}, {}]}, "sft")[0][0] == "kwargs"
    assert validate({**row, "instruction_id_list": "punctuation:no_comma"}, "sft")[0][0] == "instruction_id_list"
    assert validate({**row, "kwargs": ["x"]}, "sft")[0][0] == "kwargs[0]"


def test_ifbench_loads_and_checks_without_network(tmp_path):
    """A fresh process with every socket connection refused and an empty cache: the IFBench
    checkers import (nltk's downloader never runs) and nothing is written outside the cache."""
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n    raise OSError('network disabled in this test')\n"
        "socket.socket.connect = refuse\nsocket.create_connection = refuse\n"
        "import nltk\n"
        "calls = []\nnltk.download = lambda *a, **k: calls.append(a) or False\n"
        "import sharpset.constraints as C\n"
        "r = C.check(['format:title_case', 'words:keywords_specific_position', 'count:numbers'],"
        " [{}, {'keyword': 'tea', 'n': 1, 'm': 2}, {'N': 1}], 'p', 'Green Tea Is 1 Fine Drink.')\n"
        "assert r['strict'] == [True, False, True], r\n"
        "print('calls', len(calls))\n"
    )
    env = dict(os.environ, SHARPSET_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path / "home"),
               NLTK_DATA=str(tmp_path / "nltk_elsewhere"))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "calls 0" in r.stdout  # our import replaced the downloader: upstream's calls went nowhere
    assert (tmp_path / "cache" / "nltk_data" / "tokenizers" / "punkt_tab" / "english").is_dir()
    assert not (tmp_path / "home" / "nltk_data").exists()
