"""The length-controlled win rate (as in length-controlled AlpacaEval): would the reviewers still prefer
the candidate if its answers were as long as the incumbent's?

Each resolved judgement is a target (candidate wins 1, tie 0.5, loses 0) for the logistic model
``P(candidate wins) = sigmoid(a + b * tanh(d / s))``, where ``d`` is the candidate's answer length minus
the incumbent's (in words) and ``s`` the spread of ``d``. The length-controlled win rate is
``sigmoid(a)``, the model's win rate at equal lengths; ``b`` says how much length alone moved the
judgements. Its 95 % CI comes from a bootstrap over the judgements (refitting each time). A raw win
rate well above its length-controlled one means the gain is mostly "longer answers".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.stats import resample_statistic

__all__ = ["length_controlled_win_rate"]


def _fit(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    from scipy.optimize import minimize

    def loss(theta: np.ndarray) -> float:
        z = theta[0] + theta[1] * x
        p = 1.0 / (1.0 + np.exp(-z))
        p = np.clip(p, 1e-9, 1 - 1e-9)
        # a light ridge on both terms keeps a perfectly separated sample finite
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + 1e-3 * (theta[0] ** 2 + theta[1] ** 2))

    res = minimize(loss, np.zeros(2), method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def length_controlled_win_rate(scores: list[float], length_diffs: list[float], *, seed: int = 0,
                               n_resamples: int = 500) -> dict[str, Any]:
    """``scores`` (1 / 0.5 / 0 per judgement) and the candidate-minus-incumbent word counts, aligned."""
    n = len(scores)
    definition = ("win rate at equal answer lengths: sigmoid(a) of the fit P(win) = sigmoid(a + b*tanh(d/s)), "
                  "d = candidate minus incumbent words")
    if n < 2:
        return {"estimate": None, "ci_low": None, "ci_high": None, "n": n, "definition": definition,
                "length_coefficient": None}
    y = np.asarray(scores, dtype=float)
    d = np.asarray(length_diffs, dtype=float)
    spread = float(np.std(d)) or 1.0
    x = np.tanh(d / spread)
    a, b = _fit(y, x)

    def at_equal_length(idx: list[int]) -> float:
        return 1.0 / (1.0 + math.exp(-_fit(y[idx], x[idx])[0]))

    lo, hi = resample_statistic(list(range(n)), at_equal_length, n_resamples=n_resamples, seed=seed)
    return {"estimate": 1.0 / (1.0 + math.exp(-a)), "ci_low": lo, "ci_high": hi, "n": n, "definition": definition,
            "length_coefficient": b, "mean_length_difference": float(d.mean())}
