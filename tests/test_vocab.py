"""xentlab.vocab: the vocabulary-scale measurements and what is read from them."""

import pytest

from xentlab import vocab


def _row(method, c, ms, extra, block=None, loss=10.0, probe=1.0):
    return {"method": method, "n": 100, "h": 10, "c": c, "block_size": block, "ms": ms,
            "extra_peak_bytes": extra + vocab.gradient_bytes(100, 10, c), "loss": loss,
            "dh_probe": [probe, 2.0], "dw_probe": [probe, 3.0]}


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
    assert vocab.materialised_bytes(2, 5) == 4 * 2 * 10


def test_compare_against_the_materialised_row_of_the_same_size():
    same = vocab.compare(ROWS)
    assert [(c["method"], c["c"]) for c in same] == [("materialised XLA", 1000), ("chunked", 1000), ("chunked XLA", 1000)]
    chunked = same[1]
    assert chunked["loss"] == 0.0 and chunked["dh"] == pytest.approx(1e-7 / 2.0)


def test_finding_reads_the_largest_size_with_a_reference():
    f = vocab.finding(ROWS, peak_gflops=1.0)
    assert (f["c"], f["chunked"], f["materialised"]) == (1000, "chunked XLA (block 100)", "materialised XLA")
    assert f["time_ratio"] == pytest.approx(11.0 / 8.0)
    assert f["memory_ratio"] == pytest.approx(40_000 / 900_000)
    assert f["skipped"] == [{"n": 100, "h": 10, "c": 4000, "needs_bytes": 5 * 2**30}]
    text = vocab.finding_text(f)
    assert "1.38× the materialised op's best" in text and "At C = 4,000 the materialised op was not run" in text
    assert "linear_cross_entropy" in vocab.guidance(f)
    with pytest.raises(ValueError, match="no size has a measured materialised row"):
        vocab.finding(ROWS[-2:], peak_gflops=1.0)


def test_table_shows_skipped_sizes_and_floors():
    text = vocab.table(ROWS, peak_gflops=1.0)
    assert "would need 5.0 GiB (limit 1.0 GiB)" in text
    assert "| 100 | 10 | 1,000 | chunked (block 100) | 12 |" in text


@pytest.mark.slow
def test_one_configuration_in_a_fresh_process():
    r = vocab.measure("chunked", 64, 16, 512, block_size=128, repeats=3)
    assert r["method"] == "chunked" and len(r["ms_all"]) == 3 and r["ms"] > 0
    assert r["extra_peak_bytes"] >= 0 and len(r["dw_probe"]) == vocab.PROBES
    with pytest.raises(ValueError, match="repeats must be at least 3"):
        vocab.run_one("chunked", 8, 4, 16, repeats=2)
