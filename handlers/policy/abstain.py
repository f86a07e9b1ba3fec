"""The signals the abstainer reads: is any clause of this policy about the question at all?

Each is a measure that means the same in any policy, computed from the ranked
list of one question: how well the best clause matches in meaning, in words
and word by word (late interaction), how far it stands above the next, how
much of the question it and the whole document hold, and whether the
question's words occur in the document at all. The abstainer (fit.py) is a
logistic model over these, fitted on out-of-fold ranker scores so it sees
scores as they are on a policy the ranker never saw.
"""

from __future__ import annotations

import numpy as np

from handlers.policy.features import FEATURES, QueryFeatures

ABSTAIN_FEATURES = (
    "top_dense",  # meaning similarity of the best clause (with its heading path)
    "max_dense",  # the best meaning similarity of any clause
    "top_words",  # word match (log BM25) of the best clause
    "unknown_words",  # share of the question's words the policy never uses
    "top_entities",  # the best clause names every person the question is about
    "top_coverage",  # share of the question's known words the best clause holds
    "top_score",  # the ranker's score of the best clause
    "margin",  # how far the best clause stands above the second
    "score_z",  # the best score against the policy's clauses, in standard deviations
    "top_late",  # late interaction (mean max-sim of the question's word pieces) with the best clause
    "max_late",  # the best late interaction of any clause
    "top_weighted",  # idf-weighted coverage of the best clause
    "max_weighted",  # the best idf-weighted coverage of any clause
    "top_bm25_per_word",  # BM25 of the best clause over the question's distinct words
    "max_bm25_per_word",  # the best BM25 of any clause over the question's distinct words
    "top_length",  # the best clause's length (log)
    "piece_min_top",  # the question word piece the best clause matches worst
    "piece_q25_top",  # ... its lower quartile
    "piece_min_doc",  # the question word piece the whole document matches worst
    "piece_q25_doc",  # ... its lower quartile
    "piece_mean_doc",  # the mean over question word pieces of their best match anywhere
    "piece_min_top3",  # the question word piece the three best clauses match worst
    "piece_mean_top3",  # ... and the mean
    "centroid",  # meaning similarity to the policy as a whole
    "top_dense_z",  # the best clause's meaning similarity against the policy's clauses
    "top_heading",  # meaning similarity of the best clause's heading
    "top_heading_coverage",  # share of the question's known words in the best clause's heading path
    "clauses",  # how many clauses the policy has (log)
    "dense_gap",  # how far the best clause's meaning similarity stands above the next best
    "question_words",  # how many distinct words the question has (log)
    "top_rule",  # the best clause states a rule
    "top_window",  # meaning similarity of the best clause's closest passage window
    "max_window",  # the best passage-window similarity of any clause
)
_F = {name: i for i, name in enumerate(FEATURES)}


def abstain_signals(scores: np.ndarray, x: np.ndarray, query: QueryFeatures) -> np.ndarray:
    """ABSTAIN_FEATURES for one question: `scores` are the ranker's per clause, `x` its feature matrix."""
    if len(scores) == 0:
        return np.zeros(len(ABSTAIN_FEATURES), dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    top, second = int(order[0]), int(order[1] if len(order) > 1 else order[0])
    pieces = query.pieces if query.pieces is not None and len(query.pieces) else np.zeros((1, len(scores)))
    at_top, anywhere, in_top3 = pieces[:, top], pieces.max(1), pieces[:, order[:3]].max(1)
    dense = x[:, _F["dense"]]
    words = max(query.terms, 1)
    values = [
        x[top, _F["dense"]],
        dense.max(),
        x[top, _F["words_log"]],
        query.unknown,
        x[top, _F["entities"]],
        x[top, _F["coverage"]],
        scores[top],
        scores[top] - scores[second],
        (scores[top] - scores.mean()) / (scores.std() + 1e-6),
        x[top, _F["late"]],
        x[:, _F["late"]].max(),
        x[top, _F["weighted_coverage"]],
        x[:, _F["weighted_coverage"]].max(),
        float(query.words[top]) / words,
        float(query.words.max()) / words,
        x[top, _F["log_length"]],
        at_top.min(),
        np.quantile(at_top, 0.25),
        anywhere.min(),
        np.quantile(anywhere, 0.25),
        anywhere.mean(),
        in_top3.min(),
        in_top3.mean(),
        query.centroid,
        x[top, _F["dense_z"]],
        x[top, _F["heading_dense"]],
        x[top, _F["heading_coverage"]],
        np.log(len(scores)),
        x[top, _F["dense"]] - (np.sort(dense)[-2] if len(dense) > 1 else dense[0]),
        np.log1p(query.terms),
        x[top, _F["role_rule"]],
        x[top, _F["window"]],
        x[:, _F["window"]].max(),
    ]
    return np.array(values, dtype=np.float32)
