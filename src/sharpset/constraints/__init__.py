"""The verifiable-constraint registry (METHODS §9, §9b; issue 20): checkers, kwargs samplers,
phrasings, conflicts and the train / held-out split of types. Shared by ``sharpset constrain`` and
eval's format suites; not a stage.

**Checkers** are upstream's, never re-implemented: IFEval's 25 (Zhou et al. 2023) through
:mod:`sharpset.evaluate.ifeval` (kwargs validation, loose rule, offline Punkt, seeded langdetect)
and IFBench's (Pyatkin et al. 2025) through :mod:`sharpset.constraints.ifbench` (the same, for
IFBench's classes), both from the ``if-verifiable`` package. :func:`check` takes a mixed list.

**Types** (:data:`TYPES`): 25 IFEval + 45 IFBench = 70 usable. Of IFBench's 58, 13 are left out
(:data:`EXCLUDED`, each with its reason): 2 need nltk data no package ships
(``words:start_verb``: the POS tagger; ``ratio:stop_words``: the stopword list), and the 11
``custom:*`` types are whole tasks, not constraints -- their checker verifies one fixed task's
answer (Africa's countries in reverse order, a CSV of given columns, ...), so they cannot be
attached to another instruction.

**Split** (:data:`TRAIN_TYPES`, :data:`HELDOUT_TYPES`): IFEval's 25 types are the *train* (seen)
types and IFBench's 45 the *held-out* (unseen) ones, as in IFBench's own design (its test types
are chosen to be out of IFEval's distribution) and Tulu 3's IFEval vs IFEval-OOD finding (METHODS
§9b: training on IFEval's types transfers little to unseen ones, so seen and unseen are always
scored apart). ``constrain`` draws only train types unless told otherwise; :func:`resolve_types`
lets a config move any type to either side.

**Each type** (:mod:`~sharpset.constraints.types`): a seeded kwargs sampler over ranges at least
as wide as IFEval's own draws, three phrasings written for this registry
(:data:`~sharpset.constraints.types.PHRASING_SOURCE` says where they come from), and its conflicts
(:mod:`~sharpset.constraints.conflicts`). Draws use the ``random.Random`` a caller keys by
(seed, stage, row id) (:func:`rng_for`), never global state.

A drawn constraint is ``{"id", "kwargs", "phrasing"}``; a prompt's constraints map onto IFEval's
own fields: ``instruction_id_list = [c["id"] ...]``, ``kwargs = [c["kwargs"] ...]``.
"""

from __future__ import annotations

import random
from typing import Any, Iterable, Sequence

from ..evaluate import ifeval
from . import ifbench
from .conflicts import EXCLUSIVE, conflict, kwargs_problem
from .types import IFBENCH, IFEVAL, PHRASING_SOURCE, TypeSpec

__all__ = ["TYPES", "EXCLUDED", "TRAIN_TYPES", "HELDOUT_TYPES", "EXCLUSIVE", "PHRASING_SOURCE", "family",
           "spec", "validate_kwargs", "render", "user_turn", "draw", "check", "conflict", "kwargs_problem",
           "resolve_types", "rng_for", "COUNT_WEIGHTS"]

TYPES: dict[str, TypeSpec] = {**IFEVAL, **IFBENCH}

_WHOLE_TASK = ("a whole task, not a constraint: its checker verifies the answer to one fixed task "
               "(upstream's prompt), so it cannot be attached to another instruction")
EXCLUDED: dict[str, str] = {**ifbench.NEEDS_DATA,
                            **{t: _WHOLE_TASK for t in ifbench.SUPPORTED if t.startswith("custom:")}}

TRAIN_TYPES: tuple[str, ...] = tuple(IFEVAL)  # seen: IFEval's 25
HELDOUT_TYPES: tuple[str, ...] = tuple(IFBENCH)  # unseen: IFBench's 45 usable
GROUPS = {"train": TRAIN_TYPES, "heldout": HELDOUT_TYPES, "ifeval": TRAIN_TYPES, "ifbench": HELDOUT_TYPES,
          "all": TRAIN_TYPES + HELDOUT_TYPES}

# weights of 1, 2, 3 constraints per prompt: towards 2-3 (IFBench: 1 per prompt trains worst, 3 best)
COUNT_WEIGHTS = (0.2, 0.4, 0.4)

assert set(ifeval.SUPPORTED) == set(IFEVAL), "every IFEval checker has a registry entry"
assert set(ifbench.SUPPORTED) - set(IFBENCH) == {t for t in EXCLUDED if t in ifbench.SUPPORTED}
assert set(IFBENCH) <= set(ifbench.SUPPORTED)


def family(type_id: str) -> str:
    """``ifeval`` or ``ifbench``; a ValueError naming an unknown or excluded id."""
    if type_id in IFEVAL:
        return "ifeval"
    if type_id in IFBENCH:
        return "ifbench"
    if type_id in EXCLUDED:
        raise ValueError(f"{type_id}: excluded from the registry: {EXCLUDED[type_id]}")
    raise ValueError(f"unknown constraint type {type_id!r}; known: {', '.join(TYPES)}")


def spec(type_id: str) -> TypeSpec:
    family(type_id)
    return TYPES[type_id]


def resolve_types(names: Iterable[str], where: str = "types") -> list[str]:
    """Type ids for a list of ids and group names (train, heldout, ifeval, ifbench, all), in
    registry order, without repeats; a ValueError naming ``where`` for an unknown or excluded name."""
    want: set[str] = set()
    for n in names:
        if n in GROUPS:
            want |= set(GROUPS[n])
            continue
        try:
            family(n)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        want.add(n)
    return [t for t in TYPES if t in want]


def validate_kwargs(type_id: str, kwargs: dict | None) -> dict[str, Any]:
    """Checked kwargs (the upstream checker's validation: :mod:`sharpset.evaluate.ifeval` or
    :mod:`sharpset.constraints.ifbench`); a ValueError naming the id and the kwarg."""
    if family(type_id) == "ifeval":
        return ifeval.validate_kwargs(type_id, kwargs)
    return ifbench.validate_kwargs(type_id, kwargs)


def render(type_id: str, kwargs: dict, phrasing: int = 0) -> str:
    """The instruction text of one constraint: its ``phrasing``-th phrasing, filled from kwargs."""
    s = spec(type_id)
    if not 0 <= phrasing < len(s.phrasings):
        raise ValueError(f"{type_id}: phrasing {phrasing} out of range (0-{len(s.phrasings) - 1})")
    return s.phrasings[phrasing].format(**s.view(dict(kwargs)))


def user_turn(instruction: str, constraints: Sequence[dict]) -> str:
    """The instruction followed by its constraints' text: ``instruction\\n\\nC1 C2 ...``."""
    text = " ".join(render(c["id"], c["kwargs"], c.get("phrasing", 0)) for c in constraints)
    return f"{instruction.rstrip()}\n\n{text}" if text else instruction


def rng_for(seed: int, stage: str, row_id: str) -> random.Random:
    """The generator for one row: keyed by (seed, stage, row id) (STYLE habit 3)."""
    from ..run import derive_seed

    return random.Random(derive_seed(seed, stage, row_id))


def draw(rng: random.Random, instruction: str, types: Sequence[str],
         count_weights: Sequence[float] = COUNT_WEIGHTS) -> list[dict[str, Any]]:
    """1..len(count_weights) constraints for one instruction, from ``types``, none conflicting.

    How many: drawn with ``count_weights`` (weights of 1, 2, 3, ...). Each next type: uniform
    among the types left that conflict with none chosen (:func:`conflict`) -- types that dictate the
    whole reply (:data:`EXCLUSIVE`) only when one constraint is drawn; its kwargs from its
    sampler; a type whose sampler does not apply to this instruction, or whose kwargs break a
    kwargs rule (:func:`kwargs_problem`), is set aside and another drawn. Fewer than asked come back
    when the types run out. Returns ``[{"id", "kwargs", "phrasing"}]`` in draw order.
    """
    n = rng.choices(range(1, len(count_weights) + 1), weights=count_weights)[0]
    chosen: list[dict[str, Any]] = []
    left = list(types)
    while len(chosen) < n:
        options = [t for t in left if all(conflict(t, c["id"]) is None for c in chosen)]
        if n > 1:  # a type that dictates the whole reply would end the draw at one
            options = [t for t in options if t not in EXCLUSIVE] or options
        if not options:
            break
        t = rng.choice(options)
        left.remove(t)
        s = TYPES[t]
        kw = s.sample(rng, instruction)
        if kw is None:
            continue
        cand = {"id": t, "kwargs": kw, "phrasing": rng.randrange(len(s.phrasings))}
        if kwargs_problem(chosen, cand, instruction) is None:
            chosen.append(cand)
    return chosen


def check(instruction_ids: Sequence[str], kwargs: Sequence[dict], prompt: str, response: str) -> dict:
    """Verdicts for one response against a mix of IFEval and IFBench types, in the given order.

    Returns :func:`sharpset.evaluate.ifeval.check`'s shape: ``{"strict": [bool], "loose": [bool],
    "prompt_strict", "prompt_loose"}``. Both families use IFEval's strict and loose rules
    (:func:`sharpset.evaluate.ifeval.loose_variants`; an empty response fails everything).
    """
    if isinstance(instruction_ids, str) or not isinstance(instruction_ids, (list, tuple)):
        raise ValueError(f"instruction_ids must be a list of ids, got {instruction_ids!r}")
    if not isinstance(kwargs, (list, tuple)) or len(kwargs) != len(instruction_ids):
        raise ValueError(f"kwargs must be a list with one dict per instruction ({len(instruction_ids)}), "
                         f"got {kwargs!r}")
    fams = [family(t) for t in instruction_ids]
    strict: list[bool] = [False] * len(fams)
    loose: list[bool] = [False] * len(fams)
    ev = [i for i, f in enumerate(fams) if f == "ifeval"]
    if ev:
        got = ifeval.check([instruction_ids[i] for i in ev], [kwargs[i] for i in ev], prompt, response)
        for j, i in enumerate(ev):
            strict[i], loose[i] = got["strict"][j], got["loose"][j]
    bench = [i for i, f in enumerate(fams) if f == "ifbench"]
    if bench:
        if not isinstance(response, str) or not isinstance(prompt, str):
            raise ValueError("prompt and response must be strings")
        variants = ifeval.loose_variants(response)
        for i in bench:
            c = ifbench.checker(instruction_ids[i], ifbench.validate_kwargs(instruction_ids[i], kwargs[i]))
            strict[i] = ifbench.follows(c, response)
            loose[i] = any(ifbench.follows(c, v) for v in variants)
    return {"strict": strict, "loose": loose, "prompt_strict": all(strict), "prompt_loose": all(loose)}
