"""The fitted weights retrieval and abstention use (policy_model.json, written
by `python -m handlers.policy.fit` from tests/data/policy_train*.jsonl)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from handlers.policy.abstain import ABSTAIN_FEATURES
from handlers.policy.features import FEATURES
from handlers.policy.reader import PolicyError

MODEL_PATH = Path(__file__).with_name("policy_model.json")


@dataclass(slots=True)
class Model:
    weights: np.ndarray  # one per FEATURES
    bias: float
    abstain_weights: np.ndarray  # one per ABSTAIN_FEATURES
    abstain_bias: float
    threshold: float  # abstain when the probability of "not covered" is at least this

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "abstain_features": list(ABSTAIN_FEATURES),
            "abstain_weights": [round(float(w), 6) for w in self.abstain_weights],
            "abstain_bias": round(self.abstain_bias, 6),
            "threshold": round(self.threshold, 6),
        }

    def p_uncovered(self, signals: np.ndarray) -> float:
        z = float(signals @ self.abstain_weights + self.abstain_bias)
        return 1.0 / (1.0 + np.exp(-z))


def model_from_json(data: dict[str, object]) -> Model:
    if data.get("features") != list(FEATURES) or data.get("abstain_features") != list(ABSTAIN_FEATURES):
        raise PolicyError(
            f"{MODEL_PATH}: its features do not match this code; rebuild it with `python -m handlers.policy.fit`"
        )
    return Model(
        weights=np.array(data["weights"], dtype=np.float32),
        bias=float(data["bias"]),  # type: ignore[arg-type]
        abstain_weights=np.array(data["abstain_weights"], dtype=np.float32),
        abstain_bias=float(data["abstain_bias"]),  # type: ignore[arg-type]
        threshold=float(data["threshold"]),  # type: ignore[arg-type]
    )


@lru_cache(maxsize=1)
def load_model() -> Model:
    try:
        return model_from_json(json.loads(MODEL_PATH.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise PolicyError(f"{MODEL_PATH}: missing; rebuild it with `python -m handlers.policy.fit`") from None
