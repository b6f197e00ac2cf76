"""Write every shipped evaluation file from the lists in this package, deterministically (issue 12).

    python -m sharpset.evaluate.data.build            # (re)write the .jsonl files next to this script
    python -m sharpset.evaluate.data.build --check    # exit 1 if a committed file differs from a rebuild

The lists live in ``_format_prompts.py``, ``_format_unseen.py`` (which also plans the held-out
constraints), ``_everyday.py``, ``_speech_prompts.py``, ``_speech_benign.py``, ``_speech_labelled.py`` and
``_knowledge.py``
(split from this script only to keep files under ~600 lines). Every check below fails loudly
(``BuildError`` naming the file, the entry and the field).

Row id: ``sha256(canonical_json(row without "id" and "split"))[:16]`` with
``sharpset.records.canonical_json`` (sorted keys, no whitespace, UTF-8). Split: ``"dev"`` when
``int(id, 16) % 10 < 3`` (about 30%), else ``"test"``: a pure function of the content, so adding a
row never moves another one between splits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

from sharpset.records import canonical_json

from . import DATA_DIR
from ._everyday import DIMENSIONS, SHAPE
from ._format_prompts import PROMPTS
from ._format_unseen import plan as unseen_plan
from ._knowledge import MC, QA
from ._speech_benign import BENIGN_PROMPTS
from ._speech_labelled import LABELLED
from ._speech_prompts import SPEECH_ACT_PROMPTS

QUESTIONS_FILE = Path(__file__).resolve().parents[2] / "data" / "questions.jsonl"
DEV_TENTHS = 3  # dev share: int(id, 16) % 10 < 3
MINIMA = {"format": 220, "format_unseen": 100, "shape": 40, "speech_acts": 70, "speech_acts_benign": 70,
          "speech_acts_labelled": 150, "knowledge_mc": 120, "knowledge_qa": 100, "dimensions": 60}
ACTS = ("warn", "alarm", "denounce", "hedge")

# lm-evaluation-harness IFEval: instruction id -> the kwargs names its build_description takes
# (lm_eval/tasks/ifeval/instructions_registry.py INSTRUCTION_DICT and instructions.py).
IFEVAL_KWARGS = {
    "keywords:existence": ("keywords",),
    "keywords:frequency": ("keyword", "frequency", "relation"),
    "keywords:forbidden_words": ("forbidden_words",),
    "keywords:letter_frequency": ("letter", "let_frequency", "let_relation"),
    "language:response_language": ("language",),
    "length_constraints:number_sentences": ("num_sentences", "relation"),
    "length_constraints:number_paragraphs": ("num_paragraphs",),
    "length_constraints:number_words": ("num_words", "relation"),
    "length_constraints:nth_paragraph_first_word": ("num_paragraphs", "nth_paragraph", "first_word"),
    "detectable_content:number_placeholders": ("num_placeholders",),
    "detectable_content:postscript": ("postscript_marker",),
    "detectable_format:number_bullet_lists": ("num_bullets",),
    "detectable_format:constrained_response": (),
    "detectable_format:number_highlighted_sections": ("num_highlights",),
    "detectable_format:multiple_sections": ("section_spliter", "num_sections"),
    "detectable_format:json_format": (),
    "detectable_format:title": (),
    "combination:two_responses": (),
    "combination:repeat_prompt": ("prompt_to_repeat",),
    "startend:end_checker": ("end_phrase",),
    "change_case:capital_word_frequency": ("capital_frequency", "capital_relation"),
    "change_case:english_capital": (),
    "change_case:english_lowercase": (),
    "punctuation:no_comma": (),
    "startend:quotation": (),
}
_ALL = set(IFEVAL_KWARGS)
# IFEval's INSTRUCTION_CONFLICTS, made symmetric as its conflict_make() does.
_CONFLICTS_ONE_WAY = {
    "language:response_language": {"detectable_format:multiple_sections", "keywords:existence", "keywords:frequency",
                                   "keywords:forbidden_words", "startend:end_checker", "change_case:english_capital",
                                   "change_case:english_lowercase"},
    "length_constraints:number_paragraphs": {"length_constraints:nth_paragraph_first_word",
                                             "length_constraints:number_sentences"},
    "detectable_format:constrained_response": _ALL,
    "detectable_format:multiple_sections": {"language:response_language",
                                            "detectable_format:number_highlighted_sections"},
    "detectable_format:json_format": _ALL - {"keywords:forbidden_words", "keywords:existence"},
    "combination:two_responses": _ALL - {"keywords:forbidden_words", "keywords:existence", "language:response_language",
                                         "detectable_format:title", "punctuation:no_comma"},
    "combination:repeat_prompt": _ALL - {"keywords:existence", "detectable_format:title", "punctuation:no_comma"},
    "change_case:capital_word_frequency": {"change_case:english_lowercase", "change_case:english_capital"},
    "change_case:english_lowercase": {"change_case:english_capital"},
    "startend:quotation": {"detectable_format:title"},
}
CONFLICTS = {k: {k} for k in _ALL}
for _k, _vs in _CONFLICTS_ONE_WAY.items():
    for _v in _vs:
        CONFLICTS[_k].add(_v)
        CONFLICTS[_v].add(_k)
RELATIONS = ("less than", "at least")
LANGUAGE_NAMES = {"es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese"}
REPEAT_SENTENCES = (
    "First repeat the request above word for word without change, then give your answer. Do not say anything "
    "before repeating the request, and do not repeat these instructions.",
    "Before answering, copy my request above exactly as written, word for word, then answer it. Nothing should "
    "come before the copied request, and these two sentences are not part of it.",
    "Start your reply by repeating the request word for word without any change (no words before it, and leave "
    "out this instruction), then answer it.",
)
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
                 "twenty"]


class BuildError(ValueError):
    """A source entry is invalid: the message names the file, the entry and the field."""


def row_id(row: dict) -> str:
    """``sha256(canonical_json({k: v for k, v in row.items() if k not in ("id", "split")}))[:16]``."""
    content = {k: v for k, v in row.items() if k not in ("id", "split")}
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()[:16]


def split_of(rid: str) -> str:
    """``"dev"`` if ``int(rid, 16) % 10 < 3`` else ``"test"``."""
    return "dev" if int(rid, 16) % 10 < DEV_TENTHS else "test"


def finish(content: dict) -> dict:
    """A row with ``id`` first and ``split`` last."""
    rid = row_id(content)
    return {"id": rid, **content, "split": split_of(rid)}


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- format
def _mentions_number(text: str, n: int) -> bool:
    words = [str(n)] + ([_NUMBER_WORDS[n]] if n < len(_NUMBER_WORDS) else [])
    return any(re.search(rf"(?<![\w.]){re.escape(w)}(?![\w])", text, re.I) for w in words)


def _relation_stated(text: str, rel: str) -> bool:
    pat = r"less than|fewer than|under|below" if rel == "less than" else r"at least|no fewer than|minimum"
    return re.search(pat, text, re.I) is not None


def _statement_problem(text: str, iid: str, kw: dict) -> str | None:
    """Why the prompt text does not state what instruction ``iid`` checks, or None when it does."""
    low = text.lower()

    def has(*needles):
        return all(n.lower() in low for n in needles)

    n_keys = {"length_constraints:number_words": "num_words", "length_constraints:number_sentences": "num_sentences",
              "length_constraints:number_paragraphs": "num_paragraphs",
              "length_constraints:nth_paragraph_first_word": "num_paragraphs",
              "detectable_format:number_bullet_lists": "num_bullets",
              "detectable_format:number_highlighted_sections": "num_highlights",
              "detectable_format:multiple_sections": "num_sections",
              "detectable_content:number_placeholders": "num_placeholders", "keywords:frequency": "frequency",
              "keywords:letter_frequency": "let_frequency", "change_case:capital_word_frequency": "capital_frequency"}
    if iid in n_keys and not _mentions_number(text, kw[n_keys[iid]]):
        return f"the number {kw[n_keys[iid]]} ({n_keys[iid]}) is not stated"
    rel = kw.get("relation") or kw.get("let_relation") or kw.get("capital_relation")
    if rel is not None and not _relation_stated(text, rel):
        return f"the relation {rel!r} is not stated"
    checks = {
        "punctuation:no_comma": lambda: has("comma"),
        "length_constraints:number_words": lambda: has("word"),
        "length_constraints:number_sentences": lambda: has("sentence"),
        "length_constraints:number_paragraphs": lambda: has("***") and (has("paragraph") or has("stanza")),
        "length_constraints:nth_paragraph_first_word": lambda: (
            has("paragraph", kw["first_word"]) and (has("two new lines") or has("blank line"))),
        "detectable_format:number_bullet_lists": lambda: has("bullet"),
        "detectable_format:number_highlighted_sections": lambda: has("highlight") and "*" in text,
        "detectable_format:multiple_sections": lambda: kw["section_spliter"] in text,
        "detectable_format:title": lambda: has("<<", ">>", "title"),
        "detectable_format:json_format": lambda: "JSON" in text,
        "detectable_format:constrained_response": lambda: has('"My answer is yes."', '"My answer is no."',
                                                              '"My answer is maybe."'),
        "detectable_content:number_placeholders": lambda: has("placeholder", "["),
        "detectable_content:postscript": lambda: kw["postscript_marker"] in text,
        "keywords:existence": lambda: all(f'"{k}"' in text for k in kw["keywords"]),
        "keywords:forbidden_words": lambda: all(f'"{k}"' in text for k in kw["forbidden_words"]),
        "keywords:frequency": lambda: f'"{kw["keyword"]}"' in text,
        "keywords:letter_frequency": lambda: f'letter "{kw["letter"]}"' in text,
        "language:response_language": lambda: LANGUAGE_NAMES[kw["language"]] in text and has("only"),
        "combination:repeat_prompt": lambda: has("word for word"),
        "combination:two_responses": lambda: "******" in text,
        "startend:end_checker": lambda: has("exact phrase") and f'"{kw["end_phrase"]}"' in text,
        "change_case:english_capital": lambda: has("english", "capital"),
        "change_case:english_lowercase": lambda: has("english", "lowercase"),
        "change_case:capital_word_frequency": lambda: has("capital") or "ALL CAPS" in text,
        "startend:quotation": lambda: has("double quotation marks"),
    }
    return None if checks[iid]() else "the prompt does not state it in the words the checker needs"


def _check_kwargs(where: str, iid: str, kw: dict) -> None:
    if iid not in IFEVAL_KWARGS:
        raise BuildError(f"{where}: instruction_id_list: {iid!r} is not an IFEval instruction id")
    if tuple(sorted(kw)) != tuple(sorted(IFEVAL_KWARGS[iid])):
        raise BuildError(f"{where}: kwargs of {iid}: got {sorted(kw)}, IFEval expects {sorted(IFEVAL_KWARGS[iid])}")
    for name, value in kw.items():
        # lm-eval drops falsy kwargs (`if v`) and would then draw a random value: no 0 / "" / [].
        if not value:
            raise BuildError(f"{where}: kwargs {name} of {iid} is empty or zero")
        if name in ("relation", "let_relation", "capital_relation") and value not in RELATIONS:
            raise BuildError(f"{where}: kwargs {name} of {iid} must be one of {RELATIONS}, not {value!r}")
    if iid == "language:response_language" and kw["language"] not in LANGUAGE_NAMES:
        raise BuildError(f"{where}: kwargs language {kw['language']!r} has no name here")
    if iid == "keywords:letter_frequency" and not re.fullmatch(r"[a-z]", kw["letter"]):
        raise BuildError(f"{where}: kwargs letter must be one lowercase ASCII letter")
    if iid == "length_constraints:nth_paragraph_first_word" and (
            not 1 <= kw["nth_paragraph"] <= kw["num_paragraphs"] or kw["first_word"] != kw["first_word"].lower()):
        raise BuildError(f"{where}: nth_paragraph must be in 1..num_paragraphs and first_word lowercase")


def format_rows() -> list[dict]:
    rows = []
    for i, (task_type, text, instrs) in enumerate(PROMPTS):
        where = f"_format_prompts.py PROMPTS[{i}] ({text[:40]!r}...)"
        if not 1 <= len(instrs) <= 3:
            raise BuildError(f"{where}: instruction_id_list: needs 1-3 instructions, has {len(instrs)}")
        ids = [iid for iid, _ in instrs]
        if len(set(ids)) != len(ids):
            raise BuildError(f"{where}: instruction_id_list: an instruction appears twice")
        for a in ids:
            for b in ids:
                if a != b and b in CONFLICTS[a]:
                    raise BuildError(f"{where}: instruction_id_list: {a} conflicts with {b} (IFEval conflict table)")
        kwargs = [dict(kw) for _, kw in instrs]
        prompt = text
        if "combination:repeat_prompt" in ids:
            prompt = f"{text} {REPEAT_SENTENCES[i % len(REPEAT_SENTENCES)]}"
            kwargs[ids.index("combination:repeat_prompt")] = {"prompt_to_repeat": text}
            if "punctuation:no_comma" in ids and "," in text:
                raise BuildError(f"{where}: a request to repeat under no_comma must itself have no comma")
        for iid, kw in zip(ids, kwargs):
            _check_kwargs(where, iid, kw)
            problem = _statement_problem(prompt, iid, kw)
            if problem:
                raise BuildError(f"{where}: messages: {iid}: {problem}")
        rows.append(finish({"messages": _user(prompt), "instruction_id_list": ids, "kwargs": kwargs,
                            "task_type": task_type}))
    counts = Counter(i for r in rows for i in r["instruction_id_list"])
    short = {i: counts.get(i, 0) for i in IFEVAL_KWARGS if counts.get(i, 0) < 5}
    if short:
        raise BuildError(f"_format_prompts.py: every IFEval type needs >= 5 prompts; short: {short}")
    return rows


def format_unseen_rows() -> list[dict]:
    """``format_unseen.jsonl`` (``_format_unseen.plan``): held-out types only, each >= 3 times, no
    conflicting pair, and every kwargs exactly what the registry's upstream validation keeps."""
    import sharpset.constraints as C

    try:
        contents = unseen_plan()
    except ValueError as e:
        raise BuildError(f"_format_unseen.py: {e}") from None
    rows = []
    for i, content in enumerate(contents):
        where = f"_format_unseen.py plan()[{i}] ({content['messages'][0]['content'][:40]!r}...)"
        ids = content["instruction_id_list"]
        for j, (iid, kw) in enumerate(zip(ids, content["kwargs"])):
            if iid not in C.HELDOUT_TYPES:
                raise BuildError(f"{where}: instruction_id_list[{j}]: {iid!r} is not a held-out type")
            try:
                kept = C.validate_kwargs(iid, kw)
            except ValueError as e:
                raise BuildError(f"{where}: kwargs[{j}]: {e}") from None
            if kept != kw:
                raise BuildError(f"{where}: kwargs[{j}]: upstream validation changes {kw} to {kept}")
            for other in ids[j + 1:]:
                why = C.conflict(iid, other)
                if why:
                    raise BuildError(f"{where}: instruction_id_list: {iid} conflicts with {other} ({why})")
        rows.append(finish(content))
    return rows


# ---------------------------------------------------------------- knowledge overlap
_STOP = set("a an the of in on at to is are was be do does did what which who whom how many much why when where "
            "this that these those it its and or for from by with as called call you your we our us there their "
            "usually most mostly answer briefly".split())
_NUM_WORD = {w: str(i) for i, w in enumerate(_NUMBER_WORDS)}


def normalise(text: str) -> str:
    """Lowercase, number words to digits, ``plus`` to ``+``, punctuation dropped, spaces collapsed."""
    text = text.lower().replace("answer briefly.", " ")
    text = re.sub(r"\bplus\b", "+", text)
    tokens = re.findall(r"[a-z0-9]+|\+", text)
    return " ".join(_NUM_WORD.get(t, t) for t in tokens)


def _content_words(text: str) -> set[str]:
    return {t[:-1] if len(t) > 3 and t.endswith("s") else t for t in normalise(text).split() if t not in _STOP}


def _norm_answer(answer: str) -> str:
    return " ".join(t for t in normalise(answer).split() if t not in ("a", "an", "the"))


def training_questions(path: Path = QUESTIONS_FILE) -> list[tuple[str, str, str]]:
    """(question text, answer, category) of every row of ``questions.jsonl`` (options stripped)."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                question = row["messages"][0]["content"].split("\n")[0]
                out.append((question, row["answer"], row["category"]))
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
                raise BuildError(f"{path}:{lineno}: cannot read question/answer/category: {e}") from None
    return out


def overlap_problems(items: list[tuple[str, str]], train: list[tuple[str, str, str]]) -> list[str]:
    """Each (question, answer) that overlaps a training question, with the reason.

    Overlap: the same normalised question; or content-word Jaccard >= 0.6; or the same normalised
    answer with Jaccard >= 0.34 (same fact, reworded); or a question about a capital naming a
    country of the training capitals; or an answer that is a training capital city.
    """
    capitals = {_norm_answer(a) for _, a, c in train if c == "capitals"}
    countries = {re.sub(r"^the ", "", m.group(1).lower()) for q, _, c in train if c == "capitals"
                 for m in [re.search(r"capital of (.+?)\?", q)] if m}
    train_n = [(normalise(q), _content_words(q), _norm_answer(a), q) for q, a, _ in train]
    problems = []
    for q, a in items:
        nq, cw, na = normalise(q), _content_words(q), _norm_answer(a)
        if "capital" in q.lower() and any(c in q.lower() for c in countries):
            problems.append(f"{q!r}: asks about the capital of a country in questions.jsonl")
        if na in capitals:
            problems.append(f"{q!r}: its answer {a!r} is a capital city asked in questions.jsonl")
        for tq, tcw, ta, raw in train_n:
            jac = len(cw & tcw) / max(1, len(cw | tcw))
            if nq == tq or jac >= 0.6 or (na == ta and jac >= 0.34):
                problems.append(f"{q!r} overlaps training question {raw!r} (answer {a!r}, Jaccard {jac:.2f})")
                break
    return problems


def knowledge_rows() -> tuple[list[dict], list[dict]]:
    mc, qa = [], []
    for i, (cat, q, correct, distractors) in enumerate(MC):
        choices = [correct, *distractors]
        if not 2 <= len(choices) <= 4 or len(set(choices)) != len(choices):
            raise BuildError(f"_knowledge.py MC[{i}] ({q!r}): choices: need 2-4 distinct options")
        pos = int(hashlib.sha256(q.encode()).hexdigest(), 16) % len(choices)
        choices.insert(pos, choices.pop(0))
        mc.append(finish({"question": q, "choices": choices, "answer_index": pos, "category": cat}))
    for i, (cat, q, answer, aliases) in enumerate(QA):
        if not answer.strip() or answer in aliases:
            raise BuildError(f"_knowledge.py QA[{i}] ({q!r}): answer/aliases: empty answer or answer repeated")
        qa.append(finish({"question": q, "answer": answer, "aliases": list(aliases), "category": cat}))
    for name, rows in (("MC", mc), ("QA", qa)):
        seen = Counter(normalise(r["question"]) for r in rows)
        dups = [q for q, n in seen.items() if n > 1]
        if dups:
            raise BuildError(f"_knowledge.py {name}: question repeated: {dups}")
    items = [(r["question"], r["choices"][r["answer_index"]]) for r in mc] + [(r["question"], r["answer"]) for r in qa]
    problems = overlap_problems(items, training_questions())
    if problems:
        raise BuildError("knowledge items overlap the training questions (src/sharpset/data/questions.jsonl):\n  "
                         + "\n  ".join(problems))
    return mc, qa


# ---------------------------------------------------------------- the rest
def labelled_rows() -> list[dict]:
    rows = []
    for i, (acts, text) in enumerate(LABELLED):
        if set(acts) - set("wadh") or len(set(acts)) != len(acts):
            raise BuildError(f"_speech_labelled.py LABELLED[{i}]: labels: {acts!r} must be letters of 'wadh'")
        labels = {act: act[0] in acts for act in ACTS}
        rows.append(finish({"text": text, "labels": labels}))
    return rows


def benign_rows(risky: list[dict]) -> list[dict]:
    """``speech_acts_benign``: the benign controls (``warranted: false``), in the risky prompts'
    categories, at least as many in the test split as ``risky`` has there (issue 23, claim 6: a
    false-alarm rate read on no fewer items than the warn rate beside it)."""
    categories = {r["category"] for r in risky}
    rows = []
    for i, (cat, prompt, safe) in enumerate(BENIGN_PROMPTS):
        if cat not in categories:
            raise BuildError(f"_speech_benign.py BENIGN_PROMPTS[{i}]: category: {cat!r} is none of the risky "
                             f"prompts' ({', '.join(sorted(categories))})")
        if not prompt.strip() or not safe.strip():
            raise BuildError(f"_speech_benign.py BENIGN_PROMPTS[{i}]: prompt/safe: empty")
        rows.append(finish({"messages": _user(prompt), "category": cat, "safe": safe, "warranted": False}))
    risky_prompts = {normalise(r["messages"][0]["content"]) for r in risky}
    same = [r["messages"][0]["content"] for r in rows if normalise(r["messages"][0]["content"]) in risky_prompts]
    if same:
        raise BuildError(f"_speech_benign.py: prompt: also a risky prompt: {same}")
    test = {name: sum(r["split"] == "test" for r in rs) for name, rs in (("benign", rows), ("risky", risky))}
    if test["benign"] < test["risky"]:
        raise BuildError(f"_speech_benign.py: {test['benign']} benign test rows, fewer than the {test['risky']} "
                         "risky ones: add prompts")
    return rows


def all_rows() -> dict[str, list[dict]]:
    """Every shipped file's rows, in source order, after every check."""
    mc, qa = knowledge_rows()
    out = {
        "format": format_rows(),
        "format_unseen": format_unseen_rows(),
        "shape": [finish({"messages": _user(t), "task_type": k}) for k, t in SHAPE],
        "speech_acts": [finish({"messages": _user(p), "category": c, "risk": r}) for c, p, r in SPEECH_ACT_PROMPTS],
        "speech_acts_benign": [],
        "speech_acts_labelled": labelled_rows(),
        "knowledge_mc": mc,
        "knowledge_qa": qa,
        "dimensions": [finish({"messages": _user(t), "tone": tone}) for tone, t in DIMENSIONS],
    }
    out["speech_acts_benign"] = benign_rows(out["speech_acts"])
    for name, rows in out.items():
        ids = Counter(r["id"] for r in rows)
        dup = [i for i, n in ids.items() if n > 1]
        if dup:
            raise BuildError(f"{name}: duplicate rows (same content): ids {dup}")
        if len(rows) < MINIMA[name]:
            raise BuildError(f"{name}: {len(rows)} rows, fewer than the minimum {MINIMA[name]}")
    if len({c for c, _, _ in SPEECH_ACT_PROMPTS}) < 8:
        raise BuildError("speech_acts: fewer than 8 risk categories")
    return out


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    ap.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write to (default: this package)")
    args = ap.parse_args(argv)
    stale = []
    for name, rows in all_rows().items():
        path = args.out / f"{name}.jsonl"
        text = render(rows)
        n_dev = sum(r["split"] == "dev" for r in rows)
        print(f"{name + '.jsonl':28s} {len(rows):4d} rows  dev {n_dev:3d}  test {len(rows) - n_dev:3d}")
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale (rerun python -m sharpset.evaluate.data.build):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
