"""MiniLM token vectors for late interaction (ColBERT-style max-sim).

The shared encoder (handlers/embedding.py) returns one mean-pooled vector
per text. Retrieval also wants the last layer's vector for every word piece:
a question word that some clause word means closely is evidence even when
the clause as a whole is about more. `encode_tokens` runs the same forward
pass once and returns both, so indexing pays for one pass, not two: the
pooled vectors equal `MiniLM.encode`'s (mean over real tokens, unit length).
Token vectors are unit length, [CLS]/[SEP] and punctuation dropped, kept as
float16 per clause (the index concatenates them into one matrix).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from handlers.embedding import DIM, MAX_TOKENS, MiniLM, batches, pool

_WORDLIKE = re.compile(r"[A-Za-z0-9]")


def encode_tokens(
    encoder: MiniLM, texts: Sequence[str], *, max_tokens: int = MAX_TOKENS, batch_size: int = 64
) -> tuple[np.ndarray, list[np.ndarray], list[list[str]]]:
    """(pooled unit vectors (n, DIM) float32, per text its word-piece unit vectors (k, DIM) float16, and the
    word pieces themselves), for the word pieces that hold a letter or digit."""
    pooled = np.zeros((len(texts), DIM), dtype=np.float32)
    pieces: list[np.ndarray] = [np.zeros((0, DIM), np.float16)] * len(texts)
    words: list[list[str]] = [[] for _ in texts]
    if not texts:
        return pooled, pieces, words
    encodings = encoder.tokenizer.encode_batch([t or "" for t in texts])
    for e in encodings:
        if max_tokens < MAX_TOKENS:
            e.truncate(max_tokens)
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    for chunk in batches(order, [len(e.ids) for e in encodings], batch_size):
        length = max(len(encodings[i].ids) for i in chunk)
        ids = np.zeros((len(chunk), length), dtype=np.int64)
        mask = np.zeros((len(chunk), length), dtype=np.float32)
        for row, i in enumerate(chunk):
            ids[row, : len(encodings[i].ids)] = encodings[i].ids
            mask[row, : len(encodings[i].ids)] = 1.0
        states = encoder.states(ids, mask)
        pooled[chunk] = pool(states, mask)
        for row, i in enumerate(chunk):
            tokens = encodings[i].tokens
            keep = [j for j, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]") and _WORDLIKE.search(t)]
            keep = keep or list(range(len(tokens)))  # a text of punctuation only keeps [CLS]/[SEP]
            vectors = states[row, keep]
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
            pieces[i] = vectors.astype(np.float16)
            words[i] = [tokens[j] for j in keep]
    return pooled, pieces, words
