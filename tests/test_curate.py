"""curate: strategies (deterministic, order-stable, failed scores excluded), the diversity bound,
the vectorised filter against a plain loop, quota allotment, controls, the stage's outputs."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest

from sharpset.stages import curate
from sharpset.stages.curate import (STRATEGY_NAMES, CurateConfig, allot, build_control, curate_rows, greedy_diverse,
                             label_baselines, label_spaces, near_dup_rate)
from sharpset.records import content_id, validate

CATS = ["math", "coding & debugging", "creative writing", "advice seeking"]


def sft(q, a, **tags):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], **tags}


def stable_seed(*parts: str) -> int:
    """A seed from text that is the same in every process (Python's hash() of a str is salted per
    process, so seeding with it made these embeddings, and what the tests saw, differ run to run)."""
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:4], "little")


def topic_embedder(dim=24, noise=0.05):
    """Texts sharing their first word get near-identical vectors (one topic); others ~orthogonal."""
    def embed(texts):
        out = []
        for t in texts:
            topic = t.split()[0] if t.split() else ""
            base = np.random.default_rng(stable_seed("topic", topic)).standard_normal(dim)
            jitter = np.random.default_rng(stable_seed("text", t)).standard_normal(dim)
            out.append(base / np.linalg.norm(base) + noise * jitter / np.sqrt(dim))
        return np.stack(out)
    return embed


def pool(n=80, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = rng.choice(["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"])
        # distinct words: a "word word word" answer is a loop, which curate's gates drop (from the text)
        rows.append(sft(f"{topic} question number {i}", " ".join(f"w{j}" for j in range(rng.randint(3, 60))),
                        quality=None if i % 11 == 0 else round(rng.uniform(1, 6), 3),
                        difficulty=round(rng.uniform(1, 6), 3), category=rng.choice(CATS),
                        ifd_loss=None if i % 17 == 0 else round(rng.uniform(0.5, 1.3), 3)))
    return rows


def ids(res):
    return [r["id"] for r in res.selected]


# ---------------------------------------------------------------- the diversity filter


def plain_loop(x, thr, n):
    kept = []
    for i in range(len(x)):
        if all(float(x[i] @ x[j]) <= thr for j in kept):
            kept.append(i)
            if len(kept) == n:
                break
    return kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_diverse_equals_plain_loop(seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, 16))
    x = centres[rng.integers(0, 30, 600)] + 0.15 * rng.standard_normal((600, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for thr, n, block in ((0.9, 25, 64), (0.8, 1000, 7), (0.95, 100, 1024)):
        assert greedy_diverse(x, thr, n, block=block) == plain_loop(x, thr, n)


def test_greedy_diverse_decides_in_float64_at_the_bound():
    a = np.array([1.0, 0.0])
    b = np.array([0.9, np.sqrt(1 - 0.81)])  # cos(a, b) = 0.9 exactly (float64): kept (<=)
    c = np.array([0.9 + 1e-7, np.sqrt(1 - (0.9 + 1e-7) ** 2)])  # just over: dropped
    assert greedy_diverse(np.stack([a, b]), 0.9, 5) == plain_loop(np.stack([a, b]), 0.9, 5)
    assert greedy_diverse(np.stack([a, c]), 0.9, 5) == [0]


# ---------------------------------------------------------------- strategies


@pytest.mark.parametrize("strategy", [s for s in STRATEGY_NAMES if s != "less"])  # less: tests/test_less.py
def test_each_strategy_deterministic_and_input_order_stable(strategy):
    rows, emb = pool(), topic_embedder()
    cfg = CurateConfig(input="x", n=12, strategy=strategy, seed=3, min_quality=2.0)
    ref = curate_rows(rows, cfg, embed=emb)
    assert ref.selected and len(ids(ref)) == len(set(ids(ref)))
    for s in range(3):
        shuffled = rows[:]
        random.Random(s).shuffle(shuffled)
        again = curate_rows(shuffled, cfg, embed=emb)
        assert ids(again) == ids(ref)
        assert again.report == ref.report
    assert [r["curate_rank"] for r in ref.selected] == list(range(1, len(ref.selected) + 1))


def test_random_depends_on_seed_and_baselines_use_same_n():
    rows, emb = pool(), topic_embedder()
    a = curate_rows(rows, CurateConfig(input="x", n=10, strategy="random", seed=0), embed=emb)
    b = curate_rows(rows, CurateConfig(input="x", n=10, strategy="random", seed=1), embed=emb)
    assert ids(a) != ids(b)
    assert a.report["sets"]["random_n"]["n"] == a.report["sets"]["selection"]["n"] == 10
    assert a.report["sets"]["pool"]["n"] == len(rows)


def test_quality_diversity_respects_bound_gate_and_failed_scores():
    rows, emb = pool(120), topic_embedder()
    cfg = CurateConfig(input="x", n=50, strategy="quality-diversity", min_quality=2.5)
    res = curate_rows(rows, cfg, embed=emb)
    sel = res.selected
    x = curate.embed_rows(sel, "instruction", emb)
    sims = x @ x.T
    np.fill_diagonal(sims, -1)
    assert sims.max() <= 0.9  # the DEITA bound
    assert res.report["sets"]["selection"]["near_dup_rate"] == 0.0
    assert len(sel) <= 8 < 50  # one row per topic at most: the pool ran out
    assert "shortfall" in res.report
    assert all(r["quality"] is not None and r["quality"] >= 2.5 for r in sel)
    info = res.report["strategy_info"]
    assert info["failed_scores"] == sum(r["quality"] is None for r in rows) > 0  # counted, never filled
    scores = [r["curate_score"] for r in sel]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(sel[0]["quality"] * sel[0]["difficulty"], abs=1e-5)
    # with no bound worth the name it is just the top of the score order
    top = curate_rows(rows, CurateConfig(input="x", n=5, strategy="quality-diversity", min_quality=2.5,
                                         max_cosine=1.0), embed=emb)
    assert len(top.selected) == 5 and top.selected[0]["curate_score"] >= scores[0]


def test_quality_diversity_beats_random_on_quality_and_near_dups():
    res = curate_rows(pool(200), CurateConfig(input="x", n=8, strategy="quality-diversity", min_quality=2.0),
                      embed=topic_embedder())
    sets = res.report["sets"]
    assert sets["selection"]["scores"]["quality"]["mean"] > sets["random_n"]["scores"]["quality"]["mean"]
    assert sets["selection"]["near_dup_rate"] < sets["random_n"]["near_dup_rate"]
    text = curate.format_report(res.report)
    assert "(higher)" in text and "(lower)" in text


def test_ifd_gate_then_drop_above_one_then_highest():
    rows = pool(100)
    res = curate_rows(rows, CurateConfig(input="x", n=10, strategy="ifd", min_quality=3.0), embed=topic_embedder())
    vals = [r["ifd_loss"] for r in res.selected]
    assert vals == sorted(vals, reverse=True) and max(vals) <= 1.0
    assert all(r["quality"] >= 3.0 for r in res.selected)
    ok = [r["ifd_loss"] for r in rows if r["ifd_loss"] is not None and r["quality"] is not None
          and r["quality"] >= 3.0 and r["ifd_loss"] <= 1.0]
    assert vals == sorted(ok, reverse=True)[:10]
    info = res.report["strategy_info"]
    assert info["ifd_column"] == "ifd_loss" and info["ifd_above_max"] > 0 and info["failed_scores"] > 0


def test_missing_score_column_is_a_user_error():
    from sharpset.errors import UserError

    rows = [sft(f"q {i}", "a") for i in range(5)]
    with pytest.raises(UserError, match="quality"):
        curate_rows(rows, CurateConfig(input="x", n=2), embed=topic_embedder())


def test_k_center_picks_far_points():
    rows, emb = pool(), topic_embedder()
    res = curate_rows(rows, CurateConfig(input="x", n=8, strategy="k-center"), embed=emb)
    topics = {r["messages"][0]["content"].split()[0] for r in res.selected}
    assert len(topics) == 8  # 8 topics, 8 centres: one per topic


def test_quota_allotment_and_shares():
    assert allot({"a": 10, "b": 10, "c": 10}, {"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert allot({"a": 1, "b": 10}, {"a": 1, "b": 1}, 8) == {"a": 1, "b": 7}  # shortfall moves on
    assert allot({"a": 5, "b": 5}, {"a": 3, "b": 1}, 4) == {"a": 3, "b": 1}
    assert allot({"a": 2, "b": 2}, {"a": 1, "b": 1}, 10) == {"a": 2, "b": 2}
    rows = pool(100)
    res = curate_rows(rows, CurateConfig(input="x", n=12, strategy="quota"), embed=topic_embedder())
    counts = {}
    for r in res.selected:
        counts[r["category"]] = counts.get(r["category"], 0) + 1
    assert sorted(counts.values()) == [3, 3, 3, 3]
    res2 = curate_rows(rows, CurateConfig(input="x", n=12, strategy="quota", quotas={"math": 3, "coding & debugging": 1}),
                       embed=topic_embedder())
    assert {r["category"] for r in res2.selected} == {"math", "coding & debugging"}
    assert sum(r["category"] == "math" for r in res2.selected) == 9
    steer = [dict({k: v for k, v in r.items() if k != "category"}, steer_category=r["category"]) for r in rows]
    res3 = curate_rows(steer, CurateConfig(input="x", n=12, strategy="quota"), embed=topic_embedder())
    assert res3.report["strategy_info"]["category_column"] == "steer_category"


def test_spec_filter():
    rows = [sft(f"alpha q{i}", "I think it is four. Let me know!", quality=4, difficulty=4) for i in range(3)]
    rows += [sft(f"beta q{i}", "The answer is simply four.", quality=4, difficulty=4) for i in range(3)]
    res = curate_rows(rows, CurateConfig(input="x", n=10, strategy="all", spec="concise-plain", min_conformance=1.0),
                      embed=topic_embedder())
    assert len(res.selected) == 3 and all(r["conformance"] == 1.0 for r in res.selected)
    assert res.report["spec_filter"]["filtered_out"] == 3


def test_near_dup_rate():
    x = np.eye(4)
    assert near_dup_rate(x, 0.9) == 0.0
    x = np.vstack([np.eye(4), np.eye(4)[:1]])
    assert near_dup_rate(x, 0.9) == pytest.approx(2 / 5)


# ---------------------------------------------------------------- controls


def closed_rows():
    rows = []
    for i in range(12):
        lab = ["positive", "negative", "neutral"][i % 3 if i < 9 else 0]
        rows.append(sft(f"Classify the sentiment: review {i}", lab, input=f"review {i}", task="sentiment", id=f"s{i}"))
    for i in range(6):
        rows.append(sft(f"Is {i} even? Answer yes or no.", "yes" if i % 2 == 0 else "no", task="parity", id=f"p{i}"))
    return rows


def test_label_spaces_and_baselines():
    cfg = CurateConfig(input="x")
    rows = closed_rows()
    spaces = label_spaces(rows, cfg)
    assert spaces == {"sentiment": ["negative", "neutral", "positive"], "parity": ["no", "yes"]}
    b = label_baselines(rows, spaces, "task")
    assert b["tasks"]["sentiment"]["random_guess"] == pytest.approx(1 / 3)
    assert b["tasks"]["parity"]["random_guess"] == 0.5
    assert b["random_guess"] == pytest.approx((1 / 3 + 1 / 2) / 2, abs=1e-6)
    p = np.array([3, 3, 6]) / 12  # negative, neutral, positive
    assert b["tasks"]["sentiment"]["label_prior"] == pytest.approx(float((p ** 2).sum()), abs=1e-6)
    assert b["tasks"]["sentiment"]["majority"] == pytest.approx(0.5)
    open_rows = [sft(f"q{i}", f"a different answer {i}") for i in range(10)]
    assert label_spaces(open_rows, cfg) == {}


@pytest.mark.parametrize("kind", ["simplified", "delusive", "empty"])
def test_controls_validate_and_keep_label_space(kind):
    cfg = CurateConfig(input="x", seed=5)
    rows = closed_rows() + [sft("Write a poem about rain.", "Rain falls.\n\n- soft\n- cold")]
    out, info = build_control(rows, kind, cfg)
    assert all(validate(r, "sft") == [] for r in out)
    src = {r.get("id") or content_id(r): r for r in rows}
    for task in ("sentiment", "parity"):
        before = sorted({r["messages"][-1]["content"] for r in rows if r.get("task") == task})
        after = sorted({r["messages"][-1]["content"] for r in out if r.get("task") == task})
        assert after == before  # the label space exactly
    assert label_spaces([r for r in out if "label" in r], cfg) == info["label_spaces"]
    assert info["label_baselines"]["random_guess"] == pytest.approx((1 / 3 + 1 / 2) / 2, abs=1e-6)
    for r in out:
        s = src[r["source_id"]]
        if kind == "delusive":
            assert r["messages"][-1]["content"] != s["messages"][-1]["content"]  # every mapping wrong
            assert r["messages"][0] == s["messages"][0]  # input and instruction kept
            mapping = info["mapping"][s["task"]]
            assert r["messages"][-1]["content"] == mapping[s["messages"][-1]["content"]]
        else:
            assert r["messages"][-1] == s["messages"][-1]
        if kind == "empty":
            assert r["messages"][0]["content"] == s.get("input", "")
        if kind == "simplified":
            u = r["messages"][0]["content"]
            if s.get("task") == "sentiment":
                assert u == f"{s['input']}\n\nAnswer with one of: negative, neutral, positive."
            elif s.get("task") == "parity":
                assert u == "Answer with one of: no, yes."
            else:
                assert u.startswith("Answer in about 10 words") and "bulleted list" in u
    if kind == "delusive":
        assert info["left_out_not_closed_label"] == 1 and len(out) == len(rows) - 1
    else:
        assert len(out) == len(rows)


def test_delusive_without_closed_labels_is_an_error():
    from sharpset.errors import UserError

    with pytest.raises(UserError, match="closed-label"):
        build_control([sft(f"q{i}", f"answer {i}") for i in range(6)], "delusive", CurateConfig(input="x"))


# ---------------------------------------------------------------- stage outputs


def test_run_writes_selection_control_and_report(tmp_path):
    from sharpset.dataio import write_records
    from sharpset.run import RunDir

    src = tmp_path / "pool.jsonl"
    rows = closed_rows()
    for r in rows:
        r.update(quality=4.0, difficulty=3.0, category="classification")
    write_records(rows, src)
    cfg = CurateConfig(input=str(src), n=10, strategy="quality-diversity", control="delusive", min_quality=3.0,
                       max_cosine=1.0)
    run = RunDir.open(tmp_path / "r", "curate", curate.VERSION, cfg)
    logs = []
    curate.run(cfg, run, log=logs.append, embed=topic_embedder())
    man = json.loads((run.path / "manifest.json").read_text())
    assert man["status"] == "complete" and list(man["outputs"]) == ["selected.jsonl", "control_delusive.jsonl",
                                                                     "curate_report.json"]
    assert man["counts"] == {"read": 18, "written": 10, "dropped": 8, "rejected": 0}
    rep = json.loads((run.path / "curate_report.json").read_text())
    assert rep["control"]["kind"] == "delusive" and rep["label_baselines"]["random_guess"] > 0
    from sharpset.dataio import read_records

    selected = read_records(run.path).rows  # the run folder reads as the selection (issue 10)
    assert len(selected) == 10 and [r["curate_rank"] for r in selected] == list(range(1, 11))
    control = read_records(run.path / "control_delusive.jsonl").rows
    left_out = rep["control"]["left_out_not_closed_label"]
    assert len(control) == rep["control"]["rows"] == 10 - left_out and {r["control"] for r in control} == {"delusive"}
    # the printed report carries this run's own figures, row by row
    text = logs[-1]
    sel = rep["sets"]["selection"]
    assert text.startswith(f"curate: strategy quality-diversity, selected 10 of {rep['candidates']} candidates")
    assert f"  control delusive: {10 - left_out} rows ({left_out} left out as not closed-label)" in text
    near = next(l for l in text.splitlines() if l.strip().startswith("near-dup rate"))
    assert near.split()[2] == f"{sel['near_dup_rate']:.3f}"
    q = sel["scores"]["quality"]["mean"]
    qr = rep["sets"]["random_n"]["scores"]["quality"]["mean"]
    assert f"selection vs random-N: mean quality {q:.3f} vs {qr:.3f}" in text
    assert "#1" in curate.show(str(run.path), 2)


def test_cli_curate_with_real_embedder(tmp_path):
    from sharpset.cli import main
    from sharpset.dataio import write_records

    src = tmp_path / "pool.jsonl"
    write_records(pool(30), src)
    assert main(["curate", str(src), "--n", "5", "--strategy", "random", "--out", str(tmp_path / "o")]) == 0
    rep = json.loads((tmp_path / "o" / "curate_report.json").read_text())
    assert rep["n_selected"] == 5 and rep["embedder"] == "minilm-l6"
    assert main(["curate", str(src), "--n", "5", "--strategy", "nope", "--out", str(tmp_path / "p")]) == 2


def test_gates_drop_flagged_rows_and_say_what_they_did():
    from sharpset.stages.curate import apply_gates

    rows = [{"id": str(i), "n_words": 0 if i == 0 else 10, "loop": i == 1, "complete": i != 2} for i in range(5)]
    kept, info, from_text = apply_gates(rows, ["empty", "loop", "incomplete"])
    assert [r["id"] for r in kept] == ["3", "4"]
    assert info == {"empty": 1, "loop": 1, "incomplete": 1} and from_text == {}
    kept, info, _ = apply_gates([{"id": "a"}], ["loop"], untagged="skip")  # nothing dropped, and it says so
    assert len(kept) == 1 and info["loop"].startswith("skipped: no 'loop' column")


def test_gates_compute_an_untagged_rows_columns_from_its_text():
    """Issue 25: an untagged pool's pseudo-refusal template rows and loops were passed by skipped gates."""
    from sharpset.stages.curate import apply_gates

    def row(i, answer, **extra):
        return {"id": str(i), "messages": [{"role": "user", "content": "Tell me about tides."},
                                           {"role": "assistant", "content": answer}], **extra}

    good = "Tides are the rise and fall of the sea, driven mostly by the Moon's gravity."
    loop = "a placebo is a placebo is a placebo " * 30
    sorry = ("I'm sorry for your loss, but as an AI designed to assist with creative ideas, I don't have the "
             "capability to provide support or advice based on personal experiences. However, I can certainly help "
             "you brainstorm ways to address this situation.")  # the pool row LESS picked (issue 25)
    rows = [row(0, good), row(1, loop), row(2, sorry), row(3, good + " More", truncated=True),
            row(4, "", loop=False), {**row(5, "A placebo is a placebo. " * 30), "loop": False}]  # a tagged column is believed
    kept, info, from_text = apply_gates(rows, ["empty", "loop", "incomplete", "pseudo_refusal"])
    assert [r["id"] for r in kept] == ["0", "5"]
    assert info == {"empty": 1, "loop": 1, "incomplete": 1, "pseudo_refusal": 1}
    assert from_text == {"empty": 6, "loop": 4, "incomplete": 1, "pseudo_refusal": 3}  # cut: known from truncated only
    kept, info, from_text = apply_gates(rows, ["loop"], untagged="skip")
    assert len(kept) == 6 and info == {"loop": 0} and from_text == {}  # untagged rows pass; tagged ones say False
