"""The stage protocol, and what every stage that runs a model shares.

A stage is one module (or package) under ``sharpset.stages`` (and ``sharpset.evaluate`` for
``eval``) that defines:

- ``STAGE``: its name (run folders, seeds and provenance are keyed by it);
- ``VERSION``: the transform version, bumped whenever a change alters what the stage writes, so an
  old run folder is never served for a new transform (``tests/test_stage_versions.py`` pins each stage's
  (STAGE, VERSION, config defaults): changing a default without bumping VERSION fails there);
- a config dataclass whose fields are the CLI flags, the ``--config`` YAML keys and the recipe keys,
  with an optional ``check() -> [(field, problem)]``;
- ``run(cfg, run: RunDir, log=print) -> metrics``: reads its input, logs each sample to the run's
  per-sample log as it is made (so a killed run resumes), writes its outputs atomically, calls
  ``run.finish``;
- optionally ``show(output_path, n) -> str``: n rendered output rows for a person to read.

Stages import shared code (this module, records, dataio, run, stats, embed, judge, invariance,
text/, models/, engine/, train/) and never each other; ``tests/test_layout.py`` enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Subject:
    """A loaded chat model: weights, tokenizer and its chat profile (render + tokenize in one place)."""

    name: str
    model: Any
    tok: Any
    profile: Any

    def info(self) -> dict[str, Any]:
        """What a manifest records of it."""
        p = self.profile
        return {"name": self.name, "chat_family": p.family, "chat_template_hash": p.template_hash,
                "pre_query": p.pre_query}

    def engine(self, batch_size: int, name: str = "transformers", **kwargs: Any):
        """A generation engine over this model (see ``sharpset.engine``)."""
        from .engine import get_engine

        return get_engine(name, model=self.model, tokenizer=self.tok, batch_size=batch_size, **kwargs)

    def stop_ids(self) -> tuple[int, ...]:
        """Token ids that end an assistant turn."""
        from .models.profiles import stop_token_ids

        return tuple(stop_token_ids(self.profile, self.tok))


def load_subject(name: str, *, log: Callable[[str], None] = print, run: Any = None, role: str | None = None,
                 **load_kwargs: Any) -> Subject:
    """Load a model by embedded name, local folder or hub id, with its chat profile.

    With ``run`` and ``role`` given, the model is recorded in the run's manifest under ``role``.
    """
    from .models import load_model
    from .models.profiles import profile_for
    from .models.registry import chat_family

    model, tok = load_model(name, log=log, **load_kwargs)
    subject = Subject(name, model, tok, profile_for(tok, chat_family(name)))
    if run is not None and role:
        run.record_model(role, subject.info())
    return subject
