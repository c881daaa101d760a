"""Statistics for evaluation results and gate decisions (on scipy).

* ``bootstrap_ci``: percentile bootstrap confidence interval of a statistic of one sample.
* ``paired_difference``: candidate minus reference on the same samples, with a paired bootstrap CI.
* ``unpaired_difference``: the same for two independent samples (different items), each resampled on its own.
* ``mcnemar_exact``: exact McNemar test for paired binary outcomes (accuracy).
* effect sizes: Cohen's h (two proportions) and Cohen's d_z (paired differences).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["interior_ideal", "oriented", "bootstrap_ci", "paired_difference", "unpaired_difference", "mcnemar_exact", "cohens_h", "cohens_dz",
           "resample_statistic", "is_binary"]


def _scipy_stats():
    """scipy.stats, imported on first use: it takes about 1 s, most of a cached 'harness eval' (which reads
    its summaries and computes no interval)."""
    from scipy import stats

    return stats


def _clean(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def bootstrap_ci(values: Sequence[float], *, statistic: Callable = np.mean, level: float = 0.95,
                 n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI; a constant sample gets the degenerate interval (v, v)."""
    x = _clean(values)
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1 or np.all(x == x[0]):
        v = float(statistic(x))
        return (v, v)
    res = _scipy_stats().bootstrap((x,), statistic, confidence_level=level, n_resamples=n_resamples, method="percentile",
                        random_state=np.random.default_rng(seed), vectorized=True, axis=-1)
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def resample_statistic(items: Sequence[Any], fn: Callable[[list[Any]], float | None], *, level: float = 0.95,
                       n_resamples: int = 500, seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI for any statistic of a list of records (e.g. a bias score computed by a hook)."""
    rng = np.random.default_rng(seed)
    n = len(items)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        v = fn([items[i] for i in idx])
        if v is not None and math.isfinite(v):
            values.append(v)
    if not values:
        return (math.nan, math.nan)
    alpha = (1 - level) / 2
    return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


def is_binary(values: Sequence[float]) -> bool:
    return all(v in (0, 1, 0.0, 1.0, True, False) for v in values)


def mcnemar_exact(reference: Sequence[float], candidate: Sequence[float]) -> dict[str, Any]:
    """Exact (binomial) McNemar test on paired 0/1 outcomes."""
    a, b = _clean(reference), _clean(candidate)
    only_ref = int(np.sum((a == 1) & (b == 0)))
    only_cand = int(np.sum((a == 0) & (b == 1)))
    n = only_ref + only_cand
    p = 1.0 if n == 0 else float(_scipy_stats().binomtest(min(only_ref, only_cand), n, 0.5, alternative="two-sided").pvalue)
    return {"test": "mcnemar_exact", "reference_only_correct": only_ref, "candidate_only_correct": only_cand,
            "discordant": n, "p_value": min(1.0, p)}


def cohens_h(p_reference: float, p_candidate: float) -> float:
    return float(2 * math.asin(math.sqrt(p_candidate)) - 2 * math.asin(math.sqrt(p_reference)))


def cohens_dz(diff: Sequence[float]) -> float:
    d = _clean(diff)
    sd = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
    mean = float(np.mean(d)) if d.size else 0.0
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / sd


def paired_difference(reference: Sequence[float], candidate: Sequence[float], *, level: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean of (candidate - reference) over paired samples, its bootstrap CI, a test and an effect size."""
    a, b = _clean(reference), _clean(candidate)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    diff = b - a
    out: dict[str, Any] = {
        "n": int(a.size), "reference_mean": float(a.mean()), "candidate_mean": float(b.mean()),
        "difference": float(diff.mean()), "level": level,
    }
    if a.size > 1 and not np.all(diff == diff[0]):
        res = _scipy_stats().bootstrap((a, b), lambda x, y, axis: np.mean(y - x, axis=axis), paired=True, vectorized=True,
                            confidence_level=level, n_resamples=n_resamples, method="percentile",
                            random_state=np.random.default_rng(seed))
        out["ci_low"], out["ci_high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:
        out["ci_low"] = out["ci_high"] = float(diff.mean()) if diff.size else math.nan
    if is_binary(a) and is_binary(b):
        out.update(mcnemar_exact(a, b))
        out["effect_size"] = {"cohens_h": cohens_h(float(a.mean()), float(b.mean()))}
    else:
        out["test"] = "wilcoxon_signed_rank"
        out["p_value"] = float(_scipy_stats().wilcoxon(diff).pvalue) if a.size > 1 and np.any(diff != 0) else 1.0
        out["effect_size"] = {"cohens_dz": cohens_dz(diff)}
    return out


def unpaired_difference(reference: Sequence[float], candidate: Sequence[float], *, level: float = 0.95,
                        n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean of ``candidate`` minus mean of ``reference`` when the samples are not the same items (results
    on other documents), with a bootstrap CI that resamples each sample independently (scipy's
    ``bootstrap(paired=False)``). A sample of fewer than 2 items has no spread to resample, so the CI is NaN
    (a bootstrap over one item would be a zero-width "interval"); two constant samples get the degenerate one."""
    a, b = _clean(reference), _clean(candidate)
    diff = float(b.mean() - a.mean()) if a.size and b.size else math.nan
    out: dict[str, Any] = {"n_reference": int(a.size), "n_candidate": int(b.size),
                           "reference_mean": float(a.mean()) if a.size else math.nan,
                           "candidate_mean": float(b.mean()) if b.size else math.nan,
                           "difference": diff, "level": level, "test": "unpaired_bootstrap"}
    if a.size < 2 or b.size < 2:
        out["ci_low"] = out["ci_high"] = math.nan
    elif not (np.all(a == a[0]) and np.all(b == b[0])):
        res = _scipy_stats().bootstrap((a, b), lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis), paired=False,
                            vectorized=True, confidence_level=level, n_resamples=n_resamples, method="percentile",
                            random_state=np.random.default_rng(seed))
        out["ci_low"], out["ci_high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:
        out["ci_low"] = out["ci_high"] = diff
    return out


def interior_ideal(ideal: float | None, higher_is_better: bool | None) -> bool:
    """Whether a metric's ideal lies inside its range (50 % stereotype choices), where a change is neither
    better nor worse, only nearer or farther; an ideal of 0 for a lower-is-better distance or divergence is
    just its better end."""
    return ideal is not None and not (ideal == 0 and higher_is_better is False)


def oriented(difference: float, ideal: float | None, higher_is_better: bool | None) -> float | None:
    """``difference`` signed so that positive is better; None for a metric with an interior ideal, where a
    change is neither."""
    if interior_ideal(ideal, higher_is_better):
        return None
    return -difference if higher_is_better is False else difference
