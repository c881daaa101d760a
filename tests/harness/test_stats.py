import math

import numpy as np
import pytest
from scipy import stats as st

from harness.stats import bootstrap_ci, cohens_dz, cohens_h, mcnemar_exact, paired_difference


def test_mcnemar_exact_matches_binomial_test():
    ref = [1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1]
    cand = [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    out = mcnemar_exact(ref, cand)
    # discordant: ref-only at 1, 11 -> 2; cand-only at 3, 4, 6, 9 -> 4
    assert (out["reference_only_correct"], out["candidate_only_correct"]) == (2, 4)
    assert out["p_value"] == pytest.approx(st.binomtest(2, 6, 0.5).pvalue)
    assert mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0


def test_paired_difference_binary_uses_mcnemar_and_scipy_bootstrap():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 2, 200)
    cand = np.where(rng.random(200) < 0.3, 1, ref)
    out = paired_difference(ref, cand, seed=3, n_resamples=999)
    assert out["difference"] == pytest.approx(cand.mean() - ref.mean())
    expected = st.bootstrap((ref.astype(float), cand.astype(float)), lambda x, y, axis: np.mean(y - x, axis=axis),
                            paired=True, vectorized=True, n_resamples=999, method="percentile",
                            random_state=np.random.default_rng(3)).confidence_interval
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((expected.low, expected.high))
    assert out["ci_low"] <= out["difference"] <= out["ci_high"]
    assert out["test"] == "mcnemar_exact"
    assert out["effect_size"]["cohens_h"] == pytest.approx(cohens_h(ref.mean(), cand.mean()))


def test_paired_difference_continuous_uses_wilcoxon():
    rng = np.random.default_rng(0)
    ref = rng.normal(1.0, 0.2, 50)
    cand = ref - 0.1 + rng.normal(0, 0.05, 50)
    out = paired_difference(ref, cand)
    assert out["test"] == "wilcoxon_signed_rank"
    assert out["p_value"] == pytest.approx(st.wilcoxon(cand - ref).pvalue)
    assert out["ci_high"] < 0  # a clear regression: the whole interval is below zero
    d = cand - ref
    assert out["effect_size"]["cohens_dz"] == pytest.approx(d.mean() / d.std(ddof=1))


def test_effect_sizes_by_hand():
    assert cohens_h(0.5, 0.5) == 0
    assert cohens_h(0.25, 0.75) == pytest.approx(2 * math.asin(math.sqrt(0.75)) - 2 * math.asin(math.sqrt(0.25)))
    assert cohens_dz([1, 2, 3]) == pytest.approx(2 / 1)


def test_bootstrap_ci_matches_scipy_and_degenerate_cases():
    x = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    lo, hi = bootstrap_ci(x, n_resamples=999, seed=5)
    ref = st.bootstrap((np.array(x, float),), np.mean, n_resamples=999, method="percentile",
                       random_state=np.random.default_rng(5)).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_a_bias_score_interval_matches_scipy_bootstrap():
    """The interval the bias rules decide on (a summary statistic, here CrowS-Pairs' distance from 50, resampled
    over pairs) is scipy's percentile bootstrap, draw for draw."""
    from harness.stats import resample_statistic

    prefers_stereotype = (np.random.default_rng(3).random(300) < 0.58).astype(float)
    lo, hi = resample_statistic(list(prefers_stereotype), lambda rows: abs(100 * float(np.mean(rows)) - 50),
                                n_resamples=4000, seed=1)
    ref = st.bootstrap((prefers_stereotype,), lambda x: abs(100 * np.mean(x) - 50), n_resamples=4000, method="percentile",
                       vectorized=False, random_state=np.random.default_rng(1)).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high))
    assert 0 < lo < 8 < hi < 14  # 58 % of 300 pairs: 8 points from 50, give or take 5.6


def test_compare_pairs_by_task_and_doc_id():
    from harness.compare import _pair

    ref = [{"task": "mmlu_a", "doc_id": 0, "doc_hash": "x"}, {"task": "mmlu_b", "doc_id": 0, "doc_hash": "y"}]
    cand = list(reversed(ref))
    a, b = _pair(ref, cand, "retention/mmlu")
    assert [(r["task"], c["task"]) for r, c in zip(a, b)] == [("mmlu_a", "mmlu_a"), ("mmlu_b", "mmlu_b")]


def test_compare_summary_metric_by_paired_resampling(tmp_path):
    """A summary-level metric (CrowS distance from 50) is compared by recomputing the hook on paired resamples."""
    import json

    import pytest

    from harness.compare import compare_suite

    def write(folder, stereo):
        folder.mkdir(parents=True)
        samples = [{"task": "t", "doc_id": i, "doc_hash": f"h{i}", "category": "race",
                    "metrics": {"pct_stereotype": float(s), "likelihood_diff": 1.0}} for i, s in enumerate(stereo)]
        (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        (folder / "summary.json").write_text(json.dumps({
            "suite": "bias/crows_pairs", "suite_version": 1, "data_hash": "d", "model": "m", "model_fingerprint": "f",
            "n": len(stereo), "metrics": {"pct_stereotype": {"higher_is_better": False}, "distance_from_50": {"higher_is_better": False}}}))
        return folder

    ref = write(tmp_path / "ref", [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])   # 40 % -> 10 points from 50
    cand = write(tmp_path / "cand", [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])  # 80 % -> 30 points from 50
    rows = {r["metric"]: r for r in compare_suite(ref, cand, n_resamples=800)}
    d = rows["distance_from_50"]
    assert (d["reference_mean"], d["candidate_mean"], d["difference"]) == pytest.approx((10.0, 30.0, 20.0))
    assert d["test"] == "paired_bootstrap" and d["ci_low"] <= d["ci_high"]
    same = {r["metric"]: r for r in compare_suite(ref, ref, n_resamples=400)}["distance_from_50"]
    assert (same["difference"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)  # paired: identical sides never differ


@pytest.mark.parametrize("flagged, reviewed", [(0, 20), (1, 20), (10, 20), (20, 20), (3, 112), (56, 112), (0, 300)])
def test_review_rate_wilson_interval_matches_statsmodels(flagged, reviewed):
    """The unsafe rate's CI (feedback export, read by the gate) is the Wilson score interval."""
    from statsmodels.stats.proportion import proportion_confint

    from feedback.preferences import _rates

    ours = _rates([1.0] * 5 + [0.0] * 5, flagged, reviewed, seed=0, unit="tasks")["unsafe_rate"]
    lo, hi = proportion_confint(flagged, reviewed, alpha=0.05, method="wilson")
    assert ours["ci_low"] == pytest.approx(lo, abs=1e-9) and ours["ci_high"] == pytest.approx(hi, abs=1e-9)


def _sample(kind, n, rng):
    if kind == "normal":
        return rng.normal(0.3, 1.0, n)
    if kind == "binary":
        return (rng.random(n) < 0.3).astype(float)
    return rng.choice([0.0, 0.5, 1.0], size=n, p=[0.3, 0.2, 0.5])  # a win rate: loss, tie, win


@pytest.mark.parametrize("kind, n", [("normal", 100), ("normal", 400), ("binary", 200), ("win", 112), ("win", 300)])
def test_bootstrap_ci_of_a_mean_agrees_with_the_t_interval(kind, n):
    """For a mean over n >= 100 the percentile bootstrap and statsmodels' t interval nearly coincide."""
    from statsmodels.stats.weightstats import DescrStatsW

    x = _sample(kind, n, np.random.default_rng(n))
    lo, hi = bootstrap_ci(x, n_resamples=4000, seed=1)
    t_lo, t_hi = DescrStatsW(x).tconfint_mean(alpha=0.05)
    width = t_hi - t_lo
    assert abs(lo - t_lo) < 0.08 * width and abs(hi - t_hi) < 0.08 * width
    assert abs((hi - lo) - width) < 0.1 * width


@pytest.mark.parametrize("n, p_ref, p_cand", [(122, 0.2, 0.3), (220, 0.7, 0.65), (400, 0.4, 0.5)])
def test_paired_difference_ci_agrees_with_the_paired_t_interval(n, p_ref, p_cand):
    """Paired 0/1 outcomes (the gate's accuracy rules): the bootstrap CI of the mean difference against
    statsmodels' t interval of the per-item differences."""
    from statsmodels.stats.weightstats import DescrStatsW

    rng = np.random.default_rng(n)
    ease = rng.random(n)
    ref, cand = (ease < p_ref).astype(float), (ease + rng.normal(0, 0.15, n) < p_cand).astype(float)
    row = paired_difference(ref, cand, n_resamples=4000, seed=2)
    t_lo, t_hi = DescrStatsW(cand - ref).tconfint_mean(alpha=0.05)
    width = t_hi - t_lo
    assert row["difference"] == pytest.approx(float(np.mean(cand - ref)))
    assert abs(row["ci_low"] - t_lo) < 0.1 * width and abs(row["ci_high"] - t_hi) < 0.1 * width
