"""Tests for xentlab.atlas: the registry, the float64 oracle, every measurement, the guide."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from xentlab import atlas
from xentlab.atlas import (
    ENTRY_POINTS,
    GUIDE_ENTRIES,
    KERAS_EPSILON,
    LABEL_FORMATS,
    Atlas,
    decision_guide,
    entry,
    measure,
    one,
    oracle,
    select,
)
from xentlab.losses import reference_softmax_cross_entropy

# One full measure() (about 7 s on 2 cores) is shared by the tests that need it; the rest are small.

SPARSE = atlas.SPARSE
SOFTMAX = atlas.SOFTMAX
SIGMOID = atlas.SIGMOID
KERAS_SPARSE = atlas.KERAS_SPARSE
CAP = -math.log(KERAS_EPSILON)  # 16.118095...
ON_GPU = bool(tf.config.list_physical_devices("GPU"))

PROBABILITY_CAPPED = [
    "keras.losses.CategoricalCrossentropy(from_logits=False)",
    "keras.losses.SparseCategoricalCrossentropy(from_logits=False)",
    "keras.ops.categorical_crossentropy(target, output, from_logits=False)",
    "keras.ops.sparse_categorical_crossentropy(target, output, from_logits=False)",
]
FUSED = [SOFTMAX, SPARSE, "keras.losses.CategoricalCrossentropy(from_logits=True)", KERAS_SPARSE]


@pytest.fixture(scope="module")
def full() -> Atlas:
    """One full ``measure()`` shared by the moderate tests."""
    return measure()


# -------------------------------------------------------------------------------- registry


def test_registry_has_every_entry_point_of_the_spec():
    names = [e.name for e in ENTRY_POINTS]
    assert len(names) == len(set(names))
    for prefix in ["tf.nn.softmax_cross_entropy_with_logits(",
                   "tf.nn.sparse_softmax_cross_entropy_with_logits(",
                   "tf.nn.sigmoid_cross_entropy_with_logits(",
                   "tf.nn.weighted_cross_entropy_with_logits(", "tf.nn.compute_average_loss(",
                   "tf.nn.sampled_softmax_loss("]:
        assert sum(n.startswith(prefix) for n in names) == 1, prefix
    for cls in ["CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
                "CategoricalFocalCrossentropy", "BinaryFocalCrossentropy"]:
        for fl in (True, False):
            entry(f"keras.losses.{cls}(from_logits={fl})")
    for cls in ["CategoricalCrossentropy", "BinaryCrossentropy", "CategoricalFocalCrossentropy",
                "BinaryFocalCrossentropy"]:
        assert entry(f"keras.losses.{cls}(from_logits=True, label_smoothing=0.1)").smoothing == 0.1
    entry("keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)")
    for op in ["categorical_crossentropy", "sparse_categorical_crossentropy",
               "binary_crossentropy"]:
        for fl in (True, False):
            entry(f"keras.ops.{op}(target, output, from_logits={fl})")
    for e in ENTRY_POINTS:
        assert e.expects in ("logits", "probabilities")
        assert e.family in ("softmax", "sparse", "sigmoid")
        assert e.labels in LABEL_FORMATS
        assert (e.expects == "logits") == ("from_logits=False" not in e.name)
    assert set(GUIDE_ENTRIES) <= set(names)
    with pytest.raises(KeyError):
        entry("tf.nn.no_such_loss")


# -------------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("name", [
    SOFTMAX, SIGMOID, atlas.AVERAGE, atlas.KERAS_CCE_SMOOTH, atlas.KERAS_FOCAL,
    "keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)",
    "keras.losses.BinaryFocalCrossentropy(from_logits=True)",
    "keras.losses.CategoricalFocalCrossentropy(from_logits=True, label_smoothing=0.1)",
])
def test_oracle_gradient_matches_central_differences(name, rng):
    e = entry(name)
    z = rng.normal(0.0, 2.0, (3, 4))
    t = rng.dirichlet(np.ones(4), 3) if e.family != "sigmoid" else rng.uniform(0, 1, (3, 4))
    _, grad = oracle(e, t, z)
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        numeric[idx] = (np.sum(oracle(e, t, zp)[0]) - np.sum(oracle(e, t, zm)[0])) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_oracle_agrees_with_the_package_reference_and_keeps_extreme_logits_exact(rng):
    z = rng.normal(0.0, 3.0, (5, 6))
    t = rng.dirichlet(np.ones(6), 5)
    value, _ = oracle(entry(SOFTMAX), t, z)
    np.testing.assert_allclose(value, reference_softmax_cross_entropy(t, z), rtol=1e-12)
    value, grad = oracle(entry(SOFTMAX), [[1.0, 0.0]], [[0.0, 1000.0]])
    assert value[0] == 1000.0 and np.array_equal(grad, [[-1.0, 1.0]])


# -------------------------------------------------------------------------------- label formats


@pytest.fixture(scope="module")
def formats() -> list[dict]:
    names = [SOFTMAX, SPARSE, SIGMOID, KERAS_SPARSE, atlas.KERAS_CCE_SMOOTH,
             "keras.losses.CategoricalFocalCrossentropy(from_logits=True)"]
    return atlas.label_formats(names)


def test_sparse_label_formats(formats):
    assert one(formats, entry=SPARSE, format="int [B]")["matches_oracle"] is True
    b1 = one(formats, entry=SPARSE, format="int [B,1]")
    assert not b1["accepted"] and b1["error"] == "ValueError"
    keras_b1 = one(formats, entry=KERAS_SPARSE, format="int [B,1]")
    assert keras_b1["accepted"] and keras_b1["matches_oracle"] and keras_b1["shape"] == "[8]"
    for fmt in ("one-hot [B,C]", "soft [B,C]", "multi-hot [B,C]"):
        assert not one(formats, entry=SPARSE, format=fmt)["accepted"]


def test_softmax_broadcasts_integer_column_labels_silently(formats):
    """``[B,1]`` class indices reach the fused kernel, which broadcasts them over the classes:
    the loss is ``-index * sum(log_softmax)``, not the one-hot loss."""
    r = one(formats, entry=SOFTMAX, format="int [B,1]")
    assert r["accepted"] and r["shape"] == "[8]" and r["matches_oracle"] is False
    rng = np.random.default_rng(0)  # label_formats' own draws, in its order
    z = rng.normal(0.0, 2.0, (8, 5)).astype(np.float32).astype(np.float64)
    index = atlas.make_labels(8, 5, rng).index
    value = atlas.entry(SOFTMAX).fn(tf.constant(index[:, None]), tf.constant(z, tf.float32))
    shifted = z - z.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    np.testing.assert_allclose(value.numpy(), -index * log_p.sum(-1), rtol=1e-5)
    assert not one(formats, entry=SOFTMAX, format="int [B]")["accepted"]


def test_multi_hot_labels_fit_sigmoid_not_softmax(formats):
    assert one(formats, entry=SIGMOID, format="multi-hot [B,C]")["matches_oracle"] is True
    soft = one(formats, entry=SOFTMAX, format="multi-hot [B,C]")
    assert soft["accepted"] and soft["matches_oracle"] is False and soft["max_abs_error"] > 0.1
    assert one(formats, entry=SOFTMAX, format="soft [B,C]")["matches_oracle"] is True


def test_label_smoothing_is_in_the_oracle(formats):
    r = one(formats, entry=atlas.KERAS_CCE_SMOOTH, format="one-hot [B,C]")
    assert r["matches_oracle"] is True
    unsmoothed = one(formats, entry=SOFTMAX, format="one-hot [B,C]")
    assert unsmoothed["matches_oracle"] is True
    e = entry(atlas.KERAS_CCE_SMOOTH)
    t, z = np.eye(3)[[0]], np.array([[0.0, 5.0, 1.0]])
    assert abs(oracle(e, t, z)[0][0] - oracle(entry(SOFTMAX), t, z)[0][0]) > 0.1


def test_focal_loss_broadcasts_integer_column_labels_silently(formats):
    r = one(formats, entry="keras.losses.CategoricalFocalCrossentropy(from_logits=True)",
            format="int [B,1]")
    assert r["accepted"] and r["matches_oracle"] is False


# -------------------------------------------------------------------------------- accuracy


@pytest.fixture(scope="module")
def acc() -> list[dict]:
    names = [SOFTMAX, SPARSE, SIGMOID, atlas.WEIGHTED, atlas.MANUAL, atlas.KERAS_FOCAL,
             atlas.KERAS_CCE, atlas.KERAS_CCE_KERAS_SOFTMAX, atlas.OPS_BCE_PROBS,
             *PROBABILITY_CAPPED]
    return atlas.extremes(names)


@pytest.mark.parametrize("name", PROBABILITY_CAPPED)
def test_keras_probabilities_cap_at_minus_log_epsilon_with_zero_gradient(acc, name):
    r = one(acc, entry=name, row="gap 100", dtype="float32")
    assert r["value"] == pytest.approx(CAP, abs=1e-4)  # 16.118, not 100
    assert r["oracle"] == pytest.approx(100.0)
    assert r["grad_max_abs"] == 0.0 and r["oracle_grad_max_abs"] == pytest.approx(1.0)
    moderate_row = one(acc, entry=name, row="moderate", dtype="float32")
    assert moderate_row["rel_error"] < 1e-5


@pytest.mark.parametrize("name", [SOFTMAX, SPARSE])
def test_fused_tf_nn_ops_are_exact_at_gap_1000_in_float32(acc, name):
    r = one(acc, entry=name, row="gap 1000", dtype="float32")
    assert r["value_finite"] and r["grad_finite"]
    assert r["rel_error"] < 1e-6 and r["grad_abs_error"] < 1e-6
    assert r["result_dtype"] == "float32"


def test_result_dtypes_in_float16(acc):
    """Keras' Loss objects cast to floatx; tf.nn ops and keras.ops keep float16."""
    assert one(acc, entry=SOFTMAX, row="gap 1000", dtype="float16")["result_dtype"] == "float16"
    assert one(acc, entry=atlas.KERAS_CCE, row="gap 1000",
               dtype="float16")["result_dtype"] == "float32"
    ops = one(acc, entry=PROBABILITY_CAPPED[2], row="gap 100", dtype="float16")
    assert ops["result_dtype"] == "float16" and ops["value"] < CAP - 0.1  # 15.945: float16 clip
    bce = one(acc, entry=atlas.OPS_BCE_PROBS, row="gap 100", dtype="float16")
    assert not bce["value_finite"] and not bce["grad_finite"]  # 1 - 1e-7 rounds to 1


def test_keras_softmax_output_carries_its_logits_until_a_cast(acc):
    assert one(acc, entry=atlas.KERAS_CCE_KERAS_SOFTMAX, row="gap 100",
               dtype="float32")["value"] == pytest.approx(100.0)
    assert one(acc, entry=atlas.KERAS_CCE_KERAS_SOFTMAX, row="gap 100",
               dtype="float16")["value"] == pytest.approx(CAP, abs=1e-4)


def test_manual_log_softmax_fails_and_focal_clips(acc):
    m = one(acc, entry=atlas.MANUAL, row="gap 100", dtype="float32")
    assert not m["value_finite"] and not m["grad_finite"]
    f = one(acc, entry=atlas.KERAS_FOCAL, row="gap 100", dtype="float32")
    assert f["value"] == pytest.approx(atlas.FOCAL_ALPHA * CAP, abs=1e-4)
    assert f["grad_max_abs"] == 0.0 and f["oracle"] == pytest.approx(25.0)


def test_weighted_cross_entropy_gradient_at_zero_logits(acc):
    w = one(acc, entry=atlas.WEIGHTED, row="zero logits", dtype="float32")
    s = one(acc, entry=SIGMOID, row="zero logits", dtype="float32")
    assert w["rel_error"] < 1e-6  # the value is right
    assert w["grad_abs_error"] == pytest.approx(0.5)  # d/dz at 0 is 1 - t instead of 0.5 - t
    assert s["grad_abs_error"] < 1e-6


def test_failed_calls_are_rows_not_exceptions():
    sampled = next(e for e in ENTRY_POINTS if e.name.startswith("tf.nn.sampled_softmax_loss"))
    rows = atlas.extremes([sampled], dtypes=["float16"])  # its sampler's float32 meets float16
    assert all(r["error"] == "InvalidArgumentError" and r["value"] is None for r in rows)


# -------------------------------------------------------------------------------- bad labels


def test_out_of_range_labels():
    before = tf_config.is_op_determinism_enabled()
    ignore = "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)"
    rows = atlas.bad_labels([SPARSE, SOFTMAX, ignore])
    assert tf_config.is_op_determinism_enabled() == before
    for case in ("label = C", "label = -1"):
        for mode in ("eager", "function"):
            r = one(rows, entry=SPARSE, case=case, mode=mode, determinism=False)
            if not ON_GPU:  # GPU kernels return NaN instead
                assert r["outcome"] == "raises" and r["error"] == "InvalidArgumentError"
                assert "outside the valid range" in r["message"]
            det = one(rows, entry=SPARSE, case=case, mode=mode, determinism=True)
            assert det["outcome"] in ("raises", "nan")
            if not ON_GPU:  # the composite's gather raises on CPU before its NaN where()
                assert det["outcome"] == "raises" and "is not in [0, 5)" in det["message"]
                assert "outside the valid range" not in det["message"]
            # tf.one_hot makes an out-of-range index an all-zero row: loss 0, silently
            dense = one(rows, entry=SOFTMAX, case=case, mode=mode, determinism=False)
            assert dense["outcome"] == "finite" and dense["value"] == 0.0
    ignored = one(rows, entry=ignore, case="label = -1", mode="eager", determinism=False)
    assert ignored["outcome"] == "finite" and ignored["value"] == 0.0
    nan = one(rows, entry=SOFTMAX, case="NaN label", mode="eager", determinism=False)
    assert nan["outcome"] == "nan"
    assert one(rows, entry=SPARSE, case="wrong rank", mode="eager",
               determinism=False)["error"] == "ValueError"


# -------------------------------------------------------------------------------- graphs


def test_graphs_fused_kernel_and_op_determinism(op_determinism):
    op_determinism(True)  # measurement sets both states itself and restores this one
    rows = atlas.graphs([SPARSE, SOFTMAX, atlas.KERAS_CCE, KERAS_SPARSE, atlas.KERAS_CCE_PROBS,
                         atlas.KERAS_FOCAL, SIGMOID])
    assert tf_config.is_op_determinism_enabled()
    for name, kernel in [(SPARSE, "SparseSoftmaxCrossEntropyWithLogits"),
                         (SOFTMAX, "SoftmaxCrossEntropyWithLogits"),
                         (atlas.KERAS_CCE, "SoftmaxCrossEntropyWithLogits"),
                         (KERAS_SPARSE, "SparseSoftmaxCrossEntropyWithLogits")]:
        off = one(rows, entry=name, determinism=False)
        on = one(rows, entry=name, determinism=True)
        assert off["kernels"] == [kernel]
        assert on["fused_kernel"] is False and on["log_softmax"] is True
        assert on["value"] == pytest.approx(100.0) == off["value"]
    # Keras finds the logits behind tf.nn.softmax in a graph: no cap there.
    probs = one(rows, entry=atlas.KERAS_CCE_PROBS, determinism=False)
    assert probs["fused_kernel"] and probs["value"] == pytest.approx(100.0)
    focal = one(rows, entry=atlas.KERAS_FOCAL, determinism=False)
    assert not focal["fused_kernel"] and focal["value"] == pytest.approx(
        atlas.FOCAL_ALPHA * CAP, abs=1e-4)
    assert one(rows, entry=SIGMOID, determinism=False)["fused_kernel"] is False


# -------------------------------------------------------------------------------- reductions


def test_reductions_divisors():
    rows = atlas.reductions([atlas.AVERAGE, atlas.KERAS_CCE,
                             "keras.losses.SparseCategoricalCrossentropy(from_logits=True, "
                             "ignore_class=-1)"], batch=8, classes=5)
    by_call = {(r["entry"], r["call"]): r for r in rows}
    avg = {c: r for (n, c), r in by_call.items() if n == atlas.AVERAGE}
    assert avg["compute_average_loss(per_example [B])"]["divisor"] == pytest.approx(8)
    elementwise = avg["compute_average_loss(sigmoid CE [B,C])"]
    assert elementwise["divisor"] == pytest.approx(8) and elementwise["elements"] == 40
    assert avg["compute_average_loss(per_example [B], global_batch_size=32)"][
        "divisor"] == pytest.approx(32)
    cce = by_call[(atlas.KERAS_CCE, "default reduction (sum_over_batch_size)")]
    assert cce["per_example_shape"] == "[8]" and cce["reduced_shape"] == "[]"
    assert cce["divisor"] == pytest.approx(8)
    ignored = [r for r in rows if r["call"] == "default reduction, 3 labels = ignore_class"]
    assert ignored[0]["divisor"] == pytest.approx(5)  # the 3 ignored leave the mean


# -------------------------------------------------------------------------------- sampled


def test_sampled_softmax_differs_from_full_and_is_random_unless_reseeded():
    rows = atlas.sampled(batch=8, classes=10)
    assert all(r["num_sampled"] == 5 and r["rel_diff"] > 1e-3 for r in rows)
    unseeded = [r["value"] for r in select(rows, setting="seed=None")]
    op_seed = [r["value"] for r in select(rows, setting="seed=7")]
    reset = [r["value"] for r in rows if r["setting"].startswith("tf.random.set_seed")]
    assert len(set(unseeded)) > 1 and len(set(op_seed)) > 1 and len(set(reset)) == 1


# -------------------------------------------------------------------------------- rendering


def test_table_renders_markdown():
    rows = [{"a": 1.23456, "b": True, "c": None, "d": ["x", "y"], "e": "p|q"}]
    text = atlas.table(rows)
    assert text.splitlines() == ["| a | b | c | d | e |", "|---|---|---|---|---|",
                                 "| 1.235 | yes |  | x, y | p\\|q |"]
    assert atlas.table([]) == "(no rows)\n"


def test_measure_rejects_equal_batch_and_classes():
    with pytest.raises(ValueError, match="differ"):
        measure(batch=5, classes=5)


# -------------------------------------------------------------------------------- full atlas


def test_measure_covers_every_entry_point(full):
    names = [e.name for e in ENTRY_POINTS]
    assert [r["name"] for r in full.entries] == names
    n_rows = len(atlas.extreme_rows(5, 0))
    for name in names:
        assert len(select(full.label_formats, entry=name)) == len(LABEL_FORMATS)
        assert len(select(full.extremes, entry=name)) == len(atlas.DTYPES) * n_rows
        assert len(select(full.graphs, entry=name)) == 2
        assert select(full.bad_labels, entry=name)
    tables = atlas.tables(full)
    assert set(tables) == set(Atlas.SECTIONS)
    assert tables["extremes"].count("\n") == len(full.extremes) + 2
    assert full.settings["tensorflow"] == tf.__version__


def test_decision_guide_is_written_from_the_rows_and_deterministic(full):
    guide = decision_guide(full)
    integer_rule = next(ln for ln in guide.splitlines() if "Integer class labels" in ln)
    assert "sparse_softmax_cross_entropy_with_logits" in integer_rule
    assert "16.118" in guide and "exactly 0" in guide
    assert "not measured" not in guide and "NaN)" not in guide
    for heading in ["One-hot or soft labels", "Multi-hot labels", "You only have probabilities",
                    "Mixed precision", "Avoid"]:
        assert heading in guide
    # The same guide from a second run that measures only what it quotes.
    assert decision_guide(measure(entries=GUIDE_ENTRIES)) == guide
    # Its numbers come from the rows: change one and the text follows.
    edited = copy.deepcopy(full)
    one(edited.extremes, entry=atlas.KERAS_CCE_PROBS, row="gap 100",
        dtype="float32")["value"] = 12.3456
    assert "12.346" in decision_guide(edited) and "12.346" not in guide


def test_decision_table_is_the_guide_in_four_rows_and_follows_the_rows(full):
    table = atlas.decision_table(full)
    lines = table.splitlines()
    assert lines[0] == "| labels | the model outputs | call | why (measured) |" and len(lines) == 6
    assert SPARSE in lines[2] and "exact at a logit gap of 1000" in lines[2]
    assert "one-hot row" in lines[5] and "16.118" in lines[5] and "gradient exactly 0" in lines[5]
    edited = copy.deepcopy(full)
    one(edited.extremes, entry=atlas.KERAS_CCE_PROBS, row="gap 100", dtype="float32")["value"] = 12.3456
    assert "12.346" in atlas.decision_table(edited)
    # a rule whose rows were not measured is left out
    edited.extremes = [r for r in edited.extremes if r["entry"] != atlas.KERAS_CCE_PROBS]
    assert len(atlas.decision_table(edited).splitlines()) == 5


def test_matrix_pivots_rows_and_cells_say_one_word():
    rows = [{"entry": "a", "case": "x", "outcome": "raises", "error": "ValueError", "value": None},
            {"entry": "a", "case": "y", "outcome": "finite", "error": None, "value": 0.0},
            {"entry": "b", "case": "y", "outcome": "nan", "error": None, "value": math.nan}]
    text = atlas.matrix(rows, "entry", "case", atlas.bad_label_cell)
    assert text.splitlines() == ["| entry | x | y |", "|---|---|---|",
                                 "| a | raises ValueError | silent 0.000 |", "| b |  | nan |"]
    ok = {"error": None, "value_finite": True, "value": 1.0, "oracle": 1.0, "rel_error": 0.0,
          "grad_finite": True, "grad_abs_error": 0.0, "grad_max_abs": 0.5, "oracle_grad_max_abs": 0.5}
    assert atlas.extremes_cell(ok) == "ok"
    capped = {**ok, "value": CAP, "oracle": 100.0, "rel_error": 0.84, "grad_max_abs": 0.0}
    assert atlas.extremes_cell(capped) == "16.12 (exact 100); grad 0"
    rough = {**ok, "value": 1.003, "rel_error": 0.003}  # bfloat16 rounding, beyond float32's tolerance
    assert atlas.extremes_cell({**rough, "dtype": "bfloat16"}) == "ok"
    assert atlas.extremes_cell({**rough, "dtype": "float32"}) == "1.003 (exact 1)"
    assert atlas.label_format_cell({"accepted": True, "matches_oracle": False, "max_abs_error": 3.7123}) == "differs by 3.71"
    assert atlas.graph_cell({"error": None, "fused_kernel": True, "n_ops": 10}) == "fused kernel (10 ops)"


def test_guide_number_formats_are_stable():
    assert atlas.fmt_small(3.2e-8) == "< 1e-6"
    assert atlas.fmt_small(0.00123) == "0.001"
    assert atlas.fmt_small(0.0) == "0"
    assert atlas.fmt_small(math.inf) == "inf" and atlas.fmt_small(math.nan) == "NaN"
    assert atlas.fmt_value(CAP) == "16.118" and atlas.fmt_value(-math.inf) == "-inf"


def test_modes_show_grapplers_log_softmax_rewrite_only_in_a_forward_graph():
    rows = {r["mode"]: r for r in atlas.modes(gap=100.0)}
    assert list(rows) == list(atlas.MODES)
    eager, forward, both = (rows[m] for m in atlas.MODES)
    assert not eager["value_finite"] and not eager["grad_finite"] and eager["log_softmax"] is None
    assert forward["value"] == forward["oracle"] == 100.0 and forward["log_softmax"]
    assert forward["grad_finite"] is None and "Softmax" not in forward["op_types"]
    assert not both["value_finite"] and not both["grad_finite"] and not both["log_softmax"]
    assert {"Softmax", "Log"} <= set(both["op_types"])
