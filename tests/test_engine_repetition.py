"""Repetition controls of the transformers engine (issue 13): repetition_penalty, no_repeat_ngram_size.

Tiny random llama in float64 (no argmax ties between batch shapes), built here; no download.
"""

from __future__ import annotations

import random
import string

import pytest
import torch

from sharpset.engine import GenerationRequest, SamplingParams
from sharpset.engine.hf import TransformersEngine, _Row, apply_repetition_controls

VOCAB = 120
EOS = 1


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    pieces = ["<s>", "</s>", "<unk>", " ", "."] + list(string.ascii_letters + string.digits)
    pairs = (a + b for a in string.ascii_lowercase for b in string.ascii_lowercase)
    while len(pieces) < VOCAB:
        pieces.append(next(pairs))
    t = Tokenizer(models.WordLevel({p: i for i, p in enumerate(pieces)}, unk_token="<unk>"))
    t.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=0, eos_token_id=EOS, initializer_range=0.3)
    return LlamaForCausalLM(cfg).double().eval()


def _prompts(n=6, seed=1):
    rng = random.Random(seed)
    return [[0] + [rng.randrange(3, VOCAB) for _ in range(rng.randrange(1, 10))] for _ in range(n)]


def _gen(model, tok, prompts, batch_size=3, seeds=None, **kw):
    kw.setdefault("stop_token_ids", ())
    reqs = [GenerationRequest(p, SamplingParams(max_new_tokens=kw.pop("max_new_tokens", 30),
                                                seed=(seeds[i] if seeds else 0), **kw))
            for i, p in enumerate(prompts)]
    return [r.token_ids for r in TransformersEngine(model, tok, batch_size=batch_size).generate(reqs, progress=False)]


def _repeats(seq, n):
    grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    return len(grams) - len(set(grams))


def test_params_validate():
    with pytest.raises(ValueError, match="repetition_penalty"):
        SamplingParams(repetition_penalty=0.0)
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        SamplingParams(no_repeat_ngram_size=-1)
    p = SamplingParams()
    assert p.repetition_penalty == 1.0 and p.no_repeat_ngram_size == 0


def test_controls_demote_exactly_the_seen_tokens():
    logits = torch.tensor([[2.0, -2.0, 1.0, 3.0, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    rows = [_Row(0, GenerationRequest([0, 1, 4], SamplingParams(repetition_penalty=2.0)), frozenset({4}), 0, None),
            _Row(1, GenerationRequest([4], SamplingParams(no_repeat_ngram_size=2)), frozenset(), 0, None)]
    for t in (2, 3, 2):  # row 1 generated 2 3 2: the bigram (2, 3) exists, so after 2 token 3 is banned
        rows[1].append(t)
    rows[0].append(3)
    out = apply_repetition_controls(logits.clone(), rows)
    # row 0: prompt ids 0, 1 and generated 3 penalised (positive divided, negative multiplied); the
    # stop token 4 is in the prompt but exempt; 2 was never seen
    assert out[0].tolist() == [1.0, -4.0, 1.0, 1.5, 0.5]
    assert out[1, 3] == float("-inf") and torch.equal(out[1, [0, 1, 2, 4]], logits[1, [0, 1, 2, 4]])


def test_repetition_penalty_equals_hf_generate(llama, tok):
    prompts = _prompts()  # no stop token in these prompts: there the engine's exemption changes nothing
    assert not any(EOS in p for p in prompts)
    got = _gen(llama, tok, prompts, repetition_penalty=1.5)
    plain = _gen(llama, tok, prompts)
    for p, g in zip(prompts, got):
        ids = torch.tensor([p])
        ref = llama.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=30,
                             repetition_penalty=1.5, eos_token_id=EOS, pad_token_id=0)[0, len(p):].tolist()
        assert g == (ref[:ref.index(EOS)] if EOS in ref else ref)  # the engine leaves the stop token out
    assert got != plain, "the penalty should change some greedy outputs of this model"
    assert sum(_repeats(g, 3) for g in got) < sum(_repeats(g, 3) for g in plain)


@pytest.mark.parametrize("n", [2, 3])
def test_no_repeat_ngram_bans_exactly_repeats(llama, tok, n):
    prompts = _prompts(seed=3)
    plain = _gen(llama, tok, prompts, max_new_tokens=40)
    assert sum(_repeats(g, n) for g in plain) > 0, "this tiny model should repeat without the ban"
    got = _gen(llama, tok, prompts, max_new_tokens=40, no_repeat_ngram_size=n)
    changed = 0
    for g, q in zip(got, plain):
        assert _repeats(g, n) == 0
        # identical until the plain output first completes a repeated n-gram, different there
        first = next((i for i in range(n - 1, len(q)) if tuple(q[i - n + 1:i + 1]) in
                      {tuple(q[j - n + 1:j + 1]) for j in range(n - 1, i)}), None)
        if first is None:
            assert g == q
        else:
            assert g[:first] == q[:first] and g[first:first + 1] != q[first:first + 1]  # [] = stopped
            changed += 1
    assert changed


def test_batched_equals_one_at_a_time_and_unset_rows_unchanged(llama, tok):
    prompts = _prompts(7, seed=3)
    seeds = list(range(10, 17))
    kw = dict(repetition_penalty=1.3, no_repeat_ngram_size=2, temperature=0.8, top_p=0.9)
    one = _gen(llama, tok, prompts, batch_size=1, seeds=seeds, **kw)
    many = _gen(llama, tok, prompts, batch_size=4, seeds=seeds, **kw)
    assert one == many
    greedy_one = _gen(llama, tok, prompts, batch_size=1, repetition_penalty=1.3, no_repeat_ngram_size=2)
    assert greedy_one == _gen(llama, tok, prompts, batch_size=5, repetition_penalty=1.3, no_repeat_ngram_size=2)
    # rows without the controls, batched with rows that use them, give exactly their plain output
    plain = _gen(llama, tok, prompts, batch_size=1)
    reqs = [GenerationRequest(p, SamplingParams(max_new_tokens=30, stop_token_ids=(),
                                                **({"repetition_penalty": 1.3} if i % 2 else {})))
            for i, p in enumerate(prompts)]
    mixed = [r.token_ids for r in TransformersEngine(llama, tok, batch_size=4).generate(reqs, progress=False)]
    assert [mixed[i] for i in range(0, 7, 2)] == [plain[i] for i in range(0, 7, 2)]
    assert [mixed[i] for i in range(1, 7, 2)] == [greedy_one_pen for greedy_one_pen in
                                                  _gen(llama, tok, prompts[1::2], batch_size=1, repetition_penalty=1.3)]


def test_synth_passes_response_controls_to_the_engine(tiny_model_dir, tmp_path, monkeypatch):
    """synth's response_repetition_penalty / response_no_repeat_ngram reach the response requests
    only (instructions keep the defaults), and are recorded in every row's provenance."""
    import json

    from sharpset.config import from_mapping
    from sharpset.run import RunDir
    from sharpset.synth import SynthConfig
    from sharpset.synth import run as synth_run

    seen = []
    orig = TransformersEngine.generate_iter

    def spy(self, requests, **kw):
        seen.extend((r.key, r.params) for r in requests)
        return orig(self, requests, **kw)

    monkeypatch.setattr(TransformersEngine, "generate_iter", spy)
    # a random model rarely ends an instruction: keep every one, so that responses are generated
    monkeypatch.setattr("sharpset.synth.clean_instruction", lambda *a: None)
    cfg = from_mapping(SynthConfig, {"model": str(tiny_model_dir), "n": 3, "instruction_max_tokens": 6,
                                     "response_max_tokens": 6, "min_instruction_words": 1, "batch_size": 3,
                                     "response_repetition_penalty": 1.3, "response_no_repeat_ngram": 2})
    synth_run(cfg, RunDir.open(tmp_path / "s", "synth", 1, cfg), log=lambda *_: None)
    inst = [p for k, p in seen if k.startswith("inst:")]
    resp = [p for k, p in seen if k.startswith("resp:")]
    assert inst and all(p.repetition_penalty == 1.0 and p.no_repeat_ngram_size == 0 for p in inst)
    assert resp and all(p.repetition_penalty == 1.3 and p.no_repeat_ngram_size == 2 for p in resp)
    for line in (tmp_path / "s" / "synth.jsonl").read_text().splitlines():
        sampling = json.loads(line)["provenance"]["sampling"]
        assert sampling["response_repetition_penalty"] == 1.3 and sampling["response_no_repeat_ngram"] == 2
