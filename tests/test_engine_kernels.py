"""The engine's linear kernels (engine/linear.py, issue 24): fused q/k/v and gate/up projections and
the opt-in bf16 / int8 weights, on tiny random models built here (no download)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sharpset.engine.linear as lin
from sharpset.engine import GenerationRequest, SamplingParams
from sharpset.engine.hf import TransformersEngine
from sharpset.engine.linear import PrepackedLinears, onednn_unavailable, resolve_kernel, weights_unavailable

pytestmark = pytest.mark.skipif(onednn_unavailable(nn.Linear(2, 2)) is not None, reason="no oneDNN in this torch")

# the tiny word-level tokenizer and the one-thread setting of the engine tests (fixtures, autouse)
from test_engine import EOS, VOCAB, _one_thread, tok  # noqa: E402,F401


def _llama(**kw):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=0, eos_token_id=EOS, initializer_range=0.3, **kw)
    return LlamaForCausalLM(cfg).eval()


def _gemma():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
                           sliding_window=6, layer_types=["sliding_attention", "full_attention"] * 2,
                           bos_token_id=2, eos_token_id=EOS, pad_token_id=0, initializer_range=0.3,
                           tie_word_embeddings=False)
    return Gemma3ForCausalLM(cfg).eval()


def _prompts(n=6, seed=21):
    g = torch.Generator().manual_seed(seed)
    return [[0] + torch.randint(3, VOCAB, (int(torch.randint(1, 14, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]


def _reqs(prompts, n=16):
    return [GenerationRequest(p, SamplingParams(max_new_tokens=n), key=str(i)) for i, p in enumerate(prompts)]


def _hf_greedy(model, prompt, n):
    ids = torch.tensor([prompt])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                         eos_token_id=EOS, pad_token_id=0)[0, len(prompt):].tolist()
    return out[:out.index(EOS)] if EOS in out else out


@pytest.mark.parametrize("build", [_llama, _gemma])
def test_fused_projections_token_identical_to_hf(build, tok):
    """fp32 default (fused q/k/v and gate/up on oneDNN) = unfused = plain F.linear = HF generate, greedy."""
    model = build()
    prompts = _prompts()
    ref = [_hf_greedy(model, p, 16) for p in prompts]
    outs = {}
    for name, kw in {"fused": {}, "unfused": dict(fuse_projections=False), "torch": dict(linear_kernel="torch")}.items():
        eng = TransformersEngine(model, tok, batch_size=3, **kw)
        eng.refill_min_free = 1
        outs[name] = [r.token_ids for r in eng.generate(_reqs(prompts), progress=False)]
    assert outs["fused"] == outs["unfused"] == outs["torch"] == ref
    assert not any("forward" in m.__dict__ for m in model.modules())  # layers restored


def test_fused_groups_and_their_fallbacks():
    model = _llama()
    packs = PrepackedLinears(model, 4)
    groups = lin._groups(model, fuse=True)
    fused = [g for g in groups if len(g.mods) > 1]
    assert len(fused) == 2 * 2  # q/k/v and gate/up in each of 2 layers
    assert len(groups) == len(lin._eligible(model)) - sum(len(g.mods) - 1 for g in fused)
    attn = model.model.layers[0].self_attn
    x, y = torch.randn(5, 32), torch.randn(5, 32)
    with packs.active(), torch.inference_mode():
        for m in (attn.q_proj, attn.k_proj, attn.v_proj):  # in order, on one input
            assert torch.allclose(m(x), nn.functional.linear(x, m.weight), atol=1e-5)
        # any order, interleaved inputs: each call still gets its own layer's output
        for m, inp in ((attn.v_proj, x), (attn.q_proj, y), (attn.k_proj, x), (attn.k_proj, y), (attn.v_proj, y)):
            assert torch.allclose(m(inp), nn.functional.linear(inp, m.weight), atol=1e-5)
    # under autograd: plain F.linear, gradients flow
    with packs.active():
        attn.k_proj(x).sum().backward()
    assert attn.k_proj.weight.grad is not None


def test_fused_group_with_bias():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj = nn.Linear(16, 16), nn.Linear(16, 8), nn.Linear(16, 8)

    torch.manual_seed(0)
    m = Attn()
    x = torch.randn(3, 2, 16)
    with PrepackedLinears(m, 3).active() as n, torch.inference_mode():
        assert n == 3
        for layer in (m.q_proj, m.k_proj, m.v_proj):
            assert torch.allclose(layer(x), nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)


@pytest.mark.parametrize("weights,tol", [("bf16", 2e-2), ("int8", 3e-2)])
def test_lower_precision_weights_close_to_fp32(weights, tol):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 96), nn.Linear(96, 48, bias=False))
    x = torch.randn(7, 64)
    with torch.inference_mode():
        ref = m(x)
        with PrepackedLinears(m, 7, weights=weights).active():
            got = m(x)
            one = m(x[2:3])  # a row alone: per-row activation scales, so no dependence on neighbours
    assert got.dtype == torch.float32
    assert ((got - ref).norm() / ref.norm()).item() < tol
    assert torch.allclose(one, got[2:3], atol=1e-4)
    assert lin.packed_bytes(m, weights) == sum(layer.weight.numel() for layer in m) * {"bf16": 2, "int8": 1}[weights]


def test_weights_option_validated(tok, monkeypatch):
    model = _llama()
    with pytest.raises(lin.WeightsRefused, match="weights: must be one of"):
        TransformersEngine(model, tok, weights="int4")
    with pytest.raises(ValueError, match="needs linear_kernel 'auto' or 'onednn'"):
        TransformersEngine(model, tok, weights="bf16", linear_kernel="torch")
    monkeypatch.setattr(lin, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(ValueError, match="avx512_vnni or avx_vnni or amx_int8"):
        TransformersEngine(model, tok, weights="int8")
    with pytest.raises(ValueError, match="avx512_bf16 or amx_bf16"):
        TransformersEngine(model, tok, weights="bf16")
    monkeypatch.setattr(lin, "cpu_flags", lambda: None)
    assert "could not read" in weights_unavailable("int8", model)
    monkeypatch.setattr(lin, "cpu_flags", lambda: frozenset({"avx512_bf16", "avx512_vnni"}))
    assert resolve_kernel("auto", model, "int8") == "onednn"
    assert weights_unavailable(None, model) is None


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_engine_runs_with_lower_precision_weights(weights, tok, monkeypatch):
    monkeypatch.setattr(lin, "cpu_flags", lambda: frozenset({"avx512_bf16", "avx512_vnni"}))  # the kernels run anyway
    model = _llama()
    prompts = _prompts()
    eng = TransformersEngine(model, tok, batch_size=3, weights=weights)
    res = eng.generate(_reqs(prompts), progress=False)
    ref = TransformersEngine(model, tok, batch_size=3).generate(_reqs(prompts), progress=False)
    assert all(0 < r.n_new_tokens <= 16 for r in res)
    same = sum(a.token_ids[:4] == b.token_ids[:4] for a, b in zip(res, ref))
    assert same >= len(prompts) // 2  # mostly the same start as fp32 (a peaked random model)
    assert eng.linear_kernel_used == "onednn"
