"""Fan generation and scoring out over a Ray cluster with Ray Data, with content-hash resume.

``--cluster local`` starts (or joins) a Ray instance on this machine; ``--cluster ray://HOST:PORT``
connects to a running cluster through Ray Client (``auto`` joins the cluster this process runs
in). Requests become rows of a Ray Dataset; ``map_batches`` runs them over a pool of actors that
each build one model once (`EngineSpec`: any registered engine -- transformers, vLLM) and keep it
for every batch they get -- Ray Data's documented pattern for batch inference with a stateful model.
`FanoutEngine` wraps the two functions as an engine: what a stage builds for ``--cluster``.

Resume and failures, the same contract as a single-process stage (DESIGN.md "Non-negotiables"):

* every request carries a key (the stage's content hash of what determines its output); results
  are appended to the run's per-sample log (`RunDir.log_sample`, fsync'd) by the driver as their
  batch arrives, and a rerun skips every key already logged;
* a worker that dies mid-batch loses that batch's output only: Ray Data runs actor pools with
  ``max_restarts=-1, max_task_retries=-1`` by default, so the actor is restarted and the batch is
  run again; the driver logs a key at most once (a key seen twice is dropped, never re-logged)
  and checks at the end that every requested key has exactly one result.

Only the driver writes the log, so workers need no shared filesystem. Result rows hold every
`GenerationResult` field (so a resumed run rebuilds identical results) plus the request's seed and
the backend name as provenance.
"""

from __future__ import annotations

import functools
import json
import math
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sharpset.engine.base import GenerationRequest, GenerationResult, SamplingParams
from sharpset.run import RunDir

SCORE_KINDS = ("answer_nll", "answer_token_nll", "next_token_probs", "choice_logliks", "answer_token_ranks")


# --------------------------------------------------------------------------- logs
class SampleLog:
    """A per-sample log file outside a run folder, in RunDir's format (one JSON object per line
    with its "key"; fsync'd appends; a torn last line from a kill is dropped on read)."""

    def __init__(self, file: str | Path):
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.SAMPLES = file.parent, file.name

    # The same code as a run folder's log, not a copy of it.
    done_samples = RunDir.done_samples
    log_sample = RunDir.log_sample


def _as_log(log: RunDir | SampleLog | str | Path):
    return SampleLog(log) if isinstance(log, (str, Path)) else log


# --------------------------------------------------------------------------- what each actor holds
class Backend:
    """A model held by one actor: ``engine`` (the `Engine` interface) and ``score``.

    Scores come from the engine's own scoring methods (sharpset.engine's backend contract), or,
    with ``scoring`` given, from a module of engine/scoring.py's functions called with
    ``(model, tokenizer, ...)`` (engine/scoring.py itself, or engine/vllm.py)."""

    name = "custom"

    def __init__(self, engine, model=None, tokenizer=None, scoring=None):
        self.engine, self.model, self.tokenizer, self.scoring = engine, model, tokenizer, scoring

    def _scorer(self):
        if self.scoring is None:
            return self.engine
        from sharpset.engine import scoring as hf_scoring

        if self.scoring is hf_scoring:
            from sharpset.engine.hf import TransformersScoring

            return TransformersScoring(self.model, self.tokenizer)
        bound = {k: functools.partial(getattr(self.scoring, k), self.model, self.tokenizer)
                 for k in SCORE_KINDS if hasattr(self.scoring, k)}
        return types.SimpleNamespace(**bound)

    def score(self, kind: str, rows: list[dict]) -> list[Any]:
        """Per row: answer_nll -> float | None; answer_token_nll -> list[float] | None;
        answer_token_ranks -> list[int] | None; next_token_probs -> list[float]; choice_logliks ->
        list[float]. Rows hold the arguments of the engine/scoring.py function of that name:
        {sequence, labels}, {prompt, candidate_ids} or {context, choices}."""
        if kind not in SCORE_KINDS:
            raise ValueError(f"score kind: must be one of {SCORE_KINDS}, got {kind!r}")
        s = self._scorer()
        if kind in ("answer_nll", "answer_token_nll", "answer_token_ranks"):
            return getattr(s, kind)([r["sequence"] for r in rows], [r["labels"] for r in rows])
        if kind == "next_token_probs":
            out: list[Any] = [None] * len(rows)
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, r in enumerate(rows):  # one call per candidate set
                groups.setdefault(tuple(r["candidate_ids"]), []).append(i)
            for cands, idx in groups.items():
                probs = s.next_token_probs([rows[i]["prompt"] for i in idx], list(cands))
                for j, i in enumerate(idx):
                    out[i] = [float(x) for x in probs[j]]
            return out
        return s.choice_logliks([r["context"] for r in rows], [r["choices"] for r in rows])


@dataclass(frozen=True)
class EngineSpec:
    """A picklable recipe each actor follows to build its model (a model object is never shipped).

    backend: a registered engine name (sharpset.engine.ENGINES: "transformers", "vllm", ...).
    model: embedded name, local folder or hub id (a folder must exist on every node).
    engine_kwargs: for the engine (batch_size, and ``options``: the config's engine_options, passed
    as sharpset.engine.build_engine does; the transformers engine also takes strategy, ... directly).
    dtype: engines built from a loaded model only, cast it (e.g. "float64" in tests).
    threads: torch CPU threads per actor (0: leave as Ray sets them).
    """

    backend: str = "transformers"
    model: str = "smollm2-135m-instruct"
    engine_kwargs: dict = field(default_factory=dict)
    dtype: str | None = None
    threads: int = 0

    def build(self) -> Backend:
        from sharpset.engine import build_engine, engine_class

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        cls = engine_class(self.backend)
        if getattr(cls, "LOADS_WEIGHTS", True):
            from sharpset.models import load_model

            model, tok = load_model(self.model, log=lambda m: None)
            if self.dtype:
                import torch

                model = model.to(getattr(torch, self.dtype))
            eng = build_engine(self.backend, model=model.eval(), tokenizer=tok, **self.engine_kwargs)
        else:
            from sharpset.models.registry import resolve_path

            path, _ = resolve_path(self.model)
            eng = build_engine(self.backend, model=str(path), **self.engine_kwargs)
        b = Backend(eng)
        b.name = self.backend
        return b


class _Worker:
    """The callable class Ray Data instantiates once per actor (model built in __init__)."""

    def __init__(self, factory: EngineSpec | Callable[[], Backend], task: str):
        self.backend = factory.build() if isinstance(factory, EngineSpec) else factory()
        self.task = task

    def __call__(self, batch: dict) -> dict:
        rows = [json.loads(s) for s in batch["item"]]
        if self.task == "generate":
            reqs = [GenerationRequest(r["prompt_ids"], SamplingParams(**r["params"]), key=r["key"]) for r in rows]
            results = self.backend.engine.generate(reqs, progress=False)
            out = [json.dumps({**result_payload(res), "seed": req.params.seed, "engine": self.backend.name})
                   for req, res in zip(reqs, results)]
        else:
            values = self.backend.score(self.task, rows)
            out = [json.dumps({"kind": self.task, "value": v, "engine": self.backend.name}) for v in values]
        return {"key": batch["key"], "payload": out}


# --------------------------------------------------------------------------- payloads
def result_payload(res: GenerationResult) -> dict[str, Any]:
    d = asdict(res)
    d.pop("key")
    return d


def payload_result(key: str, payload: dict[str, Any]) -> GenerationResult:
    return GenerationResult(key=key, token_ids=list(payload["token_ids"]), text=payload["text"],
                            finish_reason=payload["finish_reason"], truncated=payload["truncated"],
                            n_prompt_tokens=payload["n_prompt_tokens"], n_new_tokens=payload["n_new_tokens"])


def _params_dict(p: SamplingParams) -> dict[str, Any]:
    d = asdict(p)
    d["stop_strings"], d["stop_token_ids"] = list(p.stop_strings), list(p.stop_token_ids)
    return d


# --------------------------------------------------------------------------- cluster
def connect(cluster: str = "local", *, num_cpus: int | None = None, log: Callable[[str], None] = print):
    """Start or join Ray. "local": a local instance (num_cpus caps it); "ray://HOST:PORT": Ray
    Client to a running cluster; "auto": the cluster this process runs in. Reuses a live session."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        from sharpset.errors import require_extra

        require_extra("ray", "--cluster (Ray Data)", exc=e)
    if ray.is_initialized():
        return ray
    if cluster == "local":
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    elif cluster == "auto" or cluster.startswith("ray://"):
        ray.init(address=cluster, log_to_driver=False)
    else:
        raise ValueError(f"cluster: must be 'local', 'auto' or 'ray://HOST:PORT', got {cluster!r}")
    log(f"ray: connected to {cluster} ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")
    return ray


def _check_keys(keys: Sequence[str | None]) -> None:
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if not k:
            raise ValueError(f"requests[{i}].key: fan-out needs a key per request (the content hash a rerun resumes by)")
        if k in seen:
            raise ValueError(f"requests[{i}].key: {k!r} repeats requests[{seen[k]}].key")
        seen[k] = i


def _fan(task: str, items: list[tuple[str, dict]], factory, log, *, cluster: str, num_workers: int,
         batch_size: int, num_cpus_per_worker: float, ray_remote_args: dict | None, progress: bool,
         on_result: Callable[[str, dict], None] | None, echo: Callable[[str], None]) -> dict[str, dict]:
    """Run the not-yet-logged items; returns every logged payload by key."""
    done = log.done_samples()
    todo = [(k, it) for k, it in items if k not in done]
    if done:
        echo(f"resuming: {len(items) - len(todo)}/{len(items)} already logged")
    if todo:
        ray = connect(cluster, log=echo)
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        ds = ray.data.from_items([{"key": k, "item": json.dumps({"key": k, **it})} for k, it in todo],
                                 override_num_blocks=max(1, math.ceil(len(todo) / batch_size)))
        out = ds.map_batches(_Worker, fn_constructor_kwargs={"factory": factory, "task": task},
                             batch_size=batch_size, batch_format="numpy",
                             compute=ray.data.ActorPoolStrategy(size=num_workers),  # `concurrency=` is deprecated (Ray 2.51)
                             num_cpus=num_cpus_per_worker, **(ray_remote_args or {}))
        duplicates = 0
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):  # streams as batches finish
            for key, raw in zip(batch["key"], batch["payload"]):
                key = str(key)
                if key in done:  # a batch run twice (retry after a partial success): keep the first
                    duplicates += 1
                    continue
                payload = json.loads(raw)
                log.log_sample(key, payload)
                done[key] = {"key": key, **payload}
                if on_result is not None:
                    on_result(key, payload)
        if duplicates:
            echo(f"fan-out: {duplicates} duplicate result(s) from retried batches dropped")
    missing = [k for k, _ in items if k not in done]
    if missing:
        raise RuntimeError(f"fan-out: {len(missing)} request(s) got no result (first: {missing[0]!r}); "
                           "rerun the same command to resume")
    return done


def fanout_generate(requests: Sequence[GenerationRequest], engine: EngineSpec | Callable[[], Backend], *,
                    log: RunDir | SampleLog | str | Path, cluster: str = "local", num_workers: int = 2,
                    batch_size: int = 16, num_cpus_per_worker: float = 1, ray_remote_args: dict | None = None,
                    progress: bool = False, on_result: Callable[[str, dict], None] | None = None,
                    echo: Callable[[str], None] = print) -> list[GenerationResult]:
    """Generate over `num_workers` Ray actors; results in input order (see the module docstring).

    ray_remote_args: per-actor Ray options (e.g. {"num_gpus": 4} for a tensor-parallel vLLM
    actor; {"max_restarts": 0} turns worker restarts off)."""
    _check_keys([r.key for r in requests])
    items = [(r.key, {"prompt_ids": list(r.prompt_ids), "params": _params_dict(r.params)}) for r in requests]
    done = _fan("generate", items, engine, _as_log(log), cluster=cluster, num_workers=num_workers,
                batch_size=batch_size, num_cpus_per_worker=num_cpus_per_worker, ray_remote_args=ray_remote_args,
                progress=progress, on_result=on_result, echo=echo)
    return [payload_result(r.key, done[r.key]) for r in requests]


def fanout_score(kind: str, items: Iterable[tuple[str, dict]], engine: EngineSpec | Callable[[], Backend], *,
                 log: RunDir | SampleLog | str | Path, cluster: str = "local", num_workers: int = 2,
                 batch_size: int = 16, num_cpus_per_worker: float = 1, ray_remote_args: dict | None = None,
                 progress: bool = False, on_result: Callable[[str, dict], None] | None = None,
                 echo: Callable[[str], None] = print) -> list[Any]:
    """Score (key, row) items over Ray actors; values in input order. kind and row fields:
    answer_nll {sequence, labels}; next_token_probs {prompt, candidate_ids}; choice_logliks
    {context, choices} -- the arguments of the engine/scoring.py functions, one row each."""
    if kind not in SCORE_KINDS:
        raise ValueError(f"kind: must be one of {SCORE_KINDS}, got {kind!r}")
    items = list(items)
    _check_keys([k for k, _ in items])
    done = _fan(kind, items, engine, _as_log(log), cluster=cluster, num_workers=num_workers, batch_size=batch_size,
                num_cpus_per_worker=num_cpus_per_worker, ray_remote_args=ray_remote_args, progress=progress,
                on_result=on_result, echo=echo)
    return [done[k]["value"] for k, _ in items]


# --------------------------------------------------------------------------- as an engine
class FanoutEngine:
    """An `Engine`, with the scoring methods of sharpset.engine's backend contract, whose work runs
    on Ray actors (what a stage builds for ``--cluster``).

    Every request and score row is keyed by a content hash of (model, backend, its options, what is
    asked), so identical asks run once, and results go to ``log`` (a `SampleLog` file in the run
    folder): a rerun -- with the same cluster, another one, or none -- skips what is logged there.
    ``generate_iter`` yields once the whole call is done (in input order): the stage logs its own
    samples then, and a kill before that loses nothing already in ``log``.
    """

    LOADS_WEIGHTS = False

    def __init__(self, spec: EngineSpec, *, log: SampleLog | str | Path, cluster: str, num_workers: int = 2,
                 batch_size: int = 16, num_cpus_per_worker: float = 1, ray_remote_args: dict | None = None,
                 echo: Callable[[str], None] = print):
        from sharpset.engine import engine_class

        self.spec, self.log, self.cluster, self.echo = spec, _as_log(log), cluster, echo
        self.fan = dict(num_workers=num_workers, batch_size=batch_size, num_cpus_per_worker=num_cpus_per_worker,
                        ray_remote_args=ray_remote_args)
        self.SCORES = frozenset(SCORE_KINDS) & frozenset(getattr(engine_class(spec.backend), "SCORES", ()))
        kw = {k: v for k, v in spec.engine_kwargs.items() if k != "batch_size"}  # batching changes no result
        self._who = {"backend": spec.backend, "model": spec.model, "engine_kwargs": kw, "dtype": spec.dtype}

    def _key(self, task: str, what: Any) -> str:
        from sharpset.run import canonical_json, sha256_text

        return f"{task}:" + sha256_text(canonical_json([self._who, what]))[:32]

    # -- generation
    def generate(self, requests: Sequence[GenerationRequest], *, progress: bool = True) -> list[GenerationResult]:
        out: list[GenerationResult | None] = [None] * len(requests)
        for i, res in self.generate_iter(requests, progress=progress):
            out[i] = res
        return out  # type: ignore[return-value]

    def generate_iter(self, requests: Sequence[GenerationRequest], *, progress: bool = True):
        from dataclasses import replace

        keys = [self._key("gen", [list(r.prompt_ids), _params_dict(r.params)]) for r in requests]
        unique: dict[str, GenerationRequest] = {}
        for k, r in zip(keys, requests):
            unique.setdefault(k, GenerationRequest(list(r.prompt_ids), r.params, key=k))
        if not unique:
            return
        got = fanout_generate(list(unique.values()), self.spec, log=self.log, cluster=self.cluster,
                              progress=progress, echo=self.echo, **self.fan)
        by_key = dict(zip(unique, got))
        for i, (k, r) in enumerate(zip(keys, requests)):
            yield i, replace(by_key[k], key=r.key)

    # -- scoring
    def _score(self, kind: str, rows: list[dict]) -> list[Any]:
        if kind not in self.SCORES:
            raise ValueError(f"engine {self.spec.backend} on a cluster: no {kind}")
        keys = [self._key(kind, r) for r in rows]
        unique = dict(zip(keys, rows))
        if not unique:
            return []
        vals = fanout_score(kind, list(unique.items()), self.spec, log=self.log, cluster=self.cluster,
                            echo=self.echo, **self.fan)
        by_key = dict(zip(unique, vals))
        return [by_key[k] for k in keys]

    def _labelled(self, kind: str, sequences, labels) -> list[Any]:
        return self._score(kind, [{"sequence": list(s), "labels": list(lab)} for s, lab in zip(sequences, labels)])

    def answer_nll(self, sequences, labels, **kw) -> list[float | None]:
        return self._labelled("answer_nll", sequences, labels)

    def answer_token_nll(self, sequences, labels, **kw) -> list[list[float] | None]:
        return self._labelled("answer_token_nll", sequences, labels)

    def answer_token_ranks(self, sequences, labels, **kw) -> list[list[int] | None]:
        return self._labelled("answer_token_ranks", sequences, labels)

    def next_token_probs(self, prompts, candidate_ids, **kw):
        import torch

        cands = [int(c) for c in candidate_ids]
        vals = self._score("next_token_probs", [{"prompt": list(p), "candidate_ids": cands} for p in prompts])
        return torch.tensor(vals, dtype=torch.float32).reshape(len(prompts), len(cands))

    def choice_logliks(self, contexts, choices, **kw) -> list[list[float]]:
        return self._score("choice_logliks", [{"context": list(c), "choices": [list(x) for x in ch]}
                                              for c, ch in zip(contexts, choices)])
