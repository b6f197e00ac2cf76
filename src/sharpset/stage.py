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
    from .errors import UserError
    from .models import load_model
    from .models.profiles import ProfileError, profile_for
    from .models.registry import chat_family

    model, tok = load_model(name, log=log, **load_kwargs)
    try:
        profile = profile_for(tok, chat_family(name))
    except ProfileError as e:  # a base model without a template, or one no profile reproduces
        why = str(e).splitlines()[0]
        if "no chat_template" in why:
            why = ("the tokenizer has no chat template (a base model?); use a chat model, or a model "
                   "folder whose tokenizer_config.json carries a chat_template")
        raise UserError(f"{getattr(tok, 'name_or_path', None) or name}: chat_template: {why}") from None
    subject = Subject(name, model, tok, profile)
    if run is not None and role:
        run.record_model(role, subject.info())
    return subject


def prompt_room(model: Any, max_new_tokens: int) -> int | None:
    """How many prompt tokens fit in the model's context with ``max_new_tokens`` still to come
    (``max_position_embeddings - max_new_tokens``); None when the model declares no limit."""
    ctx = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return None if not ctx else ctx - max_new_tokens
