"""``sweep``'s proxy-tuning arms (issue 22, item 3; arXiv:2401.08565, METHODS §7): alpha as a dial.

With ``proxy: {antiexpert: K | MODEL, alphas: [...], chat_template: all | expert, targets: [...],
heal_steps: N}`` in the sweep's config, every trained cell (target, n, seed) of ``proxy.targets``
(default: every target) also gets, beside its direct tuning (``train``, ``eval``):

- ``proxy/expert``: the anti-expert trained by ``train`` on the cell's own rows with the cell's budget
  (steps, lr, batch size, seed, objective) -- the expert;
- ``proxy/expert-eval``: the expert alone, on the sweep's eval items;
- ``proxy/alpha-<a>``: the swept model steered by ``base + a * (expert - antiexpert)`` (``--engine
  proxy``, ``chat_template`` as given), one eval run per alpha, on the same items.

The anti-expert is one per sweep: ``antiexpert: K`` derives the swept model's first K decoder layers
(1 <= K < its layers, checked on its config before anything runs; ``sharpset derive`` as a stage
run, ``proxy-antiexpert/``; DESIGN.md: the honest small-scale analogue
with one vocabulary is a model derived from the base). A plain truncation decodes noise (measured on
gemma3-270m at K = 12..17), so its ``expert - antiexpert`` is mostly noise: ``heal_steps: N`` (> 0, K
only) first distils the derivative from the swept model for N steps on the plain text of the sweep's
``pool`` (:mod:`sharpset.models.derive`, healing; a derive stage without heal settings when N is 0,
the default, so such sweeps keep their cache). A model name or folder is used as given (it
must share the swept model's tokenizer; the proxy engine refuses it otherwise, naming the first
differing token). It is evaluated alone once (``proxy-antiexpert-eval/``). Every step is a cached,
resumable stage run, read from another sweep's folder where one did the same work (the sweep's
``reuse``).

sweep.json's ``proxy`` holds the settings and, per cell, :func:`sharpset.report.proxy.table` of the
group these runs form (found by :func:`sharpset.report.proxy.groups` over the sweep folder and the
runs it reused, as ``sharpset report`` finds it): base (the sweep's ``baseline``), anti-expert,
expert alone, proxy per alpha and the base tuned directly (the cell's own ``eval``), paired on the
same items, with the share of the gap closed and, on the knowledge suite, knowledge kept. sweep.md
shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from .quickstart import stage_run
from .reuse import Reuse

ALPHAS = [0.5, 1.0, 1.5]  # the dial; alpha 0 is the base alone
DEFAULTS: dict[str, Any] = {"antiexpert": None, "alphas": ALPHAS, "chat_template": "all", "targets": None,
                            "heal_steps": 0}
HELP = ("proxy-tuning arms per cell (issue 22): {antiexpert: K (derive the swept model's first K decoder layers) "
        "or a model sharing its tokenizer, alphas: [0.5, 1.0, 1.5], chat_template: all | expert, targets: [...] "
        "(default: every target), heal_steps: 0 (K only: first distil the derivative from the swept model for this "
        "many steps on the pool's text; a plain truncation decodes noise)}; the expert is the anti-expert trained on "
        "each cell's rows with its budget; empty = no proxy arms")
ANTI_DIR, ANTI_EVAL_DIR = "proxy-antiexpert", "proxy-antiexpert-eval"


def settings(proxy: dict, targets: list) -> dict[str, Any]:
    """The proxy settings with defaults filled in (``targets``: the sweep's when not given);
    ``heal_steps`` only where > 0, so a sweep without healing has the settings and sweep.json it had."""
    out = {k: proxy.get(k, v) for k, v in DEFAULTS.items()}
    out["alphas"] = [float(a) for a in out["alphas"]]
    out["targets"] = list(out["targets"] if out["targets"] is not None else targets)
    if not out["heal_steps"]:
        del out["heal_steps"]
    return out


def check(proxy: Any, targets: list) -> list[tuple[str, str]]:
    """Problems with the sweep's ``proxy`` mapping, as (field, problem); nothing is loaded."""
    from ..engine.proxy import CHAT_TEMPLATE_MODES

    if not isinstance(proxy, dict):
        return [("proxy", f"expected a mapping, got {proxy!r}")]
    if not proxy:
        return []
    p = [(f"proxy.{k}", f"unknown key; known: {', '.join(DEFAULTS)}") for k in sorted(set(proxy) - set(DEFAULTS))]
    anti = proxy.get("antiexpert")
    if isinstance(anti, bool) or not ((isinstance(anti, int) and anti >= 1) or (isinstance(anti, str) and anti)):
        p.append(("proxy.antiexpert", "required: K >= 1 (the swept model's first K decoder layers, derived) or a "
                                      f"model name / folder sharing the swept model's tokenizer; got {anti!r}"))
    alphas = proxy.get("alphas", ALPHAS)
    finite = isinstance(alphas, list) and all(not isinstance(a, bool) and isinstance(a, (int, float))
                                               and a == a and abs(a) != float("inf") for a in alphas)
    if not finite or not alphas:
        p.append(("proxy.alphas", f"a non-empty list of finite numbers, got {alphas!r}"))
    elif len({f"{a:g}" for a in alphas}) != len(alphas):
        p.append(("proxy.alphas", f"each alpha once, got {alphas!r}"))
    if proxy.get("chat_template", "all") not in CHAT_TEMPLATE_MODES:
        p.append(("proxy.chat_template", f"must be one of {', '.join(CHAT_TEMPLATE_MODES)}, "
                                         f"got {proxy.get('chat_template')!r}"))
    heal = proxy.get("heal_steps", 0)
    if isinstance(heal, bool) or not isinstance(heal, int) or heal < 0:
        p.append(("proxy.heal_steps", f"an integer >= 0 (0 = no healing), got {heal!r}"))
    elif heal > 0 and not (isinstance(anti, int) and not isinstance(anti, bool)):
        p.append(("proxy.heal_steps", f"heals a derived anti-expert: only with antiexpert K, got antiexpert {anti!r}"))
    ts = proxy.get("targets")
    if ts is not None and (not isinstance(ts, list) or not ts or set(ts) - set(targets)):
        p.append(("proxy.targets", f"a non-empty list of the sweep's targets ({', '.join(targets)}), got {ts!r}"))
    return p


def key_inputs(proxy: dict) -> dict[str, str]:
    """What the proxy arms add to the sweep's own key: the derive stage's version, a given anti-expert."""
    if not proxy:
        return {}
    from ..models import derive
    from ..run import models_read

    anti = proxy.get("antiexpert")
    return {f"stage:{derive.STAGE}": str(derive.VERSION), **(models_read(anti) if isinstance(anti, str) else {})}


def arm_dir(cell: Path, alpha: float) -> Path:
    return cell / "proxy" / f"alpha-{alpha:g}"


def derive_config(model: str, s: dict, pool: str) -> dict[str, Any]:
    """The derive stage's config for ``antiexpert: K``: heal fields only with ``heal_steps`` > 0 (the
    pool as heal data), so a sweep without healing keeps its derive run's key."""
    heal = {"heal_steps": s["heal_steps"], "heal_data": pool} if s.get("heal_steps") else {}
    return {"model": model, "keep_layers": s["antiexpert"], **heal}


def antiexpert(model: str, s: dict, ev: dict, root: Path, log: Callable[[str], None], reuse: Reuse | None = None,
               pool: str = "") -> str:
    """The sweep's one anti-expert (derived when ``antiexpert`` is K, healed on ``pool`` with
    ``heal_steps``), evaluated alone once; its model path."""
    from ..engine.proxy import check_model
    from ..evaluate import stage as eval_stage
    from ..models import derive
    from ..models.registry import resolve_model

    anti = s["antiexpert"]
    if s.get("heal_steps") and not pool:
        raise UserError("proxy.heal_steps: the derivative is healed on the sweep's pool: give `pool`")
    try:
        if isinstance(anti, int):
            problem = derive.keep_layers_problem(model, anti)  # the swept model's config: before any run
            if problem:
                raise UserError(f"K (the swept model's first K decoder layers) {problem}")
            d = stage_run(derive, derive_config(model, s, pool), "DeriveConfig", root / ANTI_DIR, log, reuse=reuse)
            anti = str(d.path / "model")
        anti = resolve_model(anti)  # a train run folder -> its model folder, which `train` starts the experts from
        # one vocabulary, refused here rather than at the first cell's proxy eval (tokenizers and configs only)
        check_model(model, {"expert": model, "antiexpert": anti, "chat_template": s["chat_template"]}, log=log)
    except UserError as e:
        raise UserError(f"proxy.antiexpert: {e}") from None
    stage_run(eval_stage, {"models": [anti], **ev}, "EvalConfig", root / ANTI_EVAL_DIR, log, reuse=reuse)
    return anti


def arms(model: str, anti: str, s: dict, cell: Path, tcfg: dict, inputs: list[str], seed: int, ev: dict,
         log: Callable[[str], None], reuse: Reuse | None = None) -> str:
    """One cell's expert (trained as the cell's direct tuning, from the anti-expert), its eval alone,
    and the proxy's eval per alpha; the expert's train run folder (reused: elsewhere)."""
    from .. import train
    from ..evaluate import stage as eval_stage

    expert = stage_run(train, {**tcfg, "model": anti}, "TrainConfig", cell / "proxy" / "expert", log, inputs=inputs,
                       seed=seed, reuse=reuse)
    stage_run(eval_stage, {"models": [str(expert.path)], **ev}, "EvalConfig", cell / "proxy" / "expert-eval", log,
              reuse=reuse)
    for a in s["alphas"]:
        opts = {"expert": str(expert.path), "antiexpert": anti, "alpha": a, "chat_template": s["chat_template"]}
        stage_run(eval_stage, {"models": [model], **ev, "engine": "proxy", "engine_options": opts}, "EvalConfig",
                  arm_dir(cell, a), log, reuse=reuse)
    return str(expert.path)


def summarize(root: Path, model: str, s: dict, anti: str, done: list[tuple[str, int, int, str, int | None]],
              experts: dict[str, str] | None = None, reused: list[str] = ()) -> dict[str, Any]:
    """sweep.json's ``proxy``: the settings and, per cell with arms, report/proxy.py's paired table (a
    cell whose proxy evals are not found says so in its ``notes``). ``experts``: a cell's expert where
    it is not ``cells/<cell>/proxy/expert``; ``reused``: the run folders read from elsewhere, searched
    beside the sweep's (named by their path in the tables)."""
    from ..report.collect import collect
    from ..report.proxy import groups, table

    def real(p: Any) -> str:
        return str(Path(str(p)).resolve())

    experts = experts or {}
    by_expert = {str(experts.get(name, root / "cells" / name / "proxy" / "expert")): (target, n, seed, name)
                 for target, n, seed, name, _ in done if target in s["targets"]}
    by_real = {real(e): cell for e, cell in by_expert.items()}
    col = collect([root, *dict.fromkeys(map(str, reused))])
    for r in col.runs:  # a run found in a reused folder: named by its path, not as a run of this sweep
        if not r.path.is_relative_to(root.resolve()):
            r.name = str(r.path)
    found = {}
    for g in groups(col):
        cell = by_real.get(real(g.names["expert"]))
        if cell is not None and real(g.names["antiexpert"]) == real(anti):
            found[cell] = table(g)
    missing = {"base": model, "antiexpert": anti, "chat_template": s["chat_template"], "columns": [], "rows": [],
               "notes": ["no proxy eval run of this cell's expert was found under the sweep folder"]}
    healed = {"heal_steps": s["heal_steps"]} if s.get("heal_steps") else {}
    return {"antiexpert": anti, "keep_layers": s["antiexpert"] if isinstance(s["antiexpert"], int) else None,
            **healed, "alphas": s["alphas"], "chat_template": s["chat_template"], "targets": s["targets"],
            "cells": [{"target": t, "n": n, "seed": seed, "cell": name,
                       **found.get((t, n, seed, name), {**missing, "expert": expert})}
                      for expert, (t, n, seed, name) in by_expert.items()]}


def markdown(p: dict[str, Any]) -> list[str]:
    """sweep.md's proxy section: per cell, the report's paired table, share of the gap closed and
    knowledge kept (report/proxy.py's text)."""
    from ..report.proxy import INTRO, table_md

    healed = f", healed by {p['heal_steps']} steps of distillation from it on the pool" if p.get("heal_steps") else ""
    derived = f" (the swept model's first {p['keep_layers']} decoder layers{healed})" if p.get("keep_layers") else ""
    out = ["", "## Proxy-tuning per cell", "", INTRO, "",
           f"Anti-expert: {p['antiexpert']}{derived}; expert: the anti-expert trained on the cell's rows with the "
           f"cell's budget; alphas {', '.join(f'{a:g}' for a in p['alphas'])}; chat template {p['chat_template']}.",
           ""]
    for c in p["cells"]:
        out += [f"### {c['cell']}: proxy-tuning ({c['target']}, n={c['n']}, seed {c['seed']})", ""] + table_md(c)
    return out
