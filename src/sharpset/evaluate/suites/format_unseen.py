"""``format_unseen``: verifiable format instructions of **held-out** (unseen) constraint types.

The registry's held-out types (:data:`sharpset.constraints.HELDOUT_TYPES`: IFBench's 45 usable ones,
never drawn by ``sharpset constrain`` by default) on the project's own prompts
(``evaluate/data/format_unseen.jsonl``: 130 everyday requests, each held-out type on >= 3 of them;
built by ``python -m sharpset.evaluate.data.build`` from ``_format_unseen.py``). Scored exactly as
``format`` (:mod:`.format`): the same metrics (prompt_strict, prompt_loose; instruction strict and
loose in ``extra``), the same strict and loose rules, per type with Wilson intervals -- so a tuned
model's gain on seen types (``format``) and on unseen ones (this suite) sit side by side (METHODS
§9b). ``--format-data`` replaces ``format``'s items only; this suite keeps its shipped set.
"""

from __future__ import annotations

from .format import METRICS, FormatSuite

# 3: the echo flag also catches a garbled repetition of the request (health.echoes_prompt). 2: prompt_strict_no_echo (an answer that begins by repeating the request fails; format.METRICS)
SUITE = FormatSuite("format_unseen", 3, "verifiable format instructions, held-out (unseen) types (IFBench's, "
                    "own prompts): strict/loose (and strict with an echoed request failing)", metrics=METRICS,
                    data="format_unseen", user_data=False)
