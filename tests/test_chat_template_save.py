"""A model trained from a template-less base is saved with the template it was trained in (issue 12)."""

from __future__ import annotations

import pytest

from sharpset.models.profiles import TEMPLATES, chat_template_for, encode, profile_for

CONVS = [
    [{"role": "user", "content": "Hello there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is two plus two?"},
     {"role": "assistant", "content": "Four."}],
    [{"role": "user", "content": "  padded \n"}, {"role": "assistant", "content": "\n answer  "},
     {"role": "user", "content": "again"}],
]


def _gemma_like_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(["user model hello there what is two plus two four be brief answer again"] * 3, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def test_gemma_template_reproduces_the_profile_it_was_trained_in():
    tok = _gemma_like_tokenizer()
    assert not tok.chat_template
    trained_in = profile_for(tok, "gemma")  # how train renders a template-less gemma base
    template = chat_template_for(trained_in)
    assert template == TEMPLATES["gemma3"]
    tok.chat_template = template
    saved = profile_for(tok)  # detected from the saved template and checked against it
    assert saved.family == "gemma" and saved.layout.name == trained_in.layout.name
    for conv in CONVS:
        for gen in (False, True):
            if gen and conv[-1]["role"] != "user":
                continue
            assert saved.render(conv, gen) == trained_in.render(conv, gen)
            assert tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen) == trained_in.render(conv, gen)
        assert encode(saved, tok, conv).input_ids == encode(trained_in, tok, conv).input_ids


def test_gemma_template_refuses_non_alternating_roles_like_the_profile():
    tok = _gemma_like_tokenizer()
    tok.chat_template = TEMPLATES["gemma3"]
    with pytest.raises(Exception, match="alternate") as e:
        tok.apply_chat_template([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], tokenize=False)
    # the template's own raise_exception (a jinja2 TemplateError), not some other failure
    assert type(e.value).__name__ == "TemplateError" and type(e.value).__module__.startswith("jinja2")


def test_save_outputs_writes_the_template(tmp_path):
    from transformers import AutoTokenizer

    from conftest import build_tiny_llama
    from sharpset.config import from_mapping
    from sharpset.train import TrainConfig, save_outputs

    tok = _gemma_like_tokenizer()
    profile = profile_for(tok, "gemma")
    cfg = from_mapping(TrainConfig, {"sft": "x.jsonl", "full_finetune": True})
    save_outputs(cfg, build_tiny_llama(len(tok)), tok, tmp_path, profile)
    saved = AutoTokenizer.from_pretrained(str(tmp_path / "model"))
    assert saved.chat_template == TEMPLATES["gemma3"]
    assert profile_for(saved).render(CONVS[1]) == profile.render(CONVS[1])
