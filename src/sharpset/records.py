"""Record schema: TRL-format rows plus invariance pairs, validation with file:line errors, content ids.

Rows are plain dicts (a convention, as in TRL -- no class hierarchy). Three kinds:

- ``sft``: ``{"id", "messages": [{"role", "content"}, ...], <flat scalar tag columns>, "provenance": {...}}``
- ``pair`` (invariance pair): ``{"id", "clean": [msgs], "wrapped": [msgs], "family", "wrapper",
  "target", "split"}`` -- ``clean``/``wrapped`` are prompts (end with a user turn), ``split`` is
  ``train`` or ``heldout`` (split by *family*).
- ``prompt_completion`` (TRL): ``{"prompt", "completion"}``, both strings or both message lists.

Everything here is pure. Reading and writing files lives in :mod:`sharpset.dataio`; its public names
(``read_records``, ``write_records``, ...) are also reachable from this module, lazily, so
``from sharpset.records import read_records`` works too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

KINDS = ("sft", "pair", "prompt_completion")
ROLES = ("system", "user", "assistant")
SPLITS = ("train", "heldout")

# The fields that define a row's content, hence its id. Tags, provenance, the id itself and (for
# pairs) the model-produced `target` and the derived `split` are not content: re-tagging a row or
# regenerating its target must not change its id (DESIGN.md: "ids are content hashes").
CONTENT_FIELDS = {
    "sft": ("messages",),
    "pair": ("clean", "wrapped", "family", "wrapper"),
    "prompt_completion": ("prompt", "completion"),
}
# Fields with a schema of their own; every other key is a flat tag column and must be a scalar.
# IFEval's own fields (``instruction_id_list``, ``kwargs``: the verifiable constraints a row's
# prompt states, issue 20) may ride on sft and prompt/completion rows, so a `sharpset constrain`
# row is also an IFEval-format item.
_CONSTRAINT_FIELDS = {"instruction_id_list", "kwargs"}
_KNOWN_FIELDS = {
    "sft": {"id", "provenance", "messages"} | _CONSTRAINT_FIELDS,
    "pair": {"id", "provenance", "clean", "wrapped", "family", "wrapper", "target", "split"},
    "prompt_completion": {"id", "provenance", "prompt", "completion"} | _CONSTRAINT_FIELDS,
}


class RecordError(ValueError):
    """A bad input row: ``path:line: field: problem``.

    ``line`` is 1-based (the physical line in JSONL, the row number in parquet / datasets folders);
    ``None`` for a problem with the file as a whole (then the text is ``path: field: problem``).
    ``field`` is dotted/indexed (``messages[2].role``) or a pseudo-field: ``<json>`` (not parseable),
    ``<row>`` (not an object / unknown kind), ``<file>`` (whole-file problems).
    """

    def __init__(self, path, line: int | None, field: str, problem: str, row=None):
        self.path, self.line, self.field, self.problem, self.row = str(path), line, field, problem, row
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.problem}"

    def __reduce__(self):  # picklable across processes (Ray / multiprocessing)
        return (RecordError, (self.path, self.line, self.field, self.problem, self.row))


@dataclass
class Counts:
    """Row accounting for one stage: every row read is written, deliberately dropped, or rejected."""

    read: int = 0
    written: int = 0
    dropped: int = 0
    rejected: int = 0

    def check(self) -> "Counts":
        if self.read != self.written + self.dropped + self.rejected:
            raise AssertionError(
                f"row counts do not add up: read {self.read} != written {self.written}"
                f" + dropped {self.dropped} + rejected {self.rejected}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def type_name(value) -> str:
    """JSON name of a value's type, for error messages (``array`` rather than ``list``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def detect_kind(row) -> str | None:
    """The record kind implied by a row's keys, or ``None`` when no kind fits.

    ``clean``/``wrapped`` -> pair; ``messages`` -> sft; ``prompt`` (with or without ``completion``)
    -> prompt_completion. Preference rows (``chosen``/``rejected``) are not supported.
    """
    if not isinstance(row, dict):
        return None
    if "clean" in row or "wrapped" in row:
        return "pair"
    if "messages" in row:
        return "sft"
    if ("prompt" in row or "completion" in row) and "chosen" not in row and "rejected" not in row:
        return "prompt_completion"
    return None


def _check_messages(msgs, field: str, *, ends: tuple[str, ...], first: str = "user",
                    allow_system: bool = True) -> list[tuple[str, str]]:
    """Problems with one message list; ``ends`` are the roles the last message may have.

    Per-message shape problems are all reported; the turn-order check then reports only the
    first break (one misplaced turn would otherwise flag every later one).
    """
    if not isinstance(msgs, list):
        return [(field, f"expected a list of messages, got {type_name(msgs)}")]
    if not msgs:
        return [(field, "empty list; need at least one message")]
    problems = []
    for i, m in enumerate(msgs):
        at = f"{field}[{i}]"
        if not isinstance(m, dict):
            problems.append((at, f"expected an object with role and content, got {type_name(m)}"))
            continue
        if "role" not in m:
            problems.append((f"{at}.role", "missing"))
        elif not isinstance(m["role"], str) or m["role"] not in ROLES:
            problems.append((f"{at}.role", f"{m['role']!r} is not a valid role ({', '.join(ROLES)})"))
        if "content" not in m:
            problems.append((f"{at}.content", "missing"))
        elif not isinstance(m["content"], str):
            problems.append((f"{at}.content", f"expected a string, got {type_name(m['content'])}"))
        for key in m:
            if key not in ("role", "content"):
                problems.append((f"{at}.{key}", "unexpected key (a message holds only role and content)"))
    if problems:
        return problems
    start = 1 if allow_system and msgs[0]["role"] == "system" else 0
    other = {"user": "assistant", "assistant": "user"}
    expected = first
    for i in range(start, len(msgs)):
        role = msgs[i]["role"]
        if role == "system":
            why = "only allowed as the first message" if allow_system else "not allowed here"
            return [(f"{field}[{i}].role", f"system message is {why}")]
        if role != expected:
            return [(f"{field}[{i}].role",
                     f"expected {expected!r} (turns alternate user/assistant), got {role!r}")]
        expected = other[expected]
    last = msgs[-1]["role"]
    if last not in ends:
        if ends == ("assistant",) and field == "messages":
            need = "'assistant' (a training example ends with the response)"
        elif ends == ("user",):
            need = "'user' (a prompt ends with the user turn)"
        else:
            need = " or ".join(repr(r) for r in ends)
        return [(f"{field}[{len(msgs) - 1}].role", f"last message must be {need}, got {last!r}")]
    return []


def _check_text(row: dict, field: str) -> list[tuple[str, str]]:
    if field not in row:
        return [(field, "missing")]
    value = row[field]
    if not isinstance(value, str):
        return [(field, f"expected a non-empty string, got {type_name(value)}")]
    if not value.strip():
        return [(field, "empty string")]
    return []


def _check_prompt_completion(row: dict, require_response: bool) -> list[tuple[str, str]]:
    if "prompt" not in row:
        return [("prompt", "missing")]
    prompt = row["prompt"]
    if isinstance(prompt, str):
        problems = []
    elif isinstance(prompt, list):
        problems = _check_messages(prompt, "prompt", ends=("user",))
    else:
        return [("prompt", f"expected a string or a list of messages, got {type_name(prompt)}")]
    if "completion" not in row:
        if require_response:
            problems.append(("completion", "missing"))
        return problems
    completion = row["completion"]
    if isinstance(prompt, str):
        if not isinstance(completion, str):
            problems.append(("completion", f"expected a string like prompt, got {type_name(completion)}"))
    elif not isinstance(completion, list):
        problems.append(("completion", f"expected a list of messages like prompt, got {type_name(completion)}"))
    else:  # the completion continues the conversation: assistant first, then alternating
        problems += _check_messages(completion, "completion", ends=("assistant",), first="assistant",
                                    allow_system=False)
    return problems


def _check_constraint_fields(row: dict) -> list[tuple[str, str]]:
    """The shape of IFEval's fields: a list of ids and one kwargs object (or null) per id. Whether
    the ids and kwargs are ones a checker knows is :mod:`sharpset.constraints`' business."""
    ids, kws = row.get("instruction_id_list"), row.get("kwargs")
    if "instruction_id_list" not in row:
        return [("instruction_id_list", "missing (kwargs is given)")]
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        return [("instruction_id_list", f"expected an array of non-empty strings, got {type_name(ids)}")]
    if kws is None and "kwargs" not in row:
        return [("kwargs", "missing (instruction_id_list is given)")]
    if not isinstance(kws, list):
        return [("kwargs", f"expected an array of objects, got {type_name(kws)}")]
    if len(kws) != len(ids):
        return [("kwargs", f"has {len(kws)} entries for {len(ids)} instruction ids")]
    return [(f"kwargs[{i}]", f"expected an object or null, got {type_name(k)}")
            for i, k in enumerate(kws) if not (k is None or isinstance(k, dict))][:1]


def validate(row, kind: str | None = None, *, require_response: bool = True,
             strict_ids: bool = False) -> list[tuple[str, str]]:
    """All problems with one row as ``[(field, problem)]``; empty when the row is valid. Pure.

    ``kind=None`` detects it from the keys. ``require_response=False`` accepts prompt-only rows
    (sft messages ending with a user turn, prompt_completion without completion). With
    ``strict_ids`` a present ``id`` must equal :func:`content_id`.
    """
    if not isinstance(row, dict):
        return [("<row>", f"expected a JSON object, got {type_name(row)}")]
    if kind is None:
        kind = detect_kind(row)
        if kind is None:
            return [("<row>", "cannot tell the record kind: expected 'messages' (sft), "
                              "'clean'/'wrapped' (pair) or 'prompt'/'completion' (prompt_completion)")]
    elif kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(KINDS)}")

    problems: list[tuple[str, str]] = []
    if "id" in row and (not isinstance(row["id"], str) or not row["id"]):
        problems.append(("id", f"expected a non-empty string, got {type_name(row['id'])}"))
    if kind == "sft":
        if "messages" not in row:
            problems.append(("messages", "missing"))
        else:
            ends = ("assistant",) if require_response else ("user", "assistant")
            problems += _check_messages(row["messages"], "messages", ends=ends)
    elif kind == "pair":
        for side in ("clean", "wrapped"):
            if side not in row:
                problems.append((side, "missing"))
            else:
                problems += _check_messages(row[side], side, ends=("user",))
        for field in ("family", "wrapper", "target"):
            problems += _check_text(row, field)
        if "split" not in row:
            problems.append(("split", "missing"))
        elif row["split"] not in SPLITS:
            problems.append(("split", f"{row['split']!r} is not one of {', '.join(SPLITS)}"))
    else:
        problems += _check_prompt_completion(row, require_response)

    if kind != "pair" and ("instruction_id_list" in row or "kwargs" in row):
        problems += _check_constraint_fields(row)
    if row.get("provenance") is not None and not isinstance(row["provenance"], dict):
        problems.append(("provenance", f"expected an object, got {type_name(row['provenance'])}"))
    for key, value in row.items():
        if key not in _KNOWN_FIELDS[kind] and not (value is None or isinstance(value, (str, int, float, bool))):
            problems.append((key, f"tag columns must be scalars (string, number, boolean or null), "
                                  f"got {type_name(value)}"))
    if strict_ids and not problems and "id" in row:
        expected = content_id(row, kind)
        if row["id"] != expected:
            problems.append(("id", f"does not match content hash (expected {expected})"))
    return problems


def conversation(row: dict) -> list[dict]:
    """A row's conversation as messages, whatever its kind (a pair: its clean side + its target;
    prompt/completion: the prompt then the completion)."""
    kind = detect_kind(row)
    if kind == "sft":
        return list(row["messages"])
    if kind == "pair":
        msgs = list(row.get("clean") or [])
        if isinstance(row.get("target"), str):
            msgs.append({"role": "assistant", "content": row["target"]})
        return msgs
    if kind == "prompt_completion":
        msgs = []
        for key, role in (("prompt", "user"), ("completion", "assistant")):
            value = row.get(key)
            if isinstance(value, str):
                msgs.append({"role": role, "content": value})
            elif isinstance(value, list):
                msgs.extend(value)
        return msgs
    raise ValueError("cannot tell the record kind of a row (no messages, clean/wrapped or prompt)")


def instruction_of(row: dict) -> str:
    """A row's instruction: the user turn its answer replies to -- the last user message when the
    conversation ends awaiting an answer, else the last user message before the final assistant
    message ("" if none). The one definition every stage uses (tag, dedup, curate, restyle, eval)."""
    msgs = conversation(row)
    end = len(msgs)
    if msgs and msgs[-1].get("role") == "assistant":
        end -= 1
    return next((m["content"] for m in reversed(msgs[:end]) if m.get("role") == "user"), "")


def response_of(row: dict) -> str:
    """A row's answer: its last assistant message ("" if none)."""
    return next((m["content"] for m in reversed(conversation(row)) if m.get("role") == "assistant"), "")


# older names, kept for callers of the first release
last_user_text = instruction_of
last_assistant_text = response_of


def canonical_json(value, *, default=None) -> str:
    """Key-order-independent, whitespace-free JSON: the text content ids and run keys hash.

    ``default`` (e.g. ``str``) serialises values JSON cannot hold; content ids pass none, so a row
    that is not plain JSON cannot get an id."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=default)


def content_id(row: dict, kind: str | None = None) -> str:
    """``sha256(canonical_json({f: row[f] for f in CONTENT_FIELDS[kind] if f in row}))[:16]``.

    Only content fields count (messages; clean+wrapped+family+wrapper; prompt+completion), so tags,
    provenance, ``id``, a pair's ``target``/``split`` and key order never change it.
    """
    kind = kind or detect_kind(row)
    if kind not in CONTENT_FIELDS:
        raise ValueError(f"cannot compute a content id: unknown record kind {kind!r}")
    content = {f: row[f] for f in CONTENT_FIELDS[kind] if f in row}
    if not content:
        raise ValueError(f"cannot compute a content id: row has none of {', '.join(CONTENT_FIELDS[kind])}")
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()[:16]


def with_id(row: dict, kind: str | None = None) -> dict:
    """A copy of ``row`` with ``id`` set to :func:`content_id` when missing (placed first).

    A present id is kept as is; ``validate(..., strict_ids=True)`` is what flags a stale one.
    """
    if row.get("id"):
        return dict(row)
    rest = {k: v for k, v in row.items() if k != "id"}
    return {"id": content_id(row, kind), **rest}


# Lazy re-export of the I/O names (dataio imports this module, so no eager import here).
_IO_NAMES = {"ReadResult", "read_records", "write_records", "write_rejected", "append_jsonl",
             "iter_jsonl"}


def __getattr__(name):
    if name in _IO_NAMES:
        from . import dataio
        return getattr(dataio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
