"""Stage configs are dataclasses; their fields are the YAML recipe keys and the CLI flags.

Each field carries its help text in ``metadata["help"]``. Renamed fields keep working through
``DEPRECATED`` (old name -> new name) with a warning, never silently (STYLE: instructlab#2803).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import UserError


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, once per class (it re-evaluates every annotation per call, which
    made building the CLI parser -- one call per field of every stage -- take a quarter second)."""
    return typing.get_type_hints(cls)


def field(default: Any, help: str, *, in_key: bool = True, **kw: Any) -> Any:
    """A dataclass field with help text (shown by ``--help`` and ``recipes show``).

    ``in_key=False``: a knob that does not change what a run produces (progress bars, how many
    cells to run in this call), so it stays out of the run key and a run can resume under another
    value of it."""
    meta = {"help": help, "in_key": in_key}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _base_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return origin or tp


def coerce(cls: type, name: str, value: Any, where: str) -> Any:
    """Coerce a YAML/CLI value to the field's type, or raise a UserError naming where it came from."""
    hints = _hints(cls)
    tp = hints[name]
    base = _base_type(tp)
    optional = type(None) in typing.get_args(tp)
    if value is None:
        if optional:
            return None
        raise UserError(f"{where}: {name}: may not be null")
    if optional and isinstance(value, str) and value.strip().lower() in ("null", "none", "~"):
        return None
    if isinstance(value, str) and base is not str:
        try:  # a flag's text: YAML scalars, flow lists "[a, b]" and mappings "{k: v}"
            value = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError as e:
            problem = str(e).splitlines()[0]
            raise UserError(f"{where}: {name}: expected {getattr(base, '__name__', base)}, got {value!r} "
                            f"({problem})") from None
        if value is None and optional:
            return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            raise TypeError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if base is str:
            if isinstance(value, (list, dict)):  # str() of a list would pass as a nonsense path
                raise TypeError
            return str(value)
        if base in (list, tuple):
            if isinstance(value, str):  # from a flag: "a,b,c" (a YAML flow list "[a, b]" parsed above)
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]  # a one-item flag ("--sizes 16") arrives parsed as a number
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return list(value)
        if base is dict:
            if not isinstance(value, dict):
                raise TypeError
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(.inf)
        raise UserError(f"{where}: {name}: expected {getattr(base, '__name__', base)}, got {value!r}") from None
    return value


def deprecated_names(cls: type) -> dict[str, str]:
    return dict(getattr(cls, "DEPRECATED", {}))


def read_yaml_mapping(path: str | Path, what: str = "config") -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML file holding one mapping: ``(mapping, {key: line})``; any other content is a
    :class:`UserError` naming ``file:line`` (``<yaml>`` for a syntax error, ``<what>`` for a file
    that is not a mapping, the key itself for a key that is not a plain string)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: {what}: cannot read ({e})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise UserError(f"{path}:{line}: <yaml>: {problem}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise UserError(f"{path}:{line}: <{what}>: expected a mapping (key: value lines), got {_yaml_type(data)}")
    lines = {}
    for k, _ in node.value:
        if not isinstance(k.value, str) or k.tag != "tag:yaml.org,2002:str":
            raise UserError(f"{path}:{k.start_mark.line + 1}: {k.value}: a field name must be a string")
        if k.value in lines:  # YAML keeps the last of repeated keys silently; a config must not rely on it
            raise UserError(f"{path}:{k.start_mark.line + 1}: {k.value}: repeated key (first at line {lines[k.value]})")
        lines[k.value] = k.start_mark.line + 1
    return data, lines


def _yaml_type(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__)


def from_mapping(cls: type, mapping: Mapping[str, Any], where: str = "config",
                 lines: Mapping[str, int] | None = None, locations: Mapping[str, str] | None = None) -> Any:
    """Build a config from a mapping; unknown keys are an error naming file:line and the key.

    ``locations`` (key -> text) names where a key came from when the keys come from several places
    (a ``--config`` file and flags); otherwise ``where`` plus the key's line in ``lines``."""
    names = {f.name for f in dataclasses.fields(cls)}
    renamed = deprecated_names(cls)
    kwargs = {}

    def loc_of(key: str) -> str:
        if locations and key in locations:
            return locations[key]
        return f"{where}:{lines[key]}" if lines and key in lines else where

    for key, value in mapping.items():
        loc = loc_of(key)
        if key in renamed:
            warnings.warn(f"{loc}: '{key}' is deprecated, use '{renamed[key]}'", DeprecationWarning, stacklevel=2)
            key = renamed[key]
        if key not in names:
            close = ", ".join(sorted(names))
            raise UserError(f"{loc}: {key}: unknown field for {cls.__name__} (fields: {close})")
        kwargs[key] = coerce(cls, key, value, loc)
    try:
        cfg = cls(**kwargs)
    except TypeError as e:
        raise UserError(f"{where}: {e}") from None
    # check(): the stage's own; check_backend(): sharpset.stage.BackendFields, shared by the stages
    # that generate or score
    for check in (getattr(cfg, "check", None), getattr(cfg, "check_backend", None)):
        for name, problem in (check() if check else []):
            raise UserError(f"{loc_of(name)}: {name}: {problem}")
    return cfg


def parse_set(items: list[str] | None) -> dict[str, str]:
    """``--set key=value`` pairs (value parsed by YAML rules when coerced)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set {item}: expected key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field, named like the field (``max_new_tokens`` -> ``--max-new-tokens``)."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        base = _base_type(_hints(cls)[f.name])
        metavar = "A,B,..." if base in (list, tuple) else "{K: V, ...}" if base is dict else "V"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, metavar=metavar,
                            help=f"{f.metadata.get('help', '')} (default: {default!r})")


def from_args(cls: type, args: argparse.Namespace, base: Mapping[str, Any] | None = None,
              base_where: str | None = None, base_lines: Mapping[str, int] | None = None) -> Any:
    """Flags over ``base`` (a ``--config`` file's mapping, from ``base_where``): a problem with a
    key names the file and line it came from, or the command line."""
    mapping = dict(base or {})
    locations = {}
    if base_where:
        locations = {k: f"{base_where}:{base_lines[k]}" if base_lines and k in base_lines else base_where
                     for k in mapping}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None:
            mapping[f.name] = v
            locations.pop(f.name, None)
    return from_mapping(cls, mapping, where="command line", locations=locations)


def describe(cls: type) -> list[tuple[str, str, Any]]:
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, f.metadata.get("help", ""), default))
    return rows
