"""Calibration: temperature and isotonic fits, ECE, reliability bins, serialisation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ipguard.evaluation.calibration import (
    Calibrator,
    IdentityCalibrator,
    IsotonicCalibrator,
    TemperatureCalibrator,
    calibrator_from_dict,
    expected_calibration_error,
    fit_calibrator,
    reliability_table,
)


def _true_probabilities(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: ``p`` is perfectly calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, size=n)
    return p, (rng.random(n) < p).astype(int)


def _sharpen(p: np.ndarray, factor: float) -> np.ndarray:
    """An over-confident model: logits multiplied by ``factor`` (i.e. temperature 1/factor)."""
    z = np.log(p) - np.log1p(-p)
    return 1 / (1 + np.exp(-factor * z))


def test_ece_of_perfectly_calibrated_scores_is_small():
    p, labels = _true_probabilities(20_000)
    assert expected_calibration_error(p, labels) < 0.02


def test_ece_detects_scores_that_are_systematically_too_low():
    p, labels = _true_probabilities(20_000)
    assert expected_calibration_error(p / 2, labels) > 0.15


def test_temperature_scaling_recovers_the_sharpening_and_reduces_ece():
    p, labels = _true_probabilities(20_000)
    scores = _sharpen(p, 3.0)
    calibrator = fit_calibrator(scores, labels, method="temperature")
    assert isinstance(calibrator, TemperatureCalibrator)
    assert calibrator.temperature == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(scores, labels)
    after = expected_calibration_error(calibrator(scores), labels)
    assert before > 0.1
    assert after < before / 4


def test_temperature_scaling_keeps_the_order_of_scores():
    p, labels = _true_probabilities(2_000)
    scores = np.sort(_sharpen(p, 3.0))
    calibrated = fit_calibrator(scores, labels)(scores)
    assert np.all(np.diff(calibrated) >= 0)


def test_isotonic_calibration_is_monotone_and_reduces_ece():
    p, labels = _true_probabilities(5_000)
    scores = _sharpen(p, 3.0)
    calibrator = fit_calibrator(scores, labels, method="isotonic")
    grid = np.linspace(-0.5, 1.5, 501)  # also beyond the fitted range: clamped, not extrapolated
    out = calibrator(grid)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= 0 and out.max() <= 1
    assert expected_calibration_error(calibrator(scores), labels) < expected_calibration_error(
        scores, labels
    )


@pytest.mark.parametrize("method", ["temperature", "isotonic", "none"])
def test_calibrators_round_trip_through_json_and_give_identical_outputs(method):
    p, labels = _true_probabilities(1_000)
    scores = _sharpen(p, 2.0)
    calibrator = fit_calibrator(scores, labels, method=method)
    restored = calibrator_from_dict(json.loads(json.dumps(calibrator.to_dict(), allow_nan=False)))
    assert isinstance(restored, Calibrator)
    assert restored == calibrator
    np.testing.assert_array_equal(restored(scores), calibrator(scores))


@pytest.mark.parametrize(
    "calibrator",
    [IdentityCalibrator(), TemperatureCalibrator(2.0), IsotonicCalibrator((0.0, 1.0), (0.1, 0.9))],
)
def test_nan_scores_stay_nan_so_the_policy_can_send_them_to_review(calibrator):
    out = calibrator(np.array([0.2, np.nan, 0.7]))
    assert np.isnan(out[1])
    assert np.isfinite(out[[0, 2]]).all()


def test_temperature_calibrator_maps_certain_scores_to_finite_probabilities():
    out = TemperatureCalibrator(2.0)(np.array([0.0, 1.0]))
    assert 0 < out[0] < 0.5 < out[1] < 1


def test_fit_calibrator_refuses_a_single_class():
    with pytest.raises(ValueError, match="both genuine and infringing"):
        fit_calibrator(np.array([0.2, 0.4, 0.9]), np.array([1, 1, 1]))


def test_fit_calibrator_names_the_row_of_an_out_of_range_score():
    with pytest.raises(ValueError, match=r"\[0, 1\].*row 1"):
        fit_calibrator(np.array([0.2, 1.4, 0.9]), np.array([0, 1, 1]))


def test_fit_calibrator_rejects_unknown_method():
    with pytest.raises(ValueError, match="'platt'"):
        fit_calibrator(np.array([0.2, 0.9]), np.array([0, 1]), method="platt")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"method": "platt"}, "'platt'"),
        ({"method": "temperature"}, "expects keys"),
        ({"method": "temperature", "temperature": -1.0}, "> 0"),
        ({"method": "isotonic", "x": [0.0, 0.5, 0.4], "y": [0.1, 0.2, 0.3]}, "x\\[2\\]"),
        ({"method": "isotonic", "x": [0.0, 0.5], "y": [0.4, 0.2]}, "non-decreasing"),
        ({"temperature": 1.0}, "'method'"),
    ],
)
def test_calibrator_from_dict_explains_what_is_wrong(payload, message):
    with pytest.raises(ValueError, match=message):
        calibrator_from_dict(payload)


def test_reliability_table_lists_every_bin_and_counts_every_score():
    scores = np.array([0.0, 0.05, 0.5, 0.5, 0.99, 1.0])
    labels = np.array([0, 0, 1, 0, 1, 1])
    table = reliability_table(scores, labels, n_bins=10)
    assert list(table.columns) == ["bin", "lower", "upper", "count", "mean_score", "frac_positive"]
    assert len(table) == 10
    assert table["count"].sum() == scores.size
    last = table.iloc[-1]
    assert last["count"] == 2  # 0.99 and 1.0 both land in [0.9, 1.0]
    assert last["frac_positive"] == 1.0
    assert table.loc[table["count"] == 0, "mean_score"].isna().all()
    middle = table.iloc[5]
    assert middle["mean_score"] == 0.5 and middle["frac_positive"] == 0.5


def test_applying_a_calibrator_imports_neither_pandas_nor_sklearn():
    code = (
        "import sys, numpy as np\n"
        "from ipguard.evaluation.calibration import calibrator_from_dict\n"
        "from ipguard.evaluation.policy import Policy\n"
        "c = calibrator_from_dict({'method': 'isotonic', 'x': [0.0, 1.0], 'y': [0.0, 1.0]})\n"
        "Policy(0.9, 0.1).decide(c(np.array([0.5])))\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'scipy', 'matplotlib', 'torch')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
