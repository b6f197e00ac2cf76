"""Batched forward-pass scoring: next-token probabilities over a fixed answer set, and NLLs.

Judges score by token probabilities over a fixed answer set, never by parsing free text
(METHODS §10): ``next_token_probs`` returns, per prompt, the softmax over the whole vocabulary
gathered at the candidate ids, so a caller sees both the distribution over the answer set and how
much mass the judge put on it at all (a low mass means the judge did not answer in the format; the
caller records that as a failure, never as a default score -- DEITA#36).

``answer_nll`` gives the mean negative log-likelihood of marked target tokens (labels != -100),
the quantity behind IFD (arXiv:2308.12032) and Superfiltering (arXiv:2402.00530);
``answer_token_nll`` the per-token values it averages.

Both sort by length and left-pad within a batch so padding stays small; results come back in input
order. fp32 on CPU; ``torch.inference_mode``.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _pad_id(tokenizer) -> int:
    for cand in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if cand is not None:
            return int(cand)
    return 0


def _batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[list[int]]:
    """Indices grouped by similar length; a batch holds at most batch_size rows and max_tokens padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, cur = [], []
    for i in order:
        longest = max([lengths[j] for j in cur] + [lengths[i]])
        if cur and (len(cur) >= batch_size or longest * (len(cur) + 1) > max_tokens):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def _left_pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s):] = 1
    return ids, mask


@torch.inference_mode()
def next_token_probs(model, tokenizer, prompts: Sequence[list[int]], candidate_ids: Sequence[int], *,
                     batch_size: int = 8, max_tokens: int = 8192) -> torch.Tensor:
    """``[n_prompts, n_candidates]`` full-vocabulary probabilities of each candidate as the next token."""
    cand = torch.tensor(list(candidate_ids), dtype=torch.long)
    out = torch.empty((len(prompts), len(cand)), dtype=torch.float32)
    pad = _pad_id(tokenizer)
    for batch in _batches([len(p) for p in prompts], batch_size, max_tokens):
        ids, mask = _left_pad([list(prompts[i]) for i in batch], pad)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1, :]
        probs = torch.softmax(logits.float(), dim=-1)
        out[batch] = probs[:, cand]
    return out


def answer_nll(model, tokenizer, sequences: Sequence[list[int]], labels: Sequence[list[int]], *,
               batch_size: int = 8, max_tokens: int = 8192) -> list[float | None]:
    """Mean NLL (nats/token) of the tokens whose label is not -100; None when a row has none."""
    per_token = answer_token_nll(model, tokenizer, sequences, labels, batch_size=batch_size, max_tokens=max_tokens)
    return [None if t is None else float(sum(t) / len(t)) for t in per_token]


def _labelled_logits(model, ids: torch.Tensor, mask: torch.Tensor, lab: torch.Tensor):
    """(logits, targets) for the target columns from the batch's first labelled one to the end:
    token t is predicted from position t-1, so target column c (token c + 1) reads position c. The
    head and the fp32 vocabulary tensor run only over those columns (``logits_to_keep``): a
    labelled answer after a long prompt no longer costs [batch, prompt + answer, vocab] logits.
    (None, targets) when nothing in the batch is labelled."""
    tgt = lab[:, 1:]
    cols = (tgt != -100).any(0).nonzero()
    if cols.numel() == 0:
        return None, tgt
    start = int(cols[0])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = tgt.shape[1] - start + 1  # positions start .. T-1; the last predicts nothing
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits[:, :-1, :]
    return logits.float(), tgt[:, start:]


@torch.inference_mode()
def answer_token_nll(model, tokenizer, sequences: Sequence[list[int]], labels: Sequence[list[int]], *,
                     batch_size: int = 8, max_tokens: int = 8192) -> list[list[float] | None]:
    """Per-token NLL (nats) of the tokens whose label is not -100, in order; None when a row has none.
    A row's first token is never scored (nothing precedes it), whatever its label.
    ``answer_nll`` is its mean; the spread (e.g. the std behind ``sharpset.signals``' fluency) needs
    the tokens themselves."""
    out: list[list[float] | None] = [None] * len(sequences)
    pad = _pad_id(tokenizer)
    for batch in _batches([len(s) for s in sequences], batch_size, max_tokens):
        ids, mask = _left_pad([list(sequences[i]) for i in batch], pad)
        lab, _ = _left_pad([list(labels[i]) for i in batch], -100)
        lab[mask == 0] = -100
        # A row's first token has no context, so it is never scored: unpadded, nothing predicts it;
        # left-padded, the last pad would (and the result would depend on the batch).
        lab[torch.arange(len(batch)), ids.shape[1] - torch.tensor([len(sequences[i]) for i in batch])] = -100
        logits, tgt = _labelled_logits(model, ids, mask, lab)
        if logits is None:
            continue
        # -log softmax = logsumexp - logit, without a second [batch, length, vocab] tensor
        keep = tgt != -100
        nll = torch.logsumexp(logits, dim=-1) - logits.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        for r, i in enumerate(batch):
            if bool(keep[r].any()):
                out[i] = nll[r][keep[r]].tolist()
    return out


@torch.inference_mode()
def answer_token_ranks(model, tokenizer, sequences: Sequence[list[int]], labels: Sequence[list[int]], *,
                       batch_size: int = 8, max_tokens: int = 8192) -> list[list[int] | None]:
    """Rank (1 = the model's argmax) of each labelled token under ``model`` given its prefix, in order;
    None when a row has no labelled token. rank = 1 + #{vocabulary tokens with a strictly higher logit},
    so ties favour the token. One forward pass per batch gives every position at once: URIAL's
    token-distribution-shift analysis (arXiv:2312.01552) decodes with the tuned model and reads the
    ranks of its tokens under the base."""
    out: list[list[int] | None] = [None] * len(sequences)
    pad = _pad_id(tokenizer)
    for batch in _batches([len(s) for s in sequences], batch_size, max_tokens):
        ids, mask = _left_pad([list(sequences[i]) for i in batch], pad)
        lab, _ = _left_pad([list(labels[i]) for i in batch], -100)
        lab[mask == 0] = -100
        logits, tgt = _labelled_logits(model, ids, mask, lab)
        if logits is None:
            continue
        keep = tgt != -100
        chosen = logits.gather(-1, tgt.clamp(min=0).unsqueeze(-1))
        ranks = 1 + (logits > chosen).sum(-1)
        for r, i in enumerate(batch):
            if bool(keep[r].any()):
                out[i] = ranks[r][keep[r]].tolist()
    return out
