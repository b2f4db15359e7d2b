"""Tests of xentlab.documents: well-formed sources, excerpts, and (where present) the seed files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xentlab import documents
from xentlab.documents import DOCUMENTS, EXCERPTS, PRINTED, Printed

# The seed documents live next to the repository in the authors' workspace only; users' clones have
# no such directory, and the package never reads it.
SEEDS = Path(__file__).parents[2] / "shared" / "seeds"

# A number as printed: 2.2959247, -999.0, 0., 1e-10, 6.6396770e-36; not the digits of a name.
NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_\d])")


def seed_lines(source: str) -> list[str]:
    """The lines of seed file ``source`` (skips the test when the seed directory is absent)."""
    if not SEEDS.is_dir():
        pytest.skip(f"no seed directory {SEEDS}")
    return (SEEDS / source).read_text(encoding="utf-8").splitlines()


def occurs(value: Any, lines: list[str]) -> bool:
    """Whether ``value``'s printed form occurs in ``lines``.

    Text: as a substring. Number: as a printed number that parses to exactly it. Tuple: all its
    elements on one line. List: every element.
    """
    if isinstance(value, str):
        return value in "\n".join(lines)
    if isinstance(value, int | float):
        return any(float(token) == value for line in lines for token in NUMBER.findall(line))
    if isinstance(value, tuple):
        return any(all(occurs(v, [line]) for v in value) for line in lines)
    if isinstance(value, list):
        return all(occurs(v, lines) for v in value)
    raise TypeError(f"unexpected value type {type(value).__name__}")


def test_sources_and_lines_are_well_formed() -> None:
    assert PRINTED
    for key, printed in PRINTED.items():
        assert isinstance(printed, Printed)
        doc, _, name = key.partition(".")
        assert re.fullmatch(r"[a-z0-9_]+", name), key
        assert printed.source == DOCUMENTS[doc], key
        first, last = printed.lines
        assert type(first) is int and type(last) is int and 1 <= first <= last, key
        assert printed.note.strip(), key


def test_expected_keys_and_values() -> None:
    assert documents.value("000.mean") == 2.2959247
    assert len(documents.value("000.per_example_losses")) == 10
    losses = np.array(documents.value("000.per_example_losses"), np.float32)
    assert np.float32(losses.mean()) == np.float32(documents.value("000.mean"))
    assert documents.value("001.cross_entropy_fused") == 16.478533
    assert documents.value("002.single_digit_method1") == 23.02585
    assert documents.value("002.single_digit_method2") == 17056.938
    assert documents.value("002.keep_prob") == 0.75
    for key in ("002.training_log_method1", "002.training_log_method23"):
        log = documents.value(key)
        assert [step for step, _ in log] == list(range(0, 20000, 100))
    assert documents.value("002.test_accuracy_method1") == 0.1032
    assert documents.value("002.test_accuracy_method23") == 0.987
    assert "(pred, y)" in documents.value("002.positional_call")


def test_value_unknown_key_names_near_keys() -> None:
    with pytest.raises(KeyError, match="000.mean"):
        documents.value("000.maen")


@pytest.mark.parametrize("doc", sorted(EXCERPTS))
def test_excerpt_markdown(doc: str) -> None:
    assert 0 < len(EXCERPTS[doc].split("\n")) <= 15
    text = documents.excerpt_markdown(doc)
    lines = text.split("\n")
    assert lines[0].startswith(f"> Document {doc[:3]} (`{DOCUMENTS[doc[:3]]}`, lines ")
    assert lines[0].endswith("):")
    assert all(line == ">" or line.startswith("> ") for line in lines)
    assert "> ```text" in lines and lines[-1] == "> ```"


def test_every_excerpt_key_names_a_document() -> None:
    assert set(DOCUMENTS) == {key[:3] for key in EXCERPTS}
    assert all(key == key[:3] or key[3] == "." for key in EXCERPTS)


def test_excerpt_unknown_doc() -> None:
    with pytest.raises(ValueError, match="unknown document"):
        documents.excerpt_markdown("005")


@pytest.mark.parametrize("key", sorted(PRINTED))
def test_printed_value_occurs_in_seed(key: str) -> None:
    printed = PRINTED[key]
    lines = seed_lines(printed.source)
    first, last = printed.lines
    assert last <= len(lines), key
    assert occurs(printed.value, lines[first - 1 : last]), (key, lines[first - 1 : last])


@pytest.mark.parametrize("key", ["002.training_log_method1", "002.training_log_method23"])
def test_training_logs_line_by_line(key: str) -> None:
    printed = PRINTED[key]
    first, last = printed.lines
    lines = seed_lines(printed.source)[first - 1 : last]
    assert [f"step {s}, training accuracy :{a!r}" for s, a in printed.value] == lines


@pytest.mark.parametrize("doc", sorted(EXCERPTS))
def test_excerpt_occurs_verbatim_in_seed(doc: str) -> None:
    lines = seed_lines(DOCUMENTS[doc[:3]])
    parts = documents.EXCERPT_PARTS[doc]
    for (first, last), (_, part) in zip(documents.excerpt_lines(doc), parts, strict=True):
        assert list(part) == lines[first - 1 : last], (doc, first)
    expected = f"\n{documents.EXCERPT_SEPARATOR}\n".join(
        "\n".join(lines[a - 1 : b]) for a, b in documents.excerpt_lines(doc)
    )
    assert EXCERPTS[doc] == expected


def test_excerpt_renders_the_markdown():
    from xentlab import documents

    assert documents.excerpt("001").data == documents.excerpt_markdown("001")
