"""What one constraint type's registry entry is (:class:`TypeSpec`), and the helpers its phrasings
and samplers share: ordinals, quoted word lists, plurals, a request's words.

:mod:`sharpset.constraints.types` says how the entries are written; the entries themselves are in
:mod:`~sharpset.constraints.types_ifeval` and :mod:`~sharpset.constraints.types_ifbench`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

PHRASING_SOURCE = ("sharpset issue 20: written for this registry by the project; not taken from IFEval's or "
                   "IFBench's prompts or upstream description strings (except the literal strings a checker "
                   "compares with: repeat:repeat_simple's sentence, count:person_names' name list)")


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def quoted(words: list[str] | tuple[str, ...]) -> str:
    """'"a"', '"a" and "b"', '"a", "b" and "c"'."""
    q = [f'"{w}"' for w in words]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def request_words(instruction: str) -> list[str]:
    return instruction.split()


@dataclass(frozen=True)
class TypeSpec:
    """How one type is drawn and said. ``sample(rng, instruction)``: kwargs or None (not applicable);
    ``view(kwargs)``: the values the phrasings' ``{fields}`` read; ``phrasings``: str.format
    templates, all the project's own text (:data:`PHRASING_SOURCE`); ``words``: ``(min, max)`` words
    a reply meeting it needs or allows (``max`` None = no bound), for the words-budget check of
    :mod:`sharpset.constraints.conflicts`; ``exclusive``: the type dictates the whole reply, so it
    never shares a prompt."""

    sample: Callable[[random.Random, str], dict | None]
    phrasings: tuple[str, ...]
    view: Callable[[dict], dict] = dict
    words: Callable[[dict, str], tuple[int, int | None]] = lambda kw, ins: (0, None)
    exclusive: bool = False


def _none(rng: random.Random, instruction: str) -> dict:
    return {}


def view(spec: TypeSpec, kwargs: dict) -> dict[str, Any]:
    """The values a phrasing of ``spec`` reads, for these kwargs."""
    return spec.view(dict(kwargs))
