"""The stage protocol, and what every stage that runs a model shares.

A stage is one module (or package) under ``sharpset.stages`` (and ``sharpset.evaluate`` for
``eval``) that defines:

- ``STAGE``: its name (run folders, seeds and provenance are keyed by it);
- ``VERSION``: the transform version, bumped whenever a change alters what the stage writes, so an
  old run folder is never served for a new transform (``tests/test_stage_versions.py`` pins each stage's
  (STAGE, VERSION, config defaults): changing a default without bumping VERSION fails there);
- a config dataclass whose fields are the CLI flags, the ``--config`` YAML keys and the recipe keys,
  with an optional ``check() -> [(field, problem)]``, an optional ``input_paths()`` (the data files
  it reads, hashed whole into the run key; default ``input``) and an optional ``key_inputs() ->
  {label: fingerprint}`` for everything else it reads -- models (``run.models_read``: a cheap
  fingerprint, never the weights' bytes), spec and wrapper files, shipped data, suite versions --
  which :meth:`sharpset.run.RunDir.open` adds to the key, so no changed input is served from cache;
- ``run(cfg, run: RunDir, log=print) -> metrics``: reads its input, logs each sample to the run's
  per-sample log as it is made (so a killed run resumes), writes its outputs atomically, calls
  ``run.finish``;
- optionally ``show(output_path, n) -> str``: n rendered output rows for a person to read.

A stage that generates or scores mixes :class:`BackendFields` into its config (``engine``,
``engine_options``, ``cluster``, ``cluster_options``: one mechanism for all of them), passes the
config to :func:`load_subject` as ``backend`` and uses ``subject.engine(...)`` to generate and
``subject.scores`` / ``subject.scorer(...)`` to score.

Stages import shared code (this module, records, dataio, run, stats, embed, judge, invariance,
text/, models/, engine/, train/) and never each other; ``tests/test_layout.py`` enforces it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from .config import field

# keys of ``cluster_options`` (engine/ray_fanout.py's fan-out knobs) and their defaults
CLUSTER_OPTIONS = {"num_workers": 2, "num_cpus_per_worker": 1, "batch_size": 16, "ray_remote_args": {}}
FANOUT_LOG = "fanout.partial.jsonl"  # a --cluster run's engine results, in its run folder


@dataclass
class BackendFields:
    """Where a stage's model runs: the config fields every stage that generates or scores shares
    (``synth``, ``restyle``, ``wrap``, ``tag``, ``eval``), defined once here. At their defaults a
    run is what it always was (the transformers engine in this process) and its run key is
    unchanged (run keys hash only fields that differ from their defaults).

    - ``engine``: a registered engine (sharpset.engine.ENGINES): transformers | vllm | proxy;
    - ``engine_options``: passed to it unchanged (vllm: ``vllm.LLM`` arguments such as
      ``tensor_parallel_size``; transformers: ``strategy``, ``linear_kernel``; proxy: ``expert``,
      ``antiexpert``, ``alpha``, ``chat_template``, ``plain_format`` -- engine/proxy.py);
    - ``cluster``: "" (none), ``local``, ``auto`` or ``ray://HOST:PORT``: fan the engine's work out
      over Ray actors (engine/ray_fanout.py). Out of the run key: the same run resumes on any
      cluster or none (results are logged by content hash in the run folder's fanout log);
    - ``cluster_options``: fan-out knobs (num_workers, num_cpus_per_worker, batch_size,
      ray_remote_args), also out of the key.

    A stage says which forward-pass scores its config needs (:meth:`scoring_needs`) and which
    decoding settings it asks for (:meth:`decoding`); :meth:`check_backend` refuses, naming the
    field, a combination the chosen engine cannot run -- never a silent fallback to transformers.
    """

    engine: str = field("transformers", "generation/scoring engine: transformers (in this process), vllm "
                                        "(pip install 'sharpset[vllm]'; docs/scale.md) or proxy (the model "
                                        "steered by a small expert: base + alpha * (expert - antiexpert), "
                                        "arXiv:2401.08565; engine_options {expert: E, antiexpert: A, alpha: 1.0})")
    engine_options: dict = field({}, "options passed to the engine unchanged, e.g. {tensor_parallel_size: 2} "
                                     "for vllm, {strategy: bucket} for transformers")
    cluster: str = field("", "run the engine on Ray actors: '' (no), local, auto or ray://HOST:PORT "
                             "(pip install 'sharpset[ray]'); a run resumes on any cluster", in_key=False)
    cluster_options: dict = field({}, "with cluster: num_workers (2), num_cpus_per_worker (1), batch_size (16), "
                                      "ray_remote_args ({}, e.g. {num_gpus: 1})", in_key=False)

    def scoring_needs(self) -> dict[str, str]:
        """Scores (sharpset.engine.SCORE_METHODS) this config will ask for: method -> what for."""
        return {}

    def decoding(self) -> dict[str, tuple[str, Any]]:
        """Decoding settings this config asks for: field -> (SamplingParams name, value)."""
        return {}

    def backend_info(self, cluster: bool = True) -> dict[str, Any]:
        """Where the model ran: the engine, its options when set and (``cluster``) the cluster when
        set. Records carry it without the cluster (out of the run key: a resumed run may have used
        several); the manifest with it."""
        info: dict[str, Any] = {"engine": self.engine}
        if self.engine_options:
            info["engine_options"] = self.engine_options
        describe = self._engine_hook("describe_options")
        if describe is not None:  # e.g. the proxy: base's steering models and alpha, defaults filled
            info[self.engine] = describe(dict(self.engine_options))
        if cluster and self.cluster:
            info["cluster"] = self.cluster
        return info

    def _engine_hook(self, name: str):
        """The engine class's optional static hook ``name`` (sharpset.engine: the backend contract)."""
        from .engine import ENGINES, engine_class

        return getattr(engine_class(self.engine), name, None) if self.engine in ENGINES else None

    def backend_reads(self) -> dict[str, str]:
        """Models the engine's options name (the proxy's expert and anti-expert), by fingerprint, and
        the engine's own ``VERSION`` where it has one (the proxy's), for the run key
        (run.config_reads); {} for an engine with neither (transformers, vllm: keys unchanged)."""
        version = self._engine_hook("VERSION")
        out = {f"engine:{self.engine}": str(version)} if version is not None else {}
        reads = self._engine_hook("models_read")
        if reads is None:
            return out
        from .run import models_read

        return {**out, **{f"engine:{k}": v for k, v in models_read(*reads(dict(self.engine_options))).items()}}

    def check_backend(self) -> list[tuple[str, str]]:
        from .engine import ENGINES, SamplingParams, engine_class

        p: list[tuple[str, str]] = []
        if self.cluster and not (self.cluster in ("local", "auto") or self.cluster.startswith("ray://")):
            p.append(("cluster", f"must be '' (none), local, auto or ray://HOST:PORT, got {self.cluster!r}"))
        bad = sorted(set(self.cluster_options) - set(CLUSTER_OPTIONS))
        if bad:
            p.append(("cluster_options", f"unknown {bad}; known: {', '.join(CLUSTER_OPTIONS)}"))
        if self.engine not in ENGINES:
            p.append(("engine", f"unknown {self.engine!r}; known: {', '.join(ENGINES)}"))
            return p
        cls = engine_class(self.engine)
        check = getattr(cls, "check_options", None)
        if check is not None:
            p += check(dict(self.engine_options))
        where = f"engine {self.engine}" + (" on a cluster" if self.cluster else "")
        have = set(getattr(cls, "SCORES", ()))
        if self.cluster:
            from .engine.ray_fanout import SCORE_KINDS

            have &= set(SCORE_KINDS)
        for method, why in self.scoring_needs().items():
            if method not in have:
                p.append(("engine", f"{why} needs {method}, which {where} does not compute; "
                                    "use --engine transformers, or leave that out"))
        defaults = {f.name: f.default for f in dataclasses.fields(SamplingParams)}
        for name, (param, value) in self.decoding().items():
            if param in getattr(cls, "UNSUPPORTED_PARAMS", ()) and value != defaults[param]:
                p.append((name, f"{where} does not apply {param} ({value!r}); set {name} to "
                                f"{defaults[param]!r} with this engine"))
        return p

    def fanout_options(self) -> dict[str, Any]:
        return {**CLUSTER_OPTIONS, **self.cluster_options}


def resolve_backend(backend: BackendFields | None, *, run: Any = None) -> BackendFields | None:
    """Before any model loads: the config's backend is checked (a UserError naming the field), its
    optional extras installed (else an InstallError with the pip command), and recorded in the run's
    manifest (``backend``; earlier values of a resumed run kept under ``backend_history``)."""
    if backend is None:
        return None
    from .engine import ENGINE_EXTRAS
    from .errors import UserError, require_extra

    for name, problem in backend.check_backend():
        raise UserError(f"{name}: {problem}")
    if backend.engine in ENGINE_EXTRAS:
        require_extra(ENGINE_EXTRAS[backend.engine], f"--engine {backend.engine}")
    if backend.cluster:
        require_extra("ray", f"--cluster {backend.cluster}")
    if run is not None:
        info = backend.backend_info()
        old = run.manifest.get("backend")
        if old is not None and old != info:
            history = run.manifest.setdefault("backend_history", [])
            if old not in history:
                history.append(old)
        run.manifest["backend"] = info
        run.save_manifest()
    return backend


@dataclass
class Subject:
    """A loaded chat model: weights (or, for an engine that loads them itself, none), tokenizer and
    its chat profile (render + tokenize in one place), and the backend it runs on."""

    name: str
    model: Any
    tok: Any
    profile: Any
    backend: BackendFields | None = None  # None: the transformers engine in this process
    model_config: Any = None  # the model's config (model.config when the weights are loaded)
    run: Any = None
    log: Callable[[str], None] = print
    _engines: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def config(self) -> Any:
        return self.model.config if self.model is not None else self.model_config

    def info(self) -> dict[str, Any]:
        """What a manifest records of it."""
        p = self.profile
        out = {"name": self.name, "chat_family": p.family, "chat_template_hash": p.template_hash,
               "pre_query": p.pre_query}
        out.update(self.backend.backend_info() if self.backend else {"engine": "transformers"})
        return out

    def engine(self, batch_size: int = 16):
        """The generation engine of this model on its backend (sharpset.engine): built once (per
        batch size for an engine built over the loaded weights), shared with :attr:`scores`."""
        from .engine import build_engine, engine_class

        b = self.backend
        name = b.engine if b else "transformers"
        per_batch = not b or (not b.cluster and getattr(engine_class(name), "LOADS_WEIGHTS", True))
        key = batch_size if per_batch else "one"
        if key in self._engines:
            return self._engines[key]
        if b is not None and b.cluster:
            from .engine.ray_fanout import EngineSpec, FanoutEngine

            opts = b.fanout_options()
            spec = EngineSpec(backend=name, model=self.name,
                              engine_kwargs={"batch_size": batch_size, "options": dict(b.engine_options)})
            log_file = (self.run.path / FANOUT_LOG) if self.run is not None else None
            if log_file is None:
                from .errors import UserError

                raise UserError("cluster: a --cluster run needs a run folder (its fanout log)")
            eng = FanoutEngine(spec, log=log_file, cluster=b.cluster, num_workers=opts["num_workers"],
                               batch_size=opts["batch_size"], num_cpus_per_worker=opts["num_cpus_per_worker"],
                               ray_remote_args=opts["ray_remote_args"] or None, echo=self.log)
        else:
            kwargs: dict[str, Any] = {"tokenizer": self.tok, "batch_size": batch_size}
            if getattr(engine_class(name), "LOADS_WEIGHTS", True):
                kwargs["model"] = self.model
            else:
                from .models.registry import resolve_path

                kwargs["model"] = str(resolve_path(self.name)[0])
            try:
                eng = build_engine(name, options=dict(b.engine_options) if b else None, **kwargs)
            except TypeError as e:
                from .errors import UserError

                raise UserError(f"engine_options: engine {name} does not take them: {e}") from None
        self._engines[key] = eng
        return eng

    @property
    def scores(self):
        """Forward-pass scores on this model's backend: an object with the methods of
        sharpset.engine.SCORE_METHODS that the backend has (its ``SCORES``)."""
        if self.backend is None:
            from .engine import scorer_for

            return scorer_for(self.model, self.tok)
        return next(iter(self._engines.values())) if self._engines else self.engine()

    def scorer(self, *methods: str, why: str = "") -> Any:
        """:attr:`scores`, after checking it has ``methods`` (a UserError naming ``engine`` otherwise)."""
        sc = self.scores
        missing = [m for m in methods if m not in getattr(sc, "SCORES", ())]
        if missing:
            from .errors import UserError

            name = self.backend.engine if self.backend else "transformers"
            raise UserError(f"engine: {why or 'this stage'} needs {', '.join(missing)}, which engine {name}"
                            f"{' on a cluster' if self.backend and self.backend.cluster else ''} does not compute; "
                            "use --engine transformers")
        return sc

    def stop_ids(self) -> tuple[int, ...]:
        """Token ids that end an assistant turn."""
        from .models.profiles import stop_token_ids

        return tuple(stop_token_ids(self.profile, self.tok))


def load_subject(name: str, *, log: Callable[[str], None] = print, run: Any = None, role: str | None = None,
                 backend: BackendFields | None = None, **load_kwargs: Any) -> Subject:
    """Load a model by embedded name, local folder or hub id, with its chat profile.

    With ``run`` and ``role`` given, the model is recorded in the run's manifest under ``role``.
    ``backend``: a config's :class:`BackendFields` (None: the transformers engine in this process).
    The weights are loaded here only when the engine runs on them in this process; otherwise (vLLM,
    or any engine on a cluster) only the tokenizer and the model's config are.
    """
    from .errors import UserError
    from .models import load_model
    from .models.profiles import ProfileError, profile_for
    from .models.registry import chat_family, load_tokenizer

    resolve_backend(backend, run=run)
    if backend is not None:
        check = backend._engine_hook("check_model")
        if check is not None:  # e.g. the proxy's one-vocabulary check, before any weights load
            check(name, dict(backend.engine_options), log=log)
    model_config = None
    if backend is None or _loads_weights_here(backend):
        model, tok = load_model(name, log=log, **load_kwargs)
    else:
        model = None
        tok, model_config = load_tokenizer(name, log=log)
    try:
        profile = profile_for(tok, chat_family(name))
    except ProfileError as e:  # a base model without a template, or one no profile reproduces
        why = str(e).splitlines()[0]
        if "no chat_template" in why:
            why = ("the tokenizer has no chat template (a base model?); use a chat model, or a model "
                   "folder whose tokenizer_config.json carries a chat_template")
        raise UserError(f"{getattr(tok, 'name_or_path', None) or name}: chat_template: {why}") from None
    subject = Subject(name, model, tok, profile, backend=backend, model_config=model_config, run=run, log=log)
    if run is not None and role:
        run.record_model(role, subject.info())
    return subject


def _loads_weights_here(backend: BackendFields) -> bool:
    from .engine import engine_class

    return not backend.cluster and getattr(engine_class(backend.engine), "LOADS_WEIGHTS", True)


def prompt_room(model: Any, max_new_tokens: int) -> int | None:
    """How many prompt tokens fit in the model's context with ``max_new_tokens`` still to come
    (``max_position_embeddings - max_new_tokens``); None when the model declares no limit.
    ``model``: a model or its config."""
    cfg = getattr(model, "config", model)
    ctx = getattr(cfg, "max_position_embeddings", None)
    return None if not ctx else ctx - max_new_tokens
