"""Agreement of ``sharpset.evaluate.ifeval`` with lm-evaluation-harness's own IFEval scorer.

Builds a fixed set of (instructions, kwargs, prompt, response) cases -- hand-written responses that
pass and fail every one of IFEval's 25 instruction types, edge cases (commas inside numbers, '*' vs
'-' bullets, JSON inside code fences, lowercase text with code, sentence counts around
abbreviations, preambles that only the loose rule forgives, empty responses) and programmatic
sweeps of counts around each threshold -- then scores every case twice:

* ours: ``sharpset.evaluate.ifeval.check`` (in this interpreter);
* reference: ``lm_eval.tasks.ifeval.utils.test_instruction_following_strict`` / ``_loose`` from
  ``lm-eval`` (run in its own venv, which must have ``lm-eval`` with nltk, langdetect and
  immutabledict), i.e. lm-eval's checker classes *and* its strict/loose harness.

Both sides read the same Punkt English tables (``ensure_punkt()``'s nltk_data, passed to the
reference as NLTK_DATA; nltk cannot download them here) and seed langdetect with 0 (lm-eval does
not seed it, so unseeded its language verdicts on borderline texts vary between runs).

Prints, per instruction type: n instructions, our strict and loose pass rates (so a type that only
ever passes or only ever fails shows), and the agreement of strict and loose verdicts; then the
overall instruction-level and prompt-level agreement (issue 12 asks >= 99%) and every disagreement.

usage: PYTHONPATH=src python experiments/ifeval_agreement.py [--lmeval-python /work/venv-lmeval/bin/python]
       [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

LESS, LEAST = "less than", "at least"
PROSE = [
    "The library opens at nine on weekdays and at ten on Saturdays.",
    "Bring a reusable bag because the shop no longer hands out plastic ones.",
    "Our team met twice this week to plan the spring fundraiser.",
    "Water the tomato plants early in the morning so the leaves dry by noon.",
    "The bus was late again so I walked the last two stops.",
    "She keeps her running shoes by the door as a reminder to train.",
    "A good soup needs time more than it needs expensive ingredients.",
    "Remember to back up your photos before you update the phone.",
]


def para(rng: random.Random, n: int = 2) -> str:
    return " ".join(rng.sample(PROSE, n))


def case(ids, kwargs, response, prompt="Write something for me.", note=""):
    if isinstance(ids, str):
        ids, kwargs = [ids], [kwargs]
    return {"ids": list(ids), "kwargs": list(kwargs), "prompt": prompt, "response": response,
            "note": note}


def hand_cases() -> list[dict]:
    """Hand-written cases: at least one passing and one failing response per type, plus edges."""
    J = "```"
    c = []
    a = c.append
    # punctuation:no_comma
    nc = "punctuation:no_comma"
    a(case(nc, {}, "The meeting is at noon and lunch follows."))
    a(case(nc, {}, "We counted 1,250 birds at the lake.", note="comma inside a number"))
    a(case(nc, {}, "Sure, here it is:\nThe meeting is at noon.", note="comma only in first line"))
    a(case(nc, {}, "会议在中午，然后吃午饭。", note="full-width comma only"))
    a(case(nc, {}, f"{J}python\nprint(max(1, 2))\n{J}", note="comma in code"))
    # detectable_format:number_bullet_lists
    nb = "detectable_format:number_bullet_lists"
    a(case(nb, {"num_bullets": 3}, "* apples\n* pears\n* plums"))
    a(case(nb, {"num_bullets": 3}, "- apples\n- pears\n- plums", note="dash bullets"))
    a(case(nb, {"num_bullets": 3}, "* apples\n- pears\n  * plums", note="mixed and nested"))
    a(case(nb, {"num_bullets": 3}, "1. apples\n2. pears\n3. plums", note="numbered is not bulleted"))
    a(case(nb, {"num_bullets": 2}, "**Fruit**\n* apples\n* pears", note="bold line is no bullet"))
    a(case(nb, {"num_bullets": 2}, "* apples\n* pears\n---\nThat is all.", note="rule counts as '-'"))
    a(case(nb, {"num_bullets": 2}, "Here you go:\n* apples\n* pears\n-- the end"))
    # detectable_format:number_highlighted_sections
    hs = "detectable_format:number_highlighted_sections"
    a(case(hs, {"num_highlights": 2}, "Pack *warm socks* and a *rain jacket* for the trip."))
    a(case(hs, {"num_highlights": 2}, "Pack **warm socks** for the trip.", note="one bold"))
    a(case(hs, {"num_highlights": 1}, "Nothing is highlighted here."))
    a(case(hs, {"num_highlights": 1}, "An empty one ** and a blank * * pair."))
    a(case(hs, {"num_highlights": 3}, "* one *\n*two*\n**three**"))
    # detectable_format:multiple_sections
    ms = "detectable_format:multiple_sections"
    a(case(ms, {"section_spliter": "Section", "num_sections": 2},
           "Section 1\nPack the bags.\nSection 2\nLock the door."))
    a(case(ms, {"section_spliter": "SECTION", "num_sections": 3},
           "SECTION 1\nPack.\nSECTION 2\nLock."))
    a(case(ms, {"section_spliter": "Day", "num_sections": 2}, "Day 1: the museum.\nDay 2: the park."))
    a(case(ms, {"section_spliter": "Section", "num_sections": 2}, "Section one\nPack.\nSection two\nGo."))
    # detectable_format:json_format
    js = "detectable_format:json_format"
    a(case(js, {}, '{"city": "Lyon", "days": 3}'))
    a(case(js, {}, f'{J}json\n{{"city": "Lyon", "days": 3}}\n{J}', note="json fence"))
    a(case(js, {}, f'{J}JSON\n["a", "b"]\n{J}'))
    a(case(js, {}, f'{J}\n{{"a": 1}}\n{J}'))
    a(case(js, {}, f'Here is the JSON:\n{J}json\n{{"a": 1}}\n{J}', note="preamble: loose only"))
    a(case(js, {}, "{'city': 'Lyon'}", note="single quotes are not JSON"))
    a(case(js, {}, '{"a": 1}\nHope this helps!', note="trailing text: loose only"))
    a(case(js, {}, f'{J}python\n{{"a": 1}}\n{J}', note="python fence"))
    # detectable_format:title
    ti = "detectable_format:title"
    a(case(ti, {}, "<<A Walk in the Park>>\nWe walked for an hour."))
    a(case(ti, {}, "<< >>\nNo real title."))
    a(case(ti, {}, "<<Broken\ntitle>>"))
    a(case(ti, {}, "# A Markdown Title\nText."))
    # combination:two_responses
    tr = "combination:two_responses"
    a(case(tr, {}, "Take the train.\n******\nTake the bus."))
    a(case(tr, {}, "Take the train.\n******\nTake the train."))
    a(case(tr, {}, "One.\n******\nTwo.\n******\nThree."))
    a(case(tr, {}, "Take the train.\n***\nTake the bus.", note="three stars only"))
    # combination:repeat_prompt
    rp = "combination:repeat_prompt"
    q = "What should I cook for dinner tonight?"
    a(case(rp, {"prompt_to_repeat": q}, q + "\nTry a vegetable curry.", prompt=q))
    a(case(rp, {"prompt_to_repeat": q}, q.upper() + " A curry.", prompt=q, note="case-insensitive"))
    a(case(rp, {"prompt_to_repeat": q}, "Sure! " + q + " A curry.", prompt=q))
    a(case(rp, {"prompt_to_repeat": q}, "Sure!\n" + q + "\nA curry.", prompt=q, note="loose only"))
    # startend:end_checker
    ec = "startend:end_checker"
    a(case(ec, {"end_phrase": "Any other questions?"}, "The store opens at nine. Any other questions?"))
    a(case(ec, {"end_phrase": "Any other questions?"}, '"Opens at nine. any other questions?"  \n'))
    a(case(ec, {"end_phrase": "Any other questions?"}, "Any other questions? Opens at nine."))
    a(case(ec, {"end_phrase": "Is there anything else I can help with?"},
           "Opens at nine.\nIs there anything else I can help with?\n(Generated answer)"))
    a(case(ec, {"end_phrase": "Peace out."}, "See you. **Peace out.**", note="loose strips '*'"))
    # change_case:english_capital
    ca = "change_case:english_capital"
    a(case(ca, {}, "THE TRAIN LEAVES AT SIX IN THE MORNING, SO PLEASE BE ON TIME."))
    a(case(ca, {}, "The train leaves at six in the morning, so please be on time."))
    a(case(ca, {}, "LE TRAIN PART À SIX HEURES DU MATIN, ALORS SOYEZ À L'HEURE S'IL VOUS PLAÎT."))
    a(case(ca, {}, "THE TRAIN LEAVES AT SIX. Please be on time."))
    # change_case:english_lowercase
    lo = "change_case:english_lowercase"
    a(case(lo, {}, "the train leaves at six in the morning, so please be on time."))
    a(case(lo, {}, "the train leaves at six. I will be there."))
    a(case(lo, {}, f"use this function to add numbers:\n{J}python\ndef add(a, b):\n    return a + b\n{J}",
           note="lowercase with code"))
    a(case(lo, {}, f"use this:\n{J}python\nprint(True)\n{J}", note="code has a capital"))
    a(case(lo, {}, "le train part à six heures du matin, alors soyez à l'heure s'il vous plaît."))
    # change_case:capital_word_frequency
    cw = "change_case:capital_word_frequency"
    a(case(cw, {"capital_frequency": 2, "capital_relation": LEAST}, "This is VERY, VERY important."))
    a(case(cw, {"capital_frequency": 2, "capital_relation": LEAST}, "This is VERY important."))
    a(case(cw, {"capital_frequency": 3, "capital_relation": LESS}, "I met the CEO of NASA at the UN."))
    a(case(cw, {"capital_frequency": 3, "capital_relation": LESS}, "I think I can, I said."))
    a(case(cw, {"capital_frequency": 2, "capital_relation": LEAST}, "A WELL-KNOWN U.S. rule."))
    # startend:quotation
    qu = "startend:quotation"
    a(case(qu, {}, '"Keep your receipts until the warranty ends."'))
    a(case(qu, {}, "Keep your receipts until the warranty ends."))
    a(case(qu, {}, '"'))
    a(case(qu, {}, '  "Keep the receipts."  \n'))
    a(case(qu, {}, '“Keep the receipts.”', note="curly quotes"))
    # detectable_content:postscript
    ps = "detectable_content:postscript"
    a(case(ps, {"postscript_marker": "P.S."}, "See you Friday.\n\nP.S. Bring snacks."))
    a(case(ps, {"postscript_marker": "P.S."}, "See you Friday.\n\np.s bring snacks."))
    a(case(ps, {"postscript_marker": "P.P.S"}, "See you.\nP.S. Snacks.\nP.P.S. Drinks."))
    a(case(ps, {"postscript_marker": "P.P.S"}, "See you.\nP.S. Snacks."))
    a(case(ps, {"postscript_marker": "Note:"}, "See you.\nnote: bring snacks."))
    a(case(ps, {"postscript_marker": "P.S."}, "See you Friday. Bring snacks."))
    # detectable_content:number_placeholders
    ph = "detectable_content:number_placeholders"
    a(case(ph, {"num_placeholders": 2}, "Dear [name], your order ships to [address]."))
    a(case(ph, {"num_placeholders": 2}, "Dear [name], your order ships soon."))
    a(case(ph, {"num_placeholders": 1}, "Dear friend, your order [] ships soon.", note="empty []"))
    a(case(ph, {"num_placeholders": 1}, "See [the docs](https://example.org).", note="markdown link"))
    # detectable_format:constrained_response
    cr = "detectable_format:constrained_response"
    a(case(cr, {}, "My answer is yes."))
    a(case(cr, {}, "Having thought about it: My answer is maybe. It depends on the weather."))
    a(case(cr, {}, "My answer is Yes."))
    a(case(cr, {}, "Yes."))
    # keywords:existence
    ke = "keywords:existence"
    a(case(ke, {"keywords": ["garden", "tomato"]}, "My garden grows a tomato every summer."))
    a(case(ke, {"keywords": ["garden", "tomato"]}, "My garden grows beans."))
    a(case(ke, {"keywords": ["cat"]}, "Pick a category.", note="substring counts"))
    a(case(ke, {"keywords": ["Budget"]}, "keep a BUDGET", note="case-insensitive"))
    # keywords:frequency
    kf = "keywords:frequency"
    a(case(kf, {"keyword": "rain", "frequency": 2, "relation": LEAST}, "Rain today, rain tomorrow."))
    a(case(kf, {"keyword": "rain", "frequency": 2, "relation": LEAST}, "Rain today."))
    a(case(kf, {"keyword": "rain", "frequency": 2, "relation": LESS}, "The train in the rain."))
    a(case(kf, {"keyword": "rain", "frequency": 3, "relation": LESS}, "Rain, rain, go away."))
    # keywords:forbidden_words
    fw = "keywords:forbidden_words"
    a(case(fw, {"forbidden_words": ["cheap", "free"]}, "The price is fair and the quality good."))
    a(case(fw, {"forbidden_words": ["cheap", "free"]}, "It is FREE this week."))
    a(case(fw, {"forbidden_words": ["free"]}, "Stay carefree and freedom-minded.", note="word bounds"))
    a(case(fw, {"forbidden_words": ["free"]}, "Feel free-spirited.", note="hyphen is a word bound"))
    # keywords:letter_frequency
    lf = "keywords:letter_frequency"
    a(case(lf, {"letter": "z", "let_frequency": 2, "let_relation": LEAST}, "The lazy zebra dozed."))
    a(case(lf, {"letter": "z", "let_frequency": 2, "let_relation": LEAST}, "The lazy cat slept."))
    a(case(lf, {"letter": "E", "let_frequency": 5, "let_relation": LESS}, "A dog."))
    a(case(lf, {"letter": "e", "let_frequency": 5, "let_relation": LESS}, "Everyone here needs extra sleep."))
    # language:response_language
    rl = "language:response_language"
    a(case(rl, {"language": "fr"}, "Le marché ouvre à huit heures et ferme à midi le dimanche."))
    a(case(rl, {"language": "fr"}, "The market opens at eight and closes at noon on Sunday."))
    a(case(rl, {"language": "es"}, "El mercado abre a las ocho y cierra al mediodía los domingos."))
    a(case(rl, {"language": "de"}, "Der Markt öffnet um acht Uhr und schließt sonntags um zwölf."))
    a(case(rl, {"language": "en"}, "Der Markt öffnet um acht Uhr und schließt sonntags um zwölf."))
    a(case(rl, {"language": "it"}, "Il mercato apre alle otto e chiude a mezzogiorno la domenica."))
    a(case(rl, {"language": "en"}, "12345 678", note="no letters: langdetect raises, counted as pass"))
    # length_constraints:number_sentences
    ns = "length_constraints:number_sentences"
    a(case(ns, {"num_sentences": 3, "relation": LESS}, "Dr. Smith arrived. He was late."))
    a(case(ns, {"num_sentences": 2, "relation": LESS}, "Mr. Jones met Dr. Smith at 3.30 p.m. in the U.S. office."))
    a(case(ns, {"num_sentences": 3, "relation": LEAST}, "One. Two! Three? Four."))
    a(case(ns, {"num_sentences": 3, "relation": LEAST}, "Use e.g. salt or pepper. Taste it."))
    a(case(ns, {"num_sentences": 2, "relation": LEAST}, "It costs $3.50 per kg. Buy two."))
    a(case(ns, {"num_sentences": 2, "relation": LESS}, "Wait... what? No way."))
    # length_constraints:number_paragraphs
    np_ = "length_constraints:number_paragraphs"
    a(case(np_, {"num_paragraphs": 2}, "First part.\n***\nSecond part."))
    a(case(np_, {"num_paragraphs": 2}, "First part.\n\nSecond part.", note="blank lines are not ***"))
    a(case(np_, {"num_paragraphs": 2}, "***\nFirst.\n***\nSecond.\n***", note="leading/trailing ***"))
    a(case(np_, {"num_paragraphs": 2}, "First.\n***\n***\nSecond.", note="empty middle paragraph"))
    a(case(np_, {"num_paragraphs": 3}, "A.\n* * *\nB.\n* * *\nC.", note="spaced rule"))
    # length_constraints:number_words
    nw = "length_constraints:number_words"
    a(case(nw, {"num_words": 5, "relation": LESS}, "Keep it short."))
    a(case(nw, {"num_words": 5, "relation": LESS}, "Don't stop the 3.5 km run now."))
    a(case(nw, {"num_words": 6, "relation": LEAST}, "Don't stop the 3.5 km run."))
    a(case(nw, {"num_words": 4, "relation": LEAST}, "well-known e-mail etiquette"))
    # length_constraints:nth_paragraph_first_word
    nf = "length_constraints:nth_paragraph_first_word"
    a(case(nf, {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
           "First we shop.\n\nThen we cook."))
    a(case(nf, {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
           "First we shop.\n\nAfterwards we cook."))
    a(case(nf, {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "first"},
           '"First," she said, "we shop."\n\nThen we cook.'))
    a(case(nf, {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "then"},
           "First we shop.\n\nThen we cook."))
    a(case(nf, {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
           "First we shop.\n\n**Then** we cook.", note="bold first word: loose only"))
    a(case(nf, {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "first"},
           "First we shop.\n\n\n\nThen we cook.", note="extra blank lines"))
    # cases only a trimmed AND '*'-stripped variant passes (loose variants 6-8)
    a(case(nf, {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "first"},
           "Here you go:\n**First** we shop.\n\nThen we cook."))
    a(case(ec, {"end_phrase": "Peace out."}, "See you. **Peace out.**\n(auto-generated)"))
    a(case(ec, {"end_phrase": "Peace out."}, "Hi!\nSee you. **Peace out.**\n(auto-generated)"))
    a(case(qu, {}, 'Sure:\n"*Keep* the receipts."\n*Hope this helps*'))
    # multi-instruction prompts and empty responses
    a(case([nc, ca], [{}, {}], "THE TRAIN LEAVES AT SIX SO BE ON TIME."))
    a(case([nb, ps], [{"num_bullets": 2}, {"postscript_marker": "P.S."}],
           "* tea\n* cake\nP.S. Enjoy."))
    a(case([js, nc], [{}, {}], '{"a": 1, "b": 2}', note="JSON needs commas"))
    a(case([ti, nw, lo], [{}, {"num_words": 10, "relation": LESS}, {}], "<<tea>>\nhot tea is nice."))
    for iid, kw in ((nc, {}), (qu, {}), (fw, {"forbidden_words": ["x"]}), (ph, {"num_placeholders": 1})):
        a(case(iid, kw, "", note="empty response"))
        a(case(iid, kw, "  \n\t ", note="whitespace response"))
    return c


def sweep_cases(seed: int = 0) -> list[dict]:
    """Programmatic cases: counts just below, at and above every threshold, with and without a
    chatty first line (the loose rule drops it) and markdown '*' (the loose rule removes it)."""
    rng = random.Random(seed)
    c = []
    pre = ["", "Sure! Here is my answer:\n", "**Answer**\n"]
    for n in (1, 2, 3, 4):
        for k in (n - 1, n, n + 1):
            mark = rng.choice(["* ", "- ", "  * "])
            body = "\n".join(f"{mark}{w}" for w in rng.sample(PROSE, k))
            c.append(case("detectable_format:number_bullet_lists", {"num_bullets": n},
                          rng.choice(pre) + body))
            hl = " ".join(f"*{w.split()[1]}*" for w in rng.sample(PROSE, k))
            c.append(case("detectable_format:number_highlighted_sections", {"num_highlights": n},
                          rng.choice(pre) + para(rng, 1) + " " + hl))
            c.append(case("detectable_content:number_placeholders", {"num_placeholders": n},
                          para(rng, 1) + " " + " ".join(f"[field{i}]" for i in range(k))))
            spl = rng.choice(["Section", "SECTION", "Part"])
            c.append(case("detectable_format:multiple_sections", {"section_spliter": spl, "num_sections": n},
                          "\n".join(f"{spl} {i + 1}\n{para(rng, 1)}" for i in range(k))))
            c.append(case("length_constraints:number_paragraphs", {"num_paragraphs": n},
                          rng.choice(pre) + "\n***\n".join(para(rng, 1) for _ in range(k))))
            for rel in (LESS, LEAST):
                sents = " ".join(rng.sample(PROSE, k)) if k else "ok"
                c.append(case("length_constraints:number_sentences", {"num_sentences": n, "relation": rel},
                              rng.choice(pre) + sents))
                caps = " ".join(rng.choice(["NOTE", "ASAP", "OK", "USA"]) for _ in range(k))
                c.append(case("change_case:capital_word_frequency",
                              {"capital_frequency": n, "capital_relation": rel},
                              para(rng, 1) + " " + caps))
                c.append(case("keywords:frequency", {"keyword": "bread", "frequency": n, "relation": rel},
                              para(rng, 1) + " " + " ".join(["bread"] * k)))
                c.append(case("keywords:letter_frequency",
                              {"letter": "q", "let_frequency": n, "let_relation": rel},
                              "Quiet " * k + "day."))
    for n in (5, 12, 30):
        for k in (n - 1, n, n + 1):
            for rel in (LESS, LEAST):
                words = " ".join(rng.choice(["tea", "is", "hot", "don't", "3.5", "well-made"]) for _ in range(k))
                c.append(case("length_constraints:number_words", {"num_words": n, "relation": rel},
                              rng.choice(pre) + words))
    for n in (1, 2, 3):
        for nth in range(1, n + 1):
            for ok in (True, False):
                paras = [para(rng, 1) for _ in range(n)]
                paras[nth - 1] = ("Finally " if ok else "Lastly ") + paras[nth - 1][0].lower() + paras[nth - 1][1:]
                c.append(case("length_constraints:nth_paragraph_first_word",
                              {"num_paragraphs": n, "nth_paragraph": nth, "first_word": "finally"},
                              rng.choice(pre) + "\n\n".join(paras)))
    for text in PROSE:
        c.append(case("punctuation:no_comma", {}, rng.choice(pre) + text))
        c.append(case("punctuation:no_comma", {}, text.replace(" and ", ", and ").replace(" so ", ", so ")))
        c.append(case("change_case:english_lowercase", {}, rng.choice(["", "Sure:\n"]) + text.lower()))
        c.append(case("change_case:english_lowercase", {}, text))
        c.append(case("change_case:english_capital", {}, rng.choice(["", "Sure:\n"]) + text.upper()))
        c.append(case("change_case:english_capital", {}, text.upper().replace("THE", "the")))
        c.append(case("startend:quotation", {}, rng.choice(['"%s"', '%s', '"%s', "Sure:\n\"%s\""]) % text))
        c.append(case("startend:end_checker", {"end_phrase": "Thank you."},
                      text + rng.choice([" Thank you.", " thank you. ", " Thanks.", " Thank you.\n-- Bot"])))
        kw = text.split()[1].strip(",.")
        c.append(case("keywords:existence", {"keywords": [kw, "weather"]},
                      text + rng.choice([" Weather permitting.", ""])))
        c.append(case("keywords:forbidden_words", {"forbidden_words": [kw]},
                      rng.choice([text, para(rng, 1)])))
        c.append(case("detectable_format:title", {}, rng.choice(["<<Note>>\n", "<Note>\n", "<<>>\n"]) + text))
        c.append(case("detectable_format:json_format", {},
                      rng.choice(['{"text": %s}', '```json\n{"text": %s}\n```', 'JSON: {"text": %s}',
                                  'Here:\n```\n[%s]\n```\nDone.']) % json.dumps(text)))
        c.append(case("combination:two_responses", {},
                      text + rng.choice(["\n******\n" + para(rng, 1), "\n******\n" + text, "\n\n" + para(rng, 1)])))
        c.append(case("combination:repeat_prompt", {"prompt_to_repeat": text},
                      rng.choice(["", "Okay. ", "Okay.\n"]) + text + " " + para(rng, 1), prompt=text))
        c.append(case("detectable_content:postscript", {"postscript_marker": rng.choice(["P.S.", "P.P.S"])},
                      text + rng.choice(["\nP.S. See you.", "\nP.P.S. See you.", "\nPS see you.", ""])))
        c.append(case("detectable_format:constrained_response", {},
                      rng.choice(["My answer is no.", "my answer is no.", "Sure:\nMy answer is maybe.",
                                  "Maybe."]) + " " + text))
    langs = {"en": PROSE[0], "fr": "La bibliothèque ouvre à neuf heures en semaine et à dix heures le samedi.",
             "es": "La biblioteca abre a las nueve entre semana y a las diez los sábados.",
             "de": "Die Bibliothek öffnet werktags um neun und samstags um zehn Uhr.",
             "pt": "A biblioteca abre às nove nos dias úteis e às dez aos sábados.",
             "it": "La biblioteca apre alle nove nei giorni feriali e alle dieci il sabato."}
    for want in langs:
        for got, text in langs.items():
            c.append(case("language:response_language", {"language": want}, text))
    return c


def ours(cases: list[dict]) -> list[dict]:
    from sharpset.evaluate.ifeval import check

    return [check(k["ids"], k["kwargs"], k["prompt"], k["response"]) for k in cases]


def reference(cases: list[dict]) -> list[dict]:
    """lm-eval's harness functions, exactly as its ifeval task calls them (process_results)."""
    import langdetect

    langdetect.DetectorFactory.seed = 0
    from lm_eval.tasks.ifeval.utils import (InputExample, test_instruction_following_loose,
                                            test_instruction_following_strict)

    out = []
    for i, k in enumerate(cases):
        inp = InputExample(key=i, instruction_id_list=k["ids"], prompt=k["prompt"], kwargs=k["kwargs"])
        s = test_instruction_following_strict(inp, k["response"])
        lo = test_instruction_following_loose(inp, k["response"])
        out.append({"strict": s.follow_instruction_list, "loose": lo.follow_instruction_list,
                    "prompt_strict": s.follow_all_instructions, "prompt_loose": lo.follow_all_instructions})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lmeval-python", default="/work/venv-lmeval/bin/python")
    ap.add_argument("--json", help="write cases and both verdicts here")
    ap.add_argument("--reference", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference:  # child mode, inside the lm-eval venv: no sharpset import
        with open(args.reference[0]) as f:
            cases = json.load(f)
        with open(args.reference[1], "w") as f:
            json.dump(reference(cases), f)
        return 0

    from sharpset.evaluate.ifeval import SUPPORTED, ensure_punkt

    cases = hand_cases() + sweep_cases()
    t0 = time.time()
    mine = ours(cases)
    t_ours = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "cases.json"), os.path.join(tmp, "ref.json")
        with open(src, "w") as f:
            json.dump(cases, f)
        env = {**os.environ, "NLTK_DATA": str(ensure_punkt())}
        env.pop("PYTHONPATH", None)
        subprocess.run([args.lmeval_python, os.path.abspath(__file__), "--reference", src, dst],
                       check=True, env=env)
        with open(dst) as f:
            ref = json.load(f)

    per = defaultdict(lambda: {"n": 0, "s_pass": 0, "l_pass": 0, "s_agree": 0, "l_agree": 0})
    disagree = []
    for k, m, r in zip(cases, mine, ref):
        for j, iid in enumerate(k["ids"]):
            row = per[iid]
            row["n"] += 1
            row["s_pass"] += m["strict"][j]
            row["l_pass"] += m["loose"][j]
            row["s_agree"] += m["strict"][j] == r["strict"][j]
            row["l_agree"] += m["loose"][j] == r["loose"][j]
            if m["strict"][j] != r["strict"][j] or m["loose"][j] != r["loose"][j]:
                disagree.append((iid, k["kwargs"][j], k["response"], m, r))
    missing = sorted(set(SUPPORTED) - set(per))
    print(f"{len(cases)} cases, {sum(r['n'] for r in per.values())} instructions, "
          f"{len(per)}/{len(SUPPORTED)} types (missing: {missing or 'none'}); ours took {t_ours:.1f} s")
    print(f"{'instruction type':46} {'n':>4} {'strict pass':>11} {'loose pass':>10} "
          f"{'strict agree':>12} {'loose agree':>11}")
    for iid in SUPPORTED:
        r = per[iid]
        if not r["n"]:
            continue
        print(f"{iid:46} {r['n']:4d} {r['s_pass'] / r['n']:11.2f} {r['l_pass'] / r['n']:10.2f} "
              f"{r['s_agree']:6d}/{r['n']:<5d} {r['l_agree']:5d}/{r['n']:<5d}")
    n = sum(r["n"] for r in per.values())
    s_ag = sum(r["s_agree"] for r in per.values())
    l_ag = sum(r["l_agree"] for r in per.values())
    p_ag = sum(m["prompt_strict"] == r["prompt_strict"] and m["prompt_loose"] == r["prompt_loose"]
               for m, r in zip(mine, ref))
    print(f"instruction level: strict {s_ag}/{n} = {s_ag / n:.4f}, loose {l_ag}/{n} = {l_ag / n:.4f}, "
          f"both {(s_ag + l_ag) / (2 * n):.4f}")
    print(f"prompt level (strict and loose both equal): {p_ag}/{len(cases)} = {p_ag / len(cases):.4f}")
    for iid, kw, resp, m, r in disagree:
        print(f"DISAGREE {iid} {kw} {resp!r}\n  ours {m}\n  lm-eval {r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": cases, "ours": mine, "lm_eval": ref}, f, indent=1)
    return 0 if min(s_ag, l_ag) / n >= 0.99 else 1  # issue 12: >= 99% of verdicts


if __name__ == "__main__":
    sys.exit(main())
