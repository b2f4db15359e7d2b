"""The decision guide, written from the measured rows of an :class:`~xentlab.atlas.measure.Atlas`:
the numbers come from the rows, the wording from the templates below."""

from __future__ import annotations

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
        return "was not measured"
    r = found[0]
    if not r["accepted"]:
        return f"raises {r['error']}"
    if r["matches_oracle"]:
        return f"equals the oracle (max abs error {fmt_small(r['max_abs_error'])})"
    if r["max_abs_error"] is None:
        return f"is accepted silently with shape {r['shape']} instead of {r['expected_shape']}"
    return (f"is accepted silently but differs from the oracle by up to "
            f"{fmt_value(r['max_abs_error'])}")


def _exact_text(r: Row | None) -> str:
    if r is None:
        return "(not measured)"
    grad = "a finite gradient" if r["grad_finite"] else "a gradient that is not finite"
    return (f"relative error {fmt_small(r['rel_error'])} and {grad} (max abs error "
            f"{fmt_small(r['grad_abs_error'])})")


def _kernel_text(atlas: Atlas, name: str) -> str:
    g = _graph(atlas, name)
    if g is None:
        return ""
    if g["fused_kernel"]:
        return f", whose traced graph runs the same {', '.join(g['kernels'])} kernel"
    return ", whose traced graph has no fused kernel"


def _bad_text(atlas: Atlas, name: str, mode: str, determinism: bool) -> str | None:
    found = select(atlas.bad_labels, entry=name, case="label = C", mode=mode,
                   determinism=determinism)
    if not found:
        return None
    r = found[0]
    if r["outcome"] == "raises":
        return f"raises {r['error']} ('{r['message']}')" if determinism else f"raises {r['error']}"
    if r["outcome"] in ("nan", "inf"):
        return f"returns {r['outcome'].upper() if r['outcome'] == 'nan' else 'inf'}"
    return f"returns a finite number silently ({fmt_value(r['value'])})"


def _rule_integer(atlas: Atlas, gap: str, gap_text: str) -> str:
    text = (f"- **Integer class labels `[B]`, model outputs logits**: call `{SPARSE}` (or "
            f"`{KERAS_SPARSE}`{_kernel_text(atlas, KERAS_SPARSE)}), because at {gap_text} in "
            f"float32 it has {_exact_text(_acc(atlas, SPARSE, gap))}. Labels shaped `[B,1]`: "
            f"the tf.nn op {_format_text(atlas, SPARSE, 'int [B,1]')}; the Keras loss squeezes "
            f"them and {_format_text(atlas, KERAS_SPARSE, 'int [B,1]')}.")
    eager, func = _bad_text(atlas, SPARSE, "eager", False), _bad_text(atlas, SPARSE, "function", False)
    det = _bad_text(atlas, SPARSE, "eager", True)
    if eager and func:
        both = (f"{eager} eagerly and under tf.function" if eager == func
                else f"{eager} eagerly and {func} under tf.function")
        text += f" A label equal to C {both}"
        text += f"; with op determinism on (the composite path) it {det}." if det else "."
    return text


def _rule_dense(atlas: Atlas, gap: str, gap_text: str) -> str:
    text = (f"- **One-hot or soft labels `[B,C]`, model outputs logits**: call `{SOFTMAX}` (or "
            f"`{KERAS_CCE}`{_kernel_text(atlas, KERAS_CCE)}), because at {gap_text} in float32 "
            f"it has {_exact_text(_acc(atlas, SOFTMAX, gap))}; with soft labels it "
            f"{_format_text(atlas, SOFTMAX, 'soft [B,C]')}.")
    smooth = _acc(atlas, KERAS_CCE_SMOOTH, gap)
    if smooth is not None:
        text += (f" Label smoothing: `{KERAS_CCE_SMOOTH}` matches the smoothed oracle "
                 f"(relative error {fmt_small(smooth['rel_error'])}).")
    text += (f" Never pass class indices: `[B]` {_format_text(atlas, SOFTMAX, 'int [B]')}, and "
             f"`[B,1]` {_format_text(atlas, SOFTMAX, 'int [B,1]')} (the index is broadcast "
             f"over the classes: the loss is -index * sum(log p)).")
    return text


def _rule_multilabel(atlas: Atlas, gap: str, gap_text: str) -> str:
    return (f"- **Multi-hot labels `[B,C]` (several classes present), model outputs logits**: "
            f"call `{SIGMOID}` (per class, `[B,C]`) or `{KERAS_BCE}` (mean over classes, `[B]`), "
            f"because on multi-hot labels it {_format_text(atlas, SIGMOID, 'multi-hot [B,C]')} "
            f"and at {gap_text} it has {_exact_text(_acc(atlas, SIGMOID, gap))}. Softmax "
            f"cross-entropy given the same multi-hot labels "
            f"{_format_text(atlas, SOFTMAX, 'multi-hot [B,C]')} (the oracle normalises the "
            f"targets; the op adds -log p over every positive).")


def _rule_probabilities(atlas: Atlas) -> str:
    r = _acc(atlas, KERAS_CCE_PROBS, "gap 100")
    if r is None:
        return ""
    grad = "exactly 0" if r["grad_max_abs"] == 0 else f"at most {fmt_small(r['grad_max_abs'])}"
    text = (f"- **You only have probabilities** (Keras `from_logits=False`): expect a capped "
            f"loss. `{KERAS_CCE_PROBS}` clips them to [1e-7, 1 - 1e-7]: at a logit gap of 100 "
            f"it returns {fmt_value(r['value'])} (exact: {fmt_value(r['oracle'])}) and its "
            f"gradient is {grad}, so a confidently wrong example stops learning. Pass logits "
            f"with `from_logits=True` instead.")
    k = _acc(atlas, KERAS_CCE_KERAS_SOFTMAX, "gap 100")
    if k is not None:
        text += (f" Eagerly, only probabilities made by `keras.ops.softmax` (or a Keras softmax "
                 f"layer) escape the cap, because they carry their logits (`_keras_logits`): "
                 f"{fmt_value(k['value'])} there.")
    g = _graph(atlas, KERAS_CCE_PROBS)
    if g is not None and g["fused_kernel"]:
        text += (f" Inside `tf.function` Keras also finds the logits behind a `tf.nn.softmax` "
                 f"op: the traced graph runs {', '.join(g['kernels'])} and returns "
                 f"{fmt_value(g['value'])}, so the same code gives different losses eagerly "
                 f"and in a graph.")
    return text


def _rule_dtype(atlas: Atlas, gap: str, gap_text: str) -> str:
    if "float16" not in atlas.settings.get("dtypes", []):
        return ""
    tfnn, keras_loss = _acc(atlas, SOFTMAX, gap, "float16"), _acc(atlas, KERAS_CCE, gap, "float16")
    if tfnn is None or keras_loss is None:
        return ""
    text = (f"- **Mixed precision (float16 logits)**: `{SOFTMAX}` returns {tfnn['result_dtype']} "
            f"(relative error {fmt_small(tfnn['rel_error'])} at {gap_text}); `{KERAS_CCE}` "
            f"returns {keras_loss['result_dtype']}, because Keras' `Loss` objects cast their "
            f"inputs to floatx first.")
    k = _acc(atlas, KERAS_CCE_KERAS_SOFTMAX, "gap 100", "float16")
    if k is not None and k["value"] != k["oracle"]:
        text += (f" That cast drops `keras.ops.softmax`'s logits: on float16 probabilities the "
                 f"loss is capped again ({fmt_value(k['value'])} at a gap of 100).")
    ops_cce, ops_bce = _acc(atlas, OPS_CCE_PROBS, "gap 100", "float16"), _acc(
        atlas, OPS_BCE_PROBS, "gap 100", "float16")
    if ops_cce is not None:
        text += (f" `keras.ops` keeps float16, where `from_logits=False` caps at "
                 f"{fmt_value(ops_cce['value'])}")
        if ops_bce is not None and not ops_bce["value_finite"]:
            text += (f" and `{OPS_BCE_PROBS}` returns {fmt_value(ops_bce['value'])} with a "
                     f"gradient that is not finite: 1 - 1e-7 rounds to 1 in float16, so the clip "
                     f"no longer keeps log(1 - p) finite")
        text += "."
    return text


def _avoid_items(atlas: Atlas) -> list[str]:
    items = []
    m = _acc(atlas, MANUAL, "gap 100")
    if m is not None and not (m["value_finite"] and m["grad_finite"]):
        text = (f"`{MANUAL}`: at a logit gap of 100 in float32 it returns "
                f"{fmt_value(m['value'])} eagerly, with a gradient that is "
                f"{'finite' if m['grad_finite'] else 'not finite'}")
        by_mode = {r["mode"]: r for r in atlas.modes}
        fwd, both = by_mode.get(MODES[1]), by_mode.get(MODES[2])
        if fwd is not None and both is not None:
            text += (f"; a `tf.function` that computes only the loss returns {fmt_value(fwd['value'])} "
                     f"(exact: {fmt_value(fwd['oracle'])})" + (
                         ", because Grappler rewrites `log(softmax(x))` into `log_softmax(x)` when nothing "
                         "else reads the softmax" if fwd["log_softmax"] else "")
                     + f", and one that also computes its gradient returns {fmt_value(both['value'])}"
                     + (" (the gradient reads the softmax, so no rewrite)" if not both["log_softmax"] else "")
                     + ": the same code gives different losses by mode, and a training step, which computes the gradient, gets the failure")
        items.append(text)
    f = _acc(atlas, KERAS_FOCAL, "gap 100")
    if f is not None and f["rel_error"] > 0.5:
        grad = "exactly 0" if f["grad_max_abs"] == 0 else fmt_small(f["grad_max_abs"])
        items.append(f"expecting `{KERAS_FOCAL}` to use the logits: it applies softmax and then "
                     f"the same clip, so at a gap of 100 it returns {fmt_value(f['value'])} "
                     f"(exact: {fmt_value(f['oracle'])}) with gradient {grad}, just where focal "
                     f"loss should focus")
    w, s = _acc(atlas, WEIGHTED, "zero logits"), _acc(atlas, SIGMOID, "zero logits")
    if w is not None and s is not None and w["grad_abs_error"] > 0.1:
        items.append(f"`{WEIGHTED}` at logits exactly 0 (e.g. a zero-initialised output layer): "
                     f"its gradient is off by {fmt_small(w['grad_abs_error'])} (`abs` and `relu` "
                     f"have subgradient 0 there); `{SIGMOID}` is off by "
                     f"{fmt_small(s['grad_abs_error'])}")
    rows = atlas.sampled
    if rows:
        unseeded = select(rows, setting="seed=None")
        op_seed = [r for r in rows if r["setting"] == f"seed={SAMPLED_OP_SEED}"]
        reset = [r for r in rows if r["setting"].startswith("tf.random.set_seed")]
        side = "below" if all(r["value"] < r["full"] for r in rows) else "off"
        text = (f"`tf.nn.sampled_softmax_loss` as an evaluation loss: it is a training-time "
                f"approximation, {min(r['rel_diff'] for r in rows):.0%} to "
                f"{max(r['rel_diff'] for r in rows):.0%} {side} full softmax cross-entropy on "
                f"the same linear layer over {len(rows)} calls here; {len(unseeded)} successive unseeded calls gave "
                f"{len({r['value'] for r in unseeded})} different values")
        if len({r["value"] for r in op_seed}) > 1:
            text += ", and so did calls with an op seed alone (eagerly)"
        if len({r["value"] for r in reset}) == 1:
            text += "; only `tf.random.set_seed` before each call repeats a value"
        items.append(text)
    red = [r for r in atlas.reductions if r["call"] == "compute_average_loss(sigmoid CE [B,C])"]
    if red:
        r = red[0]
        items.append(f"`tf.nn.compute_average_loss` on an element-wise `{r['per_example_shape']}` "
                     f"loss: it divides the sum by {r['divisor']:.0f} (the first dimension), not "
                     f"by the {r['elements']} elements; reduce over the classes first")
    on, off = _graph(atlas, SPARSE, True), _graph(atlas, SPARSE, False)
    if on is not None and off is not None and off["fused_kernel"] and not on["fused_kernel"]:
        items.append(f"expecting the fused kernels under op determinism "
                     f"(`tf.config.experimental.enable_op_determinism()`): the traced graph of "
                     f"`{SPARSE}` then has no fused op but a LogSoftmax composite "
                     f"({on['n_ops']} ops instead of {off['n_ops']}), and so does every Keras "
                     f"loss built on it")
    return items


def decision_guide(atlas: Atlas) -> str:
    """A markdown "which cross-entropy should I call?" guide written from ``atlas``' rows.

    Every number in it is formatted from a measured row (errors below 1e-6 print as
    ``"< 1e-6"``, others with one significant digit, loss values with three decimals), so the
    text is the same for every run on one machine. Rules whose rows were not measured are left
    out; ``measure(entries=GUIDE_ENTRIES)`` measures all that it quotes.

    Returns:
        Markdown: a heading, one bullet per rule ("Labels like X, model output Y: call Z,
        because <measured reason>"), and an "Avoid" list.
    """
    measured = [g for g in GAPS if _acc(atlas, SPARSE, f"gap {g:g}") is not None]
    g = max(measured) if measured else max(GAPS)
    gap, gap_text = f"gap {g:g}", f"a logit gap of {g:g}"
    rules = [_rule_integer(atlas, gap, gap_text), _rule_dense(atlas, gap, gap_text),
             _rule_multilabel(atlas, gap, gap_text), _rule_probabilities(atlas),
             _rule_dtype(atlas, gap, gap_text)]
    avoid = _avoid_items(atlas)
    if avoid:
        rules.append("- **Avoid**:\n" + "\n".join(f"  - {i}." for i in avoid))
    s = atlas.settings
    head = (f"## Which cross-entropy should I use?\n\nMeasured by `xentlab.atlas.measure()` "
            f"with TensorFlow {s['tensorflow']} and Keras {s['keras']} ({s['classes']} classes); "
            f"errors are against a float64 oracle. Inputs: label formats, bad labels and reductions "
            f"on a batch of {s['batch']} with logits drawn from N(0, 2²) and random labels (NumPy seed "
            f"{s['seed']}), so their differences from the oracle are those of this batch; values at a logit "
            f"gap are one example with logits [0, gap, 0, …] and the true class 0; an op count is every op "
            f"of the traced forward-and-gradient graph before Grappler; `sampled_softmax_loss` runs on a "
            f"small linear layer (batch {s['batch']}, {2 * s['classes']} classes, {s['classes']} sampled, "
            f"inputs and weights from N(0, 1)), seeded as its bullet says.\n\n")
    return head + "\n".join(r for r in rules if r) + "\n"
