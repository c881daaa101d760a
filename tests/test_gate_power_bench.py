"""bench/gate_power.py's simulation is what docs/benchmarks.md says it is: independent per-item outcomes
with the demo's discordance, effects put exactly at a rule's boundary, and decisions by the gate's own code."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import gate_power  # noqa: E402


def test_the_two_models_outcomes_are_independent_draws_with_the_demos_discordance():
    rng = np.random.default_rng(0)
    for suite, share in (("domain/handbook_mcq", 0.29), ("retention/general_knowledge", 0.17),
                         ("bias/crows_pairs", 0.075), ("bias/winobias", 0.14)):
        discordant = []
        for _ in range(300):
            p = gate_power._item_chances(rng, suite)
            a, b = rng.random(p.size) < p, rng.random(p.size) < p  # zero effect: the same chances, separate draws
            discordant.append(np.mean(a != b))
        assert np.mean(discordant) == pytest.approx(share, abs=0.015), suite


def test_an_effect_is_moved_exactly_and_each_rule_has_its_boundary():
    p = gate_power._item_chances(np.random.default_rng(1), "retention/general_knowledge")
    assert gate_power._moved(p, -0.08).mean() - p.mean() == pytest.approx(-0.08, abs=1e-6)
    policy = gate_power.load_policy(gate_power.DEFAULT_POLICY)
    bounds = {r.id: gate_power.boundary(r) for r in policy.rules}
    assert bounds["domain-improves"] == 0 and bounds["general-knowledge-retained"] == pytest.approx(-0.08)
    assert bounds["stereotypes-not-worse"] == 8 and bounds["alignment-helps"] == 0.5


def test_a_rule_passes_a_clear_gain_and_fails_a_clear_loss():
    rng = np.random.default_rng(2)
    rule = next(r for r in gate_power.load_policy(gate_power.DEFAULT_POLICY).rules if r.id == "domain-improves")
    assert sum(gate_power.rule_passes(rng, rule, {rule.id: 0.3}, 300) for _ in range(10)) >= 9
    assert sum(gate_power.rule_passes(rng, rule, {rule.id: -0.1}, 300) for _ in range(10)) == 0
