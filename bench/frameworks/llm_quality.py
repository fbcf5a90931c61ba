"""What quantizing an LLM's weights costs in its answers, set beside what it buys in speed.

Users compare int8/int4 decode speed only with the quality figures beside it (mlx#1934,
ollama#17479): how often the quantized model's next token is the one the same model in
full precision would pick, and how far its next-token distribution moved. Both are taken
here along ONE sequence, the quantized model's own greedy generation after the prompt,
teacher-forced through both models (the same prefix at every position, so one early
near-tie does not derail the comparison): `top1_agreement` is the share of positions where
the two argmaxes agree, `kl_mean`/`kl_max` the Kullback-Leibler divergence
KL(p_dense ‖ p_quantized) in nats per position. The weights are the same in every
framework (workloads.generate draws them from the case's seed; the quantized codes come
from the shared quantizer), so the figures compare across frameworks.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """float64 log-probabilities over the last axis (max-shifted, so large logits cannot overflow)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def compare(dense: np.ndarray, quantized: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement and KL(dense ‖ quantized) over positions: both (T, V) logits of the
    same T positions. Keys are prefixed `quality_` so they sit apart in a row's metrics."""
    if dense.shape != quantized.shape or dense.ndim != 2:
        raise ValueError(f"quality needs two (positions, vocabulary) logit arrays of one shape, got {dense.shape} and {quantized.shape}")
    lp, lq = log_softmax(dense), log_softmax(quantized)
    kl = np.sum(np.exp(lp) * (lp - lq), axis=-1)
    return {
        "quality_reference": "same weights unquantized, at the row's activation dtype",
        "quality_positions": int(dense.shape[0]),
        "quality_top1_agreement": float(np.mean(dense.argmax(-1) == quantized.argmax(-1))),
        "quality_kl_mean": float(np.mean(kl)),
        "quality_kl_max": float(np.max(kl)),
    }



def perplexity(logits: np.ndarray, tokens: np.ndarray) -> float:
    """exp(mean negative log-likelihood) of tokens[1:] given their prefixes: `logits` (T, V)
    at positions 0 .. T-1 of `tokens` (T,), of which the last position predicts nothing."""
    if logits.ndim != 2 or logits.shape[0] != tokens.shape[0] or tokens.shape[0] < 2:
        raise ValueError(f"perplexity needs (T, V) logits for T >= 2 tokens, got {logits.shape} for {tokens.shape}")
    lp = log_softmax(logits[:-1])
    return float(np.exp(-np.mean(lp[np.arange(tokens.shape[0] - 1), tokens[1:]])))
