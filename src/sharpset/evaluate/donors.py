"""Answers a finished eval run already generated, copied instead of generated again.

A suite's version is bumped whenever its scoring changes (a7c5b08: the echo flag, health 2->3, format
3->4), and with it the eval run key: no cached run is served, and every answer was generated again --
tens of minutes per model on a CPU, for byte-identical text. A greedy answer depends on the model, the
engine and its options, the encoded prompt, max_new_tokens and the stop rules, never on the scoring.

So each ``ctx.generate`` call records its *generation key*
(:meth:`sharpset.evaluate.suite.Context.generation_key`) in the run's manifest (``generation_keys``:
``gen|<model index>|<suite>`` -> key). A later run first looks, among the finished eval runs under its
``reuse`` folders (:func:`sharpset.run.finished_runs`, where the pipelines look for whole runs), for
one whose key for the call equals its own, and copies that run's logged answer to an item where the
prompt ids it logged equal those encoded now (so a changed item is generated again, never copied).
A copied answer is logged in this run as if generated, with ``reused_from`` (the donor's folder)
beside it: a resumed run serves it as its own, and the summary counts answers per donor. Runs
written before generation keys existed are no donors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..run import RunDir, finished_runs


class Donors:
    """Finished eval runs under ``dirs`` by generation key (found once, on the first call); ``own``,
    this run's folder, is never its own donor."""

    def __init__(self, dirs: list[str | Path], own: Path):
        self.dirs = [Path(d) for d in dirs]
        self.own = Path(own).resolve()
        self._index: dict[str, list[tuple[Path, str]]] | None = None
        self._logs: dict[Path, dict[str, dict]] = {}

    def index(self) -> dict[str, list[tuple[Path, str]]]:
        """generation key -> [(donor folder, ``gen|<model index>|<suite>``)], in search order."""
        if self._index is None:
            self._index = {}
            for here, m in finished_runs(self.dirs):
                keys = m.get("generation_keys")
                if m.get("stage") != "eval" or not isinstance(keys, dict) or here.resolve() == self.own:
                    continue
                for prefix, key in keys.items():
                    self._index.setdefault(str(key), []).append((here, str(prefix)))
        return self._index

    def find(self, key: str, item: str, prompt_ids: list[int]) -> tuple[Path, dict[str, Any]] | None:
        """A donor's logged answer to ``item`` under generation key ``key`` whose prompt ids equal
        ``prompt_ids``, as (donor folder, the record without its log key and earlier provenance)."""
        for folder, prefix in self.index().get(key, ()):
            if folder not in self._logs:
                try:
                    self._logs[folder] = RunDir.view(folder).done_samples()
                except (OSError, ValueError):  # a damaged donor log (RecordError): no donor, not this run's error
                    self._logs[folder] = {}
            rec = self._logs[folder].get(f"{prefix}|{item}")
            if rec is not None and rec.get("prompt_ids") == list(prompt_ids):
                return folder, {k: v for k, v in rec.items() if k not in ("key", "reused_from")}
        return None
