"""The CLI as a user meets it: help, exit codes, error messages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sharpset", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands():
    r = sh("--help")
    assert r.returncode == 0
    for cmd in ("models", "validate", "run", "recipes"):
        assert cmd in r.stdout


def test_validate_reports_path_line_field_and_exit_2(tmp_path):
    f = tmp_path / "d.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}
    f.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    r = sh("validate", str(f))
    assert r.returncode == 2
    assert re.search(rf"{re.escape(str(f))}:2: messages\[1\]\.role: ", r.stderr), r.stderr
    assert "read 2, valid 1, invalid 1" in r.stdout
    f.write_text(json.dumps(good) + "\n")
    assert sh("validate", str(f)).returncode == 0


def test_missing_file_and_unknown_recipe_are_clean_errors(tmp_path):
    r = sh("validate", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "nope.jsonl" in r.stderr
    r = sh("run", "no-such-recipe")
    assert r.returncode == 2 and "unknown recipe 'no-such-recipe'" in r.stderr
    r = sh("run", "smoke", "--set", "n_prompts=zero")
    assert r.returncode == 2 and "n_prompts: expected int" in r.stderr


def test_recipes_ls_show_validate():
    r = sh("recipes", "ls")
    assert r.returncode == 0 and "quickstart" in r.stdout
    r = sh("recipes", "show", "quickstart")
    assert r.returncode == 0 and "aligned_model" in r.stdout and "max_new_tokens" in r.stdout
    assert sh("recipes", "validate", "quickstart").returncode == 0


def test_models_lists_embedded():
    r = sh("models")
    assert r.returncode == 0
    for name in ("smollm2-135m-instruct", "gemma3-270m", "minilm-l6"):
        assert name in r.stdout


def test_ci_runs_exactly_the_readme_test_command_in_a_fresh_environment():
    readme = (ROOT / "README.md").read_text().splitlines()
    ci = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    cmds = [l.strip() for l in readme[:20] if l.strip().startswith("python -m pip install")]
    assert len(cmds) == 2, cmds
    assert cmds[0].endswith("sharpset run quickstart") and cmds[1].endswith("python -m pytest")
    assert cmds[1] in ci
    # issue 10: a new virtual environment every run, entered before the command, and said so
    made = next(i for i, l in enumerate(ci) if re.fullmatch(r'python -m venv "\$env_dir"', l))
    entered = ci.index('. "$env_dir/bin/activate"')
    assert made < entered < ci.index(cmds[1])
    assert any("mktemp -d" in l for l in ci[:made]) and any(l.startswith("trap 'rm -rf") for l in ci[:made])
    assert any(l.startswith('echo "ci: made its own environment: $env_dir') for l in ci[entered:ci.index(cmds[1])])
