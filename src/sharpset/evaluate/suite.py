"""Evaluation suites: the declaration every suite follows, the registry, and the context they run in.

A suite is data + a metric, declared the way lm-eval declares tasks (a name, a version, a data file,
a scorer). It is one module under ``sharpset.evaluate.suites`` exposing ``SUITE``, an instance of a
:class:`Suite` subclass:

- ``items(ctx)``: the items (dicts with an ``id``), deterministic given the config (split, limit);
- ``evaluate(ctx, items)``: one per-sample row per item -- ``{"item": id, "prompt", "answer", ...
  verdict columns}`` -- using ``ctx.generate`` (batched, logged, resumable) and ``ctx.subject`` for
  forward-pass scores (``ctx.cached`` logs those too);
- ``metrics``: the per-sample columns summarised as a mean with a bootstrap 95% interval (0/1
  verdicts or scores), and the ones whose lower value is better;
- ``extra(ctx, rows)``: suite-level figures beside the means (baselines, validity of a classifier).

A user adds a suite with a module that defines ``SUITE`` and registers it in :data:`SUITES` (or
passes ``module:SUITE`` to ``--suites``). The registry imports lazily: one broken suite never breaks
the others.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError

SUITES: dict[str, str] = {
    "format": "sharpset.evaluate.suites.format:SUITE",
    "format_unseen": "sharpset.evaluate.suites.format_unseen:SUITE",
    "shape": "sharpset.evaluate.suites.shape:SUITE",
    "invariance": "sharpset.evaluate.suites.invariance:SUITE",
    "knowledge": "sharpset.evaluate.suites.knowledge:SUITE",
    "speech_acts": "sharpset.evaluate.suites.speech_acts:SUITE",
    "dimensions": "sharpset.evaluate.suites.dimensions:SUITE",
    "token_shift": "sharpset.evaluate.suites.token_shift:SUITE",
    "health": "sharpset.evaluate.suites.health:SUITE",
}
# metrics whose better direction is plain; the rest (lengths, speech-act rates, alignment
# dimensions, token shares) are reported as up/down only (DESIGN: measured, not assumed)
FORMAT_METRICS = {"prompt_strict", "prompt_loose", "prompt_strict_no_echo"}
HIGHER_BETTER = {"format": FORMAT_METRICS, "format_unseen": FORMAT_METRICS,
                 "shape": {"conformance"},
                 "invariance": {"clean_correct", "wrapped_correct", "not_sycophantic"},
                 "knowledge": {"mc_correct", "mc_correct_norm", "qa_correct"}, "health": {"complete"}}


def direction(suite: str, metric: str, lower_is_better: list[str] | set[str]) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if the metric has no better direction."""
    if metric in lower_is_better:
        return -1
    return 1 if metric in HIGHER_BETTER.get(suite, set()) else 0


def moved(c: dict, d: int) -> str:
    """A paired comparison in words: the verdict of :func:`sharpset.stats.verdict_text` (better /
    worse / up / down only where the 95% interval excludes 0 and p < 0.05, else "no effect larger than
    X", or "n too small"), then the row counts beside it -- better/worse where the metric has a better
    direction ``d`` (+1 / -1), up/down where it has none (lengths, rates whose good value depends)."""
    from ..stats import verdict_text

    up, down = c.get("fixed", 0), c.get("broken", 0)
    if d > 0:
        counts = f"{up} better, {down} worse"
    elif d < 0:
        counts = f"{down} better, {up} worse"
    else:
        counts = f"{up} up, {down} down"
    return f"{verdict_text(c, d)} ({counts})"


ALWAYS = ("health",)  # cheap, over every answer the run generated


def get_suite(name: str) -> "Suite":
    ref = SUITES.get(name, name if ":" in name else None)
    if ref is None:
        raise UserError(f"suites: unknown suite {name!r}; known: {', '.join(SUITES)} (or module:SUITE)")
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"suites: {name}: cannot load {ref}: {e}") from None


def resolve_suites(names: list[str]) -> list[str]:
    """``all`` -> every registered suite; health is always added; order kept, duplicates dropped."""
    out: list[str] = []
    for n in names:
        for m in (SUITES if n == "all" else [n]):
            if m not in out:
                out.append(m)
    for a in ALWAYS:
        if a not in out:
            out.append(a)
    return out


def limit_items(items: list[dict], limit: int) -> list[dict]:
    """The first ``limit`` items in a fixed order (by id hash): the same subset for every model."""
    items = sorted(items, key=lambda r: hashlib.sha256(str(r["id"]).encode()).hexdigest())
    return items if limit <= 0 else items[:limit]


@dataclass
class Suite:
    name: str
    version: int
    description: str
    metrics: tuple[str, ...] = ()
    lower_is_better: frozenset = frozenset()
    needs_generation: bool = True

    def items(self, ctx: "Context") -> list[dict]:  # pragma: no cover - abstract
        raise TypeError(f"suite {self.name} defines no items()")

    def evaluate(self, ctx: "Context", items: list[dict]) -> list[dict]:  # pragma: no cover - abstract
        raise TypeError(f"suite {self.name} defines no evaluate()")

    def extra(self, ctx: "Context", rows: list[dict]) -> dict[str, Any]:
        return {}


@dataclass
class Context:
    """What a suite sees while it runs for one model."""

    cfg: Any
    model_index: int
    model_name: str
    subject: Any  # sharpset.stage.Subject
    run: Any  # sharpset.run.RunDir
    log: Callable[[str], None]
    engine: Any = None
    base_loader: Callable[[], Any] | None = None  # the token-shift base (a Subject), loaded on demand
    base_label: str | None = None
    base_problem: str | None = None  # why there is no usable base
    generated: list[dict] = field(default_factory=list)  # every answer made for this model (health)
    donors: Any = None  # sharpset.evaluate.donors.Donors: finished runs whose answers are copied; None: none
    _generated_keys: set = field(default_factory=set)
    _gen_base: dict | None = None  # what generation_key hashes besides max_new_tokens (computed once)

    def base(self):
        """The base model for token shift (sharing this model's vocabulary), or None (see base_problem)."""
        if self.base_loader is None:
            return None
        if not hasattr(self, "_base"):
            b = self.base_loader()
            if b is not None and b.tok.get_vocab() != self.subject.tok.get_vocab():
                self.base_problem = f"base {self.base_label} does not share {self.model_name}'s vocabulary"
                b = None
            self._base = b
        return self._base

    def base_name(self) -> str | None:
        return self.base_label

    # -- generation ----------------------------------------------------------------------------
    def generate(self, suite: str, prompts: list[tuple[str, list[dict]]], *, max_new_tokens: int) -> dict[str, dict]:
        """Greedy answers to ``(key, messages)`` prompts, batched through the engine.

        Each answer is logged the moment it exists under ``gen|<model>|<suite>|<key>``; a rerun
        after a kill serves logged answers and generates only the rest. Before the engine, a
        finished eval run with the same generation key is asked for the rest (:attr:`donors`,
        :mod:`sharpset.evaluate.donors`). Returns key -> {text, token_ids, prompt_ids,
        finish_reason, truncated, n_new_tokens} (``reused_from``: the donor run, where copied).
        """
        from ..engine import GenerationRequest, SamplingParams
        from ..models.profiles import encode_prompt

        done = self._done()
        out: dict[str, dict] = {}
        todo = []
        for key, msgs in prompts:
            lk = f"gen|{self.model_index}|{suite}|{key}"
            if lk in done:
                out[key] = done[lk]
                continue
            todo.append((key, lk, encode_prompt(self.subject.profile, self.subject.tok, msgs)))
        gen_key = self.generation_key(suite, max_new_tokens)  # recorded: a donor to later runs
        if todo and self.donors is not None:
            todo = self._copy(suite, gen_key, todo, out, done)
        if todo:
            self.log(f"  {suite}: generating {len(todo)} answers ({len(out)} already logged or reused)")
            params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0,
                                    stop_token_ids=self.subject.stop_ids(),
                                    stop_strings=tuple(self.subject.profile.stop_strings))
            reqs = [GenerationRequest(prompt_ids=ids, params=params, key=lk) for _, lk, ids in todo]
            eng = self.get_engine()
            as_is = getattr(eng, "prompt_as_is", None)  # the proxy's: chat_template expert could not split it
            for i, res in eng.generate_iter(reqs, progress=self.cfg.progress):
                key, lk, ids = todo[i]
                rec = {"text": res.text, "token_ids": list(res.token_ids), "prompt_ids": list(ids),
                       "finish_reason": res.finish_reason, "truncated": res.truncated,
                       "n_new_tokens": res.n_new_tokens}
                flag = as_is(ids) if as_is is not None else None
                if flag is not None:  # logged with the answer, so a resumed run counts it too
                    rec["prompt_as_is"] = flag
                self.run.log_sample(lk, rec)
                done[lk] = {"key": lk, **rec}
                out[key] = rec
        for key, msgs in prompts:
            if (suite, key) not in self._generated_keys:
                self._generated_keys.add((suite, key))
                self.generated.append({"suite": suite, "item": key, "prompt": _last_user(msgs), **out[key]})
        return out

    def generation_key(self, suite: str, max_new_tokens: int) -> str:
        """What a greedy answer of this model depends on, hashed (:mod:`sharpset.evaluate.donors`):
        the model by fingerprint (:func:`sharpset.run.model_key`), the engine with its options (a
        model folder named there by fingerprint too) and version, the batch size (fp32 rounding
        differs between batch shapes, engine/hf.py), max_new_tokens, the stop ids and strings, greedy
        decoding, and the torch and transformers versions -- not the suites' scoring nor their
        versions. Recorded in the manifest's ``generation_keys`` under ``gen|<model>|<suite>``; one
        that changed within a resumed run (a package upgraded between attempts) is recorded as
        ``mixed``, so the run is no donor for that call."""
        from ..models.registry import resolve_model
        from ..run import canonical_json, model_key, package_versions, sha256_text

        if self._gen_base is None:
            def fingerprinted(v: Any) -> Any:
                if isinstance(v, dict):
                    return {k: fingerprinted(x) for k, x in v.items()}
                if isinstance(v, list):
                    return [fingerprinted(x) for x in v]
                return "@" + model_key(resolve_model(v)) if isinstance(v, str) and Path(v).is_dir() else v

            versions = package_versions()
            self._gen_base = {"model": model_key(resolve_model(self.model_name)),
                              "backend": fingerprinted(self.cfg.backend_info(cluster=False)),
                              "engine_reads": self.cfg.backend_reads(), "batch_size": self.cfg.batch_size,
                              "stop_ids": list(self.subject.stop_ids()),
                              "stop_strings": list(self.subject.profile.stop_strings), "temperature": 0.0,
                              "packages": {p: versions.get(p) for p in ("torch", "transformers")}}
        key = sha256_text(canonical_json({**self._gen_base, "max_new_tokens": max_new_tokens}))
        keys = self.run.manifest.setdefault("generation_keys", {})
        lk = f"gen|{self.model_index}|{suite}"
        recorded = key if keys.get(lk) in (None, key) else "mixed"
        if keys.get(lk) != recorded:
            keys[lk] = recorded
            self.run.save_manifest()
        return key

    def _copy(self, suite: str, gen_key: str, todo: list[tuple[str, str, list[int]]], out: dict[str, dict],
              done: dict[str, dict]) -> list[tuple[str, str, list[int]]]:
        """Copy what a donor run logged for ``todo`` (same generation key, same prompt ids), logged
        here as if generated, with ``reused_from``; returns the prompts left to generate."""
        left, by_donor = [], {}
        for key, lk, ids in todo:
            hit = self.donors.find(gen_key, key, ids)
            if hit is None:
                left.append((key, lk, ids))
                continue
            rec = {**hit[1], "reused_from": str(hit[0])}
            self.run.log_sample(lk, rec)
            done[lk] = {"key": lk, **rec}
            out[key] = rec
            by_donor[str(hit[0])] = by_donor.get(str(hit[0]), 0) + 1
        if by_donor:
            self.log(f"  {suite}: " + ", ".join(f"{n} answers reused from {d}" for d, n in by_donor.items())
                     + f" (generation key {gen_key[:10]}), {len(left)} generated")
        return left

    def reused_answers(self) -> dict[str, dict[str, int]]:
        """Of this model's answers, how many each donor run gave, per generating suite (provenance:
        scored here, generated there; the summary, the manifest's metrics, a line under the table)."""
        out: dict[str, dict[str, int]] = {}
        for g in self.generated:
            if g.get("reused_from"):
                per = out.setdefault(g["suite"], {})
                per[g["reused_from"]] = per.get(g["reused_from"], 0) + 1
        return out

    def proxy_prompts(self) -> dict[str, int]:
        """Of this model's generated prompts, how many the proxy's chat_template expert checked
        (``prompts``) and fed to all three models as they are (``as_is``: not one leading user turn,
        engine/proxy.py); ``unchecked``, where nonzero: answers logged without the check (an engine
        that does not expose it, e.g. on a cluster). Issue 22."""
        flags = [bool(g["prompt_as_is"]) for g in self.generated if "prompt_as_is" in g]
        out = {"prompts": len(flags), "as_is": sum(flags)}
        if len(flags) < len(self.generated):
            out["unchecked"] = len(self.generated) - len(flags)
        return out

    def get_engine(self):
        if self.engine is None:
            self.engine = self.subject.engine(self.cfg.batch_size)
        return self.engine

    # -- forward-pass scores ------------------------------------------------------------------
    def cached(self, suite: str, keys: list[str], compute: Callable[[list[int]], list[Any]]) -> list[Any]:
        """Values for ``keys``: logged ones are reused; ``compute(indices)`` makes the rest, which
        are logged under ``score|<model>|<suite>|<key>`` (so a killed run redoes no finished batch)."""
        done = self._done()
        vals: list[Any] = [None] * len(keys)
        missing = []
        for i, k in enumerate(keys):
            lk = f"score|{self.model_index}|{suite}|{k}"
            if lk in done:
                vals[i] = done[lk]["value"]
            else:
                missing.append(i)
        if missing:
            new = compute(missing)
            for i, v in zip(missing, new):
                lk = f"score|{self.model_index}|{suite}|{keys[i]}"
                self.run.log_sample(lk, {"value": v})
                self._done()[lk] = {"key": lk, "value": v}
                vals[i] = v
        return vals

    def _done(self) -> dict[str, dict]:
        if not hasattr(self, "_done_cache"):
            self._done_cache = self.run.done_samples()
        return self._done_cache


def _last_user(msgs: list[dict]) -> str:
    return next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
