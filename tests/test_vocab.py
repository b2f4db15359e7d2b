"""xentlab.vocab: the vocabulary-scale measurements and what is read from them."""

import pytest

from xentlab import vocab


def _row(method, c, ms, extra, block=None, loss=10.0, probe=1.0):
    return {"method": method, "n": 100, "h": 10, "c": c, "block_size": block, "ms": ms,
            "ms_all": [ms * 0.99, ms, ms * 1.01], "extra_peak_bytes": extra + vocab.gradient_bytes(100, 10, c),
            "loss": loss, "loss_probe": [loss / 2, 1.0], "dh_probe": [probe, 2.0], "dw_probe": [probe, 3.0]}


ROWS = [
    _row("materialised", 1000, 10.0, 800_000), _row("materialised XLA", 1000, 8.0, 900_000),
    _row("chunked", 1000, 12.0, 40_000, block=100, probe=1.0 + 1e-7), _row("chunked XLA", 1000, 11.0, 60_000, block=100),
    _row("sampled", 1000, 2.0, 10_000, loss=7.0),
    {"method": "materialised", "n": 100, "h": 10, "c": 4000, "block_size": None, "skipped": True,
     "needs_bytes": 5 * 2**30, "limit_bytes": 2**30},
    _row("chunked", 4000, 50.0, 160_000, block=100),
]


def test_flops_and_bytes():
    assert vocab.matmul_flops("materialised XLA", 2, 3, 5) == 6 * 30
    assert vocab.matmul_flops("chunked", 2, 3, 5) == 8 * 30
    assert vocab.matmul_flops("sampled", 2, 3, 5, num_sampled=4) == 6 * 2 * 3 * 5
    with pytest.raises(ValueError, match="method must be one of"):
        vocab.matmul_flops("dense", 2, 3, 5)
    assert vocab.must_exist_bytes(2, 3, 5) == 2 * 4 * (6 + 15 + 5)
    assert vocab.materialised_bytes(2, 5) == 4 * 10 and vocab.materialised_bytes(2, 5, xla=True) == 8 * 10
    assert vocab.matmul_flops("chunked XLA", 2, 3, 5) == 6 * 30  # XLA merges the recomputation


def test_compare_against_the_materialised_row_of_the_same_size():
    same = vocab.compare(ROWS)
    assert [(c["method"], c["c"]) for c in same] == [("materialised XLA", 1000), ("chunked", 1000), ("chunked XLA", 1000)]
    chunked = same[1]
    assert chunked["loss"] == 0.0 and chunked["dh"] == pytest.approx(1e-7 / 2.0)


def test_finding_compares_like_with_like_at_each_size_with_a_reference():
    f = vocab.finding(ROWS, peak_gflops=1.0)
    big = f["largest"]
    assert [s["c"] for s in f["per_size"]] == [1000] and big["chunked"] == "chunked (block 100)"
    assert big["time_ratio"] == pytest.approx(12.0 / 10.0) and big["speed"] == "slower"
    assert big["memory_ratio"] == pytest.approx(40_000 / 800_000)  # tf.function rows: chunked against materialised
    assert big["of_must_exist"] == pytest.approx(40_000 / vocab.must_exist_bytes(100, 10, 1000))
    assert f["skipped"] == [{"n": 100, "h": 10, "c": 4000, "needs_bytes": 5 * 2**30, "failed": None, "limit_bytes": 2**30}]
    text = vocab.finding_text(f)
    assert text.count("At the largest size with both, C = 1,000") == 1  # C = 4,000 was only computed
    assert "1.20× its time" in text and "At C = 4,000 the materialised op was not run" in text
    assert "the chunked form (chunked (block 100)) was slower" in text and "leanest" not in text.split("\n\n")[1]
    assert "| 1.20× (slower; block 100) |" in text and "(block 100) |" in text
    assert "time at most 1.5× the materialised op's best, in a tf.function or with XLA (fastest chunked / materialised XLA: 1.50×): met" in text
    assert "memory at most 5% of the materialised op's (5.0%): met" in text
    assert "H/N = 10.0%" in text  # h = 10, n = 100: above the 5% target
    assert "0.0042% for the loss computation and 3.6% for the classifier head" in text
    assert "linear_cross_entropy" in vocab.guidance(f)
    assert vocab.decision_row(f).startswith("| integer `[N]` |") and "1.20× the materialised op" in vocab.decision_row(f)
    with pytest.raises(ValueError, match="no size has measured materialised and chunked rows"):
        vocab.finding(ROWS[-2:], peak_gflops=1.0)
    with pytest.raises(ValueError, match="no size has measured materialised and chunked rows"):
        vocab.finding([r for r in ROWS if r["method"] != "chunked"], peak_gflops=1.0)


def test_finding_names_the_fastest_and_the_leanest_block_when_they_differ():
    rows = [*ROWS[:3], _row("chunked", 1000, 11.0, 90_000, block=400)]
    big = vocab.finding(rows, peak_gflops=1.0)["largest"]
    assert (big["block"], big["lean_block"]) == (400, 100)
    assert big["time_ratio"] == pytest.approx(1.1) and big["memory_ratio"] == pytest.approx(40_000 / 800_000)
    text = vocab.finding_text(vocab.finding(rows, peak_gflops=1.0))
    assert ("the fastest chunked form (chunked (block 400)) was slower than the materialised fused op in a tf.function, "
            "1.10× its time, and the leanest (block 100) held 5.0% of its memory") in text
    assert "(slower; blocks of 400 columns), 5.0% of its memory beyond the bytes that must exist (blocks of 100)" in (
        vocab.guidance(vocab.finding(rows, peak_gflops=1.0)))


def test_a_configuration_whose_process_fails_is_a_row_and_the_grid_goes_on(monkeypatch, capsys):
    def measure(method, n, h, c, **kwargs):
        if method == "materialised":
            raise RuntimeError("the subprocess failed (exit -6):\nterminate called ...\n  what():  std::bad_alloc\n")
        return _row(method, c, 5.0, 1000, block=kwargs.get("block_size"))

    monkeypatch.setattr(vocab, "measure", measure)
    monkeypatch.setattr(vocab, "available_bytes", lambda: 2**40)
    rows = vocab.grid([(100, 10, 4000)], block_sizes=(100,), repeats=3, progress=True)
    assert [vocab.label(r) for r in rows] == ["materialised", "materialised XLA", "chunked (block 100)",
                                              "chunked XLA (block 100)", "sampled"]
    failed = rows[0]
    assert failed["skipped"] and failed["failed"] == "what():  std::bad_alloc"
    assert failed["needs_bytes"] == vocab.materialised_bytes(100, 4000) + vocab.must_exist_bytes(100, 10, 4000)
    assert "[1/5] materialised N=100 H=10 C=4000 block=None: failed: what():  std::bad_alloc" in capsys.readouterr().err
    assert "| materialised | failed | | | `what():  std::bad_alloc`; would need" in vocab.table(rows, peak_gflops=1.0)
    f = vocab.finding([*ROWS[:5], failed], peak_gflops=1.0)
    assert f["skipped"][0]["failed"] == "what():  std::bad_alloc"
    text = vocab.finding_text(f)
    assert ("At C = 4,000 the materialised op's process failed (`what():  std::bad_alloc`), for a cause not established "
            "here: by the count it needs 0.0 GiB in all, under this grid's limit of 819.2 GiB.") in text
    assert "32-bit" not in text  # N·C = 400,000 here
    big = [r | {"n": 8192, "c": 262144} for r in (failed,)]
    assert "more than the largest signed 32-bit integer" in vocab.finding_text(
        vocab.finding([*ROWS[:5], *big], peak_gflops=1.0))


def test_load_grid_reads_an_earlier_runs_rows_and_checks_their_sizes(tmp_path):
    import json

    path = tmp_path / "10.json"
    path.write_text(json.dumps({"grid": ROWS, "matmul_peak_gflops": 150.0}))
    rows, peak, measured = vocab.load_grid(path, [(100, 10, 1000), (100, 10, 4000)], (100,))
    assert rows == ROWS and peak == 150.0 and measured == {}
    path.write_text(json.dumps({"grid": ROWS, "matmul_peak_gflops": 150.0, "grid_measured": {"git_commit": "abc"}}))
    assert vocab.load_grid(path, [(100, 10, 1000), (100, 10, 4000)], (100,))[2] == {"git_commit": "abc"}
    with pytest.raises(ValueError, match="not \\[\\(100, 10, 1000\\)\\] and \\[100\\]"):
        vocab.load_grid(path, [(100, 10, 1000)], (100,))
    with pytest.raises(ValueError, match="blocks \\[100\\]"):
        vocab.load_grid(path, [(100, 10, 1000), (100, 10, 4000)], (100, 200))


def test_table_shows_skipped_sizes_and_floors():
    text = vocab.table(ROWS, peak_gflops=1.0)
    assert "would need 5.0 GiB in all (limit 1.0 GiB)" in text
    assert "| 100 | 10 | 1,000 | chunked (block 100) | 12 |" in text


@pytest.mark.slow
def test_one_configuration_in_a_fresh_process():
    r = vocab.measure("chunked", 64, 16, 512, block_size=128, repeats=3)
    assert r["method"] == "chunked" and len(r["ms_all"]) == 3 and r["ms"] > 0
    assert len(r["dw_probe"]) == vocab.PROBES
    assert r["extra_peak_bytes"] >= vocab.gradient_bytes(64, 16, 512)  # the outputs at least
    with pytest.raises(ValueError, match="repeats must be at least 3"):
        vocab.run_one("chunked", 8, 4, 16, repeats=2)
