"""Partner-aware counterfactual regulariser (ICR, arXiv:2510.22462, METHODS §6).

For a pair that carries a ``counterfactual`` note (``sharpset wrap``'s partner family), the
counterfactual prompt is the wrapped conversation with a line saying the partner's suggestions will
not help (:func:`sharpset.invariance.counterfactual_messages`). The regulariser is the per-token gap
between the policy's log-probs of its own target under the normal and the counterfactual prompt
(:func:`sharpset.train.losses.counterfactual_gap`), weight 0.1 by default (ICR's code; 0.2 was best
in its ablation), added beside SFT/BCT -- not inside PPO as in the paper.
"""

from __future__ import annotations

from ..invariance import counterfactual_messages


def counterfactual_example(pair: dict, profile, tok, max_length: int):
    """(ids, labels) of counterfactual prompt + target, or None for pairs without a note."""
    from ..models.profiles import encode

    msgs = counterfactual_messages(pair)
    if msgs is None:
        return None
    enc = encode(profile, tok, msgs + [{"role": "assistant", "content": pair["target"]}], train_on="last")
    if len(enc.input_ids) > max_length:
        return None
    return enc.input_ids, enc.labels
