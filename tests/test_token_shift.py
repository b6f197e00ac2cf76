"""Token shift against independent expectations (issue 21): the pooling on hand-made rows, and a
constructed base model whose rank of every token is known before anything runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sharpset.evaluate.suites.token_shift import AVERAGING, PER_ANSWER, SUITE, classify, pooled_share


def _row(classes: list[str]) -> dict:
    n = len(classes)
    return {"n_tokens": n, "classes": classes, "weight": float(n),
            **{c: classes.count(c) / n if n else None for c in ("unshifted", "marginal", "shifted")}}


def test_pooled_share_is_per_token_not_per_answer():
    # answer A: 1 token, shifted; answer B: 9 tokens, 1 shifted, 2 marginal, 6 unshifted
    a = _row(["shifted"])
    b = _row(["shifted", "marginal", "marginal"] + ["unshifted"] * 6)
    rows = [a, b]
    assert pooled_share(rows, "shifted") == pytest.approx(2 / 10)  # per token: 2 of 10 tokens
    assert pooled_share(rows, "marginal") == pytest.approx(2 / 10)
    assert pooled_share(rows, "unshifted") == pytest.approx(6 / 10)
    per_answer = (1.0 + 1 / 9) / 2  # what a plain mean of the rows' shares would say: 0.556
    assert abs(pooled_share(rows, "shifted") - per_answer) > 0.3
    # the rows' weight (= tokens) makes their weighted mean the pooled share, the table's figure
    wmean = sum(r["weight"] * r["shifted"] for r in rows) / sum(r["weight"] for r in rows)
    assert wmean == pytest.approx(0.2)
    assert math.isnan(pooled_share([_row([])], "shifted"))
    assert [classify(k) for k in (1, 2, 3, 4, 100)] == ["unshifted", "marginal", "marginal", "shifted", "shifted"]


def test_extra_reports_pooled_shares_with_intervals_over_answers():
    from types import SimpleNamespace

    rows = [{**_row(c), "item": f"a{k}", "tokens": ["x"] * len(c)} for k, c in
            enumerate((["shifted"], ["shifted", "marginal", "marginal"] + ["unshifted"] * 6, ["unshifted"] * 5))]
    ctx = SimpleNamespace(cfg=SimpleNamespace(seed=0), base_name=lambda: "base", base_problem=None)
    ex = SUITE.extra(ctx, rows)
    assert ex["averaging"] == AVERAGING == "share of tokens, pooled over answers"
    assert ex["tokens"] == 15 and ex["answers"] == 3
    assert ex["pooled_shifted"]["mean"] == round(2 / 15, 4) and ex["pooled_unshifted"]["mean"] == round(11 / 15, 4)
    lo, hi = ex["pooled_shifted"]["ci95"]
    assert lo <= 2 / 15 <= hi and lo < hi
    assert ex["pooled_shifted"]["n"] == 3  # the interval's unit is the answer
    assert AVERAGING in SUITE.description
    # per answer: every answer counts once (1, 1/9 and 0 shifted), the interval over the same 3 answers
    assert ex["per_answer"] == PER_ANSWER
    assert ex["per_answer_shifted"]["mean"] == round((1 + 1 / 9 + 0) / 3, 4)
    assert ex["per_answer_unshifted"]["mean"] == round((0 + 6 / 9 + 1) / 3, 4)
    assert ex["per_answer_shifted"]["n"] == 3 and ex["per_answer_shifted"]["ci95"]


A, B = 100, 150  # two ordinary tokens (0-2 are the ChatML specials)


def _context_model(tiny_model_dir, path, ranking: dict) -> None:
    """A llama whose next-token logits depend on the previous token only, as written in ``ranking``:
    ``{prev token or None (any other): [tokens in order, best first]}``; tokens not listed follow in
    id order. Each listed previous token embeds as its own one-hot direction (None: direction 0),
    every layer's output projections are zero (the residual stream is the embedding) and the
    final norm scales a one-hot vector by sqrt(hidden), so logit(v | prev) = sqrt(hidden) *
    head[v, direction(prev)] -- set to minus v's place in that context's order. The rank of v
    after prev is therefore its place + 1: known before the model runs."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    v, h = len(tok), 32
    cfg = LlamaConfig(vocab_size=v, hidden_size=h, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, pad_token_id=2)
    m = LlamaForCausalLM(cfg).eval()
    contexts = [None] + [k for k in ranking if k is not None]
    with torch.no_grad():
        emb = torch.zeros(v, h)
        emb[:, 0] = 1.0
        head = torch.zeros(v, h)
        for j, prev in enumerate(contexts):
            if prev is not None:
                emb[prev] = 0.0
                emb[prev, j] = 1.0
            first = list(ranking.get(prev, []))
            order = first + [t for t in range(v) if t not in first]
            for place, t in enumerate(order):
                head[t, j] = -float(place)
        m.model.embed_tokens.weight.copy_(emb)
        for layer in m.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        m.lm_head.weight.copy_(head)
    m.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)


def test_token_shift_against_a_base_with_known_ranks(tiny_model_dir, tmp_path):
    """Tuned: answers A B A B ... (A after the prompt, B after A, A after B). Base: A ranks 1st after
    the prompt (unshifted), B 3rd after A (marginal), A 10th after B (shifted). So each 12-token
    answer is 1 unshifted, 6 marginal (positions 1, 3, ..., 11) and 5 shifted tokens."""
    from sharpset.cli import main
    from sharpset.run import RunDir

    tuned, base = tmp_path / "tuned", tmp_path / "base"
    _context_model(tiny_model_dir, tuned, {None: [A], A: [B], B: [A]})
    fill = [t for t in range(3, 40) if t not in (A, B)]
    _context_model(tiny_model_dir, base, {None: [A], A: fill[:2] + [B], B: fill[:9] + [A]})
    out = tmp_path / "ts"
    assert main(["eval", str(tuned), "--base", str(base), "--suites", "token_shift", "--limit", "3",
                 "--max-new-tokens", "12", "--progress", "false", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "samples" / "token_shift.jsonl").read_text().splitlines()]
    gen = {}
    for line in (out / RunDir.SAMPLES).read_text().splitlines():
        rec = json.loads(line)
        if rec["key"].startswith("gen|0|shape|"):
            gen[rec["key"].split("|", 3)[3]] = rec["token_ids"]
    assert len(rows) == len(gen) == 3
    for r in rows:
        assert gen[r["item"]] == [A, B] * 6  # the constructed tuned model answered as built
        assert r["ranks"] == [1] + [3, 10] * 5 + [3]
        assert r["classes"] == ["unshifted"] + ["marginal", "shifted"] * 5 + ["marginal"]
        assert (r["unshifted"], r["marginal"], r["shifted"], r["weight"]) == (1 / 12, 6 / 12, 5 / 12, 12.0)
    res = next(iter(json.loads((out / "summary.json").read_text())["suites"]["token_shift"]["models"].values()))
    ex = res["extra"]
    assert ex["tokens"] == 36 and ex["answers"] == 3 and ex["averaging"] == AVERAGING
    assert (ex["pooled_unshifted"]["mean"], ex["pooled_marginal"]["mean"], ex["pooled_shifted"]["mean"]) == (
        round(1 / 12, 4), 0.5, round(5 / 12, 4))
    # by position: token 0 is the only unshifted one
    first = ex["by_position"][0]
    assert first["positions"] == "0-4" and first["tokens"] == 15 and first["shifted"] == round(6 / 15, 4)
