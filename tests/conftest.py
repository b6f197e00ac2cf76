"""Shared fixtures: tiny random models built in-process (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "What causes the seasons on Earth? The tilt of the axis.",
    "Write a haiku about autumn rain. Leaves fall, rain sings softly.",
    "How do I reverse a list in Python? Use reversed or slicing.",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "system user assistant hello world the a of and to in is it that",
] * 3


def build_chatml_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained in-process, with ChatML specials and SmolLM2's template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = SMOLLM2_TEMPLATE
    return tok


def build_tiny_llama(vocab_size: int, seed: int = 0, positions: int = 512):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=positions,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny ChatML llama folder: usable wherever a model name is (local HF folder)."""
    d = tmp_path_factory.mktemp("tiny-chatml-llama")
    tok = build_chatml_tokenizer()
    model = build_tiny_llama(len(tok))
    model.save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def long_ctx_model(tmp_path_factory) -> Path:
    """The tiny ChatML llama with room for long prompts (8k positions, not 512): restyle's prompt."""
    d = tmp_path_factory.mktemp("tiny-chatml-8k")
    tok = build_chatml_tokenizer()
    build_tiny_llama(len(tok), positions=8192).save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    return d


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("SHARPSET_CACHE", str(d))
    return d


def pytest_configure(config):
    # keep test runs on 2 cores predictable
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
