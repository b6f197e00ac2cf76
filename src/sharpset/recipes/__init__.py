"""Recipes: checked-in YAML that names a pipeline and its config (torchtune-style ls/show/validate).

A recipe file is ``{name, pipeline, description, config: {...}}``; ``config`` keys are exactly the
fields of the pipeline's config dataclass. Pipelines are a lazy ``name -> "module:object"``
registry, so one broken pipeline never breaks the others (lm-eval's pattern).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import from_mapping
from ..errors import UserError

PIPELINES: dict[str, tuple[str, str]] = {
    # name: (run function, config dataclass)
    "quickstart": ("sharpset.pipelines.quickstart:run", "sharpset.pipelines.quickstart:QuickstartConfig"),
    "smoke": ("sharpset.pipelines.smoke:run", "sharpset.pipelines.smoke:SmokeConfig"),
    "audit": ("sharpset.pipelines.audit:run", "sharpset.pipelines.audit:AuditConfig"),
}
HERE = Path(__file__).parent
TOP_KEYS = {"name", "pipeline", "description", "config"}
# a recipe's name becomes its run folder's name (runs/<name>-<key>): one plain path component
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _load_object(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def pipeline(name: str) -> tuple[Any, type]:
    if name not in PIPELINES:
        raise UserError(f"unknown pipeline '{name}' (known: {', '.join(PIPELINES)})")
    fn_ref, cfg_ref = PIPELINES[name]
    return _load_object(fn_ref), _load_object(cfg_ref)


def shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(HERE.glob("*.yaml"))}


@dataclass
class Recipe:
    name: str
    pipeline: str
    description: str
    config: dict[str, Any]
    lines: dict[str, int]  # config key -> line in the file
    source: str  # file path

    def build_config(self, overrides: dict[str, Any] | None = None) -> Any:
        _, cls = pipeline(self.pipeline)
        mapping = dict(self.config)
        lines = dict(self.lines)
        for k, v in (overrides or {}).items():
            mapping[k] = v
            lines.pop(k, None)
        return from_mapping(cls, mapping, where=self.source, lines=lines)


def resolve_file(name_or_path: str) -> Path:
    """A recipe file: a path (a ``.yaml``/``.yml`` name, or an existing file), else a shipped recipe's
    name. A folder of the same name (``sharpset run audit`` beside a run folder called ``audit``) is
    not a recipe and never hides the shipped one."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise UserError(f"{p}: recipe file not found" + (" (it is a folder)" if p.is_dir() else ""))
        return p
    found = shipped()
    if name_or_path not in found:
        raise UserError(f"unknown recipe '{name_or_path}' (shipped: {', '.join(found)}; or give a .yaml path)")
    return found[name_or_path]


def load(name_or_path: str) -> Recipe:
    path = resolve_file(name_or_path)
    text = path.read_text(encoding="utf-8")
    where = str(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise UserError(f"{where}:{line}: <yaml>: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}:1: <recipe>: expected a mapping with keys {sorted(TOP_KEYS)}")
    top_lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    for key in data:
        if key not in TOP_KEYS:
            raise UserError(f"{where}:{top_lines.get(key, 1)}: {key}: unknown recipe key (allowed: {sorted(TOP_KEYS)})")
    for key in ("name", "pipeline"):
        if not isinstance(data.get(key), str):
            raise UserError(f"{where}:{top_lines.get(key, 1)}: {key}: required string")
    if not NAME_RE.fullmatch(data["name"]) or data["name"] in (".", ".."):
        raise UserError(f"{where}:{top_lines.get('name', 1)}: name: {data['name']!r} must be a plain name "
                        "(letters, digits, '.', '_', '-'; it names the run folder, so no '/' or '..')")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise UserError(f"{where}:{top_lines.get('config', 1)}: config: expected a mapping")
    lines: dict[str, int] = {}
    for k, v in node.value:
        if k.value == "config" and isinstance(v, yaml.MappingNode):
            lines = {ck.value: ck.start_mark.line + 1 for ck, _ in v.value}
    return Recipe(data["name"], data["pipeline"], str(data.get("description", "")), config, lines, where)


def validate(name_or_path: str) -> Any:
    """Load a recipe and build its config; raises UserError with file:line on any problem."""
    return load(name_or_path).build_config()
