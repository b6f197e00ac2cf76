"""Shipped evaluation data (issue 12): JSONL files written by ``python -m sharpset.evaluate.data.build``.

See README.md in this folder for the schema of each file, the id and split rules, and the licence.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
# Every eval run's key hashes these files together (evaluate.stage.EvalConfig.key_inputs): the files as they
# were when that rule was made. A file added since is in SUITE_FILES, hashed only into the key of a run whose
# suites read it -- so adding one (speech_acts_benign, issue 23) leaves every other eval run's key as it was.
COMMON_FILES = ("format", "format_unseen", "shape", "speech_acts", "speech_acts_labelled", "knowledge_mc",
                "knowledge_qa", "dimensions")
SUITE_FILES = {"speech_acts": ("speech_acts_benign",)}
FILES = COMMON_FILES + tuple(f for fs in SUITE_FILES.values() for f in fs)


def path(name: str) -> Path:
    """The path of a shipped file by its stem (``"format"``) or file name (``"format.jsonl"``)."""
    stem = name[:-6] if name.endswith(".jsonl") else name
    if stem not in FILES:
        raise ValueError(f"no shipped evaluation file {name!r}; known: {', '.join(FILES)}")
    return DATA_DIR / f"{stem}.jsonl"


def load(name: str, split: str | None = None) -> list[dict]:
    """Rows of a shipped file, optionally only one split (``"dev"`` or ``"test"``).

    A bad line raises ``ValueError`` naming the file and line.
    """
    if split not in (None, "dev", "test"):
        raise ValueError(f"split must be 'dev', 'test' or None, not {split!r}")
    p = path(name)
    rows = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{lineno}: not valid JSON: {e.msg}") from None
            if not isinstance(row, dict) or "id" not in row or row.get("split") not in ("dev", "test"):
                raise ValueError(f"{p}:{lineno}: field id/split: every row needs an id and a split dev|test")
            if split is None or row["split"] == split:
                rows.append(row)
    return rows
