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
