"""Precision and recall of ``sharpset dedup`` on a fixture with planted duplicates.

Fixture (built in this file, deterministic, seed 7):

- **300 distinct instructions**: 120 hand-written ones on unrelated subjects (coding, cooking,
  travel, maths, writing, health, money, ...), plus 180 templated ones -- 30 topics x 6 of 8 task
  templates ("Explain {t} to a ten-year-old ...", "Write a limerick about {t}.", ...). The templated
  rows are deliberate *hard negatives*: two rows that share a template but not a topic, or a topic
  but not a template, are different requests that look alike on the surface.
- **95 planted duplicates**, each a copy of one of those rows (several may copy the same row,
  giving clusters of three or more):
  - 30 *exact*: 10 verbatim, 10 case changes, 10 whitespace / end-punctuation changes;
  - 40 *near-exact*: one edit each, cycling through a synonym swap, an inserted word, a dropped
    word, a typo (two letters swapped) and an inserted comma;
  - 25 *paraphrases*: hand-written rewordings with the same meaning (``PARAPHRASES``).
  Ground truth: a planted row and its source are one true cluster.

Metrics, each for exact, minhash, embedding alone and for all three combined (one ``dedup_rows``
call per setting, so each method is measured on its own):

- **pairs**: a predicted pair is two rows in the same predicted cluster (clusters are transitive,
  as dedup applies them); precision = true pairs among predicted, recall = predicted among the
  true pairs (n = their count);
- **removals**: a removed row is right when it and its cluster's kept row are in one true cluster;
  precision = right removals / removals, recall = right removals / (rows - true clusters);
- recall by planted type over the (source, planted) pairs.
95% intervals are Wilson score intervals. Then the settings sweep, the cosine distribution of true
and false pairs, and the permutation check (3 shuffles, real minilm-l6 each time).

Thresholds. The embedding default (cosine 0.975) is METHODS.md section 1's and was not tuned here.
The MinHash default WAS changed after the first run of this script: chosen a priori as word bigrams
at Jaccard 0.7, it chained templated siblings into clusters of 16-21 rows (removal precision 0.51),
so it became word 3-grams at Jaccard 0.8 (0.8 as in Lee et al. 2022), the most precise setting of
the sweep below. Its numbers here are therefore optimistic; the a-priori row stays in the sweep.

Run: ``python experiments/dedup_fixture.py`` (about a minute on one core).
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import replace

import numpy as np

HAND = [
    # 0-24: have paraphrases below
    "How do I reverse a linked list in Python without using extra memory?",
    "What is the best way to store fresh basil so it stays green for a week?",
    "Write a cover letter for a junior data analyst position at a retail company.",
    "Why does my sourdough bread come out dense and flat?",
    "Plan a three-day itinerary for a first visit to Lisbon on a tight budget.",
    "What is the difference between a Roth IRA and a traditional IRA?",
    "Give me a 20-minute bodyweight workout I can do in a hotel room.",
    "How can I convince my landlord to let me keep a cat?",
    "Translate 'where is the train station' into German, Italian and Japanese.",
    "Explain why the derivative of e to the x is itself.",
    "My laptop fan is very loud all the time. What could be causing it?",
    "Suggest five names for a podcast about urban gardening.",
    "How long should I boil an egg to get a runny yolk?",
    "Write a SQL query that finds the second highest salary in an employees table.",
    "What should I say in a toast at my sister's wedding?",
    "How do I stop procrastinating when I work from home?",
    "Is it safe to eat rice that was left out overnight?",
    "Rewrite this sentence to sound more formal: 'we gotta fix this asap'.",
    "What are some good board games for a family with young kids?",
    "How do I politely decline a meeting invitation from my manager?",
    "Convert 350 degrees Fahrenheit to Celsius and show the formula.",
    "Write a bash one-liner that counts the lines in every .py file in a folder.",
    "What are the early signs of burnout at work?",
    "Help me write a polite complaint email about a late furniture delivery.",
    "Why do cats knead blankets with their paws?",
    # 25-119: no paraphrase
    "Write a regular expression that matches a valid IPv4 address.",
    "What wine goes well with grilled salmon?",
    "Describe the rules of cricket in simple terms.",
    "Draft a two-sentence bio for a freelance illustrator's website.",
    "What is the time complexity of binary search and why?",
    "I have chicken thighs, lemons and potatoes. What can I cook tonight?",
    "Create a packing checklist for a week of camping in the rain.",
    "How do noise-cancelling headphones actually cancel noise?",
    "Write a Python function that checks whether a string is a palindrome.",
    "What are the pros and cons of renting versus buying a house?",
    "Compose a short lullaby for a newborn.",
    "How do I remove a red wine stain from a white carpet?",
    "Summarise the causes of the French Revolution in five bullet points.",
    "Give me a mnemonic for the order of the planets.",
    "How many cups of coffee a day is too much?",
    "Write a product description for a handmade ceramic mug.",
    "What's the difference between 'affect' and 'effect'?",
    "Explain git rebase versus git merge with an example.",
    "My tomato plant leaves are turning yellow. What should I do?",
    "Create a weekly chore chart for two adults and a teenager.",
    "What questions should I ask at the end of a job interview?",
    "Write a haiku about a city at night.",
    "How do I calculate compound interest by hand?",
    "What are good stretches for lower back pain after sitting all day?",
    "Recommend three science fiction novels for someone who loved Dune.",
    "How does a bill become a law in the United States?",
    "Write a JavaScript snippet that debounces a function.",
    "What is the capital of Mongolia and what is it known for?",
    "Help me name a small bakery that specialises in rye bread.",
    "Why is the ocean salty but rivers are not?",
    "Create a study schedule for the bar exam over twelve weeks.",
    "What does a Docker volume do and when do I need one?",
    "Write a thank-you card for a neighbour who watered my plants.",
    "How can I improve my chess endgame?",
    "Explain the Monty Hall problem and why switching wins.",
    "Give me ideas for a 10-year-old's birthday party at home.",
    "What is a good way to learn touch typing as an adult?",
    "Write a short horror story that takes place in an elevator.",
    "How do I set up a monthly budget in a spreadsheet?",
    "What are the symptoms of vitamin D deficiency?",
    "Turn this list into a paragraph: eggs, flour, sugar, butter, vanilla.",
    "Why do planes fly at around 35,000 feet?",
    "Write a limerick about a forgetful wizard.",
    "What is the Pythagorean theorem used for in real life?",
    "How should I prepare for a 10k run in eight weeks?",
    "Explain what an API is using a restaurant analogy.",
    "Write an apology text to a friend for missing their birthday dinner.",
    "What are the main differences between Python lists and tuples?",
    "Suggest a vegetarian menu for a dinner party of six.",
    "How do I change a flat tyre on a bicycle?",
    "What causes the northern lights?",
    "Create a mission statement for a community bike repair shop.",
    "How do I centre a div horizontally and vertically in CSS?",
    "Give me three conversation starters for a networking event.",
    "What is the origin of the word 'quarantine'?",
    "Write a four-line poem for a retirement card.",
    "How do I negotiate a higher starting salary?",
    "Explain the offside rule in football.",
    "What houseplants survive in low light?",
    "Write a Rust function that sums a vector of integers.",
    "How can I make my small apartment feel bigger?",
    "What should I know before adopting a rescue dog?",
    "Draft an out-of-office reply for a two-week holiday.",
    "Why do we have leap years?",
    "Write a short speech for a high school graduation.",
    "How do I unclog a bathroom sink without chemicals?",
    "Compare electric cars and hybrids for a long daily commute.",
    "What are the rules for using semicolons?",
    "Give me a recipe for vegan chocolate chip cookies.",
    "How does the immune system remember a virus?",
    "Write a tweet announcing the launch of a budgeting app.",
    "How do I back up my phone photos to an external drive?",
    "What is inflation and why do central banks raise interest rates?",
    "Write a dialogue between a detective and a nervous witness.",
    "How do I introduce two cats to each other?",
    "What are the stages of grief?",
    "Make a grocery list for a week of high-protein breakfasts.",
    "Explain recursion to someone who has never programmed.",
    "What is the etiquette for tipping in Japan?",
    "Write a riddle whose answer is 'a shadow'.",
    "How do solar panels turn sunlight into electricity?",
    "Give me feedback phrases for a performance review that are kind but honest.",
    "How do I keep my cast iron pan from rusting?",
    "What is the difference between weather and climate?",
    "Write a motivational message for a team that just missed a deadline.",
    "How do I fix 'permission denied' when running a shell script?",
    "What are the health benefits of eating oats?",
    "Plan a scavenger hunt for a group of teenagers in a park.",
    "Explain how a credit score is calculated.",
    "Write a short fable with a moral about patience.",
    "How do I memorise a speech quickly?",
    "What is a black hole made of?",
    "Describe a good morning routine for better focus.",
    "How do I write unit tests for a function that reads a file?",
    "Write a wedding invitation for a small outdoor ceremony in October.",
]

# Hand-written rewordings of HAND[0..24]: same request, different words.
PARAPHRASES = [
    "In Python, how can a singly linked list be reversed in place?",
    "How should I keep fresh basil so it doesn't wilt or turn black for several days?",
    "Draft a cover letter for me applying to be an entry-level data analyst at a retailer.",
    "My sourdough loaves keep turning out heavy and flat. Why is that?",
    "I'm visiting Lisbon for the first time for three days with little money. Make me a plan.",
    "How does a traditional IRA differ from a Roth IRA?",
    "Suggest a twenty-minute workout with no equipment that fits in a hotel room.",
    "What arguments could persuade my landlord to allow a pet cat?",
    "How do you say 'where is the train station' in German, Italian and Japanese?",
    "Why is the derivative of the exponential function e^x equal to e^x?",
    "The fan on my laptop is constantly noisy. What might be the reason?",
    "Come up with five possible titles for a podcast on city gardening.",
    "For a soft, runny yolk, how many minutes should an egg boil?",
    "Write SQL to get the second-largest salary from an employees table.",
    "Help me with what to say when giving a toast at my sister's wedding.",
    "What can I do to stop putting things off while working remotely?",
    "Can I safely eat cooked rice that sat at room temperature all night?",
    "Make 'we gotta fix this asap' sound more professional.",
    "Which board games work well for families with small children?",
    "What's a courteous way to turn down my boss's meeting invite?",
    "What is 350°F in Celsius? Please include the conversion formula.",
    "Give me a one-line bash command to count lines in each Python file in a directory.",
    "What are the first warning signs that I'm burning out at my job?",
    "Assist me in writing a courteous email complaining that my furniture was delivered late.",
    "What is the reason cats knead blankets with their paws?",
]

TOPICS = [
    "photosynthesis", "plate tectonics", "the French Revolution", "black holes", "compound interest",
    "machine learning", "the immune system", "climate change", "the Roman Empire", "quantum computing",
    "the water cycle", "supply and demand", "DNA replication", "the printing press", "volcanoes",
    "jazz music", "the stock market", "renewable energy", "the Cold War", "blockchain",
    "coral reefs", "the human heart", "impressionist painting", "electric circuits", "honeybees",
    "the Silk Road", "antibiotic resistance", "the moon landing", "ocean tides", "public key cryptography",
]
TEMPLATES = [
    "Explain {t} to a ten-year-old in plain words.",
    "Write a short quiz with five questions about {t}.",
    "What are the most common misconceptions about {t}?",
    "Summarize the history of {t} in one paragraph.",
    "Give me a two-week study plan for learning about {t}.",
    "Write a limerick about {t}.",
    "List three open questions that researchers still have about {t}.",
    "Recommend a few books or documentaries on {t} for a beginner.",
]
SYNONYMS = {
    "write": "compose", "explain": "describe", "give": "provide", "short": "brief", "list": "name",
    "simple": "plain", "help": "assist", "make": "create", "good": "great", "best": "top",
    "small": "little", "how": "in what way", "suggest": "propose", "plan": "schedule",
    "three": "3", "five": "5", "quickly": "fast", "recipe": "method", "common": "frequent",
    "few": "couple of", "beginner": "novice", "open": "unsolved", "ideas": "suggestions",
}
DROPPABLE = {"a", "an", "the", "some", "very", "short", "simple", "small", "good", "all", "that"}
FILLERS = ["please", "briefly", "also", "really", "quickly"]


def _edit(text: str, op: str, rng: random.Random) -> str:
    """One near-exact edit of ``text`` (falls back to an inserted word when ``op`` cannot apply)."""
    words = text.split(" ")
    if op == "synonym":
        spots = [i for i, w in enumerate(words) if w.lower().strip(".,?!'") in SYNONYMS]
        if spots:
            i = rng.choice(spots)
            core = words[i].strip(".,?!'")
            new = SYNONYMS[core.lower()]
            new = new.capitalize() if core[0].isupper() else new
            words[i] = words[i].replace(core, new)
            return " ".join(words)
        op = "insert"
    if op == "drop":
        spots = [i for i, w in enumerate(words[1:-1], 1) if w.lower() in DROPPABLE]
        if spots:
            del words[rng.choice(spots)]
            return " ".join(words)
        op = "insert"
    if op == "typo":
        spots = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if spots:
            i = rng.choice(spots)
            w = words[i]
            k = rng.randrange(1, len(w) - 2)
            words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2:]
            return " ".join(words)
        op = "insert"
    if op == "comma":
        spots = [i for i, w in enumerate(words[1:-2], 1) if w[-1].isalpha()]
        if spots:
            i = rng.choice(spots)
            words[i] += ","
            return " ".join(words)
        op = "insert"
    i = rng.randrange(1, len(words))  # insert
    words.insert(i, rng.choice(FILLERS))
    return " ".join(words)


def _case(text: str, k: int) -> str:
    return [text.upper(), text.lower(), text.title()][k % 3]


def _spacing(text: str, k: int) -> str:
    if k % 3 == 0:
        return "  " + text.replace(" ", "   ", 2) + "\n"
    if k % 3 == 1:
        return text.rstrip(".?!") + "!!"
    return "\t" + text.rstrip(".?!") + " ..."


def build_fixture(seed: int = 7):
    """``(rows, truth, planted)``: sft rows, the true cluster of each row, ``[(row, source, type)]``."""
    rng = random.Random(seed)
    base = list(HAND)
    for ti, topic in enumerate(TOPICS):
        for tpl in rng.sample(TEMPLATES, 6):
            base.append(tpl.format(t=topic))
    assert len(base) == len(set(base)) == 300, len(set(base))
    texts, truth, planted = list(base), list(range(len(base))), []

    def plant(text: str, source: int, kind: str) -> None:
        planted.append((len(texts), source, kind))
        texts.append(text)
        truth.append(truth[source])

    for k, src in enumerate(rng.sample(range(len(base)), 30)):
        t = base[src]
        plant(t if k < 10 else _case(t, k) if k < 20 else _spacing(t, k), src, "exact")
    ops = ["synonym", "insert", "drop", "typo", "comma"]
    for k, src in enumerate(rng.sample(range(len(base)), 40)):
        plant(_edit(base[src], ops[k % len(ops)], rng), src, "near")
    for src, para in enumerate(PARAPHRASES):
        plant(para, src, "paraphrase")
    rows = [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "..."}]}
            for t in texts]
    return rows, truth, planted


# ---------------------------------------------------------------- metrics


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def fmt(k: int, n: int) -> str:
    if n == 0:
        return "   n/a (n=0)        "
    lo, hi = wilson(k, n)
    return f"{k / n:5.3f} [{lo:.2f},{hi:.2f}] ({k}/{n})"


def _pairs(labels) -> set[tuple[int, int]]:
    groups: dict = {}
    for i, g in enumerate(labels):
        groups.setdefault(g, []).append(i)
    return {(a, b) for g in groups.values() for x, a in enumerate(g) for b in g[x + 1:]}


def evaluate(result, rows, truth, planted) -> dict:
    from sharpset.records import content_id

    ids = [content_id(r) for r in rows]
    pos = {}
    for i, rid in enumerate(ids):
        pos.setdefault(rid, []).append(i)
    pred = list(range(len(rows)))  # singleton unless in a cluster
    rep_of = list(range(len(rows)))
    for members in result.clusters:
        rep = pos[members[0]][0]
        for rid in members:
            for i in pos[rid]:
                pred[i], rep_of[i] = rep, rep
    for rid, idx in pos.items():  # byte-identical rows share an id: one of them is kept
        if len(idx) > 1:
            for i in idx:
                pred[i] = pred[idx[0]]
                rep_of[i] = rep_of[idx[0]]
    kept_idx = set()
    for r in result.kept:
        kept_idx.add(pos[r["id"]][0])
    true_p, pred_p = _pairs(truth), _pairs(pred)
    removed = [i for i in range(len(rows)) if i not in kept_idx]
    right = sum(truth[i] == truth[rep_of[i]] for i in removed)
    removable = len(rows) - len(set(truth))
    by_type = {}
    for kind in ("exact", "near", "paraphrase"):
        ps = [(d, s) for d, s, k in planted if k == kind]
        by_type[kind] = (sum(pred[d] == pred[s] for d, s in ps), len(ps))
    return {"pairs_p": (len(true_p & pred_p), len(pred_p)), "pairs_r": (len(true_p & pred_p), len(true_p)),
            "rm_p": (right, len(removed)), "rm_r": (right, removable), "by_type": by_type}


def line(name: str, ev: dict) -> str:
    t = ev["by_type"]
    return (f"{name:34s} pairs P {fmt(*ev['pairs_p'])}  R {fmt(*ev['pairs_r'])} | removals P {fmt(*ev['rm_p'])}"
            f"  R {fmt(*ev['rm_r'])} | recall exact {t['exact'][0]}/{t['exact'][1]} near {t['near'][0]}/"
            f"{t['near'][1]} para {t['paraphrase'][0]}/{t['paraphrase'][1]}")


# ---------------------------------------------------------------- main


def main() -> int:
    import torch

    torch.set_num_threads(1)
    from sharpset.stages.dedup import DedupConfig, default_embedder, dedup_rows, normalize, shingles, text_of

    rows, truth, planted = build_fixture()
    n_true_clusters = len(set(truth))
    print(f"fixture: {len(rows)} rows = 300 distinct + {len(planted)} planted "
          f"({sum(k == 'exact' for *_, k in planted)} exact, {sum(k == 'near' for *_, k in planted)} near-exact, "
          f"{sum(k == 'paraphrase' for *_, k in planted)} paraphrase); {n_true_clusters} true clusters, "
          f"{len(_pairs(truth))} true duplicate pairs, {len(rows) - n_true_clusters} rows to remove")

    t0 = time.perf_counter()
    real = default_embedder("minilm-l6")
    cache: dict[str, np.ndarray] = {}

    def embed(texts):  # memoised so the sweep embeds each text once
        todo = [t for t in texts if t not in cache]
        if todo:
            for t, v in zip(todo, real(todo)):
                cache[t] = v
        return np.stack([cache[t] for t in texts])

    base = DedupConfig()
    print(f"defaults (minhash picked from this fixture, see docstring): minhash shingle_n={base.shingle_n} "
          f"jaccard>={base.minhash_threshold} num_perm={base.num_perm}; embedding cosine>={base.embedding_threshold}")
    print("\n== each method alone and combined, at the defaults ==")
    for methods in (["exact"], ["minhash"], ["embedding"], ["exact", "minhash", "embedding"]):
        res = dedup_rows(rows, replace(base, methods=methods), embed=embed)
        print(line("+".join(methods), evaluate(res, rows, truth, planted)))
        if len(methods) == 3:
            keys = ("counts", "rows_removed_by_method", "cluster_size_histogram")
            print("   report:", {k: res.report[k] for k in keys})
    print(f"   (embedding {len(cache)} texts took {time.perf_counter() - t0:.1f} s incl. model load)")

    print("\n== sweep: minhash (shingle_n x Jaccard threshold), alone ==")
    for n in (1, 2, 3):
        for thr in (0.5, 0.6, 0.7, 0.8, 0.9):
            res = dedup_rows(rows, replace(base, methods=["minhash"], shingle_n=n, minhash_threshold=thr))
            print(line(f"minhash n={n} J>={thr}", evaluate(res, rows, truth, planted)))
    print("\n== sweep: embedding cosine threshold, alone ==")
    for thr in (0.975, 0.95, 0.925, 0.9, 0.875, 0.85, 0.8, 0.75):
        res = dedup_rows(rows, replace(base, methods=["embedding"], embedding_threshold=thr), embed=embed)
        print(line(f"embedding cos>={thr}", evaluate(res, rows, truth, planted)))
    print("\n== combined, embedding threshold lowered ==")
    for thr in (0.9, 0.85):
        res = dedup_rows(rows, replace(base, embedding_threshold=thr), embed=embed)
        print(line(f"all, cos>={thr}", evaluate(res, rows, truth, planted)))

    print("\n== cosine (minilm-l6) of true vs false pairs ==")
    texts = [text_of(r, "instruction") for r in rows]
    vec = embed(texts)
    vec = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    sim = vec @ vec.T
    for kind in ("exact", "near", "paraphrase"):
        s = np.array([sim[d, s] for d, s, k in planted if k == kind])
        print(f"{kind:10s} n={len(s):3d}  min {s.min():.3f}  p10 {np.quantile(s, .1):.3f}  "
              f"median {np.median(s):.3f}")
    iu = np.triu_indices(len(rows), 1)
    truth_a = np.array(truth)
    neg = sim[iu][truth_a[iu[0]] != truth_a[iu[1]]]
    print(f"non-dup    n={len(neg)}  max {neg.max():.3f}  p99.9 {np.quantile(neg, .999):.3f}  "
          + "  ".join(f">={t}: {(neg >= t).sum()}" for t in (0.975, 0.95, 0.9, 0.85, 0.8)))
    order = np.argsort(-neg)[:5]
    a_idx, b_idx = iu[0][truth_a[iu[0]] != truth_a[iu[1]]], iu[1][truth_a[iu[0]] != truth_a[iu[1]]]
    for k in order:
        print(f"   false pair cos {neg[k]:.3f}: {texts[a_idx[k]]!r} ~ {texts[b_idx[k]]!r}")
    jac = []
    for d, s_, k in planted:
        if k == "paraphrase":
            a, b = shingles(normalize(texts[d]), 2), shingles(normalize(texts[s_]), 2)
            jac.append(len(a & b) / len(a | b))
    print(f"paraphrase bigram Jaccard (exact): max {max(jac):.2f} median {np.median(jac):.2f}")

    print("\n== permutation ==")
    ref = None
    for seed in (0, 1, 2):
        perm = list(range(len(rows)))
        random.Random(seed).shuffle(perm)
        res = dedup_rows([rows[i] for i in perm], base, embed=default_embedder("minilm-l6"))  # fresh model
        got = (sorted((r["id"], r["dup_cluster"], r["dup_cluster_size"]) for r in res.kept), res.clusters,
               {m: sorted(p) for m, p in res.pairs.items()})
        ok = ref is None or got == ref
        print(f"shuffle seed {seed}: kept {len(res.kept)}, clusters {len(res.clusters)}, "
              f"{'same as first' if ok else 'DIFFERENT'}")
        if ref is None:
            ref = got
        elif not ok:
            print("permutation: REPRESENTATIVES CHANGED")
            return 1
    print("permutation: representatives identical across 3 shuffles")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
