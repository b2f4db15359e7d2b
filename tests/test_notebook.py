"""xentlab.notebook: the Setup helper and declarative parameter checks."""

import os

import numpy as np
import pytest

from xentlab import config, notebook, record, runtime

RULES = {
    "dataset": notebook.choice("mnist", "mnist10k"),
    "steps": notebook.integer(1),
    "batch_size": notebook.integer(1, 4096),
    "learning_rate": notebook.number(0, 1),
    "progress": notebook.BOOLEAN,
    "sizes": notebook.integers(2),
}
GOOD = {"dataset": "mnist", "steps": 300, "batch_size": np.int64(128), "learning_rate": 1e-3,
        "progress": False, "sizes": [2, 10]}


def test_good_parameters_pass():
    notebook.check_params(GOOD, **RULES)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("dataset", "cifar10", r"parameter dataset must be one of \('mnist', 'mnist10k'\), got 'cifar10'"),
        ("steps", 0, "parameter steps must be an integer >= 1, got 0"),
        ("steps", 2.0, "steps must be an integer >= 1"),
        ("steps", True, "steps must be an integer >= 1, got True"),
        ("batch_size", 5000, r"batch_size must be an integer in \[1, 4096\]"),
        ("learning_rate", 0, r"learning_rate must be a number in \(0, 1\], got 0"),
        ("learning_rate", "0.1", "learning_rate must be a number"),
        ("progress", 1, "progress must be True or False, got 1"),
        ("sizes", [], "sizes must be a non-empty list of integers >= 2"),
        ("sizes", [2, 1], "sizes must be a non-empty list of integers >= 2"),
        ("sizes", (2, 3), "sizes must be a non-empty list"),
    ],
)
def test_each_bad_parameter_is_named(name, value, message):
    with pytest.raises(ValueError, match=message):
        notebook.check_params({**GOOD, name: value}, **RULES)


def test_every_problem_is_listed_and_missing_ones_too():
    params = {**GOOD, "steps": -1, "progress": "yes"}
    del params["dataset"]
    with pytest.raises(ValueError) as err:
        notebook.check_params(params, **RULES)
    text = str(err.value)
    assert "dataset is missing" in text and "steps must be" in text and "progress must be" in text


def test_setup_sets_the_environment_starts_the_record_and_prints_versions(capsys, monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv(config.RUN_DIR_ENV, str(tmp_path))
    for name in runtime.TF_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    notebook.setup("99_test")
    assert all(os.environ[k] == v for k, v in runtime.TF_ENVIRONMENT.items())
    assert capsys.readouterr().out.startswith("TensorFlow ")
    record.metric("x", 1)
    assert (tmp_path / "metrics" / "99_test.json").exists()


def test_error_line_names_the_error_and_strips_the_device_prefix():
    from xentlab.notebook import error_line

    assert error_line(lambda: None) is None
    assert error_line(lambda: int("x")) == "ValueError: invalid literal for int() with base 10: 'x'"

    def tf_like():
        raise RuntimeError("{{function_node __wrapped__Op}} label 5 out of range\nmore")

    assert error_line(tf_like) == "RuntimeError: label 5 out of range"





def test_setup_checks_the_parameters_before_it_touches_anything(monkeypatch, tmp_path):
    """A bad parameter fails before the record is replaced or the environment is set."""
    monkeypatch.setenv(config.RUN_DIR_ENV, str(tmp_path))
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    earlier = tmp_path / "metrics" / "99_bad.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("{}")
    with pytest.raises(ValueError, match="parameter steps must be an integer >= 1, got -3"):
        notebook.setup("99_bad", {"steps": -3}, steps=notebook.integer(1))
    assert earlier.exists() and "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    with pytest.raises(ValueError, match="no parameters"):
        notebook.setup("99_bad", steps=notebook.integer(1))


def test_parameter_error_renders_as_one_line():
    """IPython shows an exception with ``_render_traceback_`` by those lines alone."""
    with pytest.raises(notebook.ParameterError) as caught:
        notebook.check_params({"steps": -3}, steps=notebook.integer(1))
    assert caught.value._render_traceback_() == [
        "ParameterError: parameter steps must be an integer >= 1, got -3"]


@pytest.mark.slow
def test_a_bad_papermill_parameter_fails_in_the_setup_cell_with_one_line(tmp_path, monkeypatch):
    """Run by papermill, notebook 08 with ``classes=-3`` stops in its Setup cell with the one-line
    error and the notebook's earlier record untouched."""
    import papermill as pm

    monkeypatch.setenv(config.RUN_DIR_ENV, str(tmp_path))
    earlier = tmp_path / "metrics" / "08_which_cross_entropy.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("{}")
    with pytest.raises(pm.PapermillExecutionError) as caught:
        pm.execute_notebook(config.NOTEBOOKS_DIR / "08_which_cross_entropy.ipynb", tmp_path / "out.ipynb",
                            parameters={"classes": -3}, kernel_name="python3", progress_bar=False)
    err = caught.value
    assert err.ename == "ParameterError" and err.traceback == [
        "ParameterError: parameter classes must be an integer in [3, 1000], got -3"]
    assert earlier.read_text() == "{}"
