"""Response-shape specs: a declarative YAML of the answer shape a user wants, and a per-criterion
conformance scorer over ``shape.shape_features`` (used by ``curate --spec`` and ``restyle``).

The spec format and every criterion are described in the section comment below.
"""

from __future__ import annotations

import dataclasses as _dc
import re
from pathlib import Path as _Path
from typing import Any as _Any

from .shape import _YOU, CLOSINGS, OPENINGS, markdown_stripped, shape_features

# =============================================================================================
# Response-shape specs and conformance scoring
#
# A spec is a small declarative YAML describing the answer shape a user wants (LIMA,
# arXiv:2305.11206: "one consistent response style"). Every criterion is a predicate over the
# ``shape_*`` columns above (plus the two register counts below), so a row's conformance is cheap,
# model-free and exactly reproducible. Keys (all optional except ``name`` and one criterion):
#
#   name: lima-long                       # [a-z0-9-]+
#   description: ...
#   opening: acknowledge                  # one of OPENINGS, or a list of them
#   length: {min_words: 200, max_words: 700}   # shape_words, either bound may be left out
#   structure: {bullets: allowed, numbered: allowed, headings: forbidden, code: allowed,
#               tables: forbidden}        # allowed (no check) | required (>= 1) | forbidden (0)
#   register: formal                      # formal | conversational | any (see register_features)
#   first_person: false                   # false: no first person; true/absent: no check
#   closing: [plain, summary]             # one of CLOSINGS, or a list of them
#   language: en                          # ISO 639-1 code from shape_language
#   examples: [{instruction, original, restyled}, ...]   # in-context examples for `restyle`
#
# "allowed", "any", ``first_person: true`` and absent keys are not criteria: they never count
# toward the total. A row's ``conformance`` = criteria passed / criteria checked.
# =============================================================================================

SPEC_DIR = _Path(__file__).parent / "specs"
SPEC_KEYS = ("name", "description", "opening", "length", "structure", "register", "first_person",
             "closing", "language", "examples")
LENGTH_KEYS = ("min_words", "max_words")
# structure key -> the shape column counted
STRUCTURE = {"bullets": "shape_bullets", "numbered": "shape_numbered_items", "headings": "shape_headings",
             "code": "shape_code_blocks", "tables": "shape_tables"}
STRUCTURE_VALUES = ("allowed", "required", "forbidden")
REGISTERS = ("formal", "conversational", "any")
EXAMPLE_KEYS = ("instruction", "original", "restyled")
CRITERIA = ("opening", "length", *STRUCTURE, "register", "first_person", "closing", "language")
_SPEC_NAME = re.compile(r"[a-z0-9][a-z0-9-]*$")

# Register (a documented heuristic, our reconstruction -- no paper defines it for this use):
# contractions = n't/'re/'ve/'ll/'d/'m after a word, or 's after a pronoun/adverb ("it's", "that's",
# "let's"; a noun's possessive "John's" is not one); exclamations = "!" in the prose; second person
# = you/your/yours/yourself(ves). formal: no contractions and no "!"; conversational: addresses the
# reader (second person) or uses contractions.
_CONTRACTION = re.compile(
    r"\b(?:[A-Za-z]+(?:n['’]t|['’](?:re|ve|ll|d|m))"
    r"|(?i:it|that|there|here|what|who|where|how|let|he|she)['’]s)\b"
    r"|\b(?i:can['’]t|won['’]t|ain['’]t)\b", re.I)


def register_features(text: str) -> dict[str, int]:
    """Counts behind the ``register`` criterion, over the prose (markdown stripped, no fenced code)."""
    prose = markdown_stripped(text, keep_code=False)
    return {"contractions": len(_CONTRACTION.findall(prose)), "exclamations": prose.count("!"),
            "second_person": len(_YOU.findall(prose))}


@_dc.dataclass(frozen=True)
class ShapeSpec:
    name: str
    description: str = ""
    opening: tuple[str, ...] | None = None
    min_words: int | None = None
    max_words: int | None = None
    structure: tuple[tuple[str, str], ...] = ()  # (key, required|forbidden|allowed)
    register: str = "any"
    first_person: bool = True
    closing: tuple[str, ...] | None = None
    language: str | None = None
    examples: tuple[dict, ...] = ()
    source: str = ""

    def criteria(self) -> list[str]:
        """The criteria this spec checks, in CRITERIA order."""
        struct = dict(self.structure)
        out = []
        for c in CRITERIA:
            if c == "opening" and self.opening:
                out.append(c)
            elif c == "length" and (self.min_words is not None or self.max_words is not None):
                out.append(c)
            elif c in STRUCTURE and struct.get(c, "allowed") != "allowed":
                out.append(c)
            elif c == "register" and self.register != "any":
                out.append(c)
            elif c == "first_person" and not self.first_person:
                out.append(c)
            elif c == "closing" and self.closing:
                out.append(c)
            elif c == "language" and self.language:
                out.append(c)
        return out

    def describe(self) -> str:
        """The spec as plain-English style rules (used in the restyle prompt)."""
        rules = []
        if self.opening:
            words = {"acknowledge": "Begin by briefly acknowledging the question (e.g. \"Sure.\" or "
                                    "\"Great question.\"), then answer.",
                     "restate": "Begin by restating what is being asked, then answer.",
                     "direct": "Begin directly with the answer: no greeting, no acknowledgement."}
            rules.append(" or ".join(words.get(o, o) for o in self.opening if o != "none"))
        if self.min_words is not None and self.max_words is not None:
            rules.append(f"Write between {self.min_words} and {self.max_words} words.")
        elif self.min_words is not None:
            rules.append(f"Write at least {self.min_words} words.")
        elif self.max_words is not None:
            rules.append(f"Write at most {self.max_words} words.")
        names = {"bullets": "bullet lists", "numbered": "numbered lists", "headings": "headings",
                 "code": "code blocks", "tables": "tables"}
        for key, value in self.structure:
            if value == "required":
                rules.append(f"Use {names[key]}.")
            elif value == "forbidden":
                rules.append(f"Do not use {names[key]}.")
        if self.register == "formal":
            rules.append("Keep a formal register: no contractions, no exclamation marks.")
        elif self.register == "conversational":
            rules.append("Keep a conversational register: address the reader as \"you\".")
        if not self.first_person:
            rules.append("Do not write in the first person (no I, me, my).")
        if self.closing:
            words = {"offer": "End by offering further help.", "question": "End with a question to the reader.",
                     "summary": "End with a one-sentence summary (\"In summary, ...\").",
                     "plain": "End on the content itself, without offering more help or asking a question."}
            rules.append(" Or: ".join(words.get(c, c) for c in self.closing if c != "none"))
        if self.language:
            rules.append(f"Write in language '{self.language}'.")
        return "\n".join(f"- {r}" for r in rules)


def _yaml_lines(node, prefix: str = "") -> dict[str, int]:
    """Dotted/indexed field path -> 1-based line, for every key and list item of a YAML node."""
    import yaml

    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = f"{prefix}.{k.value}" if prefix else str(k.value)
            out[path] = k.start_mark.line + 1
            out.update(_yaml_lines(v, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            path = f"{prefix}[{i}]"
            out[path] = v.start_mark.line + 1
            out.update(_yaml_lines(v, path))
    return out


def shipped_specs() -> dict[str, _Path]:
    return {p.stem: p for p in sorted(SPEC_DIR.glob("*.yaml"))}


def resolve_spec(name_or_path: str) -> _Path:
    from ..errors import UserError

    p = _Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise UserError(f"{p}: spec file not found")
        return p
    found = shipped_specs()
    if name_or_path not in found:
        raise UserError(f"unknown spec '{name_or_path}' (shipped: {', '.join(found)}; or give a .yaml path)")
    return found[name_or_path]


def _one_of(value, allowed: tuple[str, ...]) -> tuple[str, ...] | str:
    """A tuple of allowed labels, or a problem string."""
    vals = [value] if isinstance(value, str) else value
    if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
        return f"expected one of {', '.join(allowed)} or a list of them, got {value!r}"
    bad = [v for v in vals if v not in allowed]
    if bad:
        return f"{', '.join(map(repr, bad))} not in {', '.join(allowed)}"
    return tuple(dict.fromkeys(vals))


def parse_spec(data: _Any, where: str = "spec", lines: dict[str, int] | None = None) -> ShapeSpec:
    """Build a :class:`ShapeSpec` from a mapping; every problem is a UserError ``file:line: field: problem``."""
    from ..errors import UserError

    lines = lines or {}

    def fail(field: str, problem: str):
        line = lines.get(field)
        if line is None:  # the closest enclosing field that has a line
            parent = field
            while line is None and ("." in parent or "[" in parent):
                parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", parent)
                line = lines.get(parent)
        loc = f"{where}:{line}" if line else where
        raise UserError(f"{loc}: {field}: {problem}")

    if not isinstance(data, dict):
        raise UserError(f"{where}:1: <spec>: expected a mapping with keys {', '.join(SPEC_KEYS)}")
    for key in data:
        if key not in SPEC_KEYS:
            fail(str(key), f"unknown spec key (allowed: {', '.join(SPEC_KEYS)})")
    name = data.get("name")
    if not isinstance(name, str) or not _SPEC_NAME.match(name):
        fail("name", f"required: lower-case letters, digits and '-', got {name!r}")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        fail("description", "expected a string")
    kw: dict[str, _Any] = {"name": name, "description": desc, "source": where}
    for key, allowed in (("opening", OPENINGS), ("closing", CLOSINGS)):
        if data.get(key) is not None:
            got = _one_of(data[key], allowed)
            if isinstance(got, str):
                fail(key, got)
            kw[key] = got
    if data.get("length") is not None:
        length = data["length"]
        if not isinstance(length, dict) or not length:
            fail("length", "expected a mapping with min_words and/or max_words")
        for k, v in length.items():
            if k not in LENGTH_KEYS:
                fail(f"length.{k}", f"unknown key (allowed: {', '.join(LENGTH_KEYS)})")
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                fail(f"length.{k}", f"expected a whole number >= 0, got {v!r}")
            kw[k] = v
        if kw.get("min_words") is not None and kw.get("max_words") is not None and kw["min_words"] > kw["max_words"]:
            fail("length.max_words", f"{kw['max_words']} is below min_words {kw['min_words']}")
    if data.get("structure") is not None:
        struct = data["structure"]
        if not isinstance(struct, dict):
            fail("structure", f"expected a mapping of {', '.join(STRUCTURE)} to {', '.join(STRUCTURE_VALUES)}")
        items = []
        for k, v in struct.items():
            if k not in STRUCTURE:
                fail(f"structure.{k}", f"unknown structure element (allowed: {', '.join(STRUCTURE)})")
            if v not in STRUCTURE_VALUES:
                fail(f"structure.{k}", f"expected {', '.join(STRUCTURE_VALUES)}, got {v!r}")
            items.append((k, v))
        kw["structure"] = tuple(items)
    if data.get("register") is not None:
        if data["register"] not in REGISTERS:
            fail("register", f"expected {', '.join(REGISTERS)}, got {data['register']!r}")
        kw["register"] = data["register"]
    if data.get("first_person") is not None:
        if not isinstance(data["first_person"], bool):
            fail("first_person", f"expected true (allowed) or false (not allowed), got {data['first_person']!r}")
        kw["first_person"] = data["first_person"]
    if data.get("language") is not None:
        lang = data["language"]
        if not isinstance(lang, str) or not re.fullmatch(r"[a-z]{2,3}", lang):
            fail("language", f"expected an ISO 639-1 code such as 'en', got {lang!r}")
        kw["language"] = lang
    if data.get("examples") is not None:
        ex = data["examples"]
        if not isinstance(ex, list):
            fail("examples", "expected a list of {instruction, original, restyled}")
        out = []
        for i, e in enumerate(ex):
            if not isinstance(e, dict):
                fail(f"examples[{i}]", "expected a mapping with instruction, original, restyled")
            for k in e:
                if k not in EXAMPLE_KEYS:
                    fail(f"examples[{i}].{k}", f"unknown key (allowed: {', '.join(EXAMPLE_KEYS)})")
            for k in EXAMPLE_KEYS:
                if not isinstance(e.get(k), str) or not e[k].strip():
                    fail(f"examples[{i}].{k}", "required non-empty string")
            out.append({k: e[k].strip() for k in EXAMPLE_KEYS})
        kw["examples"] = tuple(out)
    spec = ShapeSpec(**kw)
    if not spec.criteria():
        fail("name", "spec checks nothing: give at least one of opening, length, structure "
                     "(required/forbidden), register, first_person: false, closing, language")
    return spec


def load_spec(name_or_path: str) -> ShapeSpec:
    """A shipped spec by name (``sharpset/specs/<name>.yaml``) or a YAML file; errors name file:line: field."""
    import yaml

    from ..errors import UserError

    path = resolve_spec(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserError(f"{path}:{mark.line + 1 if mark else 1}: <yaml>: {getattr(e, 'problem', e)}") from None
    return parse_spec(data, str(path), _yaml_lines(node) if node is not None else {})


def conformance(spec: ShapeSpec, text: str, *, prompt: str | None = None,
                features: dict | None = None) -> dict[str, _Any]:
    """Per-criterion pass/fail and the total for one response.

    Returns ``{"conf_<criterion>": bool, ..., "conformance_passed": k, "conformance_total": m,
    "conformance": k / m}`` over ``spec.criteria()`` (m >= 1 by construction). ``features`` may
    pass precomputed :func:`shape_features` of ``text`` (with the same ``prompt``).
    """
    f = features if features is not None else shape_features(text, prompt=prompt)
    crit = spec.criteria()
    struct = dict(spec.structure)
    out: dict[str, _Any] = {}
    reg = register_features(text) if "register" in crit else None
    for c in crit:
        if c == "opening":
            ok = f["shape_opening"] in spec.opening
        elif c == "length":
            w = f["shape_words"]
            ok = (spec.min_words is None or w >= spec.min_words) and (spec.max_words is None or w <= spec.max_words)
        elif c in STRUCTURE:
            count = f[STRUCTURE[c]]
            ok = count >= 1 if struct[c] == "required" else count == 0
        elif c == "register":
            if spec.register == "formal":
                ok = reg["contractions"] == 0 and reg["exclamations"] == 0
            else:
                ok = reg["second_person"] > 0 or reg["contractions"] > 0
        elif c == "first_person":
            ok = not f["shape_has_first_person"]
        elif c == "closing":
            ok = f["shape_closing"] in spec.closing
        else:  # language
            ok = f["shape_language"] == spec.language
        out[f"conf_{c}"] = bool(ok)
    passed = sum(out.values())
    out.update(conformance_passed=passed, conformance_total=len(crit),
               conformance=round(passed / len(crit), 6))
    return out
