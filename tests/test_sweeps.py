"""Tests for xentlab.sweeps (logit-gap and sigmoid sweeps of notebooks 02 and 04)."""

import numpy as np
import pytest

from xentlab import sweeps


def test_gap_losses_manual_turns_inf_where_fused_stays_exact():
    deltas = np.array([0.0, 10.0, 200.0])
    exact = sweeps.exact_gap_loss(deltas)
    fused = sweeps.gap_losses(deltas, "float32", "fused")
    manual = sweeps.gap_losses(deltas, "float32", "manual")
    np.testing.assert_allclose(fused, exact, rtol=1e-6)
    assert np.isfinite(manual[:2]).all() and np.isinf(manual[2])


def test_gap_gradients_shape_and_value():
    g = sweeps.gap_gradients(np.array([0.0, 5.0]), "float32", "fused")
    assert g.shape == (2, 2)
    np.testing.assert_allclose(g[:, 0], -1 / (1 + np.exp(-np.array([0.0, 5.0]))), rtol=1e-6)


def test_first_inf_gap_between_the_float32_underflow_bounds():
    gap = sweeps.first_inf_gap("float32", "manual")
    # e^-Δ is 0 at the latest below the smallest subnormal (149 ln 2 ≈ 103.3) and no earlier than
    # where flush-to-zero would start (125 ln 2 ≈ 86.6)
    assert 125 * np.log(2) - 0.01 <= gap <= 149 * np.log(2) + 0.01
    assert sweeps.first_inf_gap("float32", "fused") is None


def test_ulp_distance_counts_representable_floats():
    one = np.float32(1.0)
    assert sweeps.ulp_distance(np.array([one]), np.array([np.nextafter(one, np.float32(2))]))[0] == 1
    assert sweeps.ulp_distance(np.array([-0.0], np.float32), np.array([0.0], np.float32))[0] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_sweep_fused_is_exact_and_manual_fails_far_out(dtype):
    xs = np.linspace(-200.0, 200.0, 41)
    for label in (0.0, 1.0):
        r = sweeps.sigmoid_sweep(xs, label, dtype)
        assert set(r) == {"exact", "fused", "stable", "manual"}
        np.testing.assert_allclose(r["fused"], r["exact"], rtol=1e-6, atol=1e-30)
        assert not np.isfinite(r["manual"]).all()


def test_nonfinite_edges_reports_each_side_and_kind():
    xs = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    values = np.array([np.nan, np.nan, 1.0, 0.0, 1.0, np.inf, np.nan])
    assert sweeps.nonfinite_edges(xs, values) == [(-2.0, "NaN"), (2.0, "inf")]
    assert sweeps.nonfinite_edges(xs, np.zeros(7)) == []


def test_gap_losses_or_none_and_first_where(monkeypatch):
    import tensorflow as tf

    d = np.array([0.0, 100.0])
    np.testing.assert_array_equal(sweeps.gap_losses_or_none(d, "float32", "fused"),
                                  sweeps.gap_losses(d, "float32", "fused"))

    def no_kernel(*args, **kwargs):
        raise tf.errors.NotFoundError(None, None, "no kernel registered")

    monkeypatch.setattr(sweeps, "gap_losses", no_kernel)
    assert sweeps.gap_losses_or_none(d, "float16", "fused") is None
    assert sweeps.first_where(np.array([1.0, 2.0, 3.0]), [False, True, True]) == 2.0
    assert sweeps.first_where(np.array([1.0, 2.0]), [False, False]) is None
