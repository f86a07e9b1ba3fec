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

from handlers.embedding import DIM, HEADS, LAYERS, MAX_TOKENS, MiniLM, _gelu, _layer_norm

_WORDLIKE = re.compile(r"[A-Za-z0-9]")


def _states(encoder: MiniLM, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The last layer's token states (batch, length, DIM), as MiniLM._forward computes them before pooling."""
    batch, length = ids.shape
    x = (encoder.word[ids] + encoder.position[:length] + encoder.token_type).reshape(batch * length, DIM)
    x = _layer_norm(x, *encoder.emb_ln)
    bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
    head = DIM // HEADS
    scale = np.float32(head**-0.5)
    for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, out_w, out_b, ln2 in encoder.layers[:LAYERS]:
        qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4)
        scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
        scores *= scale
        scores += bias
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(batch * length, DIM)
        x = _layer_norm(x + ctx @ o_w + o_b, *ln1)
        x = _layer_norm(x + _gelu(x @ i_w + i_b) @ out_w + out_b, *ln2)
    return x.reshape(batch, length, DIM)


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
    for chunk in encoder._batches(order, [len(e.ids) for e in encodings], batch_size):
        length = max(len(encodings[i].ids) for i in chunk)
        ids = np.zeros((len(chunk), length), dtype=np.int64)
        mask = np.zeros((len(chunk), length), dtype=np.float32)
        for row, i in enumerate(chunk):
            ids[row, : len(encodings[i].ids)] = encodings[i].ids
            mask[row, : len(encodings[i].ids)] = 1.0
        states = _states(encoder, ids, mask)
        summed = (states * mask[:, :, None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        pooled[chunk] = summed / np.clip(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12, None)
        for row, i in enumerate(chunk):
            tokens = encodings[i].tokens
            keep = [j for j, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]") and _WORDLIKE.search(t)]
            keep = keep or list(range(len(tokens)))  # a text of punctuation only keeps [CLS]/[SEP]
            vectors = states[row, keep]
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
            pieces[i] = vectors.astype(np.float16)
            words[i] = [tokens[j] for j in keep]
    return pooled, pieces, words
