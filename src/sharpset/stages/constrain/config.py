"""``sharpset constrain``'s identity and settings: STAGE, VERSION, the config fields (dataclass fields =
YAML keys = CLI flags) and their checks, and the names the fields choose from (gates, tie-breaks, the
reasons a row is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...config import field
from ...stage import BackendFields

STAGE = "constrain"
VERSION = 4  # 4: the pseudo_refusal gate also catches an opening apology for a confusion or mistake (text.degeneration.APOLOGY_OPENINGS; the quickstart kept one such row at 3); 3: gates (a candidate that loops or declines-then-helps never wins: issue 20's quickstart copied one
# kept row's "I'm sorry for the confusion." into 10 of 40 answers); 2: answer_check (a row with a known answer keeps
# only a candidate that states it)

DROP_REASONS = ("no_constraint", "no_pass", "only_truncated", "wrong_answer", "gated")
GATES = ("loop", "pseudo_refusal")  # of text.degeneration.GATE_COLUMNS; truncated candidates have their own rule
TIE_BREAKS = ("quality_lm", "shortest")


@dataclass
class ConstrainConfig(BackendFields):
    input: str = field("", "the pool: SFT rows (Magpie messages, e.g. a synth run folder), prompt/completion rows, "
                           "or an IFEval-format file (prompt, instruction_id_list, kwargs: constraints used as given)")
    model: str = field("smollm2-135m-instruct", "aligned model that writes the candidates (and repairs)")
    types: list = field(["train"], "constraint types to draw: ids or groups (train, heldout, ifeval, ifbench, all); "
                                   "`sharpset.constraints` lists them")
    heldout_types: list = field(["heldout"], "types held out for evaluation (default IFBench's): never drawn unless "
                                             "allow_heldout")
    allow_heldout: bool = field(False, "allow `types` to include held-out types")
    count_weights: list = field([0.2, 0.4, 0.4], "weights of 1, 2, 3 constraints per prompt")
    k: int = field(8, "candidates per prompt")
    temperature: float = field(0.8, "candidate sampling temperature")
    top_p: float = field(0.95, "candidate top-p")
    max_new_tokens: int = field(256, "max tokens of a candidate")
    repetition_penalty: float = field(1.1, "candidate repetition penalty (1.0 = off; synth's default, issue 13)")
    keep_truncated: bool = field(False, "let a candidate cut at max_new_tokens win (default: it cannot)")
    answer_check: bool = field(True, "a pool row with a known `answer` keeps only a candidate that states it "
                                     "(the constraints check the form, this the content)")
    gates: list = field(list(GATES), "health gates a winning candidate must pass (as curate's: "
                                     "empty, loop, incomplete, refusal, pseudo_refusal, language_mismatch); a "
                                     "candidate that fails one never wins; [] = none")
    tie_break: str = field("quality_lm", "among passing candidates: quality_lm (then shortest) or shortest")
    repair: bool = field(False, "rewrite the best failing candidate once with the unmet constraints restated")
    pairs: bool = field(False, "also write pairs.jsonl: chosen (passing) / rejected (failing) in TRL's preference format")
    limit: int = field(0, "use only the first N pool rows (0 = all)")
    seed: int = field(0, "base seed: constraints and sampling keyed by (seed, 'constrain', row id)")
    batch_size: int = field(16, "engine batch size")

    def key_inputs(self) -> dict[str, str]:
        """The subject model by fingerprint (run.config_reads)."""
        from ...run import models_read

        return models_read(model=self.model)

    def draw_types(self) -> list[str]:
        from ...constraints import resolve_types

        return resolve_types(self.types, "types")

    def held_out(self) -> set[str]:
        from ...constraints import resolve_types

        return set(resolve_types(self.heldout_types, "heldout_types"))

    def weights(self) -> list[float]:
        return [float(w) for w in self.count_weights]

    def check(self) -> list[tuple[str, str]]:
        p = []
        if not self.input:
            p.append(("input", "give the pool: a file or folder of instructions (e.g. a synth run folder)"))
        if self.k < 1:
            p.append(("k", "must be >= 1"))
        if self.temperature < 0:
            p.append(("temperature", "must be >= 0"))
        if not 0 < self.top_p <= 1:
            p.append(("top_p", "must be in (0, 1]"))
        if self.max_new_tokens < 1:
            p.append(("max_new_tokens", "must be >= 1"))
        if self.repetition_penalty <= 0:
            p.append(("repetition_penalty", "must be > 0"))
        from ...text.degeneration import GATE_COLUMNS

        bad = [g for g in self.gates if g not in GATE_COLUMNS]
        if bad:
            p.append(("gates", f"unknown {bad}; choose from {', '.join(GATE_COLUMNS)}"))
        if self.tie_break not in TIE_BREAKS:
            p.append(("tie_break", f"must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break!r}"))
        try:
            w = self.weights()
            if not w or any(x < 0 for x in w) or sum(w) <= 0:
                p.append(("count_weights", "give one weight >= 0 per count (1, 2, 3, ...), not all 0"))
        except (TypeError, ValueError):
            p.append(("count_weights", f"must be numbers, got {self.count_weights!r}"))
        try:
            types, held = self.draw_types(), self.held_out()
        except ValueError as e:
            name, _, why = str(e).partition(": ")
            p.append((name, why))
            return p
        if not types:
            p.append(("types", "no constraint type selected"))
        bad = [t for t in types if t in held]
        if bad and not self.allow_heldout:
            p.append(("types", f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} held out (heldout_types): "
                               "drawing them would leave eval no unseen types; set allow_heldout to draw them"))
        return p

    def scoring_needs(self) -> dict[str, str]:
        return {"answer_token_nll": "tie_break=quality_lm"} if self.tie_break == "quality_lm" else {}

    def decoding(self) -> dict[str, tuple[str, Any]]:
        return {"repetition_penalty": ("repetition_penalty", self.repetition_penalty)}
