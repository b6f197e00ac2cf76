"""The package's layers: imports flow one way (issue 11).

- a stage (a module or package directly under ``sharpset/stages``) never imports another stage;
- shared code (everything outside stages/, evaluate/, pipelines/ and cli) imports no stage;
- old module paths keep working for a release, with a DeprecationWarning.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import sharpset

PKG = Path(sharpset.__file__).parent
STAGES = PKG / "stages"


def _imports(path: Path) -> set[str]:
    """Absolute names of the sharpset modules a file imports (relative imports resolved)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts if path.name == "__init__.py" else parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("sharpset")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("sharpset"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}  # `from . import x` names a module
    return out


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["sharpset", "stages"] else None


def _stage_files():
    for p in sorted(STAGES.rglob("*.py")):
        if p.parent == STAGES and p.name == "__init__.py":
            continue
        yield p, p.relative_to(STAGES).parts[0].removesuffix(".py")


def test_stages_never_import_each_other():
    bad = []
    for path, stage in _stage_files():
        for mod in _imports(path):
            other = _stage_of(mod)
            if other and other != stage:
                bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not bad, "stages must import shared code only:\n" + "\n".join(bad)


def test_shared_code_imports_no_stage():
    shared = [p for p in PKG.rglob("*.py")
              if not any(part in ("stages", "evaluate", "pipelines") for part in p.relative_to(PKG).parts)
              and p.name not in ("cli.py",)]
    bad = [f"{p.relative_to(PKG)} imports {m}" for p in shared for m in _imports(p) if _stage_of(m)]
    assert not bad, "shared code must not depend on a stage:\n" + "\n".join(bad)


def test_the_checker_sees_a_cross_stage_import(tmp_path, monkeypatch):
    # the check itself must be able to fail: a fake stage file importing another stage is caught
    fake = STAGES / "_layout_probe.py"
    fake.write_text("from .tag import TagConfig\nfrom ..records import content_id\n", encoding="utf-8")
    try:
        mods = _imports(fake)
        assert "sharpset.stages.tag" in mods and "sharpset.records" in mods
        assert _stage_of("sharpset.stages.tag") == "tag" and _stage_of("sharpset.records") is None
    finally:
        fake.unlink()


@pytest.mark.parametrize("old", sorted(sharpset.MOVED))
def test_moved_modules_keep_working_with_a_warning(old):
    new = importlib.import_module(sharpset.MOVED[old])
    import sys

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(old)
    assert mod is new
    assert any(issubclass(w.category, DeprecationWarning) and old in str(w.message) for w in caught)
