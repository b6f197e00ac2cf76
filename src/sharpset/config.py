"""Stage configs are dataclasses; their fields are the YAML recipe keys and the CLI flags.

Each field carries its help text in ``metadata["help"]``. Renamed fields keep working through
``DEPRECATED`` (old name -> new name) with a warning, never silently (STYLE: instructlab#2803).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
import warnings
from typing import Any, Mapping

import yaml

from .errors import UserError


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
    hints = typing.get_type_hints(cls)
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
            return str(value)
        if base in (list, tuple):
            if isinstance(value, str):  # from a flag: "a,b,c" (a YAML flow list "[a, b]" parsed above)
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return list(value)
        if base is dict:
            if not isinstance(value, dict):
                raise TypeError
            return value
    except (TypeError, ValueError):
        raise UserError(f"{where}: {name}: expected {getattr(base, '__name__', base)}, got {value!r}") from None
    return value


def deprecated_names(cls: type) -> dict[str, str]:
    return dict(getattr(cls, "DEPRECATED", {}))


def from_mapping(cls: type, mapping: Mapping[str, Any], where: str = "config",
                 lines: Mapping[str, int] | None = None) -> Any:
    """Build a config from a mapping; unknown keys are an error naming file:line and the key."""
    names = {f.name for f in dataclasses.fields(cls)}
    renamed = deprecated_names(cls)
    kwargs = {}
    for key, value in mapping.items():
        loc = f"{where}:{lines[key]}" if lines and key in lines else where
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
    check = getattr(cfg, "check", None)
    if check:
        for name, problem in check():
            loc = f"{where}:{lines[name]}" if lines and name in lines else where
            raise UserError(f"{loc}: {name}: {problem}")
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
        base = _base_type(typing.get_type_hints(cls)[f.name])
        metavar = "A,B,..." if base in (list, tuple) else "{K: V, ...}" if base is dict else "V"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, metavar=metavar,
                            help=f"{f.metadata.get('help', '')} (default: {default!r})")


def from_args(cls: type, args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> Any:
    mapping = dict(base or {})
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None:
            mapping[f.name] = v
    return from_mapping(cls, mapping, where="command line")


def describe(cls: type) -> list[tuple[str, str, Any]]:
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, f.metadata.get("help", ""), default))
    return rows
