"""Format-vs-task control sets (Kung & Peng, arXiv:2305.11383; METHODS §3), built by
``sharpset curate --control simplified|delusive|empty`` from a selection, and the label baselines
(random guess, label prior, majority) of every closed-label set. The definitions are in
``sharpset.curate``'s module docstring, section "Controls".
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ...errors import UserError
from ...records import canonical_json, validate, with_id
from ...records import response_of
from ...run import derive_seed

if TYPE_CHECKING:
    from . import CurateConfig

STAGE = "curate"  # the stage that builds controls: their seeds and provenance are keyed under it
CONTROLS = ("simplified", "delusive", "empty")

def label_spaces(rows: Sequence[dict], cfg: CurateConfig) -> dict[str, list[str]]:
    """Closed label space per task (``task_column``), explicit or detected; open tasks are absent."""
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(str(r.get(cfg.task_column, "")), []).append(response_of(r).strip())
    if cfg.labels:
        space = sorted({str(l).strip() for l in cfg.labels})
        return {t: space for t in groups}
    out = {}
    for t, answers in groups.items():
        distinct = sorted(set(answers))
        if 2 <= len(distinct) <= cfg.max_labels and len(answers) >= 2 * len(distinct):
            out[t] = distinct
    return out


def label_baselines(rows: Sequence[dict], spaces: dict[str, list[str]], task_column: str) -> dict[str, Any] | None:
    """Random-guess, label-prior and majority accuracy of a closed-label dataset (Kung & Peng §3)."""
    per = {}
    for t, space in spaces.items():
        answers = [response_of(r).strip() for r in rows if str(r.get(task_column, "")) == t]
        answers = [a for a in answers if a in space]
        if not answers:
            continue
        p = np.array([answers.count(l) for l in space], dtype=np.float64) / len(answers)
        per[t] = {"labels": space, "n": len(answers), "random_guess": round(1 / len(space), 6),
                  "label_prior": round(float((p ** 2).sum()), 6), "majority": round(float(p.max()), 6)}
    if not per:
        return None
    mean = lambda k: round(float(np.mean([v[k] for v in per.values()])), 6)
    return {"tasks": per, "random_guess": mean("random_guess"), "label_prior": mean("label_prior"),
            "majority": mean("majority"), "averaged": "mean over tasks"}


def _derangement(labels: list[str], seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    while True:
        perm = labels[:]
        rng.shuffle(perm)
        if all(a != b for a, b in zip(labels, perm)):
            return dict(zip(labels, perm))


def output_space_text(response: str) -> str:
    """Open rows' simplified instruction: only the answer's form (length, structure)."""
    from ...text.shape import shape_features

    f = shape_features(response)
    words = max(10, int(round(f["shape_words"] / 10.0)) * 10)
    parts = [f"Answer in about {words} words"]
    if f["shape_bullets"]:
        parts.append("as a bulleted list")
    if f["shape_numbered_items"]:
        parts.append("as a numbered list")
    if f["shape_headings"]:
        parts.append("with headings")
    if f["shape_code_blocks"]:
        parts.append("including a code block")
    return ", ".join(parts) + "."


def build_control(rows: Sequence[dict], kind: str, cfg: CurateConfig) -> tuple[list[dict], dict[str, Any]]:
    """Control rows from selected rows, and an info dict (counts, label spaces, baselines)."""
    if kind not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}")
    rows = [with_id(r, "sft") for r in rows]
    spaces = label_spaces(rows, cfg)
    maps = {t: _derangement(space, derive_seed(cfg.seed, STAGE, f"delusive:{t}")) for t, space in spaces.items()}
    out, skipped = [], 0
    for r in rows:
        task = str(r.get(cfg.task_column, ""))
        answer = response_of(r).strip()
        closed = task in spaces and answer in spaces[task]
        inp = r.get("input") if isinstance(r.get("input"), str) else None
        msgs = [dict(m) for m in r["messages"]]
        last_user = max(i for i, m in enumerate(msgs) if m["role"] == "user")
        last_asst = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        if kind == "delusive":
            if not closed:
                skipped += 1
                continue
            msgs[last_asst]["content"] = maps[task][answer]
        else:
            if kind == "simplified":
                space = (f"Answer with one of: {', '.join(spaces[task])}." if closed
                         else output_space_text(msgs[last_asst]["content"]))
                msgs[last_user]["content"] = f"{inp}\n\n{space}" if inp else space
            else:
                msgs[last_user]["content"] = inp or ""
            msgs = [m for m in msgs if m["role"] != "system"]
        # one control row per source row, and two sources can give the same conversation (a simplified
        # or empty control drops the instruction): the id hashes the content with its source, so
        # ids stay unique and the set reads back whole (read_records refuses repeated ids, issue 10)
        rid = hashlib.sha256(canonical_json({"messages": msgs, "source_id": r["id"]}).encode("utf-8")).hexdigest()[:16]
        row = {"id": rid, "messages": msgs, "control": kind, "source_id": r["id"]}
        if cfg.task_column in r:
            row[cfg.task_column] = r[cfg.task_column]
        if closed:
            row["label"] = msgs[-1]["content"] if kind == "delusive" else answer
        row["provenance"] = {"stage": STAGE, "control": kind, "source_id": r["id"],
                             "paper": "Kung & Peng, arXiv:2305.11383"}
        problems = validate(row, "sft")
        if problems:  # a bug here, not bad input
            raise AssertionError(f"control row from {r['id']} is invalid: {problems}")
        out.append(row)
    if kind == "delusive" and not out:
        raise UserError("control delusive: the selection has no closed-label rows (answers from a known label "
                        "set); give --labels or select closed-label data")
    # the label space is kept exactly: recomputed on the control rows, every task that still has
    # closed-label rows has the same label set as its source
    after = label_spaces(out, cfg)
    kept_tasks = {str(r.get(cfg.task_column, "")) for r in out if "label" in r}
    if any(after.get(t) != spaces[t] for t in kept_tasks):
        raise AssertionError(f"control {kind} changed a label space: {spaces} -> {after}")
    info = {"kind": kind, "rows": len(out), "left_out_not_closed_label": skipped,
            "closed_label_rows": sum(1 for r in out if "label" in r),
            "label_spaces": spaces, "label_baselines": label_baselines(out, spaces, cfg.task_column),
            "source_label_baselines": label_baselines(rows, spaces, cfg.task_column)}
    if kind == "delusive":
        info["mapping"] = maps
    return out, info
