"""``python -m xentlab reproduce-check``: run a profile twice and compare metrics and claims,
timings excluded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from xentlab.reports.run import run_reports

#: Metric keys that measure the machine rather than the experiment (excluded from comparisons).

#: A claim's ``measured_text`` is its ``measured`` values as a sentence, which may round a timing

#: (09's bfloat16 speed ratio): ``measured`` is compared instead, without its timing keys.

VOLATILE = re.compile(r"seconds|(^|_)ms(_min|_max)?$|per_s$|gflops|gbs|bandwidth|over_keras|peak|timing"
                      r"|^measured_text$")



def comparable(value: Any) -> Any:
    """``value`` without the keys matching :data:`VOLATILE` (recursively)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if not VOLATILE.search(k)}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value



def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two JSON values differ (``where`` prefixes them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in {'first' if k in a else 'second'} run"
               for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"]



def reproduce_check(
    profile: str = "ci", *, only: list[str] | None = None, keep: Path | None = None
) -> list[str]:
    """Run ``profile`` twice into temporary folders; return the differing metric/claim keys.

    Timing and provenance are excluded (:data:`VOLATILE`; ``provenance.json`` is not compared).
    ``keep``: write the first run there as a full report instead of a temporary folder.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="xentlab-reproduce-") as tmp:
        runs = [
            run_reports(profile, only=only, out=keep) if keep is not None
            else run_reports(profile, only=only, out=Path(tmp) / "first"),
            run_reports(profile, only=only, out=Path(tmp) / "second"),
        ]
        files = sorted({p.relative_to(r) for r in runs for p in r.glob("metrics/*.json")})
        out = []
        for rel in [*files, Path("claims.json")]:
            a, b = (json.loads((r / rel).read_text()) if (r / rel).exists() else None
                    for r in runs)
            out += differences(comparable(a), comparable(b), str(rel))
        return out
