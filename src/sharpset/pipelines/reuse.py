"""Finished stage runs found by what they computed, not where (issue 23: "the audit reuses sweep and
quickstart runs where their keys match rather than recomputing").

A run folder's key (:func:`sharpset.run.run_key`) holds the paths of its inputs, so the same training
in a sweep's cell folder is a different key from the audit's. Its ``content_key``
(:func:`sharpset.run.content_key`, in every manifest written since) replaces each path by what it
holds: data by content hash, a model by fingerprint, a run folder by its outputs. :class:`Reuse`
indexes the finished runs under some folders by that key, and :func:`sharpset.pipelines.quickstart.stage_run`
asks it before running a step.

Safe by construction: only a run whose manifest says ``complete``, whose stored content key equals
the step's, and whose outputs are all still there is reused; nothing in it is written (it is read
as :meth:`sharpset.run.RunDir.view`). Runs written before content keys existed are never found.
The choice is remembered in the pipeline's folder (``reused.json``), so a later call picks the same
folder and the steps after it keep their keys: keyed by the step's folder relative to the pipeline's
(``cells/random-n8-s0/train`` in a sweep, where many steps share a name), a step's own name where it
lies elsewhere -- for the audit's steps, children of its folder, the two are the same.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..dataio import write_json
from ..run import RunDir, content_key, finished_runs, input_hashes, read_manifest
from ..run import search_dirs  # noqa: F401 -- in run.py since eval's answer donors use it; pipelines import it here

RECORD = "reused.json"


def reuse_problem(reuse: Any, pipeline: str) -> str | None:
    """What is wrong with a pipeline's ``reuse`` field value (a list of folders), or None."""
    if isinstance(reuse, list) and all(isinstance(d, str) and d for d in reuse):
        return None
    return f"give a list of folders (auto = the folder the {pipeline}'s run folder sits in; [] = none)"


def relative(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies under it (a pipeline's own run), else as given
    (a run read from elsewhere)."""
    p, r = Path(path).resolve(), Path(root).resolve()
    return str(p.relative_to(r)) if p.is_relative_to(r) else str(path)


def finished(folder: Path, key: str | None = None) -> dict[str, Any] | None:
    """``folder``'s manifest when it is a finished run (with ``content_key`` == ``key`` where given)
    whose outputs are all still there; else None."""
    m = read_manifest(folder)
    if not m or m.get("status") != "complete" or (key is not None and m.get("content_key") != key):
        return None
    if not all((folder / o).exists() for o in (m.get("outputs") or {})):
        return None
    return m


class Reuse:
    """Finished runs under ``dirs`` (:func:`sharpset.run.finished_runs`, once, on the first miss), by content key.
    ``own``: the pipeline's folder, where the choices are remembered (``reused.json``)."""

    def __init__(self, dirs: list[str | Path], own: Path):
        self.dirs = [Path(d) for d in dirs]
        self.own = Path(own)
        self._index: dict[str, Path] | None = None
        self.used: list[dict[str, str]] = []
        m = {}
        with suppress(ValueError, OSError):
            m = json.loads((self.own / RECORD).read_text(encoding="utf-8"))
        self._chosen: dict[str, str] = m if isinstance(m, dict) else {}

    def index(self) -> dict[str, Path]:
        if self._index is None:
            self._index = {}
            for here, m in finished_runs(self.dirs):
                if m.get("content_key"):
                    self._index.setdefault(m["content_key"], here)
        return self._index

    def step(self, out: Path) -> str:
        """The name a step is remembered by: its folder relative to ``own`` where it lies under it, else
        its folder name (what ``reused.json`` was keyed by before sweeps reused runs)."""
        p, own = Path(out).resolve(), self.own.resolve()
        return p.relative_to(own).as_posix() if p.is_relative_to(own) and p != own else Path(out).name

    def chosen(self, out: Path) -> Path | None:
        """The finished run an earlier call read for step ``out`` (``reused.json``), if it is still there."""
        hit = self._chosen.get(self.step(out))
        return Path(hit) if hit and finished(Path(hit)) is not None else None

    def find(self, out: Path, stage: str, version: int, config: Any, inputs: list[str]) -> RunDir | None:
        """A finished run doing what the step ``out`` would do, from another folder; None where ``out``
        has finished itself (its own cache hit) or nothing matches."""
        if finished(out):
            return None
        key = content_key(stage, version, config, input_hashes(config, inputs))
        step = self.step(out)
        for hit in (self._chosen.get(step), self.index().get(key)):
            if hit and Path(hit).resolve() != out.resolve() and finished(Path(hit), key):
                self.used.append({"step": step, "stage": stage, "run": str(hit)})
                self._chosen[step] = str(hit)
                write_json(self.own / RECORD, self._chosen)
                return RunDir.view(hit, config)
        return None
