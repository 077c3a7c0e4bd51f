"""Findings quality: precision and recall per detector on apps whose findings are known.

Each case of ``tests/apps/quality.py`` (a template that lazy-loads, an async session's
N+1, a background loop beside requests, threads idle in C beside a busy handler) is
captured and judged as in CI; a finding is ``(kind, endpoint)`` and an expected one
found elsewhere (a wrong call site) counts as missed. Printed per detector:
true positives, false positives, false negatives, precision and recall.

    python benchmarks/findings_quality.py
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.apps.quality import CASES, judge, run_case


def main() -> int:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="deskprof-quality-") as scratch:
        for case in CASES:
            findings = run_case(case, Path(scratch) / case.name)
            matched, unexpected, problems = judge(case, findings)
            for kind, _ in matched:
                tp[kind] += 1
            for kind, _ in unexpected:
                fp[kind] += 1
            for want in case.expected:
                if (want.kind, want.endpoint) not in matched:
                    fn[want.kind] += 1
            verdict = "ok" if not problems else "; ".join(problems)
            print(f"{case.name:<28} {len(findings)} finding(s): {verdict}", flush=True)
    print(f"\n{'detector':<16}{'TP':>4}{'FP':>4}{'FN':>4}{'precision':>11}{'recall':>8}")
    for kind in sorted(set(tp) | set(fp) | set(fn)):
        found, wanted = tp[kind] + fp[kind], tp[kind] + fn[kind]
        precision = f"{tp[kind] / found:.2f}" if found else "-"
        recall = f"{tp[kind] / wanted:.2f}" if wanted else "-"
        print(f"{kind:<16}{tp[kind]:>4}{fp[kind]:>4}{fn[kind]:>4}{precision:>11}{recall:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
