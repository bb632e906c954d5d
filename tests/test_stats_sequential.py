"""Group-sequential designs and always-valid inference.

Reference values: /work/shared/references/statistics.md §3a (gsDesign / ldbounds / rpact
boundaries, spotify-confidence, SeqBounds.jl), §3c (mSPRT and confidence-sequence cross-checks,
GrowthBook fixtures) and Jennison & Turnbull (2000) Tables 2.1-2.4; simulations use seeded
numpy Brownian motions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from trafficsplit.errors import ArgumentError
from trafficsplit.stats import (
    AlwaysValidResult,
    GroupSequential,
    Moments,
    confidence_sequence,
    confidence_sequence_from_estimate,
    msprt,
    msprt_path,
    msprt_path_from_estimates,
)

# -- published boundaries ------------------------------------------------------------------------

# Lan–DeMets spending, one-sided alpha = 0.025 (= symmetric two-sided 0.05 under the
# ldbounds/gsDesign/rpact convention), equally spaced looks: bounds and cumulative alpha spent.
OBF = {
    2: ([2.9626, 1.9686], [0.001525, 0.025]),
    3: ([3.7103, 2.5114, 1.9930], [0.00010351, 0.0060484, 0.025]),
    4: ([4.3326, 2.9631, 2.3590, 2.0141], [7.3668e-06, 0.0015253, 0.0096493, 0.025]),
    5: (
        [4.8769, 3.3570, 2.6803, 2.2898, 2.0310],
        [5.3887e-07, 0.00039415, 0.0038081, 0.012212, 0.025],
    ),
}
POCOCK = {
    2: ([2.1570, 2.2010], [0.015503, 0.025]),
    3: ([2.2794, 2.2949, 2.2959], [0.011321, 0.019085, 0.025]),
    4: ([2.3683, 2.3675, 2.3582, 2.3500], [0.008934, 0.015503, 0.020700, 0.025]),
    5: (
        [2.4380, 2.4268, 2.4102, 2.3966, 2.3860],
        [0.007385, 0.013078, 0.017713, 0.021621, 0.025],
    ),
}
CONVENTION_A = {
    3: [3.3948, 2.4067, 2.0152],
    4: [3.9199, 2.7740, 2.2982, 2.0426],
    5: [4.3826, 3.0997, 2.5534, 2.2538, 2.0635],
}


@pytest.mark.parametrize("sides", [1, 2])
@pytest.mark.parametrize("k", sorted(OBF))
def test_obrien_fleming_spending_matches_published_bounds(k: int, sides: int) -> None:
    design = GroupSequential(k, alpha=0.025, sides=sides, spending="obrien-fleming")
    bounds, spent = OBF[k]
    np.testing.assert_allclose(design.boundaries(), bounds, atol=1e-3)
    np.testing.assert_allclose(design.alpha_spent(), spent, rtol=1e-3)
    assert design.total_alpha == pytest.approx(0.025 * sides)
    np.testing.assert_allclose(design.alpha_spent(total=True), np.array(spent) * sides, rtol=1e-3)


@pytest.mark.parametrize("sides", [1, 2])
@pytest.mark.parametrize("k", sorted(POCOCK))
def test_pocock_spending_matches_published_bounds(k: int, sides: int) -> None:
    design = GroupSequential(k, alpha=0.025, sides=sides, spending="pocock")
    bounds, spent = POCOCK[k]
    np.testing.assert_allclose(design.boundaries(), bounds, atol=1e-3)
    np.testing.assert_allclose(design.alpha_spent(), spent, rtol=1e-3)


def test_nominal_levels_at_the_final_look() -> None:
    for k, p in [(3, 0.023128), (4, 0.022000), (5, 0.021126)]:
        assert GroupSequential(k).nominal_alpha()[-1] == pytest.approx(p, abs=2e-6)
    assert GroupSequential(5, spending="pocock").nominal_alpha()[-1] == pytest.approx(
        0.008516, abs=2e-6
    )
    two = GroupSequential(5, sides=2)
    np.testing.assert_allclose(two.nominal_alpha(total=True), 2 * two.nominal_alpha())
    # nominal alpha is the upper tail of the bound
    np.testing.assert_allclose(two.nominal_alpha(), sps.norm.sf(two.boundaries()), rtol=1e-10)


@pytest.mark.parametrize("k", sorted(CONVENTION_A))
def test_convention_a_is_a_different_design(k: int) -> None:
    """Putting the two-sided total into the OBF function and halving ("convention A") gives
    other bounds: the per-side convention is what gsDesign/ldbounds/rpact publish."""
    ours = GroupSequential(k, alpha=0.025, sides=2).boundaries()
    assert np.max(np.abs(ours - CONVENTION_A[k])) > 0.1
    # ... and those numbers are reachable by spending the halved total as user alpha.
    t = np.arange(1, k + 1) / k
    half = GroupSequential(k, alpha=0.05, spending="obrien-fleming").spending_function(t) / 2
    conv = GroupSequential(k, alpha=0.025, sides=2, spending="user", cumulative_alpha=half)
    np.testing.assert_allclose(conv.boundaries(), CONVENTION_A[k], atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "bounds"),
    [
        ({"spending": "kim-demets", "rho": 1}, [2.5758, 2.4920, 2.4108, 2.3391, 2.2755]),
        ({"spending": "kim-demets", "rho": 2}, [3.0902, 2.7141, 2.4728, 2.2799, 2.1140]),
        ({"spending": "power", "rho": 3}, [3.5401, 2.9743, 2.6045, 2.3064, 2.0455]),
        ({"spending": "hsd", "gamma": -4}, [3.2527, 2.9860, 2.6917, 2.3737, 2.0253]),
        ({"spending": "hsd", "gamma": 1}, [2.4487, 2.4190, 2.3984, 2.3912, 2.3948]),
    ],
)
def test_other_spending_families_k5(kwargs: dict[str, float], bounds: list[float]) -> None:
    design = GroupSequential(5, alpha=0.025, **kwargs)  # type: ignore[arg-type]
    np.testing.assert_allclose(design.boundaries(), bounds, atol=1e-3)


def test_hsd_gamma_minus_4_three_looks() -> None:
    np.testing.assert_allclose(
        GroupSequential(3, spending="hsd", gamma=-4).boundaries(),
        [3.0107, 2.5465, 1.9992],
        atol=1e-3,
    )


def test_unequal_looks() -> None:
    t = [0.3, 0.6, 0.8, 1.0]
    obf = GroupSequential(4, timing=t)
    np.testing.assert_allclose(obf.boundaries(), [3.9286, 2.6700, 2.2889, 2.0307], atol=1e-3)
    np.testing.assert_allclose(obf.alpha_spent(), [0.000043, 0.003808, 0.012212, 0.025], atol=1e-6)
    poc = GroupSequential(4, timing=t, spending="pocock")
    np.testing.assert_allclose(poc.boundaries(), [2.3118, 2.3210, 2.3752, 2.3745], atol=1e-3)


def test_rpact_unit_test_rows() -> None:
    """rpact tests/testthat/test-f_design_group_sequential.R (7-digit values)."""
    np.testing.assert_allclose(
        GroupSequential(3, spending="classic-obrien-fleming").boundaries(),
        [3.4710914, 2.4544323, 2.0040356],
        atol=1e-5,
    )
    user = GroupSequential(
        4, alpha=0.05, spending="user", cumulative_alpha=[0.01, 0.02, 0.03, 0.05]
    )
    np.testing.assert_allclose(
        user.boundaries(), [2.3263479, 2.2192994, 2.1201347, 1.8189562], atol=1e-5
    )
    as_of = GroupSequential(3, alpha=0.03)
    np.testing.assert_allclose(as_of.boundaries(), [3.5815302, 2.417863, 1.9175839], atol=1e-5)
    np.testing.assert_allclose(as_of.alpha_spent(), [0.00017079385, 0.0078650906, 0.03], rtol=1e-6)
    hsd0 = GroupSequential(3, alpha=0.03, spending="hsd", gamma=0, timing=[0.2, 0.4, 1.0])
    np.testing.assert_allclose(hsd0.boundaries(), [2.5121443, 2.4228747, 2.0280392], atol=1e-5)
    kd = GroupSequential(3, alpha=0.03, spending="kim-demets", rho=2.2, timing=[0.3, 0.7, 1])
    np.testing.assert_allclose(kd.boundaries(), [2.8594012, 2.2435708, 1.9735737], atol=1e-5)
    hp = GroupSequential(4, spending="haybittle-peto", interim_bound=3.0)
    np.testing.assert_allclose(hp.boundaries(), [3, 3, 3, 1.9827514], atol=1e-5)


def test_seqbounds_and_spotify_rows() -> None:
    # PharmCat/SeqBounds.jl README (their coarse grid is ~3e-5 off)
    sb = GroupSequential(4, alpha=0.05)
    np.testing.assert_allclose(sb.boundaries(), [3.74955, 2.53993, 2.01604, 1.72014], atol=1e-4)
    # spotify-confidence test_seq_bounds_run_over: power family rho=2, two-sided total 0.01
    t = np.array([250, 450, 630, 810]) / 810
    sp = GroupSequential(4, alpha=0.005, sides=2, spending="power", rho=2, timing=t)
    np.testing.assert_allclose(sp.boundaries(), [3.30416, 3.03416, 2.87063, 2.72855], atol=1e-4)
    np.testing.assert_allclose(
        sp.nominal_alpha(total=True), [0.00095, 0.00241, 0.00410, 0.00636], atol=1e-4
    )


# Jennison & Turnbull (2000), Tables 2.1/2.3 (constants) and 2.2/2.4 (inflation R_P, R_B);
# two-sided alpha = 0.05.
POCOCK_C = [1.9600, 2.1783, 2.2895, 2.3613, 2.4132, 2.4532, 2.4855, 2.5123, 2.5352, 2.5550]
OBF_C = [1.9600, 1.9774, 2.0040, 2.0243, 2.0401, 2.0528, 2.0633, 2.0722, 2.0798, 2.0865]
R_POCOCK = {0.8: [1.110, 1.166, 1.202, 1.229], 0.9: [1.100, 1.151, 1.183, 1.207]}
R_OBF = {0.8: [1.008, 1.017, 1.024, 1.028], 0.9: [1.007, 1.016, 1.022, 1.026]}


@pytest.mark.parametrize("k", range(1, 11))
def test_classic_constants(k: int) -> None:
    poc = GroupSequential(k, sides=2, spending="classic-pocock").boundaries()
    np.testing.assert_allclose(poc, POCOCK_C[k - 1], atol=2e-4)
    obf = GroupSequential(k, sides=2, spending="classic-obrien-fleming").boundaries()
    np.testing.assert_allclose(obf[-1], OBF_C[k - 1], atol=2e-4)
    np.testing.assert_allclose(obf, OBF_C[k - 1] * np.sqrt(k / np.arange(1, k + 1)), atol=1e-3)


@pytest.mark.parametrize("power", [0.8, 0.9])
def test_inflation_matches_jennison_turnbull(power: float) -> None:
    for k in range(2, 6):
        poc = GroupSequential(k, sides=2, spending="classic-pocock")
        obf = GroupSequential(k, sides=2, spending="classic-obrien-fleming")
        assert poc.inflation(power) == pytest.approx(R_POCOCK[power][k - 2], abs=6e-4)
        assert obf.inflation(power) == pytest.approx(R_OBF[power][k - 2], abs=6e-4)


def test_inflation_of_a_single_look_is_one_and_power_is_consistent() -> None:
    one = GroupSequential(1)
    assert one.boundaries()[0] == pytest.approx(sps.norm.isf(0.025), abs=1e-12)
    assert one.inflation(0.8) == pytest.approx(1.0, abs=1e-9)
    design = GroupSequential(5, spending="pocock")
    theta = design.drift(0.9)
    assert design.power(theta) == pytest.approx(0.9, abs=1e-9)
    assert design.inflation(0.9) == pytest.approx(
        (theta / (sps.norm.isf(0.025) + sps.norm.isf(0.1))) ** 2, rel=1e-12
    )
    assert design.power(0.0) == pytest.approx(0.025, abs=1e-7)


def test_grid_resolution_converges() -> None:
    fine = GroupSequential(10, grid=40).boundaries()
    np.testing.assert_allclose(GroupSequential(10).boundaries(), fine, atol=1e-5)
    np.testing.assert_allclose(GroupSequential(10, grid=6).boundaries(), fine, atol=1e-3)


# -- decisions, unplanned looks --------------------------------------------------------------------


def test_decide_at_planned_looks_uses_the_design_bounds() -> None:
    design = GroupSequential(5, sides=2)
    d = design.decide([1.0, -2.0, -2.75])
    np.testing.assert_allclose(d.boundaries, design.boundaries()[:3], rtol=1e-12)
    assert d.reject and d.stop and not d.final
    assert d.look == 2 and d.direction == -1
    np.testing.assert_allclose(d.nominal_pvalue, 2 * sps.norm.sf([1.0, 2.0, 2.75]), rtol=1e-10)
    assert d.nominal_pvalue[2] <= d.nominal_alpha[2]
    assert np.all(d.nominal_pvalue[:2] > d.nominal_alpha[:2])
    quiet = design.decide([0.5, 1.0])
    assert not quiet.reject and not quiet.stop and quiet.look == 1
    assert quiet.to_dict()["boundaries"] == pytest.approx(design.boundaries()[:2].tolist())


def test_decide_at_unplanned_looks_spends_alpha_at_observed_fractions() -> None:
    design = GroupSequential(4, spending="obrien-fleming")
    info = [0.15, 0.5, 0.62, 0.9, 1.1]
    d = design.decide([0.1, 0.2, 0.3, 0.4, 2.5], info)
    np.testing.assert_allclose(d.alpha_spent[:4], design.spending_function(info[:4]), rtol=1e-9)
    assert d.alpha_spent[-1] == pytest.approx(0.025, abs=1e-12)  # final look spends the rest
    assert d.final and d.stop and d.reject and d.look == 4
    # The bounds are those of a design planned at the observed fractions (> 1 allowed last).
    np.testing.assert_allclose(d.boundaries, design.boundaries_at(info), rtol=1e-12)
    # More looks than planned, and absolute information.
    many = design.decide(np.zeros(8), np.arange(1, 9) * 40.0, max_information=400)
    np.testing.assert_allclose(many.information, np.arange(1, 9) / 10)
    assert not many.final and not many.reject


def test_decide_repeated_information_reuses_the_bound() -> None:
    d = GroupSequential(3, spending="pocock").decide([1.0, 1.1, 1.2], [0.3, 0.3, 0.7])
    assert d.boundaries[0] == d.boundaries[1]
    planned = GroupSequential(2, spending="pocock", timing=[0.3, 0.7])
    np.testing.assert_allclose(d.boundaries[[0, 2]], planned.boundaries(), rtol=1e-12)


def test_decide_rejects_inconsistent_looks() -> None:
    design = GroupSequential(3)
    with pytest.raises(ArgumentError, match="follows the final look"):
        design.decide([1, 2], [1.0, 1.2])
    with pytest.raises(ArgumentError, match="must not decrease"):
        design.decide([1, 2], [0.5, 0.4])
    with pytest.raises(ArgumentError, match="2 z statistics but 3"):
        design.decide([1, 2], [0.2, 0.4, 0.6])
    with pytest.raises(ArgumentError, match="pass information"):
        design.decide([1, 2, 3, 4])
    with pytest.raises(ArgumentError, match="only at the planned fractions"):
        GroupSequential(3, spending="classic-pocock").decide([1, 2], [0.3, 0.5])
    with pytest.raises(ArgumentError, match="NaN"):
        design.decide([1, float("nan")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"looks": 0}, "looks must be an integer >= 1"),
        ({"looks": True}, "looks must be an integer"),
        ({"looks": 3, "alpha": 0.5}, r"alpha must be in \(0, 0.5\)"),
        ({"looks": 3, "alpha": 0.0}, r"alpha must be in \(0, 0.5\)"),
        ({"looks": 3, "sides": 3}, "sides must be 1 or 2"),
        ({"looks": 3, "spending": "nope"}, "unknown spending 'nope'"),
        ({"looks": 3, "spending": "hsd"}, "needs gamma"),
        ({"looks": 3, "gamma": 1.0}, "gamma applies to spending='hsd'"),
        ({"looks": 3, "spending": "kim-demets", "rho": -1.0}, "rho must be in"),
        ({"looks": 3, "timing": [0.5, 0.4, 1.0]}, "strictly increasing"),
        ({"looks": 3, "timing": [0.5, 1.0]}, "2 fractions for 3 looks"),
        ({"looks": 2, "timing": [0.5, 1.5]}, r"fractions in \(0, 1\]"),
        ({"looks": 2, "timing": [0.0, 1.0]}, r"fractions in \(0, 1\]"),
        ({"looks": 2, "spending": "user"}, "needs cumulative_alpha"),
        (
            {"looks": 2, "spending": "user", "cumulative_alpha": [0.02, 0.01]},
            "must end at alpha",
        ),
        (
            {"looks": 2, "alpha": 0.02, "spending": "user", "cumulative_alpha": [0.03, 0.02]},
            "non-decreasing",
        ),
        ({"looks": 3, "spending": "haybittle-peto", "interim_bound": 1.0}, "before the final"),
        ({"looks": 3, "grid": 0}, "grid must be"),
    ],
)
def test_invalid_designs_raise_argument_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        GroupSequential(**kwargs)  # type: ignore[arg-type]


def test_repr_and_dict() -> None:
    design = GroupSequential(3, spending="hsd", gamma=-4)
    assert "gamma=-4" in repr(design) and "3.0107" in repr(design)
    d = design.to_dict()
    assert d["spending"] == "hsd" and d["total_alpha"] == 0.025
    assert d["boundaries"] == pytest.approx([3.0107, 2.5465, 1.9992], abs=1e-3)


# -- A/A and power simulations ------------------------------------------------------------------


def brownian_z(
    rng: np.random.Generator, t: np.ndarray, runs: int, drift: float = 0.0
) -> np.ndarray:
    """z statistics at fractions t of `runs` Brownian motions with E[Z_k] = drift sqrt(t_k)."""
    dt = np.diff(np.concatenate([[0.0], t]))
    steps = rng.standard_normal((runs, t.size)) * np.sqrt(dt) + drift * dt
    return np.cumsum(steps, axis=1) / np.sqrt(t)


def rejection_rate(z: np.ndarray, bounds: np.ndarray, sides: int) -> float:
    stat = np.abs(z) if sides == 2 else z
    return float(np.mean(np.any(stat >= bounds, axis=1)))


def check_type_one_error(k: int, sides: int, spending: str, runs: int, seed: int) -> None:
    design = GroupSequential(k, alpha=0.025, sides=sides, spending=spending)
    z = brownian_z(np.random.default_rng(seed), design.timing, runs)
    level = design.total_alpha
    se = math.sqrt(level * (1 - level) / runs)
    rate = rejection_rate(z, design.boundaries(), sides)
    assert abs(rate - level) <= 3 * se, (rate, level, se)
    # Naive repeated testing at the fixed-sample bound inflates the error: the guard matters.
    naive = rejection_rate(z, np.full(k, sps.norm.isf(0.025)), sides)
    assert naive > level + 10 * se, (naive, level)


@pytest.mark.parametrize(("spending", "sides"), [("obrien-fleming", 2), ("pocock", 1)])
def test_aa_simulation_small(spending: str, sides: int) -> None:
    check_type_one_error(5, sides, spending, runs=100_000, seed=20240601)


def test_power_simulation_matches_inflation_small() -> None:
    design = GroupSequential(5, spending="pocock")
    theta = math.sqrt(design.inflation(0.8)) * (sps.norm.isf(0.025) + sps.norm.isf(0.2))
    runs = 40_000
    z = brownian_z(np.random.default_rng(7), design.timing, runs, drift=theta)
    rate = rejection_rate(z, design.boundaries(), 1)
    assert abs(rate - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / runs)


def test_expected_information_matches_simulation() -> None:
    design = GroupSequential(5, sides=2, spending="pocock")
    theta = design.drift(0.8)
    up, low = design.crossing_probabilities(theta)
    assert up.sum() == pytest.approx(0.8, abs=1e-9)
    runs = 40_000
    z = brownian_z(np.random.default_rng(21), design.timing, runs, drift=theta)
    crossed = np.abs(z) >= design.boundaries()
    stop = np.where(crossed.any(axis=1), crossed.argmax(axis=1), design.looks - 1)
    t_stop = design.timing[stop]
    se = t_stop.std() / math.sqrt(runs)
    assert abs(t_stop.mean() - design.expected_information(theta)) <= 3 * se
    # per-look stopping frequencies
    freq = np.bincount(stop[crossed.any(axis=1)], minlength=design.looks) / runs
    np.testing.assert_allclose(freq, up + low, atol=4 * math.sqrt(0.25 / runs))
    # under the null the stopping probabilities are the alpha increments, both sides
    spent = np.diff(design.alpha_spent(total=True), prepend=0.0)
    t = design.timing
    expected = 1.0 - np.sum(spent[:-1] * (1.0 - t[:-1]))
    assert design.expected_information(0.0) == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("k", [3, 5, 10, 20])
@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock", "hsd"])
@pytest.mark.parametrize("sides", [1, 2])
def test_aa_simulation_large(k: int, spending: str, sides: int) -> None:
    gamma = -4.0 if spending == "hsd" else None
    design = GroupSequential(k, alpha=0.025, sides=sides, spending=spending, gamma=gamma)
    runs = 1_000_000
    z = brownian_z(np.random.default_rng(1000 + k), design.timing, runs)
    se = math.sqrt(design.total_alpha * (1 - design.total_alpha) / runs)
    assert abs(rejection_rate(z, design.boundaries(), sides) - design.total_alpha) <= 3 * se


@pytest.mark.slow
@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
@pytest.mark.parametrize("power", [0.8, 0.9])
def test_power_simulation_large(spending: str, power: float) -> None:
    design = GroupSequential(10, sides=2, spending=spending, timing=np.linspace(0.1, 1, 10))
    theta = math.sqrt(design.inflation(power)) * (sps.norm.isf(0.025) + sps.norm.isf(1 - power))
    runs = 400_000
    z = brownian_z(np.random.default_rng(11), design.timing, runs, drift=theta)
    rate = float(np.mean(np.any(z >= design.boundaries(), axis=1)))
    assert abs(rate - power) <= 3 * math.sqrt(power * (1 - power) / runs)


@pytest.mark.slow
def test_unplanned_looks_keep_the_level() -> None:
    """Looks at random information fractions (different per batch of runs) spend alpha(t)."""
    design = GroupSequential(5, sides=2)
    rng = np.random.default_rng(3)
    rejected, runs = 0, 0
    for _ in range(20):
        t = np.sort(rng.uniform(0.05, 1.0, size=6))
        t[-1] = 1.0
        t = np.unique(t)
        z = brownian_z(rng, t, 50_000)
        rejected += int(rejection_rate(z, design.boundaries_at(t), 2) * 50_000)
        runs += 50_000
    se = math.sqrt(0.05 * 0.95 / runs)
    assert abs(rejected / runs - 0.05) <= 3 * se


# -- mSPRT and confidence sequences ---------------------------------------------------------------


def arm(n: int, mean: float, var: float) -> Moments:
    """Moments of n values with exactly this mean and (n - 1) sample variance."""
    return Moments(n, np.array([mean]), np.array([[var * (n - 1)]]))


@pytest.mark.parametrize(
    ("delta", "n", "tau2", "lr", "p"),
    [
        (0.1, 1000, 0.01, 3.27872, 0.304997),
        (0.1, 1000, 0.1, 1.62428, 0.615656),
        (0.05, 10000, 0.01, 64.1702, 0.0155836),
        (0.0, 1000, 0.01, 0.408248, 1.0),
    ],
)
def test_msprt_matches_closed_form(delta: float, n: int, tau2: float, lr: float, p: float) -> None:
    # V = sigma_A^2 + sigma_B^2 = 2, n per arm
    r = msprt(arm(n, 0.0, 1.0), arm(n, delta, 1.0), tau2=tau2)
    assert isinstance(r, AlwaysValidResult)
    assert r.likelihood_ratio == pytest.approx(lr, rel=5e-6)  # 6 significant digits
    assert r.pvalue == pytest.approx(p, rel=5e-6)
    assert r.statistic == pytest.approx(delta / math.sqrt(2 / n), rel=1e-12)
    assert r.alternative == "two-sided" and r.tau2 == tau2 and r.tuning is None


def test_msprt_interval_is_wider_than_fixed_sample() -> None:
    r = msprt(arm(1000, 0.0, 1.0), arm(1000, 0.1, 1.0), tau2=0.01)
    assert (r.ci[1] - r.ci[0]) / 2 == pytest.approx(0.136674, abs=1e-6)
    assert sps.norm.isf(0.025) * math.sqrt(2 / 1000) == pytest.approx(0.087652, abs=1e-6)
    # the interval excludes exactly the nulls the p-value rejects
    lo = msprt(arm(1000, 0.0, 1.0), arm(1000, 0.1, 1.0), tau2=0.01, null=r.ci[0] - 1e-9)
    hi = msprt(arm(1000, 0.0, 1.0), arm(1000, 0.1, 1.0), tau2=0.01, null=r.ci[0] + 1e-9)
    assert lo.pvalue < 0.05 < hi.pvalue


def test_msprt_effect_rule_and_raw_values() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 2, 3000), rng.normal(0.2, 1, 2000)
    r = msprt(a, b, effect=0.1)
    assert r.tau2 == pytest.approx(0.01)
    v = a.var(ddof=1) / a.size + b.var(ddof=1) / b.size
    d = b.mean() - a.mean()
    lam = math.sqrt(v / (v + 0.01)) * math.exp(0.01 * d * d / (2 * v * (v + 0.01)))
    assert r.likelihood_ratio == pytest.approx(lam, rel=1e-10)
    assert r.se == pytest.approx(math.sqrt(v), rel=1e-12)


def test_confidence_sequence_multipliers() -> None:
    """Half-width / (sigma / sqrt(n)) for GrowthBook's N* = 5000 and Eppo's N_tune = 10000."""
    for n, m in [(100, 6.6944), (1000, 3.3639), (5000, 3.0352), (20000, 3.1271), (1e5, 3.3369),
                 (1e6, 3.6565)]:  # fmt: skip
        r = confidence_sequence_from_estimate(0.0, 1 / math.sqrt(n), n, tuning=5000)
        assert r.ci[1] * math.sqrt(n) == pytest.approx(m, abs=1e-4)
    for n, m in [(1000, 3.8551), (10000, 3.0352), (1e5, 3.2417), (1e6, 3.5616)]:
        r = confidence_sequence_from_estimate(0.0, 1 / math.sqrt(n), n, tuning=10000)
        assert r.ci[1] * math.sqrt(n) == pytest.approx(m, abs=1e-4)


def relative_lift(m_a: float, v_a: float, n_a: int, m_b: float, v_b: float, n_b: int):
    """Relative lift and its delta-method SE (gbstats variance_of_ratios with cov = 0)."""
    lift = m_b / m_a - 1
    var = v_b / (n_b * m_a**2) + m_b**2 * v_a / (n_a * m_a**4)
    return lift, math.sqrt(var)


def test_growthbook_sequential_fixtures() -> None:
    # gbstats SequentialTwoSidedTTest fixture (n_A = 3000 with the same sums)
    n_a, n_b = 3000, 3461
    m_a, m_b = 1396.87 / n_a, 2422.7 / n_b
    v_a = (52377.9767 - 1396.87**2 / n_a) / (n_a - 1)
    v_b = (134698.29 - 2422.7**2 / n_b) / (n_b - 1)
    lift, se = relative_lift(m_a, v_a, n_a, m_b, v_b, n_b)
    r = confidence_sequence_from_estimate(lift, se, n_a + n_b, tuning=1000)
    assert r.ci == pytest.approx((-0.55844, 1.56516), abs=1e-5)
    assert r.pvalue == 1.0
    assert math.sqrt(r.tau2 / (se**2 * (n_a + n_b))) == pytest.approx(0.089085, abs=1e-6)
    r5 = confidence_sequence_from_estimate(lift, se, n_a + n_b)
    assert r5.ci == pytest.approx((-0.50972, 1.51644), abs=1e-5)
    # proportions 1396/3000 vs 2422/3461, variance p(1 - p)
    p_a, p_b = 1396 / 3000, 2422 / 3461
    lift, se = relative_lift(p_a, p_a * (1 - p_a), 3000, p_b, p_b * (1 - p_b), 3461)
    assert (lift, se) == pytest.approx((0.50386, 0.03386), abs=1e-5)
    r = confidence_sequence_from_estimate(lift, se, 6461)
    assert r.ci == pytest.approx((0.40098, 0.60675), abs=1e-5)
    assert r.pvalue == pytest.approx(5.2e-44, rel=0.05)


def test_confidence_sequence_equals_msprt_with_matching_tau2() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(1.0, 1.5, 4000), rng.normal(1.08, 1.2, 3500)
    cs = confidence_sequence(a, b, tuning=8000)
    ms = msprt(a, b, tau2=cs.tau2)
    assert cs.ci == pytest.approx(ms.ci, rel=1e-12)
    assert cs.pvalue == pytest.approx(ms.pvalue, rel=1e-12)
    # msprt's default rule is the same N* tuning
    default = msprt(a, b, tuning=8000)
    assert default.pvalue == pytest.approx(cs.pvalue, rel=1e-12)
    assert default.ci == pytest.approx(cs.ci, rel=1e-12)


def test_one_sided_confidence_sequence() -> None:
    n = 5000
    se = 0.1
    r = confidence_sequence_from_estimate(0.3, se, n, sides=1)
    rho2 = (-2 * math.log(0.1) + math.log(1 - 2 * math.log(0.1))) / 5000
    s = se * math.sqrt(n)
    hw = s * math.sqrt(
        2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(1 + math.sqrt(n * rho2 + 1) / 0.1)
    )
    assert r.ci == (pytest.approx(0.3 - hw, rel=1e-12), math.inf)
    assert r.alternative == "larger"
    # p <= alpha exactly when the bound excludes the null
    for est in (hw - 1e-9, hw + 1e-9):
        rr = confidence_sequence_from_estimate(est, se, n, sides=1)
        assert (rr.pvalue < 0.05) == (rr.ci[0] > 0)
    sm = confidence_sequence_from_estimate(-0.3, se, n, sides=1, alternative="smaller")
    assert sm.ci == (-math.inf, pytest.approx(-0.3 + hw, rel=1e-12))
    assert sm.pvalue == pytest.approx(r.pvalue, rel=1e-12)
    assert confidence_sequence_from_estimate(-0.3, se, n, sides=1).pvalue == 1.0


def test_msprt_path_running_minimum_and_intersection() -> None:
    est = np.array([0.3, 0.05, 0.2, 0.0])
    var = np.array([0.04, 0.02, 0.01, 0.005])
    path = msprt_path_from_estimates(est, var, tau2=0.05)
    single = [msprt_path_from_estimates([e], [v], 0.05) for e, v in zip(est, var, strict=True)]
    p = np.array([s.pvalue[0] for s in single])
    np.testing.assert_allclose(path.pvalue, np.minimum.accumulate(p))
    np.testing.assert_allclose(path.ci_low, np.maximum.accumulate([s.ci_low[0] for s in single]))
    np.testing.assert_allclose(path.ci_high, np.minimum.accumulate([s.ci_high[0] for s in single]))
    lam = path.likelihood_ratio
    np.testing.assert_allclose(p, np.minimum(1.0, 1.0 / lam))
    assert lam[3] == pytest.approx(math.sqrt(0.005 / 0.055))  # estimate at the null


def test_msprt_path_from_cumulative_moments() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 600), rng.normal(0.3, 1, 600)
    ends = [100, 200, 400, 600]
    path = msprt_path([a[:e] for e in ends], [b[:e] for e in ends], tau2=0.09)
    for k, e in enumerate(ends):
        assert path.log_likelihood_ratio[k] == pytest.approx(
            math.log(msprt(a[:e], b[:e], tau2=0.09).likelihood_ratio), rel=1e-12
        )
    assert path.reject and path.first_rejection is not None


def test_always_valid_errors() -> None:
    with pytest.raises(ArgumentError, match="at least 2 observations"):
        msprt([1.0], [1.0, 2.0], tau2=1)
    with pytest.raises(ArgumentError, match="zero variance"):
        msprt([1.0, 1.0], [2.0, 2.0], tau2=1)
    with pytest.raises(ArgumentError, match="tau2 must be finite and > 0"):
        msprt([1.0, 2.0], [2.0, 3.0], tau2=0)
    with pytest.raises(ArgumentError, match="tau2 or effect"):
        msprt([1.0, 2.0], [2.0, 3.0], tau2=1, effect=0.1)
    with pytest.raises(ArgumentError, match=r"alpha must be in \(0, 1\)"):
        msprt([1.0, 2.0], [2.0, 3.0], alpha=1.5)
    with pytest.raises(ArgumentError, match="tuning N"):
        confidence_sequence([1.0, 2.0], [2.0, 3.0], tuning=-1)
    with pytest.raises(ArgumentError, match="'larger' or 'smaller'"):
        confidence_sequence([1.0, 2.0], [2.0, 3.0], sides=1, alternative="two-sided")
    with pytest.raises(ArgumentError, match="3 control looks but 2"):
        msprt_path([[1, 2]] * 3, [[1, 2]] * 2)
    with pytest.raises(ArgumentError, match="variance of the estimate"):
        msprt_path_from_estimates([0.1], [-1.0], 0.1)


def monitored_aa(runs: int, n: int, every: int, seed: int, alpha: float = 0.05):
    """Always-valid and naive fixed-sample p over `runs` A/A experiments looked at every
    `every` units per arm up to n: fraction of runs that ever reject."""
    rng = np.random.default_rng(seed)
    looks = np.arange(every, n + 1, every)
    ever_av = ever_naive = 0
    for _ in range(runs):
        a, b = rng.standard_normal(n), rng.standard_normal(n)
        ca, cb = np.cumsum(a)[looks - 1], np.cumsum(b)[looks - 1]
        qa, qb = np.cumsum(a * a)[looks - 1], np.cumsum(b * b)[looks - 1]
        va = (qa - ca**2 / looks) / (looks - 1)
        vb = (qb - cb**2 / looks) / (looks - 1)
        est, var = cb / looks - ca / looks, (va + vb) / looks
        # N* rule per look, as msprt's default
        rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / 5000
        path = msprt_path_from_estimates(est, var, 2 * looks * var * rho2, alpha)
        ever_av += bool(path.reject)
        ever_naive += bool(np.any(np.abs(est) / np.sqrt(var) >= sps.norm.isf(alpha / 2)))
    return ever_av / runs, ever_naive / runs


def test_aa_continuous_monitoring_small() -> None:
    runs, alpha = 400, 0.05
    av, naive = monitored_aa(runs, n=2000, every=20, seed=12)
    se = math.sqrt(alpha * (1 - alpha) / runs)
    assert av <= alpha + 3 * se
    assert naive > alpha + 5 * se  # peeking at the fixed-sample test inflates the error


@pytest.mark.slow
def test_aa_continuous_monitoring_large() -> None:
    runs, alpha = 4000, 0.05
    av, naive = monitored_aa(runs, n=10000, every=10, seed=13)
    se = math.sqrt(alpha * (1 - alpha) / runs)
    assert av <= alpha + 3 * se
    assert naive > 0.2


# -- properties ---------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def designs(draw: st.DrawFn) -> GroupSequential:
    k = draw(st.integers(1, 8))
    gaps = draw(st.lists(st.floats(0.02, 1.0), min_size=k, max_size=k))
    timing = np.cumsum(gaps) / np.sum(gaps)
    if k > 1 and np.min(np.diff(timing)) < 0.01:
        timing = np.arange(1, k + 1) / k
    spending = draw(st.sampled_from(["obrien-fleming", "pocock", "hsd", "kim-demets"]))
    gamma = draw(st.floats(-6, 4)) if spending == "hsd" else None
    rho = draw(st.floats(0.5, 4)) if spending == "kim-demets" else None
    alpha = draw(st.floats(0.001, 0.1))
    sides = draw(st.sampled_from([1, 2]))
    return GroupSequential(
        k, alpha=alpha, sides=sides, spending=spending, timing=timing, gamma=gamma, rho=rho
    )


@settings(max_examples=60, deadline=None)
@given(designs())
def test_bounds_spend_exactly_alpha_under_the_null(design: GroupSequential) -> None:
    """The upper-crossing probability of the bounds (the recursion run forwards, with no root
    finding) is the alpha the spending function allows, at every look."""
    spent = design.spending_function(design.timing)
    np.testing.assert_allclose(design.alpha_spent(), spent, rtol=1e-9)
    assert design.power(0.0) == pytest.approx(design.alpha, rel=1e-6)
    # more drift, more power; the bounds never fall below the fixed-sample bound of the
    # increment spent
    assert design.power(1.0) > design.power(0.5) > design.alpha
    nominal = design.nominal_alpha()
    assert np.all(nominal <= design.alpha + 1e-15)


def test_zero_spending_gives_an_infinite_bound() -> None:
    design = GroupSequential(3, spending="user", cumulative_alpha=[0.0, 0.01, 0.025])
    assert design.boundaries()[0] == math.inf and design.nominal_alpha()[0] == 0.0
    d = design.decide([50.0, 0.0])
    assert not d.reject  # nothing was spent at the first look
    assert design.power(0.0) == pytest.approx(0.025, rel=1e-7)
