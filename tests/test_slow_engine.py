"""Heavier engine checks on the real embedded models (``python -m pytest -m slow``, ~2 min on 2 cores).

The default tier checks token identity on tiny float64 models and one short SmolLM2 smoke test.
Here the real models run in fp32 at bench-like settings, through the engine's default path
(continuous batching, oneDNN linear on prepacked weights): greedy output must equal HF
`generate`'s, and any difference must sit at an fp32 near-tie (the two tokens' logits within
1e-3 at the first diverging position), the only acceptable cause (issue 2).
"""

from __future__ import annotations

import pytest
import torch

from sharpset.engine import GenerationRequest, SamplingParams
from sharpset.engine.hf import TransformersEngine
from sharpset.engine.scoring import _left_pad

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

QUESTIONS = [
    "What is the capital of France? Answer with one word.",
    "Explain step by step how photosynthesis works.",
    "Is 17 a prime number? Answer yes or no.",
    "Write a short poem about the ocean.",
    "Give me a recipe for chocolate chip cookies with all the steps.",
    "What color do you get by mixing blue and yellow?",
    "List ten tips for staying productive while working from home.",
    "Spell the word 'necessary'.",
    "Compare and contrast cats and dogs as pets.",
    "How many days are in a leap year?",
    "Write a Python function that checks whether a string is a palindrome.",
    "Who wrote 'Romeo and Juliet'?",
]
BASE_TEXTS = ["The capital of France is", "Here is a recipe for pancakes:\n", "Q: What is 7 times 8?\nA:",
              "Once upon a time,", "def fibonacci(n):", "The three primary colors are",
              "In 1969, the first humans", "A haiku about winter:\n"]


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(min(2, n))
    yield
    torch.set_num_threads(n)


def _cut(ids: list[int], stops: set[int]) -> list[int]:
    for i, t in enumerate(ids):
        if t in stops:
            return ids[:i]
    return ids


def _hf_batched(model, prompts, max_new, stops, pad):
    ids, mask = _left_pad([list(p) for p in prompts], pad)
    width = ids.shape[1]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new,
                             eos_token_id=sorted(stops), pad_token_id=pad)
    return [_cut(row[width:].tolist(), stops) for row in out]


def _check(model, prompts, got, ref, stops):
    """Every difference must be an fp32 near-tie at the first diverging token; returns #identical."""
    same = 0
    for p, g, r in zip(prompts, got, ref):
        if g == r:
            same += 1
            continue
        a, b = g + [-1], r + [-1]
        i = next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)
        assert a[i] >= 0 and b[i] >= 0, "one output is a prefix of the other: a stop decision, not a tie"
        with torch.inference_mode():
            logits = model(torch.tensor([p + a[:i]])).logits[0, -1]
        gap = abs(float(logits[a[i]] - logits[b[i]]))
        assert gap < 1e-3, f"difference at token {i} with logit gap {gap:.2e}: not an fp32 near-tie"
    return same


def test_smollm2_engine_matches_hf_batched_generate():
    from sharpset.models import load_model

    model, tok = load_model("smollm2-135m-instruct")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    prompts = [tok.encode(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{q}<|im_end|>\n"
                          "<|im_start|>assistant\n", add_special_tokens=False) for q in QUESTIONS]
    ref = [r for s in range(0, len(prompts), 6) for r in _hf_batched(model, prompts[s:s + 6], 96, {im_end}, im_end)]
    eng = TransformersEngine(model, tok, batch_size=6)
    assert eng.linear_kernel_used == "onednn"
    res = eng.generate([GenerationRequest(p, SamplingParams(max_new_tokens=96, stop_token_ids=(im_end,)))
                        for p in prompts], progress=False)
    assert eng.stats["merges"] >= 1  # refill actually happened
    same = _check(model, prompts, [r.token_ids for r in res], ref, {im_end})
    assert same >= len(prompts) - 1
    assert "Paris" in res[0].text


def test_gemma3_engine_matches_hf_generate():
    """The real base model: 262k vocabulary, mixed sliding-window and full attention layers."""
    from sharpset.models import load_model

    model, tok = load_model("gemma3-270m")
    eos = model.generation_config.eos_token_id
    stops = {eos} if isinstance(eos, int) else set(eos or [tok.eos_token_id])
    prompts = [tok.encode(t) for t in BASE_TEXTS]
    ref = []
    for p in prompts:  # one at a time: no padding in the reference
        ids = torch.tensor([p])
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=64)
        ref.append(_cut(out[0, len(p):].tolist(), stops))
    eng = TransformersEngine(model, tok, batch_size=4)
    res = eng.generate([GenerationRequest(p, SamplingParams(max_new_tokens=64)) for p in prompts], progress=False)
    same = _check(model, prompts, [r.token_ids for r in res], ref, stops)
    assert same >= len(prompts) - 1
