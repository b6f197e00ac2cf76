"""What a user gets instead of a traceback (issue 10): a model without a chat template, a prompt
longer than the model's context, a malformed ``--config`` file and a wrappers file that is not a
mapping each end in one line naming the file (and line) with exit 2; a broken install is reported as
an install problem (exit 3, how to reinstall), not as bad input.

Each case failed before the fix: a traceback (ProfileError, the engine's ValueError, ``dict()`` of a
list, ``AttributeError`` on a list), a message without the file, or exit 2 "unavailable".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sharpset.cli import main

from conftest import build_chatml_tokenizer


def sft(q: str, a: str | None = "An answer.") -> dict:
    # explicit ids, so these cases do not depend on ids being filled in on read (test_row_ids.py)
    return {"id": q[:40], "messages": [{"role": "user", "content": q}] + ([{"role": "assistant", "content": a}] if a else [])}


def one_line_error(capsys) -> str:
    """The one ``error:`` line on stderr (progress bars of model loading may stand beside it)."""
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    f.write_text("".join(json.dumps(sft(f"Question {i}?", f"Answer {i}.")) + "\n" for i in range(3)))
    return f


def _save_tiny(d: Path, *, template: bool = True, positions: int = 512) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_chatml_tokenizer()
    if not template:
        tok.chat_template = None
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=positions,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    LlamaForCausalLM(cfg).eval().save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    return d


# ---------------------------------------------------------------- models


def test_a_model_without_a_chat_template(tmp_path, pool, capsys):
    model = _save_tiny(tmp_path / "base-model", template=False)
    assert main(["tag", str(pool), "--judge", str(model), "--scores", "quality", "--out", str(tmp_path / "t")]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: {model}: chat_template: the tokenizer has no chat template"), line
    assert main(["train", "--model", str(model), "--sft", str(pool), "--out", str(tmp_path / "r")]) == 2
    assert f"{model}: chat_template:" in one_line_error(capsys)
    assert not (tmp_path / "t").exists() and not (tmp_path / "r").exists()


def test_a_prompt_longer_than_the_model_context(tmp_path, capsys):
    model = _save_tiny(tmp_path / "short-ctx", positions=64)
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps(sft("Hi?", None)) + "\n" + json.dumps(sft("hello world " * 40 + "?", None)) + "\n")
    rc = main(["wrap", str(f), "--model", str(model), "--max-new-tokens", "8", "--families", "noise",
               "--heldout-families", "noise", "--out", str(tmp_path / "w")])
    assert rc == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: {f}:2: messages: the prompt is "), line
    assert "(64 positions) leaves 56 with max_new_tokens 8" in line
    assert not (tmp_path / "w").exists()


# ---------------------------------------------------------------- --config files


@pytest.mark.parametrize("text,where,message", [
    ("- input\n- chunk\n", 1, "<config>: expected a mapping (key: value lines), got a list"),
    ("just a string\n", 1, "<config>: expected a mapping (key: value lines), got a string"),
    ("scores: [shape]\nchunk: [1\n", 3, "<yaml>: "),
    ("scores: [shape]\nnope: 1\n", 2, "nope: unknown field for TagConfig"),
    ("scores: [shape]\n\nchunk: lots\n", 3, "chunk: expected int, got 'lots'"),
    ("scores: [shape]\nmin_mass: 5\n", 2, "min_mass: must be in [0, 1)"),
    ("scores: shape\njudge: [a, b]\n", 2, "judge: expected str, got ['a', 'b']"),
    ("1: x\n", 1, "1: a field name must be a string"),
    ("scores: [shape]\nchunk: 4\nchunk: 5\n", 3, "chunk: repeated key (first at line 2)"),
])
def test_a_malformed_config_file(tmp_path, pool, capsys, text, where, message):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    assert main(["tag", str(pool), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: {cfg}:{where}: {message}"), line
    assert not (tmp_path / "o").exists()


def test_a_flag_overriding_a_config_key_is_named_as_the_command_line(tmp_path, pool, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("scores: [shape]\nchunk: 4\n")
    assert main(["tag", str(pool), "--config", str(cfg), "--chunk", "many", "--out", str(tmp_path / "o")]) == 2
    assert one_line_error(capsys).startswith("error: command line: chunk: expected int")
    assert main(["tag", str(pool), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 0


# ---------------------------------------------------------------- wrappers files


@pytest.mark.parametrize("text,message", [
    ("- a\n- b\n", ":1: <wrappers>: expected a mapping (key: value lines), got a list"),
    ("fam/a:\n  kind: template\n  templates: ['{prompt}']\nfam/b: 3\n", ":4: fam/b: expected a mapping with kind"),
    ("fam/a:\n  kind: template\n  templates: '{prompt}'\n", ":1: fam/a.templates: expected a non-empty list of texts"),
    ("fam/a:\n  kind: odd\n  templates: ['{prompt}']\n", ":1: fam/a.kind: must be template or pushback"),
    ("fam/a:\n  kind: template\n  templates: ['no slot']\n", ":1: fam/a.templates: template without {prompt}"),
    ("", ": <wrappers>: no wrapper families in the file"),
])
def test_a_wrappers_file_that_is_not_a_mapping_of_families(tmp_path, capsys, text, message):
    w = tmp_path / "w.yaml"
    w.write_text(text)
    assert main(["wrap", "--wrappers-file", str(w), "--families", "fam", "--heldout-families", "fam",
                 "--out", str(tmp_path / "o")]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: {w}{message}"), line


# ---------------------------------------------------------------- a broken install


def test_a_missing_optional_dependency_is_an_install_problem(tmp_path, pool, monkeypatch, capsys, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "trl", None)  # `import trl` now raises ImportError
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(pool), "--sft-backend", "trl",
               "--out", str(tmp_path / "r")])
    assert rc == 3
    line = one_line_error(capsys)
    assert line.startswith("error: broken install: ") and "trl" in line, line
    assert "reinstall with: python -m pip install -e" in line and "[train]" in line, line
    assert not (tmp_path / "r").exists()


def test_peft_is_core_since_the_main_job_trains(tmp_path, pool, monkeypatch, capsys, tiny_model_dir):
    # the README's first line installs no extra and `sharpset run quickstart` trains (issue 14)
    monkeypatch.setitem(sys.modules, "peft", None)
    rc = main(["train", "--model", str(tiny_model_dir), "--sft", str(pool), "--out", str(tmp_path / "r")])
    assert rc == 3
    line = one_line_error(capsys)
    assert "peft" in line and "reinstall with: python -m pip install -e . " in line, line


def test_a_missing_core_dependency_is_an_install_problem(tmp_path, pool, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datasketch", None)
    rc = main(["dedup", str(pool), "--methods", "minhash", "--out", str(tmp_path / "d")])
    assert rc == 3
    line = one_line_error(capsys)
    assert line.startswith("error: broken install: ") and "datasketch" in line, line
    assert "reinstall with: python -m pip install -e ." in line and "[" not in line.split("reinstall")[1], line


def test_a_stage_that_cannot_be_imported_is_an_install_problem(tmp_path, pool):
    code = ("import sys; sys.modules['sharpset.stages.dedup'] = None\n"
            "from sharpset.cli import main\n"
            f"sys.exit(main(['dedup', {str(pool)!r}, '--out', {str(tmp_path / 'd')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: broken install: "), r.stderr
    assert "reinstall sharpset: python -m pip install -e ." in r.stderr
