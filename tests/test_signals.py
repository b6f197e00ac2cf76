"""Curation signals (issue 13): degeneration columns (pure text), lm_signals on a tiny random llama,
judge-check's AUC and figures on constructed cases, and its CLI errors."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import subprocess
import sys

import pytest
import torch

from sharpset.errors import UserError
from sharpset.judge_check import (INJECTION, auc, check, evaluate, first_items, format_report, inject,
                                  leave_one_kind_out, load_pairs, texts_to_score)
from sharpset.text import degeneration as D

LOOP = "A placebo is a substance with no effect. " + "A placebo is a placebo is a placebo is " * 30
PROSE = ("Sunlight contains all colours, and when it passes through the air it scatters off gas molecules. "
         "Shorter blue wavelengths scatter much more than longer red ones, a process called Rayleigh "
         "scattering. So blue light reaches our eyes from every direction in the sky, making it look blue. "
         "At sunset the light crosses more air, the blue is scattered away and reds and oranges remain.")


# ------------------------------------------------------------------------------------ degeneration
def test_words_split_punctuation_and_cjk():
    assert D.words("It's a test, ok?") == ["it's", "a", "test", ",", "ok", "?"]
    assert D.words("我喜欢猫。") == ["我", "喜", "欢", "猫", "。"]


def _brute_repeat(seq):
    n = len(seq)
    for L in range(n - 1, 0, -1):
        grams = [tuple(seq[i:i + L]) for i in range(n - L + 1)]
        if len(set(grams)) < len(grams):
            return L
    return 0


def test_longest_repeat_matches_brute_force():
    assert D.longest_repeat([1, 2, 3, 1, 2, 3, 1, 2, 3]) == (6, 3)  # overlapping occurrences count
    assert D.longest_repeat(list("abcd")) == (0, -1)
    assert D.longest_repeat([]) == (0, -1)
    rng = random.Random(0)
    for _ in range(200):
        seq = [rng.randrange(3) for _ in range(rng.randrange(0, 25))]
        L, start = D.longest_repeat(seq)
        assert L == _brute_repeat(seq)
        if L:
            assert tuple(seq[start:start + L]) in {tuple(seq[i:i + L]) for i in range(start)}


def test_distinct_and_compression():
    assert D.distinct_n(["a", "b", "a", "b"], 1) == 0.5
    assert D.distinct_n(["a", "b", "a", "b"], 2) == 2 / 3
    assert D.distinct_n(["a"], 2) is None
    assert D.compression_ratio("") is None
    assert D.compression_ratio(LOOP) > 5 and D.compression_ratio(PROSE) < 2.5


def test_loop_flag_on_loops_and_clean_text():
    h = D.health(LOOP)
    assert h["loop"] and h["repeat_share"] > 0.9 and h["repeat_span_words"] > 50
    assert h["distinct_3"] < 0.1
    assert not D.health(PROSE)["loop"]
    # a list that repeats its pattern honestly is not a loop
    listing = "\n".join(f"{i}. **{w}**: a good choice for {w.lower()} lovers, easy to find in spring."
                        for i, w in enumerate(["Apples", "Pears", "Plums", "Cherries", "Peaches", "Figs"], 1))
    assert not D.health(listing)["loop"]
    # a loop of numbered near-copies (no long exact repeat) is caught by distinct-3 / compression
    numbered = " ".join(f"Step {i}: mix the flour and the water and stir it well." for i in range(1, 30))
    assert D.health(numbered)["loop"]
    # the thresholds' documented margin: no hand-written good answer of the fixture is a loop
    goods = {p["good"] for p in load_pairs(None, "all")}
    assert len(goods) == 80
    assert not any(D.health(g)["loop"] for g in goods)
    assert max(D.health(g)["repeat_span_words"] for g in goods) < D.LOOP_MIN_SPAN_WORDS


@pytest.mark.parametrize("text,clean", [
    ("The answer is 42.", True), ("Is it? Yes!", True), ('She said "stop."', True), ("**Done.**", True),
    ("Steps:\n- mix\n- bake", True), ("| a | b |\n|---|---|\n| 1 | 2 |", True),
    ("Use this:\n```python\nprint(1)\n```", True), ("Use this:\n```python\nprint(1)", False),
    ("Use this:\n```\nx\n```\n```", False), ("The capital of Australia is Canberra. Many people", False),
    ("Here are the steps:", False), ("and then,", False), ("", False), ("Best regards,\nAlex", False),
])
def test_ends_clean(text, clean):
    assert D.ends_clean(text) is clean


def test_complete_prefers_the_known_finish():
    assert D.health("It was cut here", truncated=False)["complete"]
    assert not D.health("Fine.", truncated=True)["complete"]
    assert not D.health("Fine.", finish_reason="length")["complete"]
    assert D.health("No final stop", finish_reason="stop_token")["complete"]
    assert not D.health("No final stop")["complete"] and D.health("Final stop.")["complete"]
    assert not D.health("   ", truncated=False)["complete"]


def test_refusal_flag():
    assert D.is_refusal("I'm sorry, but I can't help with that request.")
    assert D.is_refusal("As an AI language model, I do not have opinions.")
    assert D.is_refusal("I’m unable to share that.")  # curly apostrophe
    assert not D.is_refusal("Paris is the capital of France.")
    assert not D.is_refusal(PROSE + " I'm unable to say more about it.")  # deep inside, not a refusal


def test_language_match_and_columns():
    h = D.health(PROSE, prompt="Why is the sky blue? Please explain it to me in simple words.",
                 token_ids=[5, 6, 5, 6, 7])
    assert set(h) == set(D.HEALTH_COLUMNS) | set(D.TOKEN_COLUMNS) | set(D.PROMPT_COLUMNS)
    for k, t in D.HEALTH_COLUMNS.items():
        assert isinstance(h[k], t), k
    assert h["lang_prompt"] == h["lang_response"] == "en" and h["lang_match"] is True
    assert h["repeat_span_tokens"] == 2 and h["repeat_share_tokens"] == 0.4
    fr = ("Le ciel est bleu parce que la lumière du soleil est diffusée par les molécules de l'air, "
          "et la lumière bleue est beaucoup plus diffusée que la lumière rouge.")
    assert D.health(fr, prompt="Why is the sky blue? Please explain it to me in simple words.")["lang_match"] is False
    assert D.health("Yes.", prompt="Is it?")["lang_match"] is None  # too short to know
    assert set(D.health("x")) == set(D.HEALTH_COLUMNS)


# ------------------------------------------------------------------------------------ lm_signals
@pytest.fixture(scope="module")
def tiny():
    from conftest import build_chatml_tokenizer, build_tiny_llama

    from sharpset.models.profiles import profile_for

    torch.set_num_threads(1)
    tok = build_chatml_tokenizer()
    return build_tiny_llama(len(tok)), tok, profile_for(tok, "chatml")


def _direct_nll(model, ids, labels):
    """Per-token NLL of the labelled tokens: one unpadded sequence, plain log_softmax."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return [-float(logp[t - 1, ids[t]]) for t in range(1, len(ids)) if labels[t] != -100]


ROWS = [
    {"instruction": "What causes the seasons on Earth?", "response": "The tilt of the axis."},
    {"instruction": "How do I reverse a list in Python?", "response": "Use reversed or slicing, it is easy."},
    {"messages": [{"role": "user", "content": "Write a haiku about autumn rain."},
                  {"role": "assistant", "content": "Leaves fall, rain sings softly. " * 3}]},
    {"instruction": "hello", "response": "world the a of and to in is it that"},
]


def test_lm_signals_equal_a_direct_computation(tiny):
    from sharpset.models.profiles import encode, encode_text
    from sharpset.signals import instruction_response, lm_signals

    model, tok, prof = tiny
    out = lm_signals(model, tok, prof, ROWS, batch_size=3, max_length=512, composite=False)
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    for r, c in zip(ROWS, out):
        ins, res = instruction_response(r)
        enc = encode(prof, tok, [{"role": "user", "content": ins}, {"role": "assistant", "content": res}],
                     train_on="last")
        cond = _direct_nll(model, enc.input_ids, [(-100 if t == eot else l) for t, l in zip(enc.input_ids, enc.labels)])
        a = encode_text(prof, tok, res)
        n_bos = len(a) - len(tok(res, add_special_tokens=False)["input_ids"])
        alone = _direct_nll(model, a, [-100] * n_bos + a[n_bos:])
        mc, ma = sum(cond) / len(cond), sum(alone) / len(alone)
        assert c["lm_status"] == "ok" and c["lm_tokens"] == len(cond)
        assert c["lm_nll"] == pytest.approx(mc, rel=1e-4)
        assert c["lm_nll_alone"] == pytest.approx(ma, rel=1e-4)
        assert c["lm_ifd"] == pytest.approx(mc / ma, rel=1e-4)
        assert c["lm_pmi"] == pytest.approx(ma - mc, abs=1e-4)
        sd = math.sqrt(sum((x - mc) ** 2 for x in cond) / len(cond))
        assert c["lm_nll_std"] == pytest.approx(sd, rel=1e-3, abs=1e-5)
        assert "quality_lm" not in c


def test_answer_nll_is_the_mean_of_answer_token_nll(tiny):
    from sharpset.engine.scoring import answer_nll, answer_token_nll

    model, tok, _ = tiny
    seqs = [[1, 5, 9, 30, 31], [1, 7, 8], [1, 4], [40, 41, 42]]
    labs = [[-100, -100, 9, 30, 31], [-100, 7, 8], [-100, -100], [40, 41, 42]]
    per = answer_token_nll(model, tok, seqs, labs, batch_size=4)
    assert per[2] is None and [len(p) for p in per[:2]] == [3, 2]
    # a first token is never scored, even labelled and left-padded in a batch: same as alone
    assert len(per[3]) == 2 and per[3] == pytest.approx(answer_token_nll(model, tok, seqs[3:], labs[3:])[0], rel=1e-5)
    assert answer_nll(model, tok, seqs, labs, batch_size=4)[3] == pytest.approx(sum(per[3]) / 2)
    assert answer_nll(model, tok, seqs, labs, batch_size=2)[:3] == pytest.approx([sum(per[0]) / 3, sum(per[1]) / 2, None])
    assert per[0] == pytest.approx(_direct_nll(model, seqs[0], labs[0]), rel=1e-4)
    # labels mid-sequence, unlabelled tokens after them, in a batch whose other row is labelled late
    mid = answer_token_nll(model, tok, [[1, 5, 9, 30, 31, 32, 33], seqs[0]],
                           [[-100, 5, 9, -100, -100, -100, -100], labs[0]], batch_size=2)
    assert mid[0] == pytest.approx(_direct_nll(model, [1, 5, 9, 30, 31, 32, 33], [-100, 5, 9, -100, -100, -100, -100]),
                                   rel=1e-4)
    assert mid[1] == pytest.approx(per[0], rel=1e-5)


def test_lm_signals_failures_flags_and_composite(tiny, monkeypatch):
    from sharpset import signals as S

    model, tok, prof = tiny
    monkeypatch.setattr(S, "QUALITY_WEIGHTS", {"lm_nll": -1.0, "ends_clean": 2.0})
    monkeypatch.setattr(S, "QUALITY_BIAS", 0.5)
    rows = [{"instruction": "hi", "response": " "},
            {"instruction": "hi " * 300, "response": "A long prompt."},
            {"instruction": "What is a placebo?", "response": LOOP, "truncated": True},
            {"instruction": "What causes the seasons?", "response": "The tilt of the axis."}]
    out = S.lm_signals(model, tok, prof, rows, batch_size=2, max_length=200)
    assert out[0]["lm_status"].startswith("failed: empty") and out[0]["quality_lm"] is None
    assert out[0]["flag_reason"] == "empty,incomplete"
    assert out[1]["lm_status"].startswith("failed: too_long") and out[1]["lm_nll"] is None
    assert out[2]["flag_reason"].startswith("loop,incomplete")
    c = out[3]
    z = 0.5 - c["lm_nll"] + 2.0
    assert c["quality_lm"] == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-6)
    assert (c["flag_reason"] is None) == (c["quality_lm"] >= S.QUALITY_THRESHOLD)


# ------------------------------------------------------------------------------------ judge-check
def test_auc_constructed_cases():
    assert auc([2, 3, 4], [0, 1]) == 1.0
    assert auc([0, 1], [2, 3, 4]) == 0.0
    assert auc([1, 1, 1], [1, 1]) == 0.5
    assert auc([1, 2], [1]) == 0.75  # one tie (1/2) and one win, over 2 pairs
    assert math.isnan(auc([], [1]))
    rng = random.Random(1)
    for _ in range(50):
        p = [rng.randrange(5) for _ in range(rng.randrange(1, 9))]
        n = [rng.randrange(5) for _ in range(rng.randrange(1, 9))]
        brute = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(p, n)) / (len(p) * len(n))
        assert auc(p, n) == pytest.approx(brute)


def _pairs():
    # per item: a good of 21 chars; bads of 20 chars (length-matched) and 3 chars (not)
    out = []
    for i in range(2):
        g = f"Good answer number {i}."
        out.append({"id": f"{i}a", "kind": "garbled", "split": "test", "instruction": f"Q{i}", "good": g,
                    "bad": f"Gxod answer numbr {i}.", "line": 1})
        out.append({"id": f"{i}b", "kind": "empty", "split": "test", "instruction": f"Q{i}", "good": g,
                    "bad": "OK.", "line": 2})
    return out


def test_evaluate_perfect_inverted_and_injection():
    pairs = _pairs()
    texts = texts_to_score(pairs)
    assert len(texts) == 2 * 2 * 3  # per item: the good once + 2 bads; each also with the injection
    good = {(p["instruction"], p["good"]) for p in pairs}
    perfect = {t: (1.0 if (t[0], t[1].replace("\n\n" + INJECTION, "")) in good else 0.0)
               + (0.5 if INJECTION in t[1] else 0.0) for t in texts}
    r = evaluate(pairs, perfect, n_boot=50)
    assert r["overall"]["auc"] == 1.0 and r["overall"]["paired_win"] == 1.0
    assert r["by_kind"]["empty"]["auc"] == 1.0 and r["by_kind"]["empty"]["longer_wins"] == 1.0
    lm = r["length_matched"]
    assert lm["n_pairs"] == 2 and lm["n_bad"] == 2 and lm["auc"] == 1.0
    assert r["injection"]["good"] == {"n": 2, "shift": 0.5, "raised": 1.0}
    inverted = {t: -v for t, v in perfect.items()}
    assert evaluate(pairs, inverted, n_boot=50)["overall"]["auc"] == 0.0
    ties = {t: 3.0 for t in texts}
    r = evaluate(pairs, ties, n_boot=50)
    assert r["overall"]["auc"] == 0.5 and r["injection"]["bad"]["shift"] == 0.0
    failed = dict(perfect)
    failed[("Q0", "OK.")] = None
    r = evaluate(pairs, failed, n_boot=50)
    assert r["n_failed"] == 1 and r["by_kind"]["empty"]["n_bad"] == 1


def test_fit_quality_lm_matches_scikit_learn():
    """The numpy/scipy fit is scikit-learn's StandardScaler + LogisticRegression(C=1), folded back to
    raw units, as experiments/fit_quality_lm.py fitted the shipped constants."""
    np = pytest.importorskip("numpy")
    sk = pytest.importorskip("sklearn.linear_model")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sharpset.signals import fit_quality_lm, linear

    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 3)) * [1.0, 5.0, 0.1] + [0.0, 3.0, 1.0]
    X[:, 2] = np.round(X[:, 2])  # a 0/1-like column, as ends_clean
    y = (X[:, 0] + 0.2 * X[:, 1] + rng.normal(size=150) > 0.5).astype(int)
    clf = make_pipeline(StandardScaler(), sk.LogisticRegression(C=1.0, tol=1e-10, max_iter=10000)).fit(X, y)
    sc, lr = clf[0], clf[1]
    rows = [dict(zip("abc", r)) for r in X]
    w, b = fit_quality_lm(rows, list(y), ("a", "b", "c"))
    assert [w[f] for f in "abc"] == pytest.approx(list(lr.coef_[0] / sc.scale_), rel=1e-5)
    assert b == pytest.approx(lr.intercept_[0] - np.sum(lr.coef_[0] * sc.mean_ / sc.scale_), rel=1e-5)
    assert [linear(r, w, b) for r in rows[:5]] == pytest.approx(list(clf.decision_function(X[:5])), rel=1e-5)
    with pytest.raises(ValueError, match="good"):
        fit_quality_lm(rows, [1] * len(rows), ("a", "b", "c"))


def _kind_rows(seed=0, n=40):
    """Pairs of four kinds over feature rows: cut/noise/shuffled bad answers are low in ``a`` (b as the
    good answers'); ``odd`` bad answers are high in ``b`` only (a as the good answers')."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pairs, feats = [], {}
    for i in range(n):
        ins, good = f"q{i}", f"good {i}"
        feats[(ins, good)] = {"a": rng.normal(), "b": rng.normal()}
        for k in ("cut", "noise", "shuffled", "odd"):
            bad = f"{k} {i}"
            feats[(ins, bad)] = {"a": rng.normal() - (0 if k == "odd" else 3), "b": rng.normal() + (3 if k == "odd" else 0)}
            pairs.append({"id": f"{i}{k}", "kind": k, "split": None, "instruction": ins, "good": good, "bad": bad})
    return pairs, feats


def test_leave_one_kind_out_finds_the_kind_the_others_do_not_teach():
    """A kind separable only by a feature no other kind uses: high in-sample, near chance held out."""
    pairs, feats = _kind_rows()
    lo = leave_one_kind_out(pairs, feats, names=("a", "b"), n_boot=200)
    odd = lo["by_kind"]["odd"]
    assert odd["n_bad"] == 40 and odd["n_good"] == 40
    assert odd["in_sample"]["auc"] > 0.85 and odd["in_sample"]["ci95"][0] > 0.75
    assert 0.3 < odd["held_out"]["auc"] < 0.7
    lo95, hi95 = odd["held_out"]["ci95"]
    assert lo95 <= 0.5 <= hi95 and odd["near_chance"]
    for k in ("cut", "noise", "shuffled"):  # each is taught by the other two: held out ~ in-sample
        e = lo["by_kind"][k]
        assert e["held_out"]["auc"] > 0.9 and not e["near_chance"]
        assert e["held_out"]["auc"] == pytest.approx(e["in_sample"]["auc"], abs=0.05)
    assert lo["near_chance"] == ["odd"] and lo["below_chance"] == []
    # the same figures by hand: fit on the goods and the other kinds' bads, AUC on odd's pairs
    from sharpset.signals import fit_quality_lm, linear

    goods = sorted({(p["instruction"], p["good"]) for p in pairs})
    neg = sorted({(p["instruction"], p["bad"]) for p in pairs if p["kind"] != "odd"})
    w, b = fit_quality_lm([feats[g] for g in goods] + [feats[x] for x in neg], [1] * 40 + [0] * 120, ("a", "b"))
    want = auc([linear(feats[g], w, b) for g in goods],
               [linear(feats[(p["instruction"], p["bad"])], w, b) for p in pairs if p["kind"] == "odd"])
    assert odd["held_out"]["auc"] == pytest.approx(want, abs=1e-4)


def test_leave_one_kind_out_in_judge_check_output():
    import numpy as np

    from sharpset.signals import QUALITY_FEATURES

    pairs, ab = _kind_rows(seed=1, n=30)
    rng = np.random.default_rng(2)  # quality_lm's feature rows: a, b in two of them, noise in the rest
    feats = {t: {**{f: rng.normal() for f in QUALITY_FEATURES}, "lm_pmi": v["a"], "lm_nll_std": v["b"]}
             for t, v in ab.items()}
    feats[(pairs[0]["instruction"], pairs[0]["bad"])] = None  # the LM failed on one bad answer: left out

    def scorer(texts):  # scores like a fitted combination, and hands its feature rows over
        return [None if feats.get(t) is None else feats[t]["lm_pmi"] - feats[t]["lm_nll_std"] for t in texts]

    got: dict = {}
    res, _ = check(pairs, lambda texts: (got.update({t: feats.get(t) for t in texts}), scorer(texts))[1],
                   injection=False, n_boot=100, features=got)
    lo = res["leave_one_kind_out"]
    assert lo["by_kind"][pairs[0]["kind"]]["n_bad"] == 29 and lo["near_chance"] == ["odd"]
    text = format_report(res, "quality_lm")
    assert "leave-one-kind-out" in text and "held out" in text
    assert re.search(r"^  odd .* near chance$", text, re.M)
    assert "NEAR CHANCE when held out (95% CI includes 0.5 or AUC within 0.1 of it): odd" in text
    # one kind: nothing to hold out, said so
    one = [dict(p, kind="bad") for p in pairs]
    lo1 = leave_one_kind_out(one, feats, names=("a", "b"), n_boot=10)
    assert "nothing to hold out" in lo1["skipped"] and "skipped" in "\n".join(
        format_report({**res, "leave_one_kind_out": lo1}).splitlines()[-3:])
    # a score that is not a fitted combination gets no such block
    res2, _ = check(pairs, scorer, injection=False, n_boot=20)
    assert "leave_one_kind_out" not in res2 and "leave-one-kind-out" not in format_report(res2)


def test_inject_appends_the_line():
    assert inject("Hi.") == "Hi.\n\n" + INJECTION


def test_load_pairs_errors(tmp_path):
    f = tmp_path / "p.jsonl"
    ok = {"instruction": "q", "good": "a.", "bad": "b"}
    f.write_text(json.dumps(ok) + "\n\n" + "{not json\n")
    with pytest.raises(UserError, match=re.escape(f"{f}:3: <json>")):
        load_pairs(f)
    f.write_text(json.dumps(ok) + "\n" + json.dumps({"instruction": "q", "good": "a."}) + "\n")
    with pytest.raises(UserError, match=re.escape(f"{f}:2: bad: missing")):
        load_pairs(f)
    f.write_text(json.dumps({"instruction": "q", "good": 3, "bad": "b"}) + "\n")
    with pytest.raises(UserError, match=re.escape(f"{f}:1: good: expected a string")):
        load_pairs(f)
    shipped = load_pairs(None, "test")
    assert len(shipped) == 200 and {p["split"] for p in shipped} == {"test"}
    assert {p["kind"] for p in shipped} == {"truncated", "off_topic", "shuffled", "char_noise", "empty"}
    few = first_items(shipped, 3)
    assert len(few) == 15 and len({p["good"] for p in few}) == 3


def _sh(*args):
    return subprocess.run([sys.executable, "-m", "sharpset", *args], capture_output=True, text=True, timeout=120)


def test_cli_bad_pairs_file_exits_2_with_file_line(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text(json.dumps({"instruction": "q", "good": "a.", "bad": "b"}) + "\n"
                 + json.dumps({"instruction": "q", "good": "a.", "bad": ["b"]}) + "\n")
    r = _sh("judge-check", "--pairs", str(f), "--score", "n_words", "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    assert f"{f}:2: bad: expected a string" in r.stderr and "Traceback" not in r.stderr


def test_cli_health_column_runs_and_saves(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps(p) + "\n" for p in _pairs()))
    r = _sh("judge-check", "--pairs", str(f), "--score", "n_chars", "--out", str(tmp_path / "o"), "--boot", "20")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "o" / "judge_check.json").read_text())
    assert res["overall"]["auc"] == res["overall"]["longer_wins"] == 1.0
    assert "length-matched" in r.stdout and (tmp_path / "o" / "scores.jsonl").exists()
