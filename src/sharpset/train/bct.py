"""Bias-augmented consistency training (BCT, arXiv:2510.27062; Chua et al. arXiv:2403.05518).

BCT is SFT of wrapped prompt -> the subject's own clean answer: -log p(y | wrap(x)) on the response
tokens only (``sharpset wrap`` made y fresh from the subject). This module turns pair records into
training examples; the NLL is :func:`sharpset.train.losses.token_nll`. Each example also carries
what ACT needs (the clean prompt and the shared-suffix length) and, for partner pairs, the
counterfactual sequence.
"""

from __future__ import annotations

from .counterfactual import counterfactual_example
from .losses import common_suffix_len


def pair_example(pair: dict, profile, tok, max_length: int) -> dict | None:
    """One training example from an invariance pair, or None when it is longer than max_length."""
    from ..models.profiles import encode, encode_prompt

    full = encode(profile, tok, pair["wrapped"] + [{"role": "assistant", "content": pair["target"]}], train_on="last")
    if len(full.input_ids) > max_length:
        return None
    w_prompt = encode_prompt(profile, tok, pair["wrapped"])
    # the wrapped prompt's tokens inside the full sequence (tokenised once, so they may differ at the
    # assistant boundary in exotic vocabularies: keep only the part that agrees)
    agree = 0
    for a, b in zip(full.input_ids, w_prompt):
        if a != b:
            break
        agree += 1
    c_prompt = encode_prompt(profile, tok, pair["clean"])
    k = common_suffix_len(full.input_ids[:agree], c_prompt)
    k = min(k, len(c_prompt) - 1, agree - 1)  # never the whole sequence (keeps BOS/system apart)
    ex = {"kind": "pair", "id": pair["id"], "ids": full.input_ids, "labels": full.labels,
          "clean_ids": c_prompt, "w_end": agree, "suffix": max(k, 0),
          "n_label": sum(l != -100 for l in full.labels[1:])}
    cf = counterfactual_example(pair, profile, tok, max_length)
    if cf is not None:
        ex["cf_ids"], ex["cf_labels"] = cf
        ex["n_cf"] = sum(l != -100 for l in cf[1][1:])
    return ex
