"""Source list and plan for ``format_unseen.jsonl``: everyday requests under **held-out** (unseen)
constraint types (issue 20, build item 3).

**Requests**: SHAPE's 46 everyday requests (``_everyday.py``: no format instruction of their own) and
the 84 of :data:`TASKS` below, written for this project (Apache-2.0; not copied from IFEval, IFBench
or any dataset). One prompt per request, so no two prompts share a base task.

**Constraints**: only the registry's held-out types (:data:`sharpset.constraints.HELDOUT_TYPES`,
IFBench's 45 usable ones), each with the registry's own parts: its seeded kwargs sampler, one of its
phrasings (the project's text, :data:`sharpset.constraints.PHRASING_SOURCE`), the conflict table and
the kwargs rules (:func:`sharpset.constraints.conflict`, :func:`~sharpset.constraints.kwargs_problem`).
The prompt is :func:`sharpset.constraints.user_turn`: the request, a blank line, the constraints.

**Plan** (:func:`plan`, deterministic; ``build.py --check`` fails when a registry change moves it):

1. requests in a fixed order: by ``derive_seed(SEED, "format_unseen/order", request)``;
2. the first ``3 x |exclusive|`` requests carry one *exclusive* held-out type each (a type that
   dictates the whole reply and never shares a prompt: one word per line, only prime-length words,
   repeat the request, ...): the least used one so far, so each gets exactly 3;
3. every other request draws how many constraints with :data:`COUNT_WEIGHTS` (format.jsonl's own
   mix of 1 / 2 / 3 instructions, 143 / 94 / 17 of 254, so seen and unseen prompts are alike), then
   each next type is the least used non-exclusive held-out type compatible with those chosen, ties
   broken by the request's generator; a type whose sampler does not apply, or whose kwargs break a
   kwargs rule, is set aside and the next one tried.

Every draw comes from ``rng_for(SEED, "format_unseen", request)`` (STYLE habit 3).
"""

from __future__ import annotations

from collections import Counter

from ._everyday import SHAPE

SEED = 20
STAGE = "format_unseen"
COUNT_WEIGHTS = (0.55, 0.37, 0.08)  # format.jsonl: 143 / 94 / 17 of 254 prompts carry 1 / 2 / 3
PER_EXCLUSIVE = 3

TASKS = [  # (task_type, request): written for this file
    ("email", "Write an email to my manager asking to work from home on Fridays."),
    ("email", "Draft a message to a plumber asking for a quote to replace a leaking kitchen tap."),
    ("email", "Write a short email thanking a colleague for covering my shift last weekend."),
    ("email", "Help me write an email to a hotel asking whether they allow small dogs."),
    ("email", "Write an email reminding my book club that we meet on Tuesday at seven."),
    ("email", "Compose an email to a school asking about their open day for new parents."),
    ("recipe", "Give me a simple recipe for tomato soup."),
    ("recipe", "How do I make pancakes without eggs?"),
    ("recipe", "What is a quick lunch I can pack with leftover rice?"),
    ("recipe", "Explain how to roast vegetables so they come out crispy."),
    ("recipe", "How do I make a pot of good rice on the stove?"),
    ("recipe", "Suggest a healthy snack for an afternoon at the office."),
    ("travel_tips", "What should I pack for a weekend of hiking in the hills?"),
    ("travel_tips", "Give me tips for a long train journey with a toddler."),
    ("travel_tips", "How can I avoid jet lag on a flight to Japan?"),
    ("travel_tips", "What should I do on a rainy afternoon in Amsterdam?"),
    ("travel_tips", "How do I find cheap places to eat when travelling in a big city?"),
    ("explain_concept", "Explain how a rainbow forms."),
    ("explain_concept", "What is compound interest and why does it matter?"),
    ("explain_concept", "Why do leaves change colour in autumn?"),
    ("explain_concept", "How does a refrigerator keep food cold?"),
    ("explain_concept", "What does a vaccine do inside the body?"),
    ("explain_concept", "Explain why the sky looks blue during the day."),
    ("explain_concept", "How do bees make honey?"),
    ("product_description", "Describe a waterproof backpack for daily cycling commutes."),
    ("product_description", "Write a description of a scented soy candle that smells of pine."),
    ("product_description", "Describe a wooden puzzle toy for children aged three to five."),
    ("product_description", "Write a short description of a reusable water bottle made of steel."),
    ("product_description", "Describe a cosy wool blanket for a shop website."),
    ("study_advice", "How can I stay focused when studying at home?"),
    ("study_advice", "What is a good way to revise for a history exam?"),
    ("study_advice", "How do I learn new vocabulary in a foreign language faster?"),
    ("study_advice", "Give me advice on taking better notes in lectures."),
    ("study_advice", "How should I plan my week when I have three deadlines?"),
    ("short_story", "Write a short story about a girl who finds a map in her attic."),
    ("short_story", "Tell a short story about a robot that learns to bake bread."),
    ("short_story", "Write a story about an old man and his garden in winter."),
    ("short_story", "Tell me a story about a cat who gets lost at a train station."),
    ("short_story", "Write a short tale about two friends who build a raft."),
    ("summary", "Summarise this: The town library will close for repairs in May. Books can still be "
                "returned at the town hall, and a small reading room will open in the school during the summer."),
    ("summary", "Summarise this: Our team finished the website redesign a week early. Visitors now find "
                "the contact page faster, but some older pages still need new photos."),
    ("summary", "Summarise this: The bakery on Mill Street has new owners. They kept the old recipes, "
                "added vegan cakes, and now open at seven instead of eight."),
    ("summary", "Summarise this: Heavy rain flooded two roads near the river on Sunday. The council "
                "closed them overnight and says they will reopen once the water goes down."),
    ("home_advice", "How do I get rid of mould on a bathroom ceiling?"),
    ("home_advice", "What is the best way to keep a small flat warm in winter?"),
    ("home_advice", "How can I make my houseplants grow better?"),
    ("home_advice", "How do I unblock a slow kitchen sink?"),
    ("home_advice", "What can I do about a squeaky wooden floor?"),
    ("planning", "Help me plan a birthday picnic for ten people."),
    ("planning", "How should I plan a move to a new flat across town?"),
    ("planning", "Plan a simple weekly menu for a family of four."),
    ("planning", "Help me plan a day trip to the seaside by train."),
    ("planning", "How do I organise a charity bake sale at school?"),
    ("social_post", "Write a social media post announcing our cafe's new opening hours."),
    ("social_post", "Write a post for a running club inviting new members to join."),
    ("social_post", "Write a post celebrating our shop's tenth anniversary."),
    ("social_post", "Write a short post sharing a photo of my first homemade loaf."),
    ("review", "Write a review of a small Italian restaurant with friendly staff but slow service."),
    ("review", "Write a review of a pair of running shoes I have worn for three months."),
    ("review", "Review a hotel that was clean and quiet but far from the centre."),
    ("review", "Write a review of a board game that is fun with four players."),
    ("poem", "Write a poem about the sea at night."),
    ("poem", "Write a short poem about a busy kitchen."),
    ("poem", "Write a poem about waiting for a bus in the rain."),
    ("poem", "Write a poem about an old pair of boots."),
    ("customer_service", "Reply to a customer whose order arrived two days late."),
    ("customer_service", "Write a reply to a customer asking how to return a jacket that does not fit."),
    ("customer_service", "Answer a customer who was charged twice for the same order."),
    ("customer_service", "Reply to a guest who found the hotel room too noisy."),
    ("fitness", "Give me a short morning stretching routine."),
    ("fitness", "How can a beginner start running without getting injured?"),
    ("fitness", "Suggest exercises I can do at my desk during work."),
    ("fitness", "How do I build a habit of walking every day?"),
    ("speech", "Write a short speech for my sister's wedding."),
    ("speech", "Write a welcome speech for the first day of a summer camp."),
    ("speech", "Write a short thank-you speech for a retiring teacher."),
    ("letter", "Write a letter to my future self to open in ten years."),
    ("letter", "Write a letter to a pen pal describing my home town."),
    ("letter", "Write a letter to the council asking for a new bench in the park."),
    ("invitation", "Write an invitation to a housewarming party next Saturday."),
    ("invitation", "Write an invitation for a children's garden party with games."),
    ("invitation", "Write an invitation to a small dinner for my parents' anniversary."),
    ("everyday_question", "Why does my coffee go cold so quickly in a glass cup?"),
    ("everyday_question", "How do I choose a ripe melon at the market?"),
]


def requests() -> list[tuple[str, str]]:
    """Every base request, ``(task_type, request)``: SHAPE's, then :data:`TASKS`."""
    return [*SHAPE, *TASKS]


def plan() -> list[dict]:
    """One row content per request (``messages``, ``instruction_id_list``, ``kwargs``,
    ``task_type``; no id or split), following the module docstring. A ValueError names the request
    when a held-out type ends with fewer than 3 prompts or a request gets no constraint."""
    import sharpset.constraints as C
    from sharpset.run import derive_seed

    types = list(C.HELDOUT_TYPES)
    exclusive = [t for t in types if t in C.EXCLUSIVE]
    shared = [t for t in types if t not in C.EXCLUSIVE]
    order = sorted(requests(), key=lambda tr: derive_seed(SEED, f"{STAGE}/order", tr[1]))
    used: Counter = Counter()
    rows = []
    for k, (task_type, req) in enumerate(order):
        rng = C.rng_for(SEED, STAGE, req)
        if k < PER_EXCLUSIVE * len(exclusive):
            n, pool = 1, exclusive
        else:
            n, pool = rng.choices(range(1, len(COUNT_WEIGHTS) + 1), weights=COUNT_WEIGHTS)[0], shared
        chosen: list[dict] = []
        left = list(pool)
        while len(chosen) < n:
            options = [t for t in left if all(C.conflict(t, c["id"]) is None for c in chosen)]
            if not options:
                break
            low = min(used[t] for t in options)
            t = rng.choice([t for t in options if used[t] == low])
            left.remove(t)
            spec = C.TYPES[t]
            kw = spec.sample(rng, req)
            if kw is None:
                continue
            cand = {"id": t, "kwargs": kw, "phrasing": rng.randrange(len(spec.phrasings))}
            if C.kwargs_problem(chosen, cand, req) is None:
                chosen.append(cand)
                used[t] += 1
        if not chosen:
            raise ValueError(f"request {req!r}: no held-out constraint applies")
        rows.append({"messages": [{"role": "user", "content": C.user_turn(req, chosen)}],
                     "instruction_id_list": [c["id"] for c in chosen],
                     "kwargs": [c["kwargs"] for c in chosen], "task_type": task_type})
    short = {t: used[t] for t in types if used[t] < 3}
    if short:
        raise ValueError(f"held-out types with fewer than 3 prompts: {short}")
    return rows
