"""Healing a derived model (issue 22): `sharpset derive --heal-steps N` distils the truncation from its
source, KL(source || derived) over the full vocabulary, so that it can serve as a proxy anti-expert.

On the tiny ChatML llama (2 layers, K = 1) and a tiny Gemma 3 with a final logit soft cap."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import build_chatml_tokenizer, build_tiny_llama
from sharpset.cli import main
from sharpset.models.derive import DeriveConfig, Heal, derive, layer_of
from sharpset.train.losses import chunked_kl

WORDS = "seasons earth tilt axis haiku autumn rain leaves python list reverse slicing world hello".split()
HEAL = {"steps": 40, "lr": 3e-3, "batch_size": 4, "max_length": 32}


def _rows(n: int) -> list[dict]:
    """``n`` distinct SFT rows (a system turn too, which healing leaves out of the text)."""
    out = []
    for i in range(n):
        a, b, c = WORDS[i % len(WORDS)], WORDS[(3 * i + 1) % len(WORDS)], WORDS[(7 * i + 2) % len(WORDS)]
        out.append({"messages": [{"role": "system", "content": "You are brief."},
                                 {"role": "user", "content": f"What about {a} and {b}? ({i})"},
                                 {"role": "assistant", "content": f"The {c} is like the {a}, {i} times."}]})
    return out


def _text(row: dict) -> str:
    return "\n\n".join(m["content"] for m in row["messages"] if m["role"] != "system")


@pytest.fixture(scope="module")
def heal_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("heal") / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(40)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The tiny ChatML llama with weights that matter: its layers' matrices x10 and its tied embeddings
    and head x25 (at the usual 0.02 init the second layer barely moves peaked-less logits: KL ~5e-4)."""
    d = tmp_path_factory.mktemp("deep-llama")
    tok = build_chatml_tokenizer()
    model = build_tiny_llama(len(tok))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if layer_of(name) is not None and p.dim() == 2:
                p.mul_(10.0)
        model.model.embed_tokens.weight.mul_(25.0)
    model.save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def healed(source, heal_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("healed") / "small"
    info = derive(str(source), 1, out, heal=Heal(str(heal_data), **HEAL), log=lambda m: None)
    return out, info


def _full_kl(src_dir, small_dir, texts: list[str], max_length: int) -> float:
    """The mean KL(source || derived) per token, from each model's own forward logits, one text at a time."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src_dir))
    src = AutoModelForCausalLM.from_pretrained(str(src_dir), dtype=torch.float32).eval()
    small = AutoModelForCausalLM.from_pretrained(str(small_dir), dtype=torch.float32).eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([tok(t, truncation=True, max_length=max_length)["input_ids"]])
            logp = torch.log_softmax(src(ids).logits[0].double(), -1)
            logq = torch.log_softmax(small(ids).logits[0].double(), -1)
            total += float((logp.exp() * (logp - logq)).sum())
            n += ids.shape[1]
    return total / n


def test_healing_lowers_the_heldout_kl_to_the_source_as_recorded(healed, source, heal_data, tmp_path):
    out, info = healed
    h = info["heal"]
    assert h["steps"] == 40 and h["heldout_rows"] == 2 and h["rows"] == 38 and h["data"] == str(heal_data)
    assert h["kl_before"] > 0.5 and h["kl_after"] < 0.6 * h["kl_before"], h  # measured: 1.63 -> 0.65
    # the recorded figures, recomputed independently: the last 5% of rows, full logits from each forward
    held = [_text(r) for r in _rows(40)[-2:]]
    unhealed = tmp_path / "unhealed"
    derive(str(source), 1, unhealed, log=lambda m: None)
    assert _full_kl(source, out, held, 32) == pytest.approx(h["kl_after"], rel=1e-4)
    assert _full_kl(source, unhealed, held, 32) == pytest.approx(h["kl_before"], rel=1e-4)
    rec = json.loads((out / "config.json").read_text())["sharpset_derived"]["heal"]
    from sharpset.run import file_hash

    assert rec["data_sha256"] == file_hash(heal_data) and rec["lr"] == 3e-3 and rec["kl_after"] == h["kl_after"]
    card = (out / "README.md").read_text()
    assert "Healed: 40 steps" in card and f"{h['kl_after']:.4f} after" in card and rec["data_sha256"] in card


def test_healing_trains_the_layers_and_final_norm_only(healed, source):
    out, _ = healed
    src, got = load_file(str(source / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert torch.equal(got["model.embed_tokens.weight"], src["model.embed_tokens.weight"])  # tied: the head too
    assert "lm_head.weight" not in got or torch.equal(got["lm_head.weight"], src["model.embed_tokens.weight"])
    trained = [k for k in got if layer_of(k) == 0 or k == "model.norm.weight"]
    assert trained and all(not torch.equal(got[k], src[k]) for k in trained)
    assert not any(layer_of(k) == 1 for k in got)


def test_heal_steps_0_is_the_plain_derivation_byte_for_byte(tiny_model_dir, heal_data, tmp_path):
    plain, zero = tmp_path / "plain", tmp_path / "zero"
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(plain)]) == 0
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(zero), "--heal-steps", "0",
                 "--heal-data", str(heal_data), "--heal-lr", "0.5"]) == 0
    for name in ("model.safetensors", "config.json", "README.md"):
        assert (plain / name).read_bytes() == (zero / name).read_bytes(), name
    assert "heal" not in json.loads((plain / "config.json").read_text())["sharpset_derived"]


def test_same_heal_settings_give_the_same_weights_and_another_seed_others(tiny_model_dir, heal_data, tmp_path):
    def weights(name: str, seed: int) -> bytes:
        heal = Heal(str(heal_data), steps=3, lr=1e-3, batch_size=2, max_length=16, seed=seed)
        derive(str(tiny_model_dir), 1, tmp_path / name, heal=heal, log=lambda m: None)
        return (tmp_path / name / "model.safetensors").read_bytes()

    a = weights("a", 0)
    assert weights("b", 0) == a
    assert weights("c", 1) != a


def test_up_to_date_compares_the_heal_settings(tiny_model_dir, heal_data, tmp_path):
    heal = Heal(str(heal_data), steps=2, max_length=16)
    out = tmp_path / "small"
    logs: list[str] = []
    derive(str(tiny_model_dir), 1, out, heal=heal, log=lambda m: None)
    again = derive(str(tiny_model_dir), 1, out, heal=heal, log=logs.append)
    assert logs and logs[0].startswith(f"up to date: {out}") and again["heal"]["steps"] == 2
    from sharpset.errors import UserError

    for other in (None, Heal(str(heal_data), steps=3, max_length=16), Heal(str(heal_data), steps=2, max_length=16,
                                                                               seed=1)):
        with pytest.raises(UserError, match="already holds a model"):
            derive(str(tiny_model_dir), 1, out, heal=other, log=lambda m: None)
    plain = tmp_path / "plain"
    derive(str(tiny_model_dir), 1, plain, log=lambda m: None)
    with pytest.raises(UserError, match="not healed"):
        derive(str(tiny_model_dir), 1, plain, heal=heal, log=lambda m: None)


def test_a_bad_heal_row_exits_2_naming_the_file_and_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    rows = _rows(3)
    rows[1]["messages"][1]["content"] = 7
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "small"
    argv = ["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(out), "--heal-data", str(bad)]
    assert main([*argv, "--heal-steps", "2"]) == 2
    assert f"{bad}:2: messages[1].content" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--heal-steps", "-1"]) == 2
    assert "--heal-steps: must be >= 0" in capsys.readouterr().err
    assert main(["derive", str(tiny_model_dir), "--keep-layers", "1", "--out", str(out), "--heal-steps", "2"]) == 2
    assert "--heal-data: required" in capsys.readouterr().err and not out.exists()


def test_the_check_names_each_heal_field():
    bad = DeriveConfig(keep_layers=1, heal_steps=1, heal_lr=0, heal_batch_size=0, heal_max_length=4).check()
    assert {f for f, _ in bad} == {"heal_data", "heal_lr", "heal_batch_size", "heal_max_length"}
    assert DeriveConfig(keep_layers=1).check() == [] and DeriveConfig(keep_layers=1).heal() is None


def test_chunked_kl_equals_the_full_computation_with_a_soft_cap():
    """A tiny Gemma 3 with ``final_logit_softcapping``: the chunked KL from hidden states equals the KL
    of the two models' forward logits, and so does its gradient."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from sharpset.models.derive import _hidden, final_softcap

    cfg = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                           max_position_embeddings=64, final_logit_softcapping=5.0, pad_token_id=0)
    torch.manual_seed(0)
    src = Gemma3ForCausalLM(cfg).eval()
    torch.manual_seed(1)
    der = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # one head (tied to the embeddings), as a derivative's; logits past the cap
        src.lm_head.weight.mul_(8.0)
        der.lm_head.weight.copy_(src.lm_head.weight)
    der.lm_head.weight.requires_grad_(False)
    ids = torch.randint(1, 300, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # right padding: its positions take no part
    keep = mask.bool()
    logp = torch.log_softmax(src(ids, attention_mask=mask).logits[keep], -1).detach()
    logq = torch.log_softmax(der(ids, attention_mask=mask).logits[keep], -1)
    want = (logp.exp() * (logp - logq)).sum()
    want.backward()
    want = want.item()
    want_grads = {n: p.grad.clone() for n, p in der.named_parameters() if p.grad is not None}
    assert any(layer_of(n) == 1 for n in want_grads) and "model.norm.weight" in want_grads
    der.zero_grad(set_to_none=True)
    assert final_softcap(der) == 5.0
    with torch.no_grad():
        h_s = _hidden(src, ids, mask)
    got = chunked_kl(h_s, _hidden(der, ids, mask), der.lm_head.weight, 5.0, chunk=4, backward_scale=1.0)
    assert float(got) == pytest.approx(want, rel=1e-5)
    for n, g in want_grads.items():
        assert torch.allclose(dict(der.named_parameters())[n].grad, g, rtol=1e-4, atol=1e-6), n
    no_cap = chunked_kl(h_s, _hidden(der, ids, mask).detach(), der.lm_head.weight, None, chunk=4)
    assert abs(float(no_cap) - want) > 1e-3  # the cap is not a no-op here


def test_a_gemma3_derivative_heals(heal_data, tmp_path):
    """The embedded base's family (scaled embeddings, tied head, sliding-window layers) with a soft cap:
    the head check passes and the heal runs through the CLI."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = build_chatml_tokenizer()
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                           max_position_embeddings=256, final_logit_softcapping=5.0, pad_token_id=2,
                           eos_token_id=2, bos_token_id=1)
    torch.manual_seed(0)
    src = tmp_path / "g3"
    Gemma3ForCausalLM(cfg).eval().save_pretrained(src, safe_serialization=True)
    tok.save_pretrained(src)
    out = tmp_path / "g3-small"
    assert main(["derive", str(src), "--keep-layers", "2", "--out", str(out), "--heal-data", str(heal_data),
                 "--heal-steps", "3", "--heal-max-length", "16", "--heal-lr", "1e-3"]) == 0
    h = json.loads((out / "config.json").read_text())["sharpset_derived"]["heal"]
    assert h["steps"] == 3 and h["kl_before"] > 0 and h["kl_after"] > 0


def test_the_derive_stage_records_the_heal_kl_in_its_metrics(tiny_model_dir, heal_data, tmp_path):
    from sharpset.models import derive as derive_mod
    from sharpset.pipelines.quickstart import stage_run

    cfg = {"model": str(tiny_model_dir), "keep_layers": 1, "heal_data": str(heal_data), "heal_steps": 2,
           "heal_max_length": 16}
    run = stage_run(derive_mod, cfg, "DeriveConfig", tmp_path / "d", lambda m: None)
    m = json.loads((run.path / "manifest.json").read_text())["metrics"]
    assert m["heal_kl_before"] > 0 and m["heal_kl_after"] > 0 and m["keep_layers"] == 1


def test_the_heal_data_is_in_the_derive_run_key_and_no_healing_keeps_the_old_key(tiny_model_dir, heal_data,
                                                                                   tmp_path):
    from sharpset.config import from_mapping
    from sharpset.pipelines import sweep_proxy
    from sharpset.run import input_hashes, run_key

    def key(mapping: dict) -> str:
        cfg = from_mapping(DeriveConfig, mapping)
        return run_key("derive", 1, cfg, input_hashes(cfg))

    old = key({"model": str(tiny_model_dir), "keep_layers": 1})
    s = sweep_proxy.settings({"antiexpert": 1}, ["format"])
    assert "heal_steps" not in s and sweep_proxy.derive_config(str(tiny_model_dir), s, str(heal_data)) == {
        "model": str(tiny_model_dir), "keep_layers": 1}
    assert key(sweep_proxy.derive_config(str(tiny_model_dir), s, str(heal_data))) == old
    assert key({"model": str(tiny_model_dir), "keep_layers": 1, "heal_steps": 0, "heal_data": ""}) == old
    assert sweep_proxy.settings({"antiexpert": 1, "heal_steps": 5}, ["format"])["heal_steps"] == 5
    healed = sweep_proxy.derive_config(str(tiny_model_dir), {**s, "heal_steps": 5}, str(heal_data))
    assert healed["heal_data"] == str(heal_data) and key(healed) != old
    copy = tmp_path / "pool.jsonl"
    copy.write_bytes(heal_data.read_bytes())
    edited = {**healed, "heal_data": str(copy)}
    before = key(edited)
    copy.write_text(copy.read_text() + json.dumps(_rows(41)[-1]) + "\n")
    assert key(edited) != before  # the heal data by content


def test_the_sweeps_proxy_check_refuses_bad_heal_steps(tiny_model_dir, tmp_path, capsys):
    from sharpset.errors import UserError
    from sharpset.pipelines import sweep_proxy

    assert sweep_proxy.check({"antiexpert": 1, "heal_steps": 10}, ["format"]) == []
    for proxy in ({"antiexpert": 1, "heal_steps": -1}, {"antiexpert": 1, "heal_steps": True},
                  {"antiexpert": 1, "heal_steps": 1.5}, {"antiexpert": "some-model", "heal_steps": 3}):
        assert [f for f, _ in sweep_proxy.check(proxy, ["format"])] == ["proxy.heal_steps"], proxy
    base = ["sweep", "--model", str(tiny_model_dir), "--targets", "knowledge", "--out", str(tmp_path / "sw")]
    assert main([*base, "--proxy", "{antiexpert: 1, heal_steps: -1}"]) == 2
    assert "proxy.heal_steps" in capsys.readouterr().err and not (tmp_path / "sw").exists()
    # healing needs the pool: refused before any run
    s = sweep_proxy.settings({"antiexpert": 1, "heal_steps": 2}, ["knowledge"])
    with pytest.raises(UserError, match="proxy.heal_steps: .*give `pool`"):
        sweep_proxy.antiexpert(str(tiny_model_dir), s, {}, tmp_path / "sw", lambda m: None, pool="")
    assert not (tmp_path / "sw").exists()

