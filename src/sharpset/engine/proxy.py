"""Proxy-tuning: steer a base model at decoding time with a small expert and its untuned self.

Liu et al. 2024, "Tuning Language Models by Proxy" (arXiv:2401.08565), METHODS §7. At every step

    s = s_base + alpha * (s_expert - s_antiexpert)

on the three models' raw next-token logits, over one shared vocabulary; then the row's usual
repetition rules, temperature, top-p and min-p (engine/base.SamplingParams), then softmax. alpha = 1
is the paper's setting; alpha = 0 is the base alone (bit for bit), expert == antiexpert too.

How it runs: each model decodes in its own *lane*, a :class:`~sharpset.engine.hf.TransformersEngine`
over that model with its own KV cache, masks and kernels. :class:`ProxyEngine` is the transformers
engine's scheduler (continuous batching, refill or bucket) with its per-batch steps -- ``_prefill``,
``_decode``, ``_merge``, ``_keep`` -- fanned out to the three lanes: every step feeds the sampled
token to all three, rows that finish leave all three caches, refills merge into all three. So the
proxy batches as the base engine does, unlike the reference code's three models one after another
without batching (``bench/proxy.py`` measures both). Nothing in engine/hf.py is changed for it.

Prompts (``chat_template``): ``all`` (default) -- every model sees the prompt as the stage rendered
it with the base's chat template; ``expert`` -- the paper's way: only the expert sees a chat
template (its own tokenizer's), base and anti-expert see the plain text of the user turn through
``plain_format``. A prompt is split only when it *is* exactly one user turn followed by the
generation header, as the base's template renders it: re-rendering must give back the same tokens,
and the header's first occurrence must end the prompt. Anything else -- a system turn, a Magpie
pre-query, a conversation with further turns (an earlier assistant turn opens with the same header),
text after the header (an assistant prefill), plain text -- is fed to all three as it is, and counted
(``stats["prompts_as_is"]``). The prompt is the whole input for generation and ``next_token_probs``,
and what precedes the first labelled token (labels != -100; a choice's context) for the labelled
scores. Scoring sees the same views: the tokens after the prompt are scored with each model's own
prefix, and positions inside the rewritten prompt have no combined logits (NaN), so a score that
read them would show it.

The triple must share one tokenizer: :func:`tokenizer_problem` compares the vocabularies (added
tokens included) and names the first id that differs; the engine refuses before any weights load
(stage.load_subject calls :func:`check_model`). Logit rows past the tokenizer (vocab-size padding,
e.g. a model padded to a multiple of 64) are cut to the narrowest model's width, which must cover
the tokenizer; what was trimmed is logged and kept in :attr:`ProxyEngine.trimmed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import torch

from sharpset.engine.base import GenerationRequest, GenerationResult, check_request
from sharpset.engine.hf import TransformersEngine, _Batch, _Row
from sharpset.errors import UserError

ROLES = ("base", "expert", "antiexpert")
CHAT_TEMPLATE_MODES = ("all", "expert")
# engine_options keys of this engine and their defaults (None: required)
OPTIONS: dict[str, Any] = {"expert": None, "antiexpert": None, "alpha": 1.0, "chat_template": "all",
                           "plain_format": "{prompt}\n"}
# the transformers engine's own options, passed on to every lane
ENGINE_OPTIONS = ("strategy", "linear_kernel", "pad_token_id", "stop_at_eos")
# Forward-pass scoring holds [rows, length, vocab] logits of three models at once: a third of
# engine/scoring.py's default padded-token budget per batch keeps the peak about where one model's is.
SCORING_MAX_TOKENS = 8192 // 3


# --------------------------------------------------------------------------- options and checks
def check_options(options: dict) -> list[tuple[str, str]]:
    """Problems with a proxy ``engine_options`` mapping, as (field, problem); nothing is loaded."""
    p: list[tuple[str, str]] = []
    known = set(OPTIONS) | set(ENGINE_OPTIONS)
    for k in sorted(set(options) - known):
        p.append((f"engine_options.{k}", f"unknown option of engine proxy; known: {', '.join(sorted(known))}"))
    for k in ("expert", "antiexpert"):
        v = options.get(k)
        if not v or not isinstance(v, str):
            p.append((f"engine_options.{k}", "required: a model name, local folder or `sharpset train` run folder"))
    alpha = options.get("alpha", OPTIONS["alpha"])
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha != alpha or abs(alpha) == float("inf"):
        p.append(("engine_options.alpha", f"must be a finite number, got {alpha!r}"))
    mode = options.get("chat_template", OPTIONS["chat_template"])
    if mode not in CHAT_TEMPLATE_MODES:
        p.append(("engine_options.chat_template", f"must be one of {', '.join(CHAT_TEMPLATE_MODES)}, got {mode!r}"))
    fmt = options.get("plain_format", OPTIONS["plain_format"])
    if not isinstance(fmt, str) or "{prompt}" not in fmt:
        p.append(("engine_options.plain_format", f"must be a string holding {{prompt}}, got {fmt!r}"))
    else:
        try:
            fmt.format(prompt="")
        except (KeyError, IndexError, ValueError) as e:
            p.append(("engine_options.plain_format", f"not a format string with only {{prompt}}: {e}"))
    return p


def resolved(options: dict) -> dict[str, Any]:
    """The proxy settings with defaults filled in: what provenance records (rows, summaries)."""
    return {k: options.get(k, OPTIONS[k]) for k in OPTIONS}


def _raise(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise UserError("; ".join(f"{f}: {why}" for f, why in problems))


def tokenizer_problem(base_tok, other_tok, role: str) -> str | None:
    """None when ``other_tok`` maps every token to the same id as ``base_tok`` (added tokens included),
    else a sentence naming the first id where they differ."""
    a, b = base_tok.get_vocab(), other_tok.get_vocab()
    if a == b:
        return None
    by_a, by_b = {i: t for t, i in a.items()}, {i: t for t, i in b.items()}
    for i in sorted(set(by_a) | set(by_b)):
        if by_a.get(i) != by_b.get(i):
            return (f"the {role}'s tokenizer differs from the base's at id {i}: base {by_a.get(i)!r}, "
                    f"{role} {by_b.get(i)!r} (base {len(a)} tokens, {role} {len(b)}); proxy-tuning needs one "
                    "shared vocabulary")
    return f"the {role}'s tokenizer maps the same ids to different tokens"  # unreachable for dicts; kept safe


def logit_width(config) -> int:
    """How many logits a model emits per position (its output vocabulary, padding included)."""
    return int(config.get_text_config(decoder=True).vocab_size)


def trim_note(widths: dict[str, int], n_tokens: int) -> tuple[int, str]:
    """(the common logit width, a sentence on what vocab-size padding is cut); a UserError when a
    model emits fewer logits than the tokenizer has tokens."""
    width = min(widths.values())
    if width < n_tokens:
        short = ", ".join(f"{r} {w}" for r, w in widths.items() if w < n_tokens)
        raise UserError(f"engine_options: {short} logits per position, fewer than the tokenizer's {n_tokens} "
                        "tokens: not one shared vocabulary")
    cut = [f"{r} {w} -> {width}" for r, w in widths.items() if w > width]
    note = (f"proxy: logits combined over the first {width} ids (tokenizer: {n_tokens} tokens); "
            + (f"vocab padding trimmed: {', '.join(cut)}" if cut else "no vocab padding trimmed"))
    return width, note


def check_model(base: str, options: dict, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Before any weights load: the options are valid and the three tokenizers are one vocabulary
    (a UserError naming the field or the first differing token otherwise). Loads tokenizers and
    configs only. Returns what :func:`trim_note` says, and logs it."""
    from sharpset.models.registry import load_tokenizer, resolve_model

    _raise(check_options(options))
    toks, widths = {}, {}
    for role, name in (("base", base), ("expert", options["expert"]), ("antiexpert", options["antiexpert"])):
        try:
            toks[role], cfg = load_tokenizer(resolve_model(name))
        except UserError as e:
            raise UserError(f"engine_options.{role}: {e}" if role != "base" else str(e)) from None
        widths[role] = logit_width(cfg)
    for role in ("expert", "antiexpert"):
        problem = tokenizer_problem(toks["base"], toks[role], role)
        if problem:
            raise UserError(f"engine_options.{role}: {problem}")
    width, note = trim_note(widths, len(toks["base"]))
    log(note)
    return {"width": width, "note": note}


def models_read(options: dict) -> list[str]:
    """The expert and anti-expert, resolved, for the run key (stage.BackendFields.backend_reads)."""
    from sharpset.models.registry import resolve_model

    return [resolve_model(options[k]) for k in ("expert", "antiexpert") if isinstance(options.get(k), str)]


def combine(base: torch.Tensor, expert: torch.Tensor, anti: torch.Tensor, alpha: float, width: int) -> torch.Tensor:
    """``base + alpha * (expert - anti)`` over the first ``width`` logits (last dim), in float32.
    Written as that difference, not as two additions: with expert == anti (or alpha = 0) the result is
    the base's logits bit for bit."""
    out = base[..., :width].float()
    return out + alpha * (expert[..., :width].float() - anti[..., :width].float())


# --------------------------------------------------------------------------- prompt views
class PromptViews:
    """What each model of the triple sees of a token sequence (the ``chat_template`` option)."""

    def __init__(self, mode: str, tokenizer, plain_format: str = OPTIONS["plain_format"], base_profile=None,
                 expert_profile=None):
        self.mode, self.tok, self.plain_format = mode, tokenizer, plain_format
        self.base_profile, self.expert_profile = base_profile, expert_profile
        self._header: list[int] = []
        if mode == "expert":
            self._header = list(tokenizer(base_profile.assistant_header, add_special_tokens=False)["input_ids"])

    def split(self, ids: Sequence[int], prompt_len: int | None = None) -> tuple[int, str] | None:
        """(the prompt's length, its user text) when the prompt -- ``ids[:prompt_len]``, all of ``ids``
        by default; the tokens after it are an answer -- is exactly one user turn followed by the
        generation header as the base's template renders it, else None. The header's first occurrence
        must end the prompt: in a conversation with further turns an earlier assistant turn has it."""
        from sharpset.models.profiles import ProfileError, encode_prompt

        h, n = self._header, len(self._header)
        end = len(ids) if prompt_len is None else prompt_len
        first = next((j + n for j in range(end - n + 1) if list(ids[j:j + n]) == h), None) if n else None
        if first is None or first != end:
            return None
        prof = self.base_profile
        text = self.tok.decode(list(ids[:end]), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        try:
            prefix, suffix = prof.query_prefix(), prof.layout.user[1] + prof.assistant_header
        except ProfileError:
            return None
        if not (text.startswith(prefix) and text.endswith(suffix)) or len(text) < len(prefix) + len(suffix):
            return None
        content = text[len(prefix):len(text) - len(suffix)]
        if prof.layout.user[0] in content or prof.assistant_header in content:  # further turns inside
            return None
        try:
            again = encode_prompt(prof, self.tok, [{"role": "user", "content": content}])
        except ProfileError:
            return None
        return (end, content) if again == list(ids[:end]) else None

    def views(self, ids: Sequence[int], prompt_len: int | None = None
              ) -> tuple[tuple[list[int], list[int], list[int]], int, bool]:
        """((base, expert, antiexpert) sequences, length of the original head they replace, split?).
        Each view is its own head + the original tokens after the head. ``prompt_len``: as for
        :meth:`split` (None: all of ``ids`` is the prompt)."""
        ids = list(ids)
        cut = self.split(ids, prompt_len) if self.mode == "expert" else None
        if cut is None:
            return (ids, ids, ids), 0, False
        from sharpset.models.profiles import encode_prompt, encode_text

        end, content = cut
        plain = encode_text(self.base_profile, self.tok, self.plain_format.format(prompt=content)) + ids[end:]
        chat = encode_prompt(self.expert_profile, self.tok, [{"role": "user", "content": content}]) + ids[end:]
        return (plain, chat, plain), end, True


@dataclass(eq=False)
class _View:
    """A lane's view of a row: its own prompt, the row's progress (n_new, params) read through."""

    row: _Row
    request: GenerationRequest

    @property
    def params(self):
        return self.row.params

    @property
    def n_new(self) -> int:
        return self.row.n_new


@dataclass(eq=False)
class _ProxyBatch(_Batch):
    parts: list = dataclasses.field(default_factory=list)  # one _Batch per lane, rows in the same order


# --------------------------------------------------------------------------- engine
class ProxyEngine(TransformersEngine):
    """Proxy-tuned generation and scoring (see the module docstring).

    model, tokenizer: the base (loaded, as for the transformers engine). expert, antiexpert: a model
    name / folder / `sharpset train` run folder, or a loaded model sharing ``tokenizer`` (the same
    name twice loads one model). alpha: the steering weight. chat_template: all | expert.
    plain_format: with chat_template expert, the base's and anti-expert's text, ``{prompt}`` = the
    user's message. strategy, linear_kernel, pad_token_id, stop_at_eos: as the transformers engine's,
    for every lane.

    The class-level hooks below are what a stage asks of an engine's ``engine_options`` before any
    model loads (sharpset.stage: check_backend, load_subject, backend_info, backend_reads)."""

    # in the run key of every run on this engine (stage.BackendFields.backend_reads): bump when the
    # same options and models give other outputs. 2: a prompt is split for the expert's chat template
    # only when it is exactly one user turn followed by the generation header (1 split a conversation
    # after its first user turn and gave the expert a mixed sequence)
    VERSION = 2

    check_options = staticmethod(check_options)
    check_model = staticmethod(check_model)
    describe_options = staticmethod(resolved)
    models_read = staticmethod(models_read)

    def __init__(self, model, tokenizer, *, expert: Any = None, antiexpert: Any = None, alpha: float = 1.0,
                 chat_template: str = "all", plain_format: str = OPTIONS["plain_format"], batch_size: int = 16,
                 log: Callable[[str], None] | None = None, **engine_kwargs: Any):
        bad = sorted(set(engine_kwargs) - set(ENGINE_OPTIONS))
        if bad:
            raise TypeError(f"unexpected keyword argument(s) {bad}")
        named = {"expert": expert if isinstance(expert, str) else "<model>",
                 "antiexpert": antiexpert if isinstance(antiexpert, str) else "<model>",
                 "alpha": alpha, "chat_template": chat_template, "plain_format": plain_format}
        _raise(check_options(named))
        super().__init__(model, tokenizer, batch_size=batch_size, **engine_kwargs)
        self.alpha = float(alpha)
        self.options = resolved(named)
        models = {"base": (model, tokenizer)}
        for role, m in (("expert", expert), ("antiexpert", antiexpert)):
            models[role] = _load(m, role, model) if isinstance(m, str) else (m, tokenizer)
        for role in ("expert", "antiexpert"):
            problem = tokenizer_problem(tokenizer, models[role][1], role)
            if problem:
                raise UserError(f"engine_options.{role}: {problem}")
        widths = {r: int(m.get_output_embeddings().weight.shape[0]) for r, (m, _) in models.items()}
        self.vocab, note = trim_note(widths, len(tokenizer))
        self.trimmed = {r: w - self.vocab for r, w in widths.items() if w > self.vocab}
        self._vocab = min(self._vocab, self.vocab)  # prompt ids must be rows of every model
        if log is not None:
            log(note)
        lane_kw = {k: v for k, v in engine_kwargs.items() if k != "stop_at_eos"}
        lane_kw.setdefault("pad_token_id", self.pad_token_id)
        self.lanes = {r: TransformersEngine(m, tokenizer, batch_size=batch_size, **lane_kw)
                      for r, (m, _) in models.items()}
        self.views = PromptViews(chat_template, tokenizer, plain_format, *self._profiles(chat_template, models))
        self._views: dict[int, tuple[list[int], list[int], list[int]]] = {}

    @staticmethod
    def _profiles(mode: str, models: dict) -> tuple[Any, Any]:
        if mode != "expert":
            return None, None
        from sharpset.models.profiles import ProfileError, profile_for

        out: dict[str, Any] = {}
        for role in ("expert", "base"):
            try:
                out[role] = profile_for(models[role][1])
            except ProfileError as e:
                # a template-less base (gemma3-270m's tokenizer has none) renders its turns as the expert
                # does: the two tokenizers were checked equal, so the expert's family is the base's
                if role == "base" and getattr(out.get("expert"), "family", None):
                    out[role] = profile_for(models[role][1], out["expert"].family)
                    continue
                raise UserError(f"engine_options.chat_template: expert: the {role}'s chat template: "
                                f"{str(e).splitlines()[0]}") from None
        return out["base"], out["expert"]

    def prompt_as_is(self, ids: Sequence[int]) -> bool | None:
        """With chat_template expert: True when ``ids`` go to all three models as they are (the
        expert's template could not split them; counted in ``stats["prompts_as_is"]``), False when
        split; None with chat_template all (nothing is split). The eval records it per answer."""
        return None if self.views.mode != "expert" else self.views.split(ids) is None

    # ------------------------------------------------------------------ generation
    def generate_iter(self, requests: Sequence[GenerationRequest], *,
                      progress: bool = True) -> Iterator[tuple[int, GenerationResult]]:
        views: dict[int, tuple[list[int], list[int], list[int]]] = {}
        as_is = 0
        for i, r in enumerate(requests):  # every view checked before any compute
            v, _, split = self.views.views(r.prompt_ids)
            as_is += self.views.mode == "expert" and not split
            for role, ids, lane in zip(ROLES, v, self.lanes.values()):
                check_request(i, dataclasses.replace(r, prompt_ids=ids), vocab=self.vocab,
                              max_len=lane._max_positions, max_len_name=f"the {role}'s max_position_embeddings")
            views[i] = v
        self._views = views
        for lane in self.lanes.values():
            lane.stats = defaultdict(float)
        with contextlib.ExitStack() as stack:
            for role, lane in self.lanes.items():
                stack.enter_context(_lane_ready(lane))
            try:
                yield from super().generate_iter(requests, progress=progress)
            finally:
                self.stats["prompts_as_is"] = as_is
                self.stats["lanes"] = {r: dict(lane.stats) for r, lane in self.lanes.items()}
                self._views = {}

    def _prefill(self, rows: list[_Row]) -> tuple[_Batch, torch.Tensor]:
        parts, logits = [], []
        for k, lane in enumerate(self.lanes.values()):
            lane_rows = [_View(r, dataclasses.replace(r.request, prompt_ids=self._views[r.index][k])) for r in rows]
            part, lg = lane._prefill(lane_rows)
            parts.append(part)
            logits.append(lg)
        self.stats["prefill_calls"] += 1
        batch = _ProxyBatch(rows=list(rows), cache=None, lens=parts[0].lens, parts=parts)
        return batch, combine(*logits, self.alpha, self.vocab)

    def _decode(self, batch: _ProxyBatch) -> torch.Tensor:
        logits = []
        for lane, part in zip(self.lanes.values(), batch.parts):
            part.pending = batch.pending
            logits.append(lane._decode(part))
        batch.lens = batch.parts[0].lens
        self.stats["decode_steps"] += 1
        self.stats["decode_rows"] += len(batch.rows)
        return combine(*logits, self.alpha, self.vocab)

    def _merge(self, running: _ProxyBatch, new: _ProxyBatch) -> None:
        for lane, a, b in zip(self.lanes.values(), running.parts, new.parts):
            a.pending, b.pending = running.pending, new.pending
            lane._merge(a, b)
        running.rows += new.rows
        running.lens = running.parts[0].lens
        running.pending = torch.cat([running.pending, new.pending])
        self.stats["merges"] += 1

    def _keep(self, batch: _ProxyBatch, keep: list[int]) -> None:
        for lane, part in zip(self.lanes.values(), batch.parts):
            part.pending = batch.pending
            lane._keep(part, keep)
        batch.rows = [batch.rows[i] for i in keep]
        if keep:
            batch.pending = batch.pending[torch.tensor(keep, device=batch.pending.device)]
            batch.lens = batch.parts[0].lens

    # ------------------------------------------------------------------ scoring (same combined distribution)
    def combined_model(self, prompt_lens: dict[tuple[int, ...], int] | None = None) -> _CombinedLM:
        """A callable with a causal LM's forward signature (what engine/scoring.py calls) whose
        logits are the proxy's combination. ``prompt_lens``: each input sequence's prompt length,
        keyed by its tokens (None: every input is all prompt, as for next_token_probs)."""
        return _CombinedLM(self, prompt_lens)

    def _score(self, fn_name: str, *args, prompt_lens=None, **kw):
        from sharpset.engine import scoring

        kw.setdefault("max_tokens", SCORING_MAX_TOKENS)
        return getattr(scoring, fn_name)(self.combined_model(prompt_lens), self.tokenizer, *args, **kw)

    def _labelled(self, fn_name: str, sequences, labels, **kw) -> list:
        """A labelled score (answer_nll, ...): each sequence's prompt is what precedes its first
        labelled token. The combined model finds a row's prompt length by its tokens, so the same
        tokens with two prompt lengths go in separate calls (normally there is one)."""
        if self.views.mode != "expert":  # nothing is split: one call, every input as it is
            return self._score(fn_name, sequences, labels, **kw)
        calls: list[tuple[dict[tuple[int, ...], int], list[int]]] = []
        for i, (seq, lab) in enumerate(zip(sequences, labels)):
            key = tuple(int(t) for t in seq)
            end = next((j for j, v in enumerate(lab) if v != -100), len(key))
            call = next((c for c in calls if c[0].get(key, end) == end), None)
            if call is None:
                call = ({}, [])
                calls.append(call)
            call[0][key] = end
            call[1].append(i)
        out: list = [None] * len(sequences)
        for lens, idx in calls:
            got = self._score(fn_name, [sequences[i] for i in idx], [labels[i] for i in idx], prompt_lens=lens, **kw)
            for i, v in zip(idx, got):
                out[i] = v
        return out

    def answer_nll(self, sequences, labels, **kw) -> list[float | None]:
        return self._labelled("answer_nll", sequences, labels, **kw)

    def answer_token_nll(self, sequences, labels, **kw) -> list[list[float] | None]:
        return self._labelled("answer_token_nll", sequences, labels, **kw)

    def answer_token_ranks(self, sequences, labels, **kw) -> list[list[int] | None]:
        return self._labelled("answer_token_ranks", sequences, labels, **kw)

    def next_token_probs(self, prompts, candidate_ids, **kw) -> torch.Tensor:
        return self._score("next_token_probs", prompts, candidate_ids, **kw)


class _CombinedLM:
    """``model(input_ids, attention_mask, position_ids, logits_to_keep=...)`` for engine/scoring.py:
    each model runs over its own view of every (left-padded) row; the result's ``.logits`` are the
    proxy's combination at the input's positions. With chat_template expert, positions inside a
    rewritten prompt head (they predict prompt tokens the models saw differently) are NaN; the
    position of the head's last token and everything after line up across the three views.
    ``prompt_lens``: a row's prompt length by its tokens (ProxyEngine._labelled); None: all prompt."""

    def __init__(self, engine: ProxyEngine, prompt_lens: dict[tuple[int, ...], int] | None = None):
        self.e, self.prompt_lens = engine, prompt_lens

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids=None,
                 logits_to_keep: int = 0, **_: Any) -> SimpleNamespace:
        e = self.e
        mask = attention_mask.bool()
        rows = [input_ids[r][mask[r]].tolist() for r in range(input_ids.shape[0])]
        views = [e.views.views(ids, None if self.prompt_lens is None else self.prompt_lens[tuple(ids)])
                 for ids in rows]
        if not any(split for _, _, split in views):  # every model sees the input as it is
            out = [_forward(lane.model, input_ids, attention_mask, position_ids, logits_to_keep)
                   for lane in e.lanes.values()]
            return SimpleNamespace(logits=combine(*out, e.alpha, e.vocab))
        from sharpset.engine.scoring import _left_pad

        width, n = input_ids.shape[1], len(rows)
        keep = logits_to_keep or width
        outs = []
        for k, lane in enumerate(e.lanes.values()):
            seqs = [v[0][k] for v in views]
            ids, m = _left_pad(seqs, e.pad_token_id)
            pos = (m.cumsum(-1) - 1).clamp(min=0)
            lg = _forward(lane.model, ids.to(input_ids.device), m.to(input_ids.device), pos.to(input_ids.device),
                          logits_to_keep)
            aligned = lg.new_full((n, keep, lg.shape[-1]), float("nan"))
            for r, ((vs, head, _), ids_r) in enumerate(zip(views, rows)):
                # real token j of the input sits in column width - len + j; in this view at column
                # w_m - len_m + (j - head + head_m); from the head's last token on they correspond
                shift = len(vs[k]) - len(ids_r)  # head_m - head
                first = max(head - 1, 0)  # first real position with a counterpart
                j = torch.arange(first, len(ids_r))
                col_in = width - len(ids_r) + j
                col_m = ids.shape[1] - len(vs[k]) + j + shift
                sel = col_in >= width - keep
                if logits_to_keep:
                    col_m = col_m - (ids.shape[1] - lg.shape[1])
                aligned[r, (col_in[sel] - (width - keep))] = lg[r, col_m[sel]]
            outs.append(aligned)
        return SimpleNamespace(logits=combine(*outs, e.alpha, e.vocab))


def _forward(model, ids, mask, pos, logits_to_keep: int) -> torch.Tensor:
    kw = {"logits_to_keep": logits_to_keep} if logits_to_keep else {}
    return model(input_ids=ids, attention_mask=mask, position_ids=pos, **kw).logits


@contextlib.contextmanager
def _lane_ready(lane: TransformersEngine):
    """What TransformersEngine.generate_iter does around a run, for a lane the proxy drives: eval
    mode and the lane's oneDNN kernels (engine/linear.py); a model shared by two lanes is patched once."""
    was_training = lane.model.training
    lane.model.eval()
    t0 = time.perf_counter()
    try:
        with lane._kernels():
            yield
    finally:
        lane.model.train(was_training)
        lane.stats["seconds"] = time.perf_counter() - t0


# (model folder, its fingerprint, dtype, device) -> (a weak reference to the loaded model, its tokenizer).
# A stage that asks two batch sizes builds two proxy engines (stage.Subject.engine: one per batch size,
# as for the transformers engine, which shares the Subject's one loaded model), and an eval of several
# models builds one per model: each would load the expert and anti-expert again. A model still held by
# a lane is shared instead -- loaded once per process while in use; the reference is weak, so the
# weights go when the last engine holding them does. The fingerprint (model_fingerprint: config and
# tokenizer contents, weight files' size and mtime) keeps a model retrained in place from being served.
_LOADED: dict[tuple, tuple[weakref.ref, Any]] = {}


def _load(name: str, role: str, like) -> tuple[Any, Any]:
    """(model, tokenizer) of an expert or anti-expert, in the base's dtype and device: the one already
    loaded in this process when a lane still holds it (:data:`_LOADED`), else loaded now."""
    from sharpset.models import load_model
    from sharpset.models.registry import model_fingerprint, resolve_model

    try:
        path = resolve_model(name)
        key = (path, model_fingerprint(path), str(like.dtype), str(like.device))
        hit = _LOADED.get(key)
        model = hit[0]() if hit else None
        if model is not None:
            return model, hit[1]
        model, tok = load_model(path, dtype=like.dtype, device=str(like.device))
    except UserError as e:
        raise UserError(f"engine_options.{role}: {e}") from None
    for k in [k for k, (ref, _) in _LOADED.items() if ref() is None]:
        del _LOADED[k]
    _LOADED[key] = (weakref.ref(model), tok)
    return model, tok
