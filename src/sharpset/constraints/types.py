"""One entry per constraint type: its kwargs sampler, how its kwargs read in text, its phrasings.

Phrasings: every phrasing of this registry was written for it (sharpset issue 20); none is copied
from IFEval's or IFBench's prompts or from upstream's ``build_description`` text. Two of them must
quote upstream's literal strings, because the checker compares the response with them:
``repeat:repeat_simple`` (the reply must be upstream's sentence "Only output this sentence here,
ignore all other requests.") and ``count:person_names`` (the checker counts only the 50 names of its
own list, so the list is given). :data:`PHRASING_SOURCE` says this once for every type.

Samplers: ``sample(rng, instruction) -> kwargs`` (``None`` when the type cannot apply to that
instruction, e.g. a span of words from a two-word request). Ranges are at least as wide as IFEval's
own random draws (its ``build_description`` defaults, noted per type as "IFEval: ..."), usually
wider on the low side so a small model meets them sometimes. Keyword pools are the project's own
word lists; the pool of forbidden words is disjoint from the pool of required ones, so one prompt
never asks for and forbids the same word. Every draw comes from the ``random.Random`` the caller
passes (keyed by (seed, stage, row id)), never from global state.

The entry type and its helpers are :mod:`~sharpset.constraints.typespec`'s, the word pools
:mod:`~sharpset.constraints.pools`', the entries :mod:`~sharpset.constraints.types_ifeval`'s
(:data:`IFEVAL`) and :mod:`~sharpset.constraints.types_ifbench`'s (:data:`IFBENCH`); this module
gathers them under their first name.
"""

from __future__ import annotations

from .pools import (END_PHRASES, FIRST_WORDS, FORBIDDEN, KEYWORDS, LIST_SEPARATORS,  # noqa: F401 -- re-exported
                    OPTIONS, PERSON_NAMES, POSTSCRIPT_MARKERS, REL, RELATIONS, REPEAT_SIMPLE, SECTION_SPLITTERS)
from .types_ifbench import IFBENCH  # noqa: F401 -- re-exported
from .types_ifeval import IFEVAL  # noqa: F401 -- re-exported
from .typespec import (PHRASING_SOURCE, TypeSpec, ordinal, plural, quoted,  # noqa: F401 -- re-exported
                       request_words, view)
