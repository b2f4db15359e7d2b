"""The decision guide, written from the measured rows of an :class:`~xentlab.atlas.measure.Atlas`:
the numbers and the choice of sentence come from the rows, the wording from the templates of
:mod:`xentlab.atlas.guide_text`."""

from __future__ import annotations

import math

from xentlab.atlas import guide_text as T
from xentlab.atlas.backends import FIT_GAP, differences
from xentlab.atlas.measure import (
    MODES,
    Atlas,
)
from xentlab.atlas.registry import (
    AVERAGE,
    GAPS,
    KERAS_BCE,
    KERAS_CCE,
    KERAS_CCE_KERAS_SOFTMAX,
    KERAS_CCE_PROBS,
    KERAS_CCE_SMOOTH,
    KERAS_FOCAL,
    KERAS_SPARSE,
    MANUAL,
    OPS_BCE_PROBS,
    OPS_CCE_PROBS,
    SAMPLED_OP_SEED,
    SIGMOID,
    SOFTMAX,
    SPARSE,
    WEIGHTED,
    Row,
)
from xentlab.atlas.render import (
    fmt_small,
    fmt_value,
    select,
)

#: The entry points :func:`decision_guide` quotes: ``measure(entries=GUIDE_ENTRIES)`` gives the
#: same guide as a full :func:`measure`.
GUIDE_ENTRIES: tuple[str, ...] = (
    SPARSE, SOFTMAX, SIGMOID, WEIGHTED, AVERAGE, KERAS_SPARSE, KERAS_CCE, KERAS_CCE_SMOOTH,
    KERAS_CCE_PROBS, KERAS_CCE_KERAS_SOFTMAX, KERAS_BCE, KERAS_FOCAL, OPS_CCE_PROBS,
    OPS_BCE_PROBS, MANUAL,
)


def _acc(atlas: Atlas, name: str, row: str, dtype: str = "float32") -> Row | None:
    """The accuracy row, or None when it was not measured or the call raised."""
    found = [r for r in select(atlas.extremes, entry=name, row=row, dtype=dtype)
             if not r.get("error")]
    return found[0] if found else None


def _graph(atlas: Atlas, name: str, determinism: bool = False) -> Row | None:
    found = select(atlas.graphs, entry=name, determinism=determinism)
    return found[0] if found and found[0]["op_types"] is not None else None


def _format_text(atlas: Atlas, name: str, fmt: str) -> str:
    """What ``name`` does with labels in ``fmt``, as a verb phrase."""
    found = select(atlas.label_formats, entry=name, format=fmt)
    if not found:
        return T.FORMAT_NOT_MEASURED
    r = found[0]
    if not r["accepted"]:
        return T.FORMAT_RAISES.format(error=r["error"])
    if r["matches_oracle"]:
        return T.FORMAT_EXACT.format(error=fmt_small(r["max_abs_error"]))
    if r["max_abs_error"] is None:
        return T.FORMAT_WRONG_SHAPE.format(shape=r["shape"], expected_shape=r["expected_shape"])
    return T.FORMAT_DIFFERS.format(error=fmt_value(r["max_abs_error"]))


def _exact_text(r: Row | None) -> str:
    if r is None:
        return T.EXACT_NOT_MEASURED
    return T.EXACT.format(rel_error=fmt_small(r["rel_error"]),
                          grad=T.GRAD_FINITE if r["grad_finite"] else T.GRAD_NOT_FINITE,
                          grad_error=fmt_small(r["grad_abs_error"]))


def _kernel_text(atlas: Atlas, name: str) -> str:
    g = _graph(atlas, name)
    if g is None:
        return ""
    return T.KERNEL_SAME.format(kernels=", ".join(g["kernels"])) if g["fused_kernel"] else T.KERNEL_NONE


def _bad_text(atlas: Atlas, name: str, mode: str, determinism: bool) -> str | None:
    found = select(atlas.bad_labels, entry=name, case="label = C", mode=mode,
                   determinism=determinism)
    if not found:
        return None
    r = found[0]
    if r["outcome"] == "raises":
        template = T.BAD_RAISES_WITH_MESSAGE if determinism else T.BAD_RAISES
        return template.format(error=r["error"], message=r["message"])
    if r["outcome"] in ("nan", "inf"):
        return T.BAD_NONFINITE.format(outcome="NaN" if r["outcome"] == "nan" else "inf")
    return T.BAD_SILENT.format(value=fmt_value(r["value"]))


def _rule_integer(atlas: Atlas, gap: str, gap_text: str) -> str:
    text = T.INTEGER.format(
        sparse=SPARSE, keras_sparse=KERAS_SPARSE, keras_kernel=_kernel_text(atlas, KERAS_SPARSE),
        gap_text=gap_text, exact=_exact_text(_acc(atlas, SPARSE, gap)),
        column_op=_format_text(atlas, SPARSE, "int [B,1]"),
        column_keras=_format_text(atlas, KERAS_SPARSE, "int [B,1]"))
    eager, func = _bad_text(atlas, SPARSE, "eager", False), _bad_text(atlas, SPARSE, "function", False)
    det = _bad_text(atlas, SPARSE, "eager", True)
    if eager and func:
        both = (T.INTEGER_BAD_SAME if eager == func else T.INTEGER_BAD_DIFFER).format(
            eager=eager, function=func)
        text += T.INTEGER_BAD.format(both=both)
        text += T.INTEGER_BAD_DETERMINISM.format(determinism=det) if det else "."
    return text


def _rule_dense(atlas: Atlas, gap: str, gap_text: str) -> str:
    text = T.DENSE.format(softmax=SOFTMAX, keras_cce=KERAS_CCE,
                          keras_kernel=_kernel_text(atlas, KERAS_CCE), gap_text=gap_text,
                          exact=_exact_text(_acc(atlas, SOFTMAX, gap)),
                          soft=_format_text(atlas, SOFTMAX, "soft [B,C]"))
    smooth = _acc(atlas, KERAS_CCE_SMOOTH, gap)
    if smooth is not None:
        text += T.DENSE_SMOOTHING.format(keras_smooth=KERAS_CCE_SMOOTH,
                                         rel_error=fmt_small(smooth["rel_error"]))
    return text + T.DENSE_INDICES.format(index=_format_text(atlas, SOFTMAX, "int [B]"),
                                         column=_format_text(atlas, SOFTMAX, "int [B,1]"))


def _rule_multilabel(atlas: Atlas, gap: str, gap_text: str) -> str:
    return T.MULTILABEL.format(
        sigmoid=SIGMOID, keras_bce=KERAS_BCE, multi_hot=_format_text(atlas, SIGMOID, "multi-hot [B,C]"),
        gap_text=gap_text, exact=_exact_text(_acc(atlas, SIGMOID, gap)),
        softmax_multi_hot=_format_text(atlas, SOFTMAX, "multi-hot [B,C]"))


def _rule_probabilities(atlas: Atlas) -> str:
    r = _acc(atlas, KERAS_CCE_PROBS, "gap 100")
    if r is None:
        return ""
    grad = T.GRAD_ZERO if r["grad_max_abs"] == 0 else T.GRAD_AT_MOST.format(grad=fmt_small(r["grad_max_abs"]))
    text = T.PROBABILITIES.format(keras_probs=KERAS_CCE_PROBS, value=fmt_value(r["value"]),
                                  oracle=fmt_value(r["oracle"]), grad=grad)
    k = _acc(atlas, KERAS_CCE_KERAS_SOFTMAX, "gap 100")
    if k is not None:
        text += T.PROBABILITIES_KERAS_SOFTMAX.format(value=fmt_value(k["value"]))
    g = _graph(atlas, KERAS_CCE_PROBS)
    if g is not None and g["fused_kernel"]:
        text += T.PROBABILITIES_GRAPH.format(kernels=", ".join(g["kernels"]), value=fmt_value(g["value"]))
    return text


def _backend_row(atlas: Atlas, backend: str, entry: str, mode: str) -> Row | None:
    """The float32 backend row of ``entry`` in ``mode`` at the backends' gap (or ``None``)."""
    found = select(atlas.backends, backend=backend, entry=entry, mode=mode, dtype="float32", gap=FIT_GAP)
    return found[0] if found else None


def _num(v: float | str | None) -> float | None:
    """A backend row's value (non-finite values are stored as strings)."""
    return float(v) if isinstance(v, str) else v


def _bad_backend(r: Row | None) -> str:
    if r is None:
        return T.EXACT_NOT_MEASURED
    if r["value"] is None:
        return T.BAD_RAISES.format(error=(r.get("error") or "").split(":")[0])
    v = _num(r["value"])
    return T.BAD_SILENT.format(value=fmt_value(v)) if v is not None and math.isfinite(v) else \
        T.BAD_NONFINITE.format(outcome=fmt_value(v))


def _rule_backends(atlas: Atlas) -> str:
    """Where Keras' JAX backend differs from its TensorFlow backend (:mod:`xentlab.atlas.backends`)."""
    modes = [(_backend_row(atlas, "tensorflow", KERAS_CCE_PROBS, m), _backend_row(atlas, "jax", KERAS_CCE_PROBS, m))
             for m in ("eager", "compiled", "Model.fit")]
    if any(t is None or j is None or t["value"] is None or j["value"] is None for t, j in modes):
        return ""
    tf_row, jax_row = modes[0]
    if not all(math.isclose(_num(t["value"]), _num(tf_row["value"]), rel_tol=1e-5)
               and math.isclose(_num(j["value"]), _num(jax_row["value"]), rel_tol=1e-5) for t, j in modes):
        return ""  # the sentence says "eagerly, compiled and in Model.fit": only when all agree
    differ = differences(atlas.backends)
    total = len({r["entry"] for r in atlas.backends})
    tf_bad, jax_bad = (_backend_row(atlas, b, KERAS_SPARSE, "label = C") for b in ("tensorflow", "jax"))
    bad = T.BACKENDS_BAD.format(tf_bad=_bad_backend(tf_bad), jax_bad=_bad_backend(jax_bad)) \
        if tf_bad or jax_bad else ""
    logits_differ = [e for e in differ if "from_logits=True" in e]
    same = T.BACKENDS_SAME if not logits_differ else T.BACKENDS_SAME_EXCEPT.format(
        calls=", ".join(f"`{e}`" for e in logits_differ))
    grad = T.GRAD_ZERO if jax_row["grad_max_abs"] == 0 else T.GRAD_AT_MOST.format(grad=fmt_small(jax_row["grad_max_abs"]))
    return T.BACKENDS.format(cce=KERAS_CCE_PROBS, gap=FIT_GAP, tf_value=fmt_value(_num(tf_row["value"])),
                             exact=fmt_value(tf_row["oracle"]), jax_value=fmt_value(_num(jax_row["value"])),
                             jax_grad=grad, count=len(differ), total=total,
                             calls=", ".join(f"`{e}`" for e in differ), bad=bad, same=same)


def _rule_dtype(atlas: Atlas, gap: str, gap_text: str) -> str:
    if "float16" not in atlas.settings.get("dtypes", []):
        return ""
    tfnn, keras_loss = _acc(atlas, SOFTMAX, gap, "float16"), _acc(atlas, KERAS_CCE, gap, "float16")
    if tfnn is None or keras_loss is None:
        return ""
    text = T.DTYPE.format(softmax=SOFTMAX, tfnn_dtype=tfnn["result_dtype"],
                          rel_error=fmt_small(tfnn["rel_error"]), gap_text=gap_text,
                          keras_cce=KERAS_CCE, keras_dtype=keras_loss["result_dtype"])
    k = _acc(atlas, KERAS_CCE_KERAS_SOFTMAX, "gap 100", "float16")
    if k is not None and k["value"] != k["oracle"]:
        text += T.DTYPE_KERAS_SOFTMAX.format(value=fmt_value(k["value"]))
    ops_cce = _acc(atlas, OPS_CCE_PROBS, "gap 100", "float16")
    ops_bce = _acc(atlas, OPS_BCE_PROBS, "gap 100", "float16")
    if ops_cce is not None:
        text += T.DTYPE_OPS.format(value=fmt_value(ops_cce["value"]))
        if ops_bce is not None and not ops_bce["value_finite"]:
            text += T.DTYPE_OPS_BCE.format(ops_bce=OPS_BCE_PROBS, value=fmt_value(ops_bce["value"]))
        text += "."
    return text


def _avoid_manual(atlas: Atlas) -> str | None:
    m = _acc(atlas, MANUAL, "gap 100")
    if m is None or (m["value_finite"] and m["grad_finite"]):
        return None
    text = T.AVOID_MANUAL.format(manual=MANUAL, value=fmt_value(m["value"]),
                                 grad="finite" if m["grad_finite"] else "not finite")
    by_mode = {r["mode"]: r for r in atlas.modes}
    fwd, both = by_mode.get(MODES[1]), by_mode.get(MODES[2])
    if fwd is not None and both is not None:
        text += T.AVOID_MANUAL_MODES.format(
            forward=fmt_value(fwd["value"]), oracle=fmt_value(fwd["oracle"]),
            rewrite=T.AVOID_MANUAL_REWRITE if fwd["log_softmax"] else "",
            with_gradient=fmt_value(both["value"]),
            no_rewrite=T.AVOID_MANUAL_NO_REWRITE if not both["log_softmax"] else "")
    return text


def _avoid_sampled(rows: list[Row]) -> str | None:
    if not rows:
        return None
    unseeded = select(rows, setting="seed=None")
    op_seed = [r for r in rows if r["setting"] == f"seed={SAMPLED_OP_SEED}"]
    reset = [r for r in rows if r["setting"].startswith("tf.random.set_seed")]
    text = T.AVOID_SAMPLED.format(
        low=min(r["rel_diff"] for r in rows), high=max(r["rel_diff"] for r in rows),
        side="below" if all(r["value"] < r["full"] for r in rows) else "off", calls=len(rows),
        unseeded=len(unseeded), distinct=len({r["value"] for r in unseeded}))
    if len({r["value"] for r in op_seed}) > 1:
        text += T.AVOID_SAMPLED_OP_SEED
    if len({r["value"] for r in reset}) == 1:
        text += T.AVOID_SAMPLED_RESET
    return text


def _avoid_items(atlas: Atlas) -> list[str]:
    items = [_avoid_manual(atlas)]
    f = _acc(atlas, KERAS_FOCAL, "gap 100")
    if f is not None and f["rel_error"] > 0.5:
        items.append(T.AVOID_FOCAL.format(
            focal=KERAS_FOCAL, value=fmt_value(f["value"]), oracle=fmt_value(f["oracle"]),
            grad=T.GRAD_ZERO if f["grad_max_abs"] == 0 else fmt_small(f["grad_max_abs"])))
    w, s = _acc(atlas, WEIGHTED, "zero logits"), _acc(atlas, SIGMOID, "zero logits")
    if w is not None and s is not None and w["grad_abs_error"] > 0.1:
        items.append(T.AVOID_WEIGHTED.format(weighted=WEIGHTED, sigmoid=SIGMOID,
                                             weighted_error=fmt_small(w["grad_abs_error"]),
                                             sigmoid_error=fmt_small(s["grad_abs_error"])))
    items.append(_avoid_sampled(atlas.sampled))
    red = [r for r in atlas.reductions if r["call"] == "compute_average_loss(sigmoid CE [B,C])"]
    if red:
        items.append(T.AVOID_AVERAGE.format(shape=red[0]["per_example_shape"],
                                            divisor=red[0]["divisor"], elements=red[0]["elements"]))
    on, off = _graph(atlas, SPARSE, True), _graph(atlas, SPARSE, False)
    if on is not None and off is not None and off["fused_kernel"] and not on["fused_kernel"]:
        items.append(T.AVOID_DETERMINISM.format(sparse=SPARSE, on=on["n_ops"], off=off["n_ops"]))
    return [i for i in items if i]


def decision_guide(atlas: Atlas) -> str:
    """A markdown "which cross-entropy should I call?" guide written from ``atlas``' rows.

    Every number in it is formatted from a measured row (errors below 1e-6 print as
    ``"< 1e-6"``, others with one significant digit, loss values with three decimals), so the
    text is the same for every run on one machine. Rules whose rows were not measured are left
    out; ``measure(entries=GUIDE_ENTRIES)`` measures all that it quotes. The wording is
    :mod:`xentlab.atlas.guide_text`'s.

    Returns:
        Markdown: a heading, one bullet per rule ("Labels like X, model output Y: call Z,
        because <measured reason>"), and an "Avoid" list.
    """
    measured = [g for g in GAPS if _acc(atlas, SPARSE, f"gap {g:g}") is not None]
    g = max(measured) if measured else max(GAPS)
    gap, gap_text = f"gap {g:g}", T.GAP.format(gap=g)
    rules = [_rule_integer(atlas, gap, gap_text), _rule_dense(atlas, gap, gap_text),
             _rule_multilabel(atlas, gap, gap_text), _rule_probabilities(atlas),
             _rule_dtype(atlas, gap, gap_text), _rule_backends(atlas)]
    avoid = _avoid_items(atlas)
    if avoid:
        rules.append(T.AVOID + "\n".join(T.AVOID_ITEM.format(item=i) for i in avoid))
    s = atlas.settings
    head = T.HEAD.format(tensorflow=s["tensorflow"], keras=s["keras"], classes=s["classes"],
                         batch=s["batch"], seed=s["seed"], sampled_classes=2 * s["classes"])
    return head + "\n".join(r for r in rules if r) + "\n"


def _or(*calls: str) -> str:
    return " or ".join(f"`{c}`" for c in calls)


def decision_table(atlas: Atlas) -> str:
    """The answer of :func:`decision_guide` as a short Markdown table (the README's): one row per
    label format and model output, the call, and one measured reason. Rows whose measurements are
    missing from ``atlas`` are left out."""
    measured = [g for g in GAPS if _acc(atlas, SPARSE, f"gap {g:g}") is not None]
    g = max(measured) if measured else max(GAPS)
    gap, gap_text = f"gap {g:g}", T.GAP.format(gap=g)

    def exact(name: str, template: str = T.TABLE_EXACT) -> str | None:
        r = _acc(atlas, name, gap)
        if r is None:
            return None
        return template.format(gap_text=gap_text, rel_error=fmt_small(r["rel_error"]),
                               grad=T.GRAD_FINITE if r["grad_finite"] else T.GRAD_NOT_FINITE)

    rows = [("integer `[B]`", "logits", _or(SPARSE, KERAS_SPARSE), exact(SPARSE)),
            ("one-hot or soft `[B,C]`", "logits", _or(SOFTMAX, KERAS_CCE), exact(SOFTMAX)),
            ("multi-hot `[B,C]`", "logits", _or(SIGMOID, KERAS_BCE), exact(SIGMOID, T.TABLE_INDEPENDENT))]
    p = _acc(atlas, KERAS_CCE_PROBS, "gap 100")
    if p is not None:
        grad = T.GRAD_ZERO if p["grad_max_abs"] == 0 else T.GRAD_AT_MOST.format(grad=fmt_small(p["grad_max_abs"]))
        rows.append(("one-hot `[B,C]`", "probabilities", T.TABLE_LOGITS_INSTEAD,
                     T.TABLE_PROBABILITIES.format(keras_probs=KERAS_CCE_PROBS, value=fmt_value(p["value"]),
                                                  oracle=fmt_value(p["oracle"]), grad=grad)))
    t, j = (_backend_row(atlas, b, KERAS_CCE_PROBS, "Model.fit") for b in ("tensorflow", "jax"))
    if t is not None and j is not None and t["value"] is not None and j["value"] is not None:
        grad = _backend_row(atlas, "jax", KERAS_CCE_PROBS, "eager")
        if grad is not None and grad["grad_max_abs"] is not None:
            rows.append(("one-hot `[B,C]`", "a Keras softmax (`Dense(C, activation=\"softmax\")`), on JAX",
                         T.TABLE_LOGITS_INSTEAD,
                         T.TABLE_BACKEND.format(jax_value=fmt_value(_num(j["value"])), tf_value=fmt_value(_num(t["value"])),
                                                exact=fmt_value(t["oracle"]), gap=FIT_GAP,
                                                grad=T.GRAD_ZERO if grad["grad_max_abs"] == 0
                                                else T.GRAD_AT_MOST.format(grad=fmt_small(grad["grad_max_abs"])))))
    return T.TABLE_HEAD + "".join(T.TABLE_ROW.format(labels=a, outputs=b, call=c, why=w)
                                  for a, b, c, w in rows if w is not None)
