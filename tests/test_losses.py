"""Loss maths (sharpset.train.losses): masking, reductions, shared-suffix alignment, ACT,
gradient-accumulation equivalence, counterfactual gap -- on tiny tensors and a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from sharpset.train import losses

from conftest import build_tiny_llama


def test_token_nll_masking_and_reductions():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, 3, 4, -100, -100], [-100, -100, 1, 2, 6]])
    lp = torch.log_softmax(logits, -1)
    want = [-lp[0, 0, 3], -lp[0, 1, 4], -lp[1, 1, 1], -lp[1, 2, 2], -lp[1, 3, 6]]
    assert float(losses.token_nll(logits, labels, "sum")) == pytest.approx(float(sum(want)), rel=1e-5)
    assert float(losses.token_nll(logits, labels, "mean")) == pytest.approx(float(sum(want)) / 5, rel=1e-5)
    per_seq = (float(want[0] + want[1]) / 2 + float(want[2] + want[3] + want[4]) / 3) / 2
    assert float(losses.token_nll(logits, labels, "per_sequence")) == pytest.approx(per_seq, rel=1e-5)
    none = losses.token_nll(logits, labels, "none")
    assert none.shape == (2, 4) and float(none[0, 2]) == 0.0  # masked position contributes nothing
    # changing a masked position's logits changes nothing
    logits2 = logits.clone()
    logits2[0, 3] += 5.0
    assert float(losses.token_nll(logits2, labels, "sum")) == pytest.approx(float(sum(want)), rel=1e-5)
    assert losses.n_label_tokens(labels) == 5
    with pytest.raises(ValueError):
        losses.token_nll(logits, labels, "bogus")


def test_common_suffix_and_masks_align():
    assert losses.common_suffix_len([1, 2, 3, 9, 8], [7, 3, 9, 8]) == 3
    assert losses.common_suffix_len([1, 2], [3, 4]) == 0
    ma, mb = losses.suffix_masks([5, 3], [4, 4], [3, 2], 6, 5)
    assert ma.sum(-1).tolist() == [3, 2] and mb.sum(-1).tolist() == [3, 2]
    assert ma[0].nonzero().flatten().tolist() == [2, 3, 4] and mb[0].nonzero().flatten().tolist() == [1, 2, 3]
    a = torch.arange(12).view(2, 6)
    b = torch.arange(10).view(2, 5) + 100
    assert a[ma].tolist() == [2, 3, 4, 7, 8] and b[mb].tolist() == [101, 102, 103, 107, 108]


def test_act_zero_when_prompts_equal_and_formula():
    torch.manual_seed(0)
    model = build_tiny_llama(64)
    from sharpset.train.act import capture_blocks

    ids = torch.randint(3, 64, (2, 7))
    mask = torch.ones_like(ids)
    with capture_blocks(model) as hw:
        model(input_ids=ids, attention_mask=mask)
    with torch.no_grad(), capture_blocks(model) as hc:
        model(input_ids=ids, attention_mask=mask)
    assert len(hw) == 2  # one per block, not the embedding output
    m = torch.zeros_like(ids, dtype=torch.bool)
    m[:, 3:] = True
    assert float(losses.act_loss(hw, hc, m, m)) == pytest.approx(0.0, abs=1e-10)
    # formula: mean over layers and positions of the squared L2 summed over hidden size
    hw2 = [h + 0.5 for h in hw]
    hidden = hw[0].shape[-1]
    assert float(losses.act_loss(hw2, hc, m, m)) == pytest.approx(0.25 * hidden, rel=1e-5)
    s, n = losses.act_loss(hw2, hc, m, m, reduction="sum")
    assert n == 8 and float(s) == pytest.approx(0.25 * hidden * 8, rel=1e-5)
    # gradient flows to the wrapped side only
    x = [h.detach().clone().requires_grad_(True) for h in hw2]
    y = [h.detach().clone().requires_grad_(True) for h in hc]
    losses.act_loss(x, y, m, m).backward()
    assert x[0].grad is not None and float(x[0].grad.abs().sum()) > 0 and y[0].grad is None
    # per-layer normalisation divides by the clean side's mean squared norm
    norm = losses.act_loss(hw2, hc, m, m, layer_norm=True)
    want = sum(0.25 * hidden / float(h[m].pow(2).sum(-1).mean()) for h in hc) / 2
    assert float(norm) == pytest.approx(want, rel=1e-4)


def test_grad_accumulation_equals_bigger_batch():
    torch.manual_seed(0)
    model = build_tiny_llama(64)
    ids = torch.randint(3, 64, (4, 9))
    labels = ids.clone()
    labels[0, :6] = -100  # very different label counts per row: per-micro-batch means would differ
    labels[1, :2] = -100
    labels[2, :8] = -100
    labels[3, :4] = -100

    def grads(loss_fn):
        model.zero_grad()
        loss_fn()
        return [p.grad.clone() for p in model.parameters()]

    full = grads(lambda: losses.token_nll(model(input_ids=ids).logits, labels, "mean").backward())
    n_total = losses.n_label_tokens(labels)

    def accum():
        for sl in (slice(0, 1), slice(1, 4)):
            s = losses.token_nll(model(input_ids=ids[sl]).logits, labels[sl], "sum")
            (s / n_total).backward()

    acc = grads(accum)
    for a, b in zip(full, acc):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)

    def naive():  # averaging per micro-batch is NOT equivalent (the bug this design avoids)
        for sl in (slice(0, 1), slice(1, 4)):
            (losses.token_nll(model(input_ids=ids[sl]).logits, labels[sl], "mean") / 2).backward()

    bad = grads(naive)
    assert not all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(full, bad))


def test_counterfactual_gap():
    torch.manual_seed(0)
    ln = torch.randn(1, 6, 5, requires_grad=True)
    lc = torch.randn(1, 8, 5)
    lab_n = torch.tensor([[-100, -100, -100, 1, 2, 3]])
    lab_c = torch.tensor([[-100, -100, -100, -100, -100, 1, 2, 3]])
    lpn = torch.log_softmax(ln, -1)[0, 2:5].gather(-1, torch.tensor([[1], [2], [3]])).flatten()
    lpc = torch.log_softmax(lc, -1)[0, 4:7].gather(-1, torch.tensor([[1], [2], [3]])).flatten()
    gap = losses.counterfactual_gap(ln, lab_n, lc, lab_c)
    assert float(gap) == pytest.approx(float((lpn - lpc).abs().mean()), rel=1e-5)
    l2, n = losses.counterfactual_gap(ln, lab_n, lc, lab_c, norm="l2", reduction="sum")
    assert n == 3 and float(l2) == pytest.approx(float(((lpn - lpc) ** 2).sum()), rel=1e-5)
    # identical contexts: zero penalty
    same = losses.counterfactual_gap(lc, lab_c, lc, lab_c)
    assert float(same) == pytest.approx(0.0, abs=1e-7)
    gap.backward()
    assert ln.grad is not None and float(ln.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        losses.counterfactual_gap(ln, lab_n, lc, torch.tensor([[-100] * 6 + [1, 2]]))
    assert math.isfinite(float(gap))


def test_logits_at_labelled_positions_only_give_the_same_loss_and_gradient():
    """The loop asks the model for logits at the labelled positions only (HF ``logits_to_keep`` with
    ``losses.logit_positions``): NLL, counterfactual gap and gradients equal the full-logits path."""
    torch.manual_seed(0)
    model = build_tiny_llama(50).double()
    ids = torch.randint(3, 50, (3, 9))
    labels = torch.full_like(ids, losses.IGNORE)
    labels[0, 5:8] = ids[0, 5:8]
    labels[1, 2:4] = ids[1, 2:4]
    labels[2, 8] = ids[2, 8]
    keep = losses.logit_positions(labels)
    assert keep.tolist() == [1, 2, 4, 5, 6, 7]  # positions 0, 3 and 8 predict no label of any row

    def run(positions):
        model.zero_grad()
        kw = {} if positions is None else {"logits_to_keep": positions}
        logits = model(input_ids=ids, **kw).logits
        assert logits.shape[1] == (9 if positions is None else len(keep))
        nll = losses.token_nll(logits, labels, reduction="sum", positions=positions)
        gap, n = losses.counterfactual_gap(logits, labels, logits.detach() * 0.9, labels, reduction="sum",
                                           positions_normal=positions, positions_cf=positions)
        (nll + gap).backward()
        return float(nll), float(gap), n, [p.grad.clone() for p in model.parameters()]

    full, kept = run(None), run(keep)
    # token_logprobs takes the log-softmax in fp32; the head's matmul on fewer rows rounds differently
    assert kept[0] == pytest.approx(full[0], rel=1e-6) and kept[1] == pytest.approx(full[1], rel=1e-6)
    assert kept[2] == full[2] == 6
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(full[3], kept[3]))
    per_token_full = losses.token_nll(model(input_ids=ids).logits, labels, reduction="none")
    per_token_kept = losses.token_nll(model(input_ids=ids, logits_to_keep=keep).logits, labels, reduction="none",
                                      positions=keep)
    assert torch.allclose(per_token_full[:, keep], per_token_kept, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="positions"):
        losses.token_nll(torch.zeros(3, 4, 50), labels, positions=keep)


@pytest.mark.parametrize("chunk", [1, 4, 512])
def test_linear_token_nll_equals_the_logits_path_with_its_gradients(chunk):
    """losses.linear_token_nll (no [N, V] logits; gradients made chunk by chunk in the forward)
    gives token_nll's value and the same gradients for the hidden states and the head's weight."""
    torch.manual_seed(0)
    h = torch.randn(3, 6, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.full((3, 7), losses.IGNORE)
    labels[0, 2:5] = torch.tensor([4, 9, 49])
    labels[1, 6] = 0
    labels[2, 1:7] = torch.tensor([1, 2, 3, 4, 5, 6])
    keep = losses.logit_positions(labels)
    want = losses.token_nll(h[:, keep] @ w.T, labels, reduction="sum", positions=keep)
    gh_want, gw_want = torch.autograd.grad(want * 1.7, (h, w))
    got = losses.linear_token_nll(h[:, keep], w, labels, keep, chunk=chunk)
    gh, gw = torch.autograd.grad(got * 1.7, (h, w))
    assert float(got) == pytest.approx(float(want), rel=1e-6)  # the fused side works in fp32
    assert torch.allclose(gh, gh_want, rtol=1e-5, atol=1e-6) and torch.allclose(gw, gw_want, rtol=1e-5, atol=1e-6)
    # a frozen head (LoRA): only the hidden states' gradient is made
    got2 = losses.linear_token_nll(h[:, keep], w.detach(), labels, keep, chunk=chunk)
    (gh2,) = torch.autograd.grad(got2, (h,))
    assert torch.allclose(gh2 * 1.7, gh_want, rtol=1e-5, atol=1e-6)


def test_plain_head_only_where_logits_are_the_heads_output():
    from sharpset.train.loop import plain_head

    model = build_tiny_llama(50)
    assert plain_head(model) is model.get_output_embeddings()
    model.config.final_logit_softcapping = None
    orig = model.forward

    def capped(*a, **k):  # a model that post-processes its logits (gemma2's soft-capping, say)
        out = orig(*a, **k)
        out.logits = torch.tanh(out.logits / 30.0) * 30.0
        return out

    model.forward = capped
    assert plain_head(model) is None


@pytest.mark.parametrize("head_trains", [False, True])
def test_linear_token_nll_with_replaced_rows_equals_the_merged_head(head_trains):
    """PEFT's trainable tokens: the head is `w` with rows `idx` replaced by `vals`. The fused NLL
    gives the loss and the gradients (hidden states, the replaced rows, and the base weight's other
    rows when it trains) of the logits path on the merged weight."""
    torch.manual_seed(1)
    h = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(40, 8, dtype=torch.float64, requires_grad=head_trains)
    idx = torch.tensor([3, 17, 39])
    vals = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.full((2, 6), losses.IGNORE)
    labels[0, 1:5] = torch.tensor([3, 17, 5, 39])  # targets on replaced rows and on others
    labels[1, 3:6] = torch.tensor([0, 17, 2])
    keep = losses.logit_positions(labels)
    merged = w.index_copy(0, idx, vals)
    want = losses.token_nll(h[:, keep] @ merged.T, labels, reduction="sum", positions=keep)
    inputs = (h, vals, w) if head_trains else (h, vals)
    grads_want = torch.autograd.grad(want * 0.3, inputs)
    got = losses.linear_token_nll(h[:, keep], w, labels, keep, chunk=3, rows=(idx, vals))
    grads = torch.autograd.grad(got * 0.3, inputs)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    for g, gw in zip(grads, grads_want):
        assert torch.allclose(g, gw, rtol=1e-5, atol=1e-6)
    if head_trains:
        assert torch.all(grads[2][idx] == 0)  # replaced rows of the base never reach the loss


def _tiny_gemma3(vocab: int):
    """Tied, with a scaled embedding (Gemma3TextScaledWordEmbedding's embed_scale)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                           max_position_embeddings=64, pad_token_id=0, tie_word_embeddings=True)
    return Gemma3ForCausalLM(cfg)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_fused_nll_serves_a_peft_trainable_tokens_head_with_the_same_loss_and_gradients(family):
    """A tied LoRA model with trainable token rows (gemma3's case in `sharpset train`): plain_head
    vouches for PEFT's wrapped head, and a micro-batch's loss and every trainable gradient (LoRA,
    the token rows) match the path that makes logits at the labelled positions."""
    import contextlib

    from peft import LoraConfig, get_peft_model

    from sharpset.train import loop, token_rows

    base = build_tiny_llama(50) if family == "llama" else _tiny_gemma3(50)
    pad = base.get_input_embeddings().padding_idx
    assert pad is not None
    model = get_peft_model(base.train(), LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
        trainable_token_indices=sorted({2, 7, pad})))
    head = loop.plain_head(model)
    assert head is not None and type(head) is not torch.nn.Linear  # the wrapper, vouched for
    weight, rows = token_rows.head_weight(head)
    assert rows is not None and 7 in rows[0].tolist()
    with torch.no_grad():  # trained-looking rows, so the replacement matters
        rows[1].add_(torch.randn_like(rows[1]))
    # token 7 (a trained row) inside the answers, and the model's pad token (a trained row too, as a
    # chat model's end-of-turn often is) mid-sequence: nn.Embedding gives the padding row no gradient
    exs = [{"kind": "sft", "ids": [1, 5, pad, 9, 13, 7, 2], "labels": [-100, -100, -100, -100, 13, 7, 2]},
           {"kind": "sft", "ids": [1, pad, 4, 8, 2], "labels": [-100, -100, -100, 8, 2]}]
    norms = {"nll": 5, "act": 0, "cf": 0}
    params = [p for p in model.parameters() if p.requires_grad]
    got = {}
    # PEFT's own path (dense merged weights, logits at the labelled positions) against the fused
    # head alone and the fused head with the sparse embedding lookup (train_loop's default)
    for name, h, sparse in (("peft", None, False), ("fused", head, False), ("fused+sparse", head, True)):
        total, _, _ = loop.micro_loss(model, None, exs, {"sft"}, norms, None, 0, contextlib.nullcontext, head=h,
                                      sparse_rows=sparse)
        got[name] = (float(total), torch.autograd.grad(total, params))
    at = next(i for i, p in enumerate(params) if p is rows[1])  # the token rows' own gradient: present
    assert float(got["peft"][1][at].abs().sum()) > 0
    for name in ("fused", "fused+sparse"):
        assert got[name][0] == pytest.approx(got["peft"][0], rel=1e-6)
        for a, b in zip(got[name][1], got["peft"][1]):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    with token_rows.sparse_embeddings(model) as n:
        assert n == 1  # the embedding (the head is a Linear: not patched)
    emb = model.get_input_embeddings()
    assert "forward" not in emb.token_adapter.__dict__  # restored on exit


def test_sparse_token_rows_give_the_same_values_and_a_run_to_run_identical_gradient():
    """The sparse lookup of trained token rows: the same embeddings as PEFT's forward, and the same
    row gradient bit for bit on every backward. Gathering the rows by index has a backward that adds
    into them in parallel in no fixed order on CPU (index_put_ with accumulate): gemma3-270m's
    trained models differed run to run in the quickstart. Many positions on few rows, 2 threads."""
    from peft import LoraConfig, get_peft_model

    from sharpset.train import token_rows

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        base = _tiny_gemma3(50)
        model = get_peft_model(base.train(), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj"],
                                                        task_type="CAUSAL_LM", trainable_token_indices=[2, 7, 9]))
        emb = model.get_input_embeddings()
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(1, 50, (64, 512), generator=gen)
        ids[:, ::2] = torch.tensor([2, 7, 9]).repeat(256)[None, :256]  # half the positions hit a trained row
        upstream = torch.randn(64, 512, 32, generator=gen)
        with torch.no_grad():
            dense = emb(ids)  # PEFT's own forward (merged weight)
        grads = []
        with token_rows.sparse_embeddings(model):
            for _ in range(6):
                out = emb(ids)
                assert torch.equal(out, dense)
                rows = emb.token_adapter.trainable_tokens_delta["default"]
                grads.append(torch.autograd.grad((out * upstream).sum(), rows)[0])
        assert float(grads[0].abs().sum()) > 0
        assert all(torch.equal(g, grads[0]) for g in grads[1:])
        # bf16 training (autocast): the rows keep their values there too, as PEFT's lookup does
        with torch.no_grad():
            rows.add_(torch.randn(rows.shape, generator=gen) * 0.37)  # not bf16-representable
            with torch.autocast("cpu", dtype=torch.bfloat16):
                dense = emb(ids[:4])
                with token_rows.sparse_embeddings(model):
                    assert torch.equal(emb(ids[:4]), dense)
    finally:
        torch.set_num_threads(threads)
