"""Traffic policy maths: weighted shares, sticky callers, roles, validation, version order."""

from __future__ import annotations

import random
from collections import Counter

from service.versions.routing import RoutingPolicy, ShadowPolicy, build_table, roles, validate
from service.versions.state import highest, version_key


def test_a_90_10_canary_sends_10_percent_within_2_points_over_2000_requests() -> None:
    table = build_table(RoutingPolicy(weights={"1": 90, "2": 10}), ["1", "2"])
    rng = random.Random(7)
    picks = Counter(table.pick(None, rng) for _ in range(2000))
    assert abs(picks["2"] / 2000 - 0.10) <= 0.02
    assert abs(table.share("2") - 0.1) < 1e-9 and abs(table.share("1") - 0.9) < 1e-9


def test_a_sticky_caller_stays_on_one_version_and_callers_spread_by_weight() -> None:
    table = build_table(RoutingPolicy(weights={"1": 50, "2": 50}), ["1", "2"])
    callers = [f"caller-{i}" for i in range(400)]
    first = {c: table.pick(c) for c in callers}
    for _ in range(3):
        assert {c: table.pick(c) for c in callers} == first
    share = sum(v == "2" for v in first.values()) / len(callers)
    assert 0.4 < share < 0.6


def test_without_weights_the_highest_ready_version_takes_all_traffic() -> None:
    table = build_table(RoutingPolicy(), ["1", "2", "10"])
    assert table.versions == ("10",) and table.pick(None) == "10"
    # weights naming no ready version fall back to the same rule
    assert build_table(RoutingPolicy(weights={"3": 1}), ["1", "2"]).versions == ("2",)
    assert build_table(RoutingPolicy(), []).pick(None) is None


def test_roles_stable_canary_shadow_idle() -> None:
    policy = RoutingPolicy(weights={"1": 90, "2": 10}, shadow=ShadowPolicy(version="3"))
    table = build_table(policy, ["1", "2", "3", "4"])
    assert roles(table, ["1", "2", "3", "4"]) == {
        "1": "stable",
        "2": "canary",
        "3": "shadow",
        "4": "idle",
    }
    tie = build_table(RoutingPolicy(weights={"1": 1, "2": 1}), ["1", "2"])
    assert roles(tie, ["1", "2"]) == {"1": "canary", "2": "stable"}  # ties: the highest


def test_validation_names_the_field() -> None:
    bad = RoutingPolicy(weights={"1": 0, "9": 0}, shadow=ShadowPolicy(version="7", fraction=0.5))
    fields = [field for field, _ in validate(bad, ["1", "2"])]
    assert fields == ["weights.9", "weights", "shadow.version"]
    assert validate(RoutingPolicy(weights={"1": 3, "2": 1}), ["1", "2"]) == []


def test_versions_order_numerically_then_pep440() -> None:
    assert highest(["9", "10", "2"]) == "10"
    assert highest(["1.9", "1.10"]) == "1.10"
    assert highest(["alpha", "beta"]) == "beta"  # not PEP 440: compared as strings
    assert highest(["beta", "3"]) == "3"  # a PEP 440 version sorts above any other string
    assert version_key("2") < version_key("10")
