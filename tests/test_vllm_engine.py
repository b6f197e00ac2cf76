"""The vLLM backend against the transformers engine on the embedded SmolLM2 (fp32, CPU build).

Slow tier (building a vLLM engine takes 1-2 minutes on 2 CPU cores): run with
    python -m pytest -m slow tests/test_vllm_engine.py
in a venv that has vllm (docs/scale.md: the CPU build lives in its own venv). Skipped, saying so,
where vllm is not importable.
"""

from __future__ import annotations

import os

import pytest

vllm = pytest.importorskip("vllm", reason="vllm not installed (optional extra; docs/scale.md)")
torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

INSTRUCTIONS = [
    "What is the capital of France? Answer with one word.",
    "Is 17 a prime number? Answer yes or no.",
    "Translate 'good morning' into Spanish.",
    "Write a short poem about the ocean.",
    "What is 12 times 12?",
    "Name the largest planet in the solar system.",
    "Who wrote 'Romeo and Juliet'?",
    "What color do you get by mixing blue and yellow?",
]
# fp32 logits of two CPU implementations differ by ~1e-5..1e-4 (different kernels and summation
# orders); a greedy divergence is accepted only where the HF logit gap between the two chosen
# tokens is below this (a near-tie that either rounding can flip).
NEAR_TIE = 1e-3


@pytest.fixture(scope="module")
def smol():
    from sharpset.models import load_model
    from sharpset.models.registry import resolve_path

    model, tok = load_model("smollm2-135m-instruct")
    path, _ = resolve_path("smollm2-135m-instruct")
    return model.eval(), tok, str(path)


@pytest.fixture(scope="module")
def veng(smol):
    from sharpset.engine import get_engine

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default takes a share of all RAM
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # shared machine: do not pin cores
    _, tok, path = smol
    eng = get_engine("vllm", model=path, tokenizer=tok, batch_size=16,
                     options={"dtype": "float32", "max_model_len": 1024, "enforce_eager": True})
    yield eng
    eng.close()


def _prompt(tok, text):
    return tok.encode("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      f"<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n",
                      add_special_tokens=False)


def _first_diff_gap(model, prompt, a, b, stop):
    a, b = a + [stop], b + [stop]
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            with torch.inference_mode():
                logits = model(torch.tensor([prompt + a[:i]])).logits[0, -1]
            return i, abs(float(logits[x] - logits[y]))
    return None


def test_greedy_matches_transformers_engine_up_to_near_ties(smol, veng):
    from sharpset.engine import GenerationRequest, SamplingParams, get_engine

    model, tok, _ = smol
    stop = tok.convert_tokens_to_ids("<|im_end|>")
    prompts = [_prompt(tok, t) for t in INSTRUCTIONS]
    params = SamplingParams(max_new_tokens=48, stop_token_ids=(stop,))
    reqs = [GenerationRequest(p, params, key=str(i)) for i, p in enumerate(prompts)]
    ref = get_engine("transformers", model=model, tokenizer=tok, batch_size=8).generate(reqs, progress=False)
    got = veng.generate(reqs, progress=False)
    assert [g.key for g in got] == [r.key for r in reqs]
    for p, g, r in zip(prompts, got, ref):
        assert g.n_prompt_tokens == r.n_prompt_tokens == len(p)
        if g.token_ids == r.token_ids:
            assert (g.text, g.finish_reason, g.truncated, g.n_new_tokens) == (
                r.text, r.finish_reason, r.truncated, r.n_new_tokens)
        else:
            pos, gap = _first_diff_gap(model, p, g.token_ids, r.token_ids, stop)
            assert gap < NEAR_TIE, f"greedy differs at token {pos} with fp32 logit gap {gap:.2e} (not a near-tie)"


def test_finish_reasons_and_counts(smol, veng):
    from sharpset.engine import GenerationRequest, SamplingParams

    _, tok, _ = smol
    stop = tok.convert_tokens_to_ids("<|im_end|>")
    p = _prompt(tok, "Write a short poem about the ocean.")
    length, by_token, by_string = veng.generate([
        GenerationRequest(p, SamplingParams(max_new_tokens=5, stop_token_ids=(stop,)), key="len"),
        GenerationRequest(_prompt(tok, "What is 12 times 12?"), SamplingParams(max_new_tokens=64, stop_token_ids=(stop,)),
                          key="tok"),
        GenerationRequest(p, SamplingParams(max_new_tokens=64, stop_strings=("\n",)), key="str"),
    ], progress=False)
    assert (length.finish_reason, length.truncated, length.n_new_tokens, len(length.token_ids)) == ("length", True, 5, 5)
    assert by_token.finish_reason == "stop_token" and not by_token.truncated
    assert by_token.n_new_tokens == len(by_token.token_ids) + 1 and stop not in by_token.token_ids
    assert by_token.text == tok.decode(by_token.token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert by_string.finish_reason == "stop_string" and "\n" not in by_string.text
    assert by_string.n_new_tokens == len(by_string.token_ids)
    full = tok.decode(by_string.token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert full.startswith(by_string.text) and "\n" in full


def test_seeded_sampling_is_per_request(smol, veng):
    from sharpset.engine import GenerationRequest, SamplingParams

    _, tok, _ = smol
    p = _prompt(tok, "Write a story about a robot who learns to paint.")
    sp = SamplingParams(max_new_tokens=24, temperature=1.0, top_p=0.9, min_p=0.05, seed=7)
    alone = veng.generate([GenerationRequest(p, sp)], progress=False)[0]
    others = [GenerationRequest(_prompt(tok, t), SamplingParams(max_new_tokens=24, temperature=1.0, seed=i))
              for i, t in enumerate(INSTRUCTIONS)]
    in_batch = veng.generate(others[:3] + [GenerationRequest(p, sp)] + others[3:], progress=False)[3]
    assert alone.token_ids == in_batch.token_ids  # the seed is the request's, not the batch's
    other_seed = veng.generate([GenerationRequest(p, SamplingParams(max_new_tokens=24, temperature=1.0, top_p=0.9,
                                                                    min_p=0.05, seed=8))], progress=False)[0]
    assert other_seed.token_ids != alone.token_ids


def test_scoring_matches_transformers(smol, veng):
    from sharpset.engine import scoring
    from sharpset.engine import vllm as vscore

    model, tok, _ = smol
    prompts = [_prompt(tok, t) for t in INSTRUCTIONS[:4]]
    answers = [tok.encode(a, add_special_tokens=False) for a in ("Paris.", "Yes.", "Buenos días.", "Waves.")]
    seqs = [p + a for p, a in zip(prompts, answers)]
    labels = [[-100] * len(p) + a for p, a in zip(prompts, answers)]
    want = scoring.answer_nll(model, tok, seqs, labels)
    got = vscore.answer_nll(veng, tok, seqs, labels)
    assert got == pytest.approx(want, abs=1e-3)
    cands = tok.convert_tokens_to_ids(["Yes", "No", "yes", "no"])
    want_p = scoring.next_token_probs(model, tok, prompts, cands)
    got_p = vscore.next_token_probs(veng, tok, prompts, cands)
    assert torch.allclose(got_p, want_p, atol=1e-4, rtol=1e-3)
    ll = vscore.choice_logliks(veng, tok, prompts[:1], [[answers[0], answers[1]]])[0]
    assert ll[0] == pytest.approx(-want[0] * len(answers[0]), abs=1e-3)
    with pytest.raises(ValueError, match="labels\\[0\\]"):
        vscore.answer_nll(veng, tok, seqs[:1], [[-100] * (len(seqs[0]) - 1) + [0]])


def test_bad_requests_fail_before_compute(veng):
    from sharpset.engine import GenerationRequest, SamplingParams

    with pytest.raises(ValueError, match="requests\\[1\\].prompt_ids: empty"):
        veng.generate([GenerationRequest([1, 2], SamplingParams()), GenerationRequest([], SamplingParams())])
    with pytest.raises(ValueError, match="max_model_len"):
        veng.generate([GenerationRequest([1] * 1000, SamplingParams(max_new_tokens=100))])
