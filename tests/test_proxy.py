"""Proxy-tuning (issue 22): engine/proxy.py on tiny in-process models, and `sharpset derive`.

The triple: base = the tiny ChatML llama, expert and anti-expert = other random inits of the same
shape and tokenizer (the expert's logits scaled up so that steering changes what is decoded).
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import build_chatml_tokenizer, build_tiny_llama
from sharpset.cli import main
from sharpset.engine.base import GenerationRequest, SamplingParams
from sharpset.engine.hf import TransformersEngine
from sharpset.engine.proxy import ProxyEngine, combine


def _expert(vocab: int, seed: int, scale: float = 1.0):
    """A tiny llama like the base but with its own output head (a tied random head mostly repeats the
    last token, so base and experts would agree), its logits scaled by ``scale``."""
    from transformers import LlamaForCausalLM

    cfg = build_tiny_llama(vocab, seed=seed).config
    cfg.tie_word_embeddings = False
    torch.manual_seed(seed)
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        m.lm_head.weight.mul_(scale)
    return m


@pytest.fixture(scope="module")
def triple():
    tok = build_chatml_tokenizer()
    return tok, build_tiny_llama(len(tok), seed=0), _expert(len(tok), 1, 4.0), _expert(len(tok), 2)


@pytest.fixture(scope="module")
def triple_dirs(tmp_path_factory, tiny_model_dir):
    """Saved folders: the tiny base (conftest), an expert, an anti-expert, and a model whose
    tokenizer has one extra token (a different vocabulary)."""
    out = {"base": tiny_model_dir}
    tok = build_chatml_tokenizer()
    for name, seed, scale in (("expert", 1, 4.0), ("antiexpert", 2, 1.0)):
        d = tmp_path_factory.mktemp(name)
        _expert(len(tok), seed, scale).save_pretrained(d, safe_serialization=True)
        tok.save_pretrained(d)
        out[name] = d
    other = build_chatml_tokenizer()
    other.add_tokens(["<|odd|>"], special_tokens=True)
    d = tmp_path_factory.mktemp("other-vocab")
    build_tiny_llama(len(other), seed=3).save_pretrained(d, safe_serialization=True)
    other.save_pretrained(d)
    out["other"] = d
    return out


def _requests(tok, n: int = 7, max_new: int = 9):
    """Prompts of different lengths and token limits, so rows finish apart and refills merge."""
    texts = ["What causes the seasons", "Write a haiku about autumn rain.", "hello", "How do I reverse a list",
             "the a of and to in is it that", "You are a helpful assistant", "Leaves fall, rain sings"]
    return [GenerationRequest(tok(texts[i % len(texts)])["input_ids"],
                              SamplingParams(max_new_tokens=max_new - (i % 3) * 2)) for i in range(n)]


def _ids(results):
    return [r.token_ids for r in results]


def _reference(models, alpha, prompt, max_new, stop, width=None):
    """Proxy decoding the plain way: three models, no cache, one full forward per step, one row."""
    ids, out = list(prompt), []
    for _ in range(max_new):
        with torch.no_grad():
            b, e, a = (m(torch.tensor([ids])).logits[0, -1, :width].float() for m in models)
        t = int((b + alpha * (e - a)).argmax())
        if t in stop:
            break
        out.append(t)
        ids.append(t)
    return out


# --------------------------------------------------------------------------- the combination
def test_combined_logits_are_base_plus_alpha_times_expert_minus_antiexpert(triple):
    tok, b, e, a = triple
    eng = ProxyEngine(b, tok, expert=e, antiexpert=a, alpha=0.7)
    seqs = [r.prompt_ids for r in _requests(tok, 3)]
    from sharpset.engine.scoring import _left_pad

    ids, mask = _left_pad(seqs, eng.pad_token_id)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    got = eng.combined_model()(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    with torch.no_grad():
        lb, le, la = (m(input_ids=ids, attention_mask=mask, position_ids=pos).logits for m in (b, e, a))
    torch.testing.assert_close(got, lb + 0.7 * (le - la), rtol=0, atol=1e-5)
    # scores read the same distribution: next-token probabilities = softmax of the combination
    cands = [5, 9, 30]
    probs = eng.next_token_probs(seqs, cands, batch_size=2)
    for i, s in enumerate(seqs):
        with torch.no_grad():
            lb, le, la = (m(torch.tensor([s])).logits[0, -1] for m in (b, e, a))
        want = torch.softmax(lb + 0.7 * (le - la), -1)[cands]
        torch.testing.assert_close(probs[i], want, rtol=1e-4, atol=1e-6)
    # and the combination is what the engine samples from (first generated token)
    first = eng.generate([GenerationRequest(seqs[0], SamplingParams(max_new_tokens=1))], progress=False)[0]
    with torch.no_grad():
        lb, le, la = (m(torch.tensor([seqs[0]])).logits[0, -1] for m in (b, e, a))
    assert first.token_ids in ([int((lb + 0.7 * (le - la)).argmax())], [])


def test_combine_trims_vocab_padding_and_is_exact_when_the_difference_is_zero():
    base, exp = torch.randn(2, 70), torch.randn(2, 64)
    out = combine(base, exp, exp, 1.5, 64)
    assert out.shape == (2, 64) and torch.equal(out, base[:, :64])


def test_alpha_zero_reproduces_the_base_greedy_output_exactly(triple):
    tok, b, e, a = triple
    reqs = _requests(tok)
    want = _ids(TransformersEngine(b, tok, batch_size=3).generate(reqs, progress=False))
    eng = ProxyEngine(b, tok, expert=e, antiexpert=a, alpha=0.0, batch_size=3)
    assert _ids(eng.generate(reqs, progress=False)) == want
    assert eng.stats["merges"] > 0  # the refill schedule merged batches on the way


def test_expert_equal_to_antiexpert_reproduces_the_base(triple):
    tok, b, e, _ = triple
    reqs = _requests(tok)
    want = _ids(TransformersEngine(b, tok, batch_size=3).generate(reqs, progress=False))
    assert _ids(ProxyEngine(b, tok, expert=e, antiexpert=e, alpha=1.5, batch_size=3).generate(reqs, progress=False)) \
        == want


@pytest.mark.parametrize("strategy", ["refill", "bucket"])
def test_batched_greedy_output_equals_a_plain_reference(triple, strategy):
    tok, b, e, a = triple
    reqs = _requests(tok)
    eng = ProxyEngine(b, tok, expert=e, antiexpert=a, alpha=1.0, batch_size=3, strategy=strategy)
    got = _ids(eng.generate(reqs, progress=False))
    want = [_reference((b, e, a), 1.0, r.prompt_ids, r.params.max_new_tokens, eng.eos_token_ids) for r in reqs]
    assert got == want
    base = _ids(TransformersEngine(b, tok, batch_size=3).generate(reqs, progress=False))
    assert got != base  # the steering changed what was decoded: the comparison above is not vacuous


def test_expert_sees_its_chat_template_and_the_base_the_plain_prompt(triple):
    from sharpset.models.profiles import encode_prompt, encode_text, profile_for

    tok, b, e, a = triple
    prof = profile_for(tok)
    msgs = [{"role": "user", "content": "Write a haiku about autumn rain."}]
    prompt = encode_prompt(prof, tok, msgs)
    eng = ProxyEngine(b, tok, expert=e, antiexpert=a, chat_template="expert", plain_format="Q: {prompt}\nA:")
    (plain, chat, anti), head, split = eng.views.views(prompt + [40, 41], len(prompt))
    assert split and head == len(prompt)
    assert chat == prompt + [40, 41] and anti == plain
    assert plain == encode_text(prof, tok, "Q: Write a haiku about autumn rain.\nA:") + [40, 41]
    # generation: each model decodes from its own view
    req = GenerationRequest(prompt, SamplingParams(max_new_tokens=6))
    got = eng.generate([req], progress=False)[0].token_ids
    (pv, cv, _), _, _ = eng.views.views(prompt)
    ids_b, ids_e, out = list(pv), list(cv), []
    for _ in range(6):
        with torch.no_grad():
            lb, la = (m(torch.tensor([ids_b])).logits[0, -1] for m in (b, a))
            le = e(torch.tensor([ids_e])).logits[0, -1]
        t = int((lb + le - la).argmax())
        if t in eng.eos_token_ids:
            break
        out.append(t)
        ids_b.append(t)
        ids_e.append(t)
    assert got == out
    # scoring lines the answer tokens up across the views; a prompt that is not one user turn is as is
    nll = eng.answer_token_nll([prompt + out], [[-100] * len(prompt) + out])[0]
    assert nll is not None and all(x == x for x in nll) and len(nll) == len(out)
    assert eng.views.views([5, 6, 7])[2] is False



def _conversations(tok):
    """(one user turn, a conversation user/assistant/user), each with the generation header, as the
    base's (ChatML) template renders them."""
    from sharpset.models.profiles import encode_prompt, profile_for

    prof = profile_for(tok)
    one = encode_prompt(prof, tok, [{"role": "user", "content": "Write a haiku about autumn rain."}])
    multi = encode_prompt(prof, tok, [{"role": "user", "content": "Name a fruit."},
                                      {"role": "assistant", "content": "A pear."},
                                      {"role": "user", "content": "Write a haiku about autumn rain."}])
    return one, multi


def test_a_conversation_with_further_turns_is_fed_to_all_three_as_it_is(triple):
    """chat_template expert splits a prompt only when it is exactly one user turn followed by the
    generation header: a conversation (user, assistant, user) is given to all three models as it is
    and counted, not the expert's template around its first turn and the rest in the base's format."""
    tok, b, e, a = triple
    one, multi = _conversations(tok)
    eng = ProxyEngine(b, tok, expert=e, antiexpert=a, chat_template="expert", plain_format="Q: {prompt}\nA:")
    assert eng.views.views(multi) == ((multi, multi, multi), 0, False)
    assert eng.prompt_as_is(multi) is True
    (plain, chat, _), head, split = eng.views.views(one)
    assert split and head == len(one) and chat == one and plain != one and eng.prompt_as_is(one) is False
    # a user turn followed by more than the header (an assistant prefill) is not a bare prompt either
    assert eng.prompt_as_is(one + [40, 41]) is True
    reqs = [GenerationRequest(p, SamplingParams(max_new_tokens=3)) for p in (one, multi)]
    eng.generate(reqs, progress=False)
    assert eng.stats["prompts_as_is"] == 1


def test_scoring_splits_a_single_turn_prompt_before_its_answer_and_leaves_a_conversation_as_is(triple):
    """The labelled scores take the prompt to be what precedes the first labelled token: one user
    turn + answer is split (the answer appended unchanged to each model's own head); a conversation +
    answer, or a label mask that starts past the header, is scored on the original tokens by all three."""
    tok, b, e, a = triple
    one, multi = _conversations(tok)
    answer = [40, 41, 42, 43]
    eng = ProxyEngine(b, tok, expert=e, antiexpert=a, chat_template="expert", plain_format="Q: {prompt}\nA:")
    (plain, chat, anti), head, split = eng.views.views(one + answer, len(one))
    assert split and head == len(one) and chat == one + answer and anti == plain
    assert plain[-len(answer):] == answer and plain[:-len(answer)] == eng.views.views(one)[0][0]
    assert eng.views.views(multi + answer, len(multi)) == ((multi + answer,) * 3, 0, False)

    def nll(views, n):  # per-token NLL of the last n tokens, each model reading its own view
        with torch.no_grad():
            lb, le, la = (m(torch.tensor([v])).logits[0, -n - 1:-1].float() for m, v in zip((b, e, a), views))
        lg = lb + le - la
        return (torch.logsumexp(lg, -1) - lg.gather(-1, torch.tensor(views[0][-n:]).unsqueeze(-1)).squeeze(-1)).tolist()

    seqs = [one + answer, multi + answer, one + answer]
    labels = [[-100] * len(one) + answer, [-100] * len(multi) + answer, [-100] * (len(one) + 2) + answer[2:]]
    got = eng.answer_token_nll(seqs, labels, batch_size=3)
    torch.testing.assert_close(torch.tensor(got[0]), torch.tensor(nll((plain, chat, anti), 4)), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.tensor(got[1]), torch.tensor(nll((multi + answer,) * 3, 4)), rtol=1e-4, atol=1e-4)
    # the same tokens scored from a later start in the same call: that prompt ends past the header, as is
    torch.testing.assert_close(torch.tensor(got[2]), torch.tensor(nll((one + answer,) * 3, 2)), rtol=1e-4, atol=1e-4)
    # multiple choice: the context is the prompt
    lik = eng.choice_logliks([one, multi], [[answer], [answer]])
    assert lik[0][0] == pytest.approx(-sum(got[0]), rel=1e-4) and lik[1][0] == pytest.approx(-sum(got[1]), rel=1e-4)


# --------------------------------------------------------------------------- through the CLI
def _opts(d, **kw):
    o = {"expert": str(d["expert"]), "antiexpert": str(d["antiexpert"]), **kw}
    return "{" + ", ".join(f"{k}: {v}" for k, v in o.items()) + "}"


def test_a_tokenizer_mismatch_is_refused_with_exit_2_before_anything_runs(triple_dirs, tmp_path, capsys):
    bad = dict(triple_dirs, expert=triple_dirs["other"])
    out = tmp_path / "ev"
    code = main(["eval", str(triple_dirs["base"]), "--suites", "knowledge", "--limit", "1", "--progress", "false",
                 "--engine", "proxy", "--engine-options", _opts(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "engine_options.expert" in err and "at id 400: base None, expert '<|odd|>'" in err
    assert not out.exists()  # nothing half-written


def test_bad_proxy_options_name_the_field(triple_dirs, tmp_path, capsys):
    for opts, field in (("{expert: x}", "engine_options.antiexpert"),
                        (_opts(triple_dirs, alpha="lots"), "engine_options.alpha"),
                        (_opts(triple_dirs, chat_template="base"), "engine_options.chat_template"),
                        (_opts(triple_dirs, temperature=1), "engine_options.temperature")):
        code = main(["eval", str(triple_dirs["base"]), "--suites", "knowledge", "--progress", "false",
                     "--engine", "proxy", "--engine-options", opts, "--out", str(tmp_path / "x")])
        assert code == 2 and field in capsys.readouterr().err, field


SUITES = "knowledge,token_shift,shape"


def _eval(out, d, **opts):
    # --reuse-generations false: generated, not copied from the run beside it (evaluate/donors.py)
    return main(["eval", str(d["base"]), "--suites", SUITES, "--limit", "2", "--max-new-tokens", "6",
                 "--progress", "false", "--engine", "proxy", "--engine-options", _opts(d, **opts), "--out", str(out),
                 "--reuse-generations", "false"])


def test_proxy_eval_names_the_triple_and_a_killed_run_resumes(triple_dirs, tmp_path, monkeypatch):
    from sharpset.run import RunDir

    assert _eval(tmp_path / "full", triple_dirs, alpha=0.5) == 0
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    proxy = summary["models"][0]["proxy"]
    assert proxy["expert"] == str(triple_dirs["expert"]) and proxy["antiexpert"] == str(triple_dirs["antiexpert"])
    assert proxy["alpha"] == 0.5 and summary["backend"]["proxy"] == proxy
    row = json.loads((tmp_path / "full" / "samples" / "knowledge.jsonl").read_text().splitlines()[0])
    assert row["proxy"] == proxy
    # token shift: the proxy's tokens ranked under the plain base
    ts = summary["suites"]["token_shift"]["models"]
    assert next(iter(ts.values()))["n_items"] > 0

    assert _killed_at(5, monkeypatch, lambda: _eval(tmp_path / "killed", triple_dirs, alpha=0.5)) == 130
    assert len((tmp_path / "killed" / RunDir.SAMPLES).read_text().splitlines()) == 4
    assert _eval(tmp_path / "killed", triple_dirs, alpha=0.5) == 0
    for f in ("knowledge", "token_shift", "shape"):
        assert (tmp_path / "killed" / "samples" / f"{f}.jsonl").read_text() == \
            (tmp_path / "full" / "samples" / f"{f}.jsonl").read_text()


def _killed_at(n: int, monkeypatch, fn):
    """``fn()``'s result with ``RunDir.log_sample`` raising KeyboardInterrupt at its n-th call (a
    run killed there: what was logged before stays)."""
    from sharpset.run import RunDir

    real, calls = RunDir.log_sample, {"n": 0}

    def dying(self, key, payload):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(self, key, payload)

    with monkeypatch.context() as m:
        m.setattr(RunDir, "log_sample", dying)
        return fn()


def _format_file(path, mixed: bool):
    """An IFEval-format file of single-user-turn prompts; ``mixed`` adds two the expert's chat
    template cannot split (a system turn of their own before the user's)."""
    rule = {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [None]}
    rows = [{"id": f"one-{i}", "prompt": p, **rule} for i, p in enumerate(["Name a fruit.", "Say hello."])]
    if mixed:
        rows += [{"id": f"system-{i}", "prompt": [{"role": "system", "content": s},
                                                  {"role": "user", "content": "Name a colour."}], **rule}
                 for i, s in enumerate(["Be brief.", "Answer in French."])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_proxy_eval_records_the_prompts_the_expert_template_left_as_is(triple_dirs, tmp_path, capsys, monkeypatch):
    """chat_template expert: the eval's summary (per model, beside the proxy's provenance) and its
    manifest metrics count the generated prompts the expert's template split and those fed to all
    three models as they are; the printed summary says so when any were; a killed run resumed
    counts them the same (the check is logged with each answer); chat_template all records nothing."""
    from sharpset.run import RunDir

    def ev(out, data, code=0, **opts):
        assert main(["eval", str(triple_dirs["base"]), "--suites", "format", "--format-data", str(data),
                     "--limit", "0", "--max-new-tokens", "4", "--progress", "false", "--engine", "proxy",
                     "--engine-options", _opts(triple_dirs, **opts), "--out", str(out),
                     "--reuse-generations", "false"]) == code  # each run's own check, never a copied flag
        if code:
            return None
        return (json.loads((out / "summary.json").read_text()), json.loads((out / "manifest.json").read_text()),
                capsys.readouterr().out)

    mixed = _format_file(tmp_path / "mixed.jsonl", mixed=True)
    summary, manifest, printed = ev(tmp_path / "mixed", mixed, chat_template="expert")
    m = summary["models"][0]
    assert m["proxy"]["chat_template"] == "expert" and m["proxy_prompts"] == {"prompts": 4, "as_is": 2}
    assert manifest["metrics"]["proxy_prompts"] == {m["label"]: {"prompts": 4, "as_is": 2}}
    assert f"[{m['label']}] expert chat template: 2 of 4 prompts used as is" in printed

    assert _killed_at(3, monkeypatch, lambda: ev(tmp_path / "killed", mixed, code=130, chat_template="expert")) is None
    assert ev(tmp_path / "killed", mixed, chat_template="expert")[0]["models"][0]["proxy_prompts"] == \
        {"prompts": 4, "as_is": 2}

    summary, manifest, printed = ev(tmp_path / "split", _format_file(tmp_path / "one.jsonl", mixed=False),
                                    chat_template="expert")
    assert summary["models"][0]["proxy_prompts"] == {"prompts": 2, "as_is": 0}
    assert manifest["metrics"]["proxy_prompts"] == {summary["models"][0]["label"]: {"prompts": 2, "as_is": 0}}
    assert "expert chat template" not in printed

    summary, manifest, printed = ev(tmp_path / "all", mixed)  # chat_template all: nothing is split
    assert "proxy_prompts" not in summary["models"][0] and "proxy_prompts" not in manifest["metrics"]
    assert "expert chat template" not in printed
    # another engine: nothing new, in the summary or in the logged answers
    out = tmp_path / "plain"
    assert main(["eval", str(triple_dirs["base"]), "--suites", "format", "--format-data", str(mixed), "--limit", "0",
                 "--max-new-tokens", "4", "--progress", "false", "--out", str(out)]) == 0
    assert "proxy_prompts" not in json.loads((out / "summary.json").read_text())["models"][0]
    assert "prompt_as_is" not in (out / RunDir.SAMPLES).read_text()


def test_run_keys_see_alpha_and_the_expert(triple_dirs, tmp_path):
    from sharpset.evaluate.stage import EvalConfig
    from sharpset.run import input_hashes, run_key

    def key(**opts):
        cfg = EvalConfig(models=[str(triple_dirs["base"])], engine="proxy",
                         engine_options={"expert": str(triple_dirs["expert"]),
                                         "antiexpert": str(triple_dirs["antiexpert"]), **opts})
        return run_key("eval", 2, cfg, input_hashes(cfg)), input_hashes(cfg)

    k1, reads = key(alpha=1.0)
    assert reads[f"engine:{triple_dirs['expert']}"].startswith("folder:")
    assert key(alpha=0.5)[0] != k1
    cfg_json = triple_dirs["expert"] / "generation_config.json"
    old = cfg_json.read_text()
    try:
        cfg_json.write_text(json.dumps({**json.loads(old), "temperature": 0.3}))
        assert key(alpha=1.0)[0] != k1  # an edited expert folder is a new run
    finally:
        cfg_json.write_text(old)


def test_the_proxy_engines_version_is_in_the_run_key_and_no_other_engines_key_changes(triple_dirs, monkeypatch):
    """A proxy run computed under another engine rule (VERSION) is never served from cache; a
    transformers run's reads name no engine (its key is what it was)."""
    from sharpset.evaluate.stage import EvalConfig
    from sharpset.run import input_hashes, run_key

    cfg = EvalConfig(models=[str(triple_dirs["base"])], engine="proxy",
                     engine_options={"expert": str(triple_dirs["expert"]), "antiexpert": str(triple_dirs["antiexpert"])})
    assert input_hashes(cfg)["engine:proxy"] == str(ProxyEngine.VERSION)
    before = run_key("eval", 2, cfg, input_hashes(cfg))
    monkeypatch.setattr(ProxyEngine, "VERSION", ProxyEngine.VERSION + 1)
    assert run_key("eval", 2, cfg, input_hashes(cfg)) != before
    plain = EvalConfig(models=[str(triple_dirs["base"])])
    assert not any(k.startswith("engine:") for k in input_hashes(plain))


# --------------------------------------------------------------------------- derive
def test_derive_writes_a_loadable_k_layer_model_with_the_sources_first_layers(tiny_model_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    from sharpset.models import load_model
    from sharpset.models.derive import layer_of

    out = tmp_path / "small"
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(out)]) == 0
    small, tok = load_model(str(out))
    assert small.config.num_hidden_layers == 1 and len(small.model.layers) == 1
    rec = json.loads((out / "config.json").read_text())["sharpset_derived"]
    assert rec["keep_layers"] == 1 and rec["source_layers"] == 2 and rec["source"] == str(tiny_model_dir)
    n_small, n_src = sum(p.numel() for p in small.parameters()), sum(v.numel() for v in load_file(
        str(tiny_model_dir / "model.safetensors")).values())
    assert rec["parameters"] == n_small and rec["source_parameters"] == n_src > n_small  # tied head: once each
    card = (out / "README.md").read_text()
    assert "1-layer derivative" in card and f"{n_small:,} parameters (source: {n_src:,})" in card
    assert f"1 of 2 decoder layers of {tiny_model_dir}, {n_small:,} parameters" in capsys.readouterr().out
    src = load_file(str(tiny_model_dir / "model.safetensors"))
    got = small.state_dict()
    kept = {k: v for k, v in src.items() if layer_of(k) is None or layer_of(k) < 1}
    assert kept and all(torch.equal(got[k], v) for k, v in kept.items())
    assert not any(layer_of(k) == 1 for k in got)
    assert tok.get_vocab() == build_chatml_tokenizer().get_vocab()  # same vocabulary: a proxy anti-expert
    # the same command again is up to date; a different K into the same folder is refused
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(out)]) == 0
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "5", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_a_derived_model_steers_its_source_through_the_proxy(tiny_model_dir, tmp_path):
    from sharpset.models import load_model

    out = tmp_path / "small"
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(out)]) == 0
    base, tok = load_model(str(tiny_model_dir))
    eng = ProxyEngine(base, tok, expert=str(out), antiexpert=str(out), alpha=1.0, batch_size=2)
    reqs = _requests(tok, 3, 5)
    assert _ids(eng.generate(reqs, progress=False)) == _ids(TransformersEngine(base, tok).generate(reqs, progress=False))


def test_derive_cuts_gemma3_layer_types_and_the_derivative_runs_in_the_proxy(tmp_path):
    """A Gemma 3 shaped model (mixed sliding/full layers, tied head, the embedded base's family):
    derive cuts ``layer_types`` with the layers and the result decodes beside its source."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from sharpset.models import load_model

    tok = build_chatml_tokenizer()
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=7,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                           max_position_embeddings=256, pad_token_id=2, eos_token_id=2, bos_token_id=1)
    src = tmp_path / "g3"
    Gemma3ForCausalLM(cfg).eval().save_pretrained(src, safe_serialization=True)
    tok.save_pretrained(src)
    out = tmp_path / "g3-small"
    assert main(["derive", str(src), "--keep-layers", "6", "--out", str(out)]) == 0
    small, _ = load_model(str(out))
    assert small.config.layer_types == cfg.layer_types[:6] and "full_attention" in small.config.layer_types
    assert json.loads((out / "config.json").read_text())["sharpset_derived"]["per_layer_config_cut"] == ["layer_types"]
    base, _ = load_model(str(src))
    reqs = _requests(tok, 4, 8)  # prompts longer than the sliding window
    want = _ids(TransformersEngine(base, tok, batch_size=2).generate(reqs, progress=False))
    eng = ProxyEngine(base, tok, expert=small, antiexpert=small, alpha=1.0, batch_size=2)
    assert _ids(eng.generate(reqs, progress=False)) == want
    eng = ProxyEngine(base, tok, expert=small, antiexpert=_expert(len(tok), 5), alpha=1.0, batch_size=2)
    got = _ids(eng.generate(reqs, progress=False))
    ref = [_reference((base, small, eng.lanes["antiexpert"].model), 1.0, r.prompt_ids, r.params.max_new_tokens,
                      eng.eos_token_ids) for r in reqs]
    assert got == ref


def test_a_template_less_base_renders_as_its_expert(triple):
    """chat_template: expert on a base whose tokenizer has no chat template (gemma3-270m's): the
    tokenizers were checked equal, so the base takes the expert's family; with neither, a clear refusal."""
    import copy

    from sharpset.errors import UserError
    from sharpset.models.profiles import profile_for

    tok, b, e, _ = triple
    bare = copy.deepcopy(tok)
    bare.chat_template = None
    base_prof, expert_prof = ProxyEngine._profiles("expert", {"base": (b, bare), "expert": (e, tok)})
    assert base_prof.family == expert_prof.family == profile_for(tok).family
    msgs = [{"role": "user", "content": "Hi"}]
    # the same turn markers (the template-less side has no default system turn, as train renders such a base)
    assert expert_prof.render(msgs, add_generation_prompt=True).endswith(base_prof.render(msgs, add_generation_prompt=True))
    with pytest.raises(UserError, match="engine_options.chat_template: expert: the expert's chat template"):
        ProxyEngine._profiles("expert", {"base": (b, bare), "expert": (e, bare)})


def test_the_expert_and_antiexpert_load_once_per_process_while_an_engine_holds_them(triple_dirs, monkeypatch):
    """A stage asking two batch sizes builds two proxy engines (stage.Subject.engine), and an eval of two
    models one per model: the expert and anti-expert are loaded once and shared, as the transformers
    engine's engines share their Subject's one model; released with the last engine, loaded again after."""
    import gc

    import sharpset.models as models
    from sharpset.evaluate.stage import EvalConfig
    from sharpset.stage import load_subject

    loads: list[str] = []
    real = models.load_model

    def counting(name, **kw):
        loads.append(str(name))
        return real(name, **kw)

    monkeypatch.setattr(models, "load_model", counting)
    ex, an = str(triple_dirs["expert"]), str(triple_dirs["antiexpert"])
    backend = EvalConfig(models=[str(triple_dirs["base"])], engine="proxy",
                         engine_options={"expert": ex, "antiexpert": an, "alpha": 1.0})
    one = load_subject(str(triple_dirs["base"]), backend=backend, log=lambda m: None)
    e4, e8 = one.engine(4), one.engine(8)
    assert e4 is not e8 and e4.lanes["expert"].model is e8.lanes["expert"].model
    two = load_subject(str(triple_dirs["base"]), backend=backend, log=lambda m: None)
    assert two.engine(4).lanes["antiexpert"].model is e4.lanes["antiexpert"].model
    assert loads.count(ex) == loads.count(an) == 1 and loads.count(str(triple_dirs["base"])) == 2
    reqs = _requests(e4.tokenizer, 3, 5)
    assert _ids(e4.generate(reqs, progress=False)) == _ids(e8.generate(reqs, progress=False))
    del one, two, e4, e8
    gc.collect()
    again = load_subject(str(triple_dirs["base"]), backend=backend, log=lambda m: None)
    again.engine(4)
    assert loads.count(ex) == loads.count(an) == 2  # the weights went with the last engine holding them
