"""Chat profiles: the ONE place that renders and tokenizes conversations (STYLE habit 2).

A profile is built explicitly per chat family (ChatML, Llama-3, Gemma, Phi-3, Mistral) from a small
table of known template *layouts* below, then CHECKED against the tokenizer's own ``chat_template``:
a few conversations are rendered both ways and must agree character for character, else
:class:`ProfileError`. Nothing here renders with ``add_generation_prompt=True`` and appends
(distilabel's empty-assistant-header bug); the Magpie pre-query is built from the layout itself
(METHODS §1, arXiv:2406.08464) and includes any default system turn the template inserts.

Tokenization happens once, on the rendered text, with ``add_special_tokens=False`` so a BOS the
template already wrote is never doubled (trl#1400, OpenRLHF#393); the BOS id is prepended only when
the tokenizer would add one and the text lacks it (Phi-3). Labels come from the fast tokenizer's
offset mapping: token i is a label iff its char span overlaps an assistant content span or that
turn's end-of-turn marker ("overlaps", not "lies inside": sentencepiece merges the template's
separator space into the first answer token, Mistral's ``[/INST] answer`` -> ``▁answer``).
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

FAMILIES = ("chatml", "llama3", "gemma", "phi3", "mistral")
_ALL = frozenset({"system", "user", "assistant"})


class ProfileError(ValueError):
    """A tokenizer/template this module cannot reproduce exactly, or a conversation it cannot render."""


@dataclass(frozen=True)
class Layout:
    """Literal text pieces of one known template layout. ``{eos}`` stands for the tokenizer's eos token."""

    name: str
    user: tuple[str, str]                 # (open, close)
    assistant: tuple[str, str]            # (open, close); close starts with the end-of-turn marker
    system: tuple[str, str] | None = None  # system as its own turn (system_mode == "turn")
    system_mode: str = "turn"             # turn | fold_first | fold_last (into a user turn) | none
    fold_sep: str = "\n\n"                # folded system text = system + fold_sep + user content
    bos_in_text: bool = True              # the template writes bos_token itself
    generation: str | None = None         # what add_generation_prompt appends (None: assistant open)
    tail: str = ""                        # what the template appends when add_generation_prompt is False
    trim: frozenset = frozenset()         # roles whose content the template strips (jinja |trim)
    alternate: bool = False               # template raises unless user/assistant alternate


def _hdr(role: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n"


_CHATML = Layout("chatml", ("<|im_start|>user\n", "<|im_end|>\n"), ("<|im_start|>assistant\n", "<|im_end|>\n"),
                 ("<|im_start|>system\n", "<|im_end|>\n"), bos_in_text=False)
# Llama-3 and 3.1/3.2/3.3 share the turn shape; 3.1+ add a "Cutting Knowledge Date" preamble to the
# system turn, which is read from the template's own rendering (see _derive_system), not hard-coded.
_LLAMA3 = Layout("llama3", (_hdr("user"), "<|eot_id|>"), (_hdr("assistant"), "<|eot_id|>"),
                 (_hdr("system"), "<|eot_id|>"), trim=_ALL)
# Gemma 3 folds the system text into the first user turn; Gemma 2 raises on a system message.
_GEMMA3 = Layout("gemma3", ("<start_of_turn>user\n", "<end_of_turn>\n"), ("<start_of_turn>model\n", "<end_of_turn>\n"),
                 system_mode="fold_first", trim=frozenset({"user", "assistant"}), alternate=True)
_GEMMA2 = dataclasses.replace(_GEMMA3, name="gemma2", system_mode="none")
# Phi-3-mini-4k / Phi-3.5-mini (HF): no BOS text (the tokenizer adds it), eos appended without a
# generation prompt. Phi-3-small writes bos_token. The Phi-3-mini GGUF / Phi-3-medium layout closes
# every user turn with the assistant header and silently drops system messages.
_PHI3 = Layout("phi3", ("<|user|>\n", "<|end|>\n"), ("<|assistant|>\n", "<|end|>\n"), ("<|system|>\n", "<|end|>\n"),
               bos_in_text=False, tail="{eos}")
_PHI3_BOS = dataclasses.replace(_PHI3, name="phi3-small", bos_in_text=True)
_PHI3_INLINE = Layout("phi3-inline", ("<|user|>\n", "<|end|>\n<|assistant|>\n"), ("", "<|end|>\n"),
                      system_mode="none", generation="")
_PHI3_INLINE_NOBOS = dataclasses.replace(_PHI3_INLINE, name="phi3-inline-nobos", bos_in_text=False)
# Mistral: no generation prompt (the prompt ends with [/INST]); v3 folds the system text into the LAST
# user message and drops it when the conversation ends with an assistant turn.
_MISTRAL_V3 = Layout("mistral-v3", ("[INST] ", "[/INST]"), (" ", "{eos}"), system_mode="fold_last",
                     generation="", trim=frozenset({"assistant"}), alternate=True)
_MISTRAL_V1 = Layout("mistral-v1", (" [INST] ", " [/INST]"), (" ", "{eos}"), system_mode="fold_first",
                     generation="", alternate=True)
_MISTRAL_LEGACY = Layout("mistral-legacy", ("[INST] ", " [/INST]"), ("", "{eos}"), system_mode="none",
                         generation="", alternate=True)

# family -> (markers that identify it in a template, end-of-turn marker, layouts; the first is used
# when a tokenizer has no chat_template and the family is given explicitly)
_TABLE: dict[str, tuple[tuple[str, ...], str, tuple[Layout, ...]]] = {
    "llama3": (("<|start_header_id|>",), "<|eot_id|>", (_LLAMA3,)),
    "gemma": (("<start_of_turn>",), "<end_of_turn>", (_GEMMA3, _GEMMA2)),
    "chatml": (("<|im_start|>",), "<|im_end|>", (_CHATML,)),
    "phi3": (("<|end|>",), "<|end|>", (_PHI3, _PHI3_BOS, _PHI3_INLINE, _PHI3_INLINE_NOBOS)),
    "mistral": (("[INST]",), "{eos}", (_MISTRAL_V3, _MISTRAL_V1, _MISTRAL_LEGACY)),
}

# Canonical chat templates, written into a model trained from a template-less base so that eval,
# TRL and transformers render it exactly as it was trained (issue 12). Each is checked by
# profile_for(): a tokenizer carrying it must give back the same family and layout
# (tests/test_profiles.py). Gemma 3's is the official one, string contents only.
TEMPLATES: dict[str, str] = {
    "gemma3": (
        "{{ bos_token }}"
        "{%- if messages[0]['role'] == 'system' -%}"
        "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
        "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
        "{%- for message in loop_messages -%}"
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
        "{%- endif -%}"
        "{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
        "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
        "{{- message['content'] | trim }}{{ '<end_of_turn>\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
    ),
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
}


def chat_template_for(profile: "ChatProfile") -> str | None:
    """The canonical Jinja chat template of a profile's layout (None when sharpset has none for it)."""
    return TEMPLATES.get(profile.layout.name if profile.layout else "")


# Conversations every profile must render exactly like the template (or refuse exactly where the
# template refuses / silently drops the system text). Padded contents expose |trim differences.
_CHECKS: tuple[tuple[list[tuple[str, str]], bool], ...] = (
    ([("user", "Hello there")], False),
    ([("user", "Hello there")], True),
    ([("system", "Be brief."), ("user", "What is two plus two?"), ("assistant", "Four.")], False),
    ([("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "Tell me a joke."),
      ("assistant", "Why did the chicken cross the road?")], False),
    ([("user", "  padded question \n"), ("assistant", "\n padded answer  ")], False),
    ([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")], True),
)
_PROBE_S, _PROBE_U = "Sys probe text.", "User probe text."


@dataclass(frozen=True)
class ChatProfile:
    family: str
    bos: str | None             # BOS text the rendering starts with (None: the rendering has none)
    default_system: str | None  # system turn content the template inserts when none is given
    pre_query: str              # Magpie prefix: everything before the first user message's content
    assistant_header: str       # what add_generation_prompt appends
    end_of_turn: str
    stop_strings: tuple[str, ...]
    template_hash: str          # sha256 of the chat_template text ("" if none)
    layout: Layout | None = None
    system_preamble: str = ""   # text the template puts before a given system message (Llama 3.1)

    def render(self, messages, add_generation_prompt: bool = False) -> str:
        """Text identical to ``tokenizer.apply_chat_template(messages, tokenize=False, ...)``."""
        return self._render(messages, add_generation_prompt)[0]

    def query_prefix(self, system: str | None = None) -> str:
        """Magpie prefix with an explicit system prompt (None: the template's own default, if any)."""
        lay, out = self._lay(), self.bos or ""
        if system is None:
            if lay.system_mode == "turn" and self.default_system is not None:
                out += lay.system[0] + self.default_system + lay.system[1]
            return out + lay.user[0]
        if lay.system_mode == "turn":
            turn = lay.system[0] + self.system_preamble + _trim(system, "system", lay) + lay.system[1]
            return out + turn + lay.user[0]
        if lay.system_mode == "none":
            raise ProfileError(f"{self.family} layout {lay.name!r} has no system role")
        return out + lay.user[0] + system + lay.fold_sep

    def _lay(self) -> Layout:
        if self.layout is None:
            raise ProfileError(f"profile for {self.family!r} has no layout; build it with profile_for()")
        return self.layout

    def _render(self, messages, add_generation_prompt: bool):
        """Return (text, [(content_start, content_end, eot_start, eot_end) per assistant turn])."""
        lay = self._lay()
        msgs = _pairs(messages)
        parts, spans, pos = [self.bos or ""], [], len(self.bos or "")

        def put(s: str) -> None:
            nonlocal pos
            parts.append(s)
            pos += len(s)

        system = msgs.pop(0)[1] if msgs and msgs[0][0] == "system" else None
        fold_at = -1
        if lay.system_mode == "turn":
            if system is not None:
                put(lay.system[0] + self.system_preamble + _trim(system, "system", lay) + lay.system[1])
            elif self.default_system is not None and msgs:
                put(lay.system[0] + self.default_system + lay.system[1])
        elif system is not None:
            if lay.system_mode == "none":
                raise ProfileError(f"{self.family} template ({lay.name}) has no system role: it raises on or "
                                   "silently drops a system message; fold it into the user turn yourself")
            fold_at = 0 if lay.system_mode == "fold_first" else len(msgs) - 1
            if not msgs or msgs[fold_at][0] != "user":
                raise ProfileError(f"{self.family} template ({lay.name}) keeps the system message only when the "
                                   "conversation ends with a user turn; here it would be silently dropped")
        for i, (role, content) in enumerate(msgs):
            if lay.alternate and role != ("user", "assistant")[i % 2]:
                raise ProfileError(f"{self.family} template ({lay.name}) requires user/assistant turns to "
                                   f"alternate after an optional system message; message {i} is {role!r}")
            text = _trim(content, role, lay)
            if role == "user":
                put(lay.user[0] + (system + lay.fold_sep + text if i == fold_at else text) + lay.user[1])
            elif role == "assistant":
                put(lay.assistant[0])
                start = pos
                put(text + lay.assistant[1])
                spans.append((start, start + len(text), start + len(text), start + len(text) + len(self.end_of_turn)))
            elif lay.system_mode == "turn":
                put(lay.system[0] + text + lay.system[1])
            else:
                raise ProfileError(f"{self.family} template ({lay.name}) has no system turn after the first message")
        put(self.assistant_header if add_generation_prompt else lay.tail)
        return "".join(parts), spans


def _trim(text: str, role: str, lay: Layout) -> str:
    return text.strip() if role in lay.trim else text


def _pairs(messages) -> list[tuple[str, str]]:
    if not messages:
        raise ProfileError("no messages to render")
    out = []
    for i, m in enumerate(messages):
        role, content = (m.get("role"), m.get("content")) if isinstance(m, dict) else m
        if role not in ("system", "user", "assistant"):
            raise ProfileError(f"message {i}: role {role!r} is not one of system/user/assistant")
        if not isinstance(content, str):
            raise ProfileError(f"message {i}: content must be a string, got {type(content).__name__}")
        out.append((role, content))
    return out


def _template_text(tokenizer) -> str:
    t = getattr(tokenizer, "chat_template", None)
    if isinstance(t, dict):  # several named templates: the default one is what apply_chat_template uses
        t = t.get("default")
    return t or ""


def _template_render(tokenizer, msgs, gen: bool):
    try:
        conv = [{"role": r, "content": c} for r, c in msgs]
        return tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen), None
    except Exception as e:  # jinja raise_exception, undefined variables, ...
        return None, e


def _detect(text: str) -> str | None:
    for fam, (markers, _, _) in _TABLE.items():
        if all(m in text for m in markers):
            return fam
    return None


def _derive_system(tokenizer, lay: Layout, bos: str) -> tuple[str | None, str]:
    """Read the default system turn and the system preamble from the template's own rendering."""
    if lay.system_mode != "turn":
        return None, ""
    default = None
    out, _ = _template_render(tokenizer, [("user", _PROBE_U)], False)
    i = out.find(lay.user[0] + _PROBE_U) if out else -1
    head = out[:i] if i >= 0 else ""
    head = head[len(bos):] if bos and head.startswith(bos) else head
    op, cl = lay.system
    if len(head) >= len(op) + len(cl) and head.startswith(op) and head.endswith(cl):
        default = head[len(op):len(head) - len(cl)]
    preamble = ""
    out, _ = _template_render(tokenizer, [("system", _PROBE_S), ("user", _PROBE_U)], False)
    j, k = (out.find(op), out.find(_PROBE_S)) if out else (-1, -1)
    if 0 <= j and j + len(op) <= k:
        preamble = out[j + len(op):k]
    return default, preamble


def _build(tokenizer, family: str, lay: Layout, template_hash: str, from_template: bool) -> ChatProfile:
    eos = tokenizer.eos_token or ""
    lay = dataclasses.replace(lay, **{f: _sub(getattr(lay, f), eos) for f in ("user", "assistant", "system", "tail")})
    eot = _TABLE[family][1].replace("{eos}", eos)
    if not eot or not lay.assistant[1].startswith(eot):
        raise ProfileError(f"{family}: end-of-turn marker {eot!r} unknown "
                           f"(tokenizer eos_token={tokenizer.eos_token!r})")
    bos = tokenizer.bos_token if lay.bos_in_text else None
    default, preamble = _derive_system(tokenizer, lay, bos or "") if from_template else (None, "")
    stops = tuple(dict.fromkeys(s for s in (eot, tokenizer.eos_token) if s))
    header = lay.assistant[0] if lay.generation is None else lay.generation
    prof = ChatProfile(family, bos, default, "", header, eot, stops, template_hash, lay, preamble)
    return dataclasses.replace(prof, pre_query=prof.query_prefix())


def _sub(value, eos: str):
    if isinstance(value, tuple):
        return tuple(v.replace("{eos}", eos) for v in value)
    return value.replace("{eos}", eos) if isinstance(value, str) else value


def _diff(a: str, b: str) -> str:
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"first differs at char {k}: template {a[max(0, k - 20):k + 40]!r} vs profile {b[max(0, k - 20):k + 40]!r}"


def _check(prof: ChatProfile, tokenizer) -> str | None:
    """None if the profile reproduces the template on every check conversation, else why not."""
    for n, (msgs, gen) in enumerate(_CHECKS):
        want, terr = _template_render(tokenizer, msgs, gen)
        try:
            got, perr = prof.render([{"role": r, "content": c} for r, c in msgs], gen), None
        except ProfileError as e:
            got, perr = None, e
        roles = "+".join(r for r, _ in msgs) + ("+gen" if gen else "")
        if perr is not None and terr is None and msgs[0][0] == "system" and msgs[0][1] not in want:
            continue  # the template drops the system text; the profile refuses instead of dropping it
        if (perr is None) != (terr is None):
            return f"check {n} ({roles}): template {'raised ' + repr(terr) if terr else 'rendered'}, profile " + \
                   (f"raised {perr}" if perr else "rendered")
        if perr is None and got != want:
            return f"check {n} ({roles}): {_diff(want, got)}"
    want, _ = _template_render(tokenizer, [("user", "Hello there")], True)
    if want is None or not want.startswith(prof.pre_query + "Hello there"):
        return f"pre_query {prof.pre_query!r} is not how the template starts: {(want or '')[:120]!r}"
    if prof._lay().system_mode != "none":
        want, _ = _template_render(tokenizer, [("system", _PROBE_S), ("user", "Hello there")], True)
        if want is not None and not want.startswith(prof.query_prefix(_PROBE_S) + "Hello there"):
            return f"query_prefix(system) is not how the template starts: {_diff(want, prof.query_prefix(_PROBE_S))}"
    return None


def profile_for(tokenizer, family: str | None = None) -> ChatProfile:
    """Profile for ``tokenizer``: family from the template's markers (or ``family``), checked against it."""
    if family is not None and family not in _TABLE:
        raise ProfileError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    text = _template_text(tokenizer)
    if not text:
        if family is None:
            raise ProfileError("tokenizer has no chat_template (a base model?): pass family= one of "
                               f"{', '.join(FAMILIES)} to build the profile from the family alone")
        return _build(tokenizer, family, _TABLE[family][2][0], "", from_template=False)
    thash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    fam = family or _detect(text)
    if fam is None:
        raise ProfileError(f"chat template sha256:{thash[:16]} matches no known family ({', '.join(FAMILIES)}); "
                           f"it starts {text[:100]!r}. Pass a tokenizer with a supported template.")
    why = []
    for lay in _TABLE[fam][2]:
        try:
            prof = _build(tokenizer, fam, lay, thash, from_template=True)
        except ProfileError as e:
            why.append(f"  {lay.name}: {e}")
            continue
        problem = _check(prof, tokenizer)
        if problem is None:
            return prof
        why.append(f"  {lay.name}: {problem}")
    how = "given as family=" if family else "detected by its markers"
    raise ProfileError(f"chat template sha256:{thash[:16]} ({fam}, {how}) is not reproduced by any known "
                       f"{fam} layout:\n" + "\n".join(why))


def stop_token_ids(profile: ChatProfile, tokenizer) -> list[int]:
    """Ids of the end-of-turn marker and of eos, deduplicated (end-of-turn first)."""
    ids = tokenizer(profile.end_of_turn, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ProfileError(f"end-of-turn marker {profile.end_of_turn!r} is {len(ids)} tokens, not one special token")
    out = [ids[0]]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in out:
        out.append(tokenizer.eos_token_id)
    return out


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # -100 except assistant content tokens and each assistant turn's end-of-turn token
    text: str


def _bos_prefix(profile: ChatProfile, tokenizer, text: str, ids: list[int]) -> list[int]:
    """[bos_id] when the family/tokenizer needs a BOS that ``text`` does not already start with."""
    bos_id = tokenizer.bos_token_id
    if bos_id is None or (ids and ids[0] == bos_id) or (profile.bos and text.startswith(profile.bos)):
        return []
    probe_on = tokenizer("a", add_special_tokens=True)["input_ids"]
    probe_off = tokenizer("a", add_special_tokens=False)["input_ids"]
    adds_bos = len(probe_on) > len(probe_off) and probe_on[0] == bos_id
    return [bos_id] if (adds_bos or profile.bos is not None) else []


def encode(profile: ChatProfile, tokenizer, messages, add_generation_prompt: bool = False,
           train_on: str = "assistant", end_last_turn: bool = True) -> Encoded:
    """Render once, tokenize once (no special tokens added), exactly one BOS, labels from offsets.

    train_on="assistant": every assistant turn is a target; "last": only the last assistant turn.
    end_last_turn=False leaves the last assistant turn's end-of-turn unlabelled: for an answer cut at a
    token limit, which must not teach the model to stop mid-sentence (issue 20).
    """
    if train_on not in ("assistant", "last"):
        raise ValueError(f"train_on must be 'assistant' or 'last', not {train_on!r}")
    text, spans = profile._render(messages, add_generation_prompt)
    if train_on == "last":
        spans = spans[-1:]
    if spans and not end_last_turn:
        c0, c1, e0, _ = spans[-1]
        spans = spans[:-1] + [(c0, c1, e0, e0)]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [-100] * len(ids)
    for i, (s, e) in enumerate(enc["offset_mapping"]):
        if any(s < c1 and e > c0 or s < e1 and e > e0 for c0, c1, e0, e1 in spans):
            labels[i] = ids[i]
    pre = _bos_prefix(profile, tokenizer, text, ids)
    return Encoded(pre + ids, [-100] * len(pre) + labels, text)


def encode_pre_query(profile: ChatProfile, tokenizer) -> list[int]:
    """Token ids of ``profile.pre_query`` with exactly one BOS (Magpie instruction prompt)."""
    ids = list(tokenizer(profile.pre_query, add_special_tokens=False)["input_ids"])
    return _bos_prefix(profile, tokenizer, profile.pre_query, ids) + ids


def encode_prompt(profile: ChatProfile, tokenizer, messages) -> list[int]:
    """Token ids of the conversation followed by the generation prompt."""
    return encode(profile, tokenizer, messages, add_generation_prompt=True).input_ids


def encode_text(profile: ChatProfile, tokenizer, text: str) -> list[int]:
    """Token ids of an already-rendered prefix (e.g. ``query_prefix(system)``), exactly one BOS."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return _bos_prefix(profile, tokenizer, text, ids) + ids
