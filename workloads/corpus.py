"""Training text: a byte-level tokenizer over a deterministic generated corpus.

No downloads at run time: the default corpus is generated from a fixed seed (a few
hundred words of template sentences), so every framework and every machine trains on
the same bytes. `load(path)` reads a user's text file instead; bytes are the tokens
(vocabulary 256), which needs no tokenizer files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VOCAB = 256
_SUBJECTS = ("the model", "a kernel", "the benchmark", "each framework", "the compiler", "a tensor", "the GPU")
_VERBS = ("computes", "reads", "writes", "checks", "measures", "fuses", "quantizes", "schedules")
_OBJECTS = ("the weights", "a matrix", "every token", "the loss", "its gradients", "the cache", "one batch")
_TAILS = ("quickly", "in bf16", "on the device", "twice", "with care", "again", "in order")


def builtin_text(n_sentences: int = 400, seed: int = 1234) -> str:
    """Grammatical, repetitive, learnable: a loss that falls within a few steps."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(n_sentences):
        words = [rng.choice(w) for w in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS)]
        parts.append(" ".join(words).capitalize() + ".")
    return " ".join(parts) + "\n"


def tokenize(text: str) -> np.ndarray:
    """UTF-8 bytes as tokens."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)


def load(path: str | None = None) -> np.ndarray:
    """Tokens of the file at `path`, or of the built-in corpus when None or "builtin"."""
    if path in (None, "builtin"):
        return tokenize(builtin_text())
    return tokenize(Path(path).read_text(encoding="utf-8", errors="replace"))


def batches(tokens: np.ndarray, n_batches: int, batch: int, seq: int, rng: np.random.Generator) -> np.ndarray:
    """(n_batches, batch, seq + 1) windows at random offsets; inputs are [..., :-1] and
    next-token targets [..., 1:]."""
    if tokens.size < seq + 2:
        raise ValueError(f"corpus of {tokens.size} tokens is shorter than one window of {seq + 1}")
    starts = rng.integers(0, tokens.size - seq - 1, size=(n_batches, batch))
    return tokens[starts[..., None] + np.arange(seq + 1)]
