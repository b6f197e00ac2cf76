"""``sharpset eval MODEL [MODEL ...]``: what a set bought, suite by suite, paired across models.

Each model (an embedded name, a local HF folder, or a ``sharpset train`` run folder -- its merged
model) answers every suite's items greedily through the engine; every answer and every forward-pass
score is logged per sample as it is made, so a killed evaluation resumes where it stopped. Outputs:

- ``samples/<suite>.jsonl``: one row per (model, item): prompt, answer, every verdict -- loadable
  with ``datasets.load_dataset("json", data_files=...)``;
- ``summary.json``: per model and suite, each metric's mean with n and a bootstrap 95% interval,
  the suite's extra figures (baselines, classifier validity, per-family tables); with two or more
  models, paired comparisons of each later model against the first on the same items: the mean
  difference with a paired bootstrap 95% interval and fixed / broken / unchanged counts; with the
  proxy engine's ``chat_template: expert``, per model beside its ``proxy`` provenance,
  ``proxy_prompts``: how many generated prompts its expert's template checked and how many it could
  not split (fed to all three models as they are; engine/proxy.py), also in the manifest's metrics;
- a printed table.

Seeds: greedy decoding (no sampling); ``seed`` keys the bootstrap resamples and the paraphrase drawn
per invariance item. Size dial: ``limit`` items per suite (0 = all of the split).

Answers already generated (``reuse_generations``, evaluate/donors.py): an answer a finished eval run
under ``reuse`` logged with the same generation key and prompt ids is copied, not generated again (a
suite's version bump for its scoring changes the run key, never the answers); the summary's
``reused_answers`` (per model, suite and donor run, beside ``answers``), the manifest's metrics and
a line under the table say how many, and each copied answer carries ``reused_from`` in the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..config import field
from ..errors import UserError
from ..invariance import HELDOUT_FAMILIES
from ..models.registry import resolve_model  # noqa: F401 -- defined here before issue 22; still importable from here
from ..stage import BackendFields

STAGE = "eval"
VERSION = 2  # 2: the key holds the shipped data's hash and each suite's version, models by fingerprint (issue 21)


@dataclass
class EvalConfig(BackendFields):
    models: list = field([], "models to evaluate: embedded names, local HF folders or `sharpset train` run folders; "
                             "with two or more, each later one is compared with the first, paired on the same items")
    suites: list = field(["all"], "suites: all, or any of format, shape, invariance, knowledge, speech_acts, "
                                  "dimensions, token_shift, health (health is always added), or module:SUITE")
    split: str = field("test", "which split of the shipped evaluation data: test or dev")
    limit: int = field(40, "items per suite, the same fixed subset for every model (0 = the whole split; "
                           "invariance: questions, each wrapped by every family)")
    suite_limits: dict = field({}, "items per suite for the suites named here, overriding limit (e.g. "
                                   "{format: 0, invariance: 40}: the whole format split, 40 invariance questions)")
    max_new_tokens: int = field(192, "answer length limit for open-ended suites (greedy)")
    batch_size: int = field(16, "engine batch size and forward-pass batch size")
    shape_spec: str = field("concise-plain", "response-shape spec the shape suite scores (shipped name or YAML file)")
    base: str = field("", "base model for token_shift (default: the first model, when it shares the vocabulary)")
    pairs: str = field("", "invariance pairs file (wrap's format, with answer/wrong) instead of the shipped questions")
    format_data: str = field("", "an IFEval-format file (prompt or messages, instruction_id_list, kwargs; Google's "
                                 "input_data.jsonl loads as is) the format suite scores instead of its shipped "
                                 "items: the whole file, --limit applies; seen and unseen types reported apart")
    invariance_families: list = field(["sycophancy", "jailbreak", "noise", "partner"],
                                      "wrapper families the invariance suite applies (groups or exact names)")
    heldout_families: list = field(list(HELDOUT_FAMILIES), "families marked held out (those `wrap` keeps out of training)")
    seed: int = field(0, "bootstrap resampling and invariance paraphrase choice")
    progress: bool = field(True, "show generation progress bars", in_key=False)
    # out of the run key: a copied answer is the answer this run would generate (evaluate/donors.py)
    reuse_generations: bool = field(True, "copy an answer a finished eval run under --reuse already generated "
                                          "(same model fingerprint, engine and options, batch size, "
                                          "max_new_tokens, stop rules, torch and transformers; the same prompt "
                                          "ids) instead of generating it again; false = generate every answer",
                                    in_key=False)
    reuse: list = field(["auto"], "folders searched for those runs (auto = the folder this run's folder sits "
                                  "in; a pipeline passes its own reuse folders; [] = none)", in_key=False)

    def check(self) -> list[tuple[str, str]]:
        from .suite import SUITES

        p = []
        if not self.models:
            p.append(("models", "give at least one model"))
        if self.split not in ("test", "dev"):
            p.append(("split", "must be test or dev"))
        for name in ("limit", "max_new_tokens", "batch_size"):
            if getattr(self, name) < (0 if name == "limit" else 1):
                p.append((name, "must be >= 0" if name == "limit" else "must be >= 1"))
        for k, v in (self.suite_limits or {}).items():
            if k not in SUITES and ":" not in str(k):
                p.append(("suite_limits", f"unknown suite {k!r}; known: {', '.join(SUITES)} (or module:SUITE)"))
            elif isinstance(v, bool) or not isinstance(v, int) or v < 0:
                p.append(("suite_limits", f"{k}: must be an integer >= 0 (0 = the whole split), got {v!r}"))
        bad = [s for s in self.suites if s != "all" and s not in SUITES and ":" not in s]
        if bad:
            p.append(("suites", f"unknown {bad}; known: all, {', '.join(SUITES)} (or module:SUITE)"))
        return p

    def scoring_needs(self) -> dict[str, str]:
        from .suite import SUITES, resolve_suites

        uses = {"knowledge": "answer_token_nll", "invariance": "answer_token_nll", "token_shift": "answer_token_ranks"}
        needs: dict[str, list[str]] = {}
        for name in resolve_suites(self.suites):
            if name in SUITES and name in uses:
                needs.setdefault(uses[name], []).append(name)
        return {m: f"the {' and '.join(names)} suite{'s' if len(names) > 1 else ''} (--suites)"
                for m, names in needs.items()}

    def input_paths(self) -> list[str]:
        """Data read whole into the key: the pairs file and a user's format file. Models are in
        :meth:`key_inputs` (a cheap fingerprint: hashing their weights on every cache hit read whole
        model folders)."""
        return [p for p in (self.pairs, self.format_data) if p]

    def key_inputs(self) -> dict[str, str]:
        """What else an evaluation depends on (run.config_reads): each model (train run folders
        resolved, refused while unfinished) and the base by fingerprint, each resolved suite's
        version, the shipped evaluation data by content (a file added since the common set only where
        a suite reads it, :data:`sharpset.evaluate.data.SUITE_FILES`), the shape spec (shape suite) and the
        shipped questions and wrappers (invariance suite) by content."""
        from ..invariance import DATA, QUESTIONS
        from ..run import file_hash, models_read, sha256_text, spec_key
        from . import data
        from .suite import get_suite, resolve_suites

        out = models_read(*(resolve_model(m) for m in [*self.models, self.base] if m))
        names = resolve_suites(self.suites)
        out.update({f"suite:{n}": str(get_suite(n).version) for n in names})
        out["shipped:evaluate/data"] = sha256_text("".join(f"{f}:{file_hash(data.path(f))}\n"
                                                           for f in data.COMMON_FILES))
        for n in names:  # files added since: only where a suite reads them (data.SUITE_FILES)
            out.update({f"shipped:evaluate/data/{f}.jsonl": file_hash(data.path(f)) for f in data.SUITE_FILES.get(n, ())})
        if "shape" in names:
            out["file:shape_spec"] = spec_key(self.shape_spec)
        if "invariance" in names:
            out["shipped:wrappers.yaml"] = file_hash(DATA / "wrappers.yaml")
            if not self.pairs:
                out["shipped:questions.jsonl"] = file_hash(QUESTIONS)
        return out


def _suite_cfg(cfg: EvalConfig, suite: str) -> EvalConfig:
    """The config one suite sees: ``limit`` replaced by its ``suite_limits`` entry, if it has one."""
    if suite not in (cfg.suite_limits or {}) or cfg.suite_limits[suite] == cfg.limit:
        return cfg
    return replace(cfg, limit=cfg.suite_limits[suite])


def _label(i: int, name: str) -> str:
    return f"m{i}:{Path(name).name if Path(name).exists() else name}"


def run(cfg: EvalConfig, run, log: Callable[[str], None] = print) -> dict[str, Any]:
    from ..dataio import write_json, write_records
    from ..stage import load_subject
    from .suite import Context, get_suite, resolve_suites

    names = resolve_suites(cfg.suites)
    suites = {n: get_suite(n) for n in names}
    loaded: dict[str, Any] = {}

    proxy = cfg.backend_info(cluster=False).get(cfg.engine) if cfg.engine == "proxy" else None

    def subject(name: str, plain: bool = False):
        # plain: the token-shift base of a proxy-tuned model is the base itself, without the proxy
        # (URIAL's ranks of the steered model's tokens under the untuned base; METHODS §4, §7)
        if (name, plain) not in loaded:
            loaded[(name, plain)] = load_subject(resolve_model(name), log=log, run=run,
                                                 backend=None if plain else cfg)
        return loaded[(name, plain)]

    donors = None
    if cfg.reuse_generations and cfg.reuse:
        from ..run import search_dirs
        from .donors import Donors

        donors = Donors(search_dirs(cfg.reuse, run.path), run.path)
    per_model: list[dict[str, list[dict]]] = []
    summary: dict[str, Any] = {"models": [], "suites": {}, "split": cfg.split, "limit": cfg.limit,
                               **({"suite_limits": dict(cfg.suite_limits)} if cfg.suite_limits else {}), "seed": cfg.seed,
                               "decoding": {"temperature": 0.0, "max_new_tokens": cfg.max_new_tokens},
                               "backend": cfg.backend_info(cluster=False)}
    t0 = time.perf_counter()
    for i, name in enumerate(cfg.models):
        s = subject(name)
        run.record_model(_label(i, name), {**s.info(), "path": resolve_model(name)})
        summary["models"].append({"index": i, "name": name, "label": _label(i, name), "path": resolve_model(name),
                                  **({"proxy": proxy} if proxy else {})})
        base_name = cfg.base or (cfg.models[0] if i > 0 else name if proxy else "")
        ctx = Context(cfg=cfg, model_index=i, model_name=name, subject=s, run=run, log=log,
                      base_loader=(lambda b=base_name: subject(b, plain=bool(proxy))) if base_name else None,
                      base_label=base_name or None, donors=donors)
        if not base_name:
            ctx.base_problem = "no base model (give --base, or evaluate a base and its tuned model together)"
        rows_by_suite: dict[str, list[dict]] = {}
        for sname in names:  # health last: it reads every answer the others generated
            suite = suites[sname]
            ctx.cfg = _suite_cfg(cfg, sname)
            items = suite.items(ctx)
            log(f"[{_label(i, name)}] {sname}: {len(items)} items")
            t_suite = time.perf_counter()
            rows = suite.evaluate(ctx, items) if items else []
            rows_by_suite[sname] = [{"model": _label(i, name), "model_index": i, **({"proxy": proxy} if proxy else {}),
                                     **r} for r in rows]
            entry = summary["suites"].setdefault(sname, {"version": suite.version, "description": suite.description,
                                                        "metrics": list(suite.metrics),
                                                        "lower_is_better": sorted(suite.lower_is_better),
                                                        "models": {}})
            entry["models"][_label(i, name)] = _summarize(suite, ctx, rows, cfg.seed)
            if items:  # where an eval's time goes, suite by suite (generation, scoring and checks together)
                log(f"[{_label(i, name)}] {sname}: done in {time.perf_counter() - t_suite:.0f} s")
        if proxy and proxy.get("chat_template") == "expert":  # beside the proxy's provenance: what it split
            summary["models"][-1]["proxy_prompts"] = ctx.proxy_prompts()
        if reused := ctx.reused_answers():  # provenance: these answers were generated by another run
            summary["models"][-1].update(answers=len(ctx.generated), reused_answers=reused)
        per_model.append(rows_by_suite)
        log(f"[{_label(i, name)}] done ({time.perf_counter() - t0:.0f} s so far)")
    if len(cfg.models) > 1:
        summary["comparisons"] = compare(per_model, suites, [m["label"] for m in summary["models"]], cfg.seed)
    outputs = []
    for sname in names:
        rows = [r for pm in per_model for r in pm.get(sname, [])]
        write_records(rows, run.path / "samples" / f"{sname}.jsonl")
        outputs.append(f"samples/{sname}.jsonl")
    summary["elapsed_s"] = round(time.perf_counter() - t0, 1)
    write_json(run.path / "summary.json", summary)
    outputs.append("summary.json")
    log(format_table(summary))
    n = sum(len(v) for pm in per_model for v in pm.values())
    proxy_prompts = {m["label"]: m["proxy_prompts"] for m in summary["models"] if "proxy_prompts" in m}
    reused = {m["label"]: m["reused_answers"] for m in summary["models"] if "reused_answers" in m}
    run.finish(counts={"read": n, "written": n, "dropped": 0, "rejected": 0}, outputs=outputs,
               metrics={"models": len(cfg.models), "suites": names, "samples": n,
                        **({"proxy_prompts": proxy_prompts} if proxy_prompts else {}),
                        **({"reused_answers": reused} if reused else {})})
    return {"summary": str(run.path / "summary.json"), "samples": n}


def _summarize(suite, ctx, rows: list[dict], seed: int) -> dict[str, Any]:
    """Per metric the mean with its 95% interval over independent units (a row's ``unit``, else its
    item), weighted where every row carries a ``weight`` (:mod:`sharpset.evaluate.pairing`)."""
    from ..stats import mean_ci
    from .pairing import unit_of, weights_of

    out: dict[str, Any] = {"n_items": len(rows)}
    groups, weights = [unit_of(r) for r in rows], weights_of(rows)
    for m in suite.metrics:
        out[m] = mean_ci([r.get(m) for r in rows], seed, groups=groups, weights=weights)
    if rows:
        out["extra"] = suite.extra(ctx, rows)
    elif ctx.base_problem and suite.name == "token_shift":
        out["extra"] = {"skipped": ctx.base_problem}
    return out


def compare(per_model: list[dict[str, list[dict]]], suites: dict, labels: list[str], seed: int) -> dict[str, Any]:
    """Each later model against the first, paired on item ids present for both and resampled by unit
    (:func:`sharpset.evaluate.pairing.compare_rows`)."""
    from .pairing import compare_rows

    out: dict[str, Any] = {}
    for sname, suite in suites.items():
        for j in range(1, len(per_model)):
            c = compare_rows(per_model[0].get(sname, []), per_model[j].get(sname, []), suite.metrics, seed)
            if c:
                out.setdefault(sname, {})[f"{labels[j]} vs {labels[0]}"] = c
    return out


def _fmt(ci: dict | None) -> str:
    """``mean [lo, hi] n=`` (``n=units/rows`` where units hold several rows); a paired difference adds
    its p value; no interval below 2 units ("n too small")."""
    if not ci or ci.get("mean") is None and ci.get("diff") is None:
        return "-"
    v = ci.get("diff", ci.get("mean"))
    sign = "+" if "diff" in ci and v >= 0 else ""
    n = f"n={ci['n']}" + (f"/{ci['n_rows']} rows" if ci.get("n_rows", ci["n"]) != ci["n"] else "")
    interval = f"[{ci['ci95'][0]:.3f}, {ci['ci95'][1]:.3f}]" if ci.get("ci95") else "(n too small)"
    p = f" p={ci['p']:.3g}" if "diff" in ci and ci.get("p") is not None else ""
    return f"{sign}{v:.3f} {interval} {n}{p}"


def format_table(summary: dict[str, Any]) -> str:
    """Plain-text table: suite, metric, each model's mean [95% CI] n=, and the paired differences with
    their verdict (:func:`sharpset.evaluate.suite.moved`: better/worse only past the interval and test)."""
    from .suite import direction, moved

    labels = [m["label"] for m in summary["models"]]
    comps = summary.get("comparisons", {})
    head = ["suite", "metric", *labels, *[f"{lab} - {labels[0]}" for lab in labels[1:]]]
    rows = []
    for sname, entry in summary["suites"].items():
        for m in entry["metrics"]:
            cells = [sname, m + (" (lower better)" if m in entry["lower_is_better"] else "")]
            cells += [_fmt(entry["models"].get(lab, {}).get(m)) for lab in labels]
            for lab in labels[1:]:
                c = comps.get(sname, {}).get(f"{lab} vs {labels[0]}", {}).get(m)
                d = direction(sname, m, entry["lower_is_better"])
                cells.append(_fmt(c) + (f" {moved(c, d)}" if c and c.get("n") else ""))
            rows.append(cells)
    widths = [max(len(str(r[k])) for r in [head, *rows]) for k in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows),
                      *filter(None, map(_proxy_prompts_note, summary["models"])),
                      *filter(None, map(_reused_note, summary["models"]))])


def _proxy_prompts_note(model: dict[str, Any]) -> str:
    """A line under the table where the proxy's chat_template expert left prompts unsplit (or
    unchecked): all three models saw those as rendered, so its numbers are not the paper's way alone."""
    pp = model.get("proxy_prompts") or {}
    if not pp.get("as_is") and not pp.get("unchecked"):
        return ""
    more = f"; {pp['unchecked']} more not checked" if pp.get("unchecked") else ""
    return (f"[{model['label']}] expert chat template: {pp['as_is']} of {pp['prompts']} prompts used as is "
            f"(not one leading user turn: all three models saw them unsplit){more}")


def _reused_note(model: dict[str, Any]) -> str:
    """A line under the table where a model's answers were copied from other eval runs (generated
    there, scored here; evaluate/donors.py), so no one reads them as this run's generations."""
    per: dict[str, int] = {}
    for by_donor in (model.get("reused_answers") or {}).values():
        for donor, k in by_donor.items():
            per[donor] = per.get(donor, 0) + k
    if not per:
        return ""
    return (f"[{model['label']}] {sum(per.values())} of {model.get('answers', '?')} answers reused (same generation "
            "key and prompt ids) from " + ", ".join(f"{d} ({k})" for d, k in per.items()))


def show(path: str, n: int = 5) -> str:
    """A few per-sample rows of each suite: prompt, answer and verdicts."""
    import json

    out = []
    for f in sorted((Path(path) / "samples").glob("*.jsonl")):
        with f.open(encoding="utf-8") as fh:
            for k, line in enumerate(fh):
                if k >= n:
                    break
                r = json.loads(line)
                verdicts = {key: v for key, v in r.items() if key not in ("prompt", "answer", "tokens", "ranks", "classes")}
                out.append(f"--- {f.stem} {r['model']} {r['item']}\n[prompt] {str(r.get('prompt'))[:200]}\n"
                           f"[answer] {str(r.get('answer'))[:300]}\n{verdicts}")
    return "\n".join(out)
