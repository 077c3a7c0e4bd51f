"""The findings-quality benchmark in CI: each small app gives every finding it must and
none it must not (``tests/apps/quality.py``; ``make bench`` prints precision and recall)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.quality import CASES, judge, run_case

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_gives_exactly_its_findings(case, tmp_path: Path) -> None:
    findings = run_case(case, tmp_path)
    _, _, problems = judge(case, findings)
    assert not problems, problems
