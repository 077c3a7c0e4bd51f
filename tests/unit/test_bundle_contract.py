"""The bundle contract lives in deskprof/bundle/ alone; its typed manifest keeps what it
does not know; option errors speak keywords in the library and flags in the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deskprof import paths
from deskprof.bundle.manifest import Manifest
from deskprof.bundle.reader import open_capture
from deskprof.bundle.writer import BundleWriter
from deskprof.cli.options import defaults, message
from deskprof.errors import BundleError, DeskprofError, OptionError

ROOT = Path(__file__).resolve().parents[2]
# what opens a bundle's Parquet files: only deskprof/bundle/ may
PARQUET_READS = re.compile(
    r"\b(read_parquet|read_table|ParquetFile|read_metadata|read_schema|pq\.read_\w+)\s*\("
)


def _sources_outside_bundle() -> list[Path]:
    files = [
        *ROOT.joinpath("profiling", "deskprof").rglob("*.py"),
        *ROOT.joinpath("opendesk").rglob("*.py"),
    ]
    bundle = ROOT / "profiling" / "deskprof" / "bundle"
    return [f for f in files if bundle not in f.parents]


def test_no_module_outside_the_bundle_package_reads_parquet() -> None:
    offenders = []
    for file in _sources_outside_bundle():
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if PARQUET_READS.search(line):
                offenders.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()}")
    notebooks = ROOT / "notebooks"
    for notebook in notebooks.glob("*.ipynb"):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if PARQUET_READS.search("".join(cell["source"])):
                offenders.append(f"{notebook.relative_to(ROOT)}: a cell reads Parquet")
    assert not offenders, "read bundles through deskprof.bundle:\n" + "\n".join(offenders)


def test_the_check_would_see_a_read() -> None:
    assert PARQUET_READS.search('frame = pd.read_parquet(path / "requests.parquet")')
    assert PARQUET_READS.search("table = pq.read_table(file)")
    assert not PARQUET_READS.search("frame.to_parquet(tmp, index=False)")


def test_manifest_round_trip_keeps_unknown_fields(tmp_path: Path) -> None:
    document = Manifest().to_json() | {"from_a_newer_deskprof": {"x": 1}, "status": "complete"}
    document["partial_reasons"] = []
    (tmp_path / "manifest.json").write_text(json.dumps(document))
    manifest = Manifest.read(tmp_path / "manifest.json")
    assert manifest.complete and manifest.extra == {"from_a_newer_deskprof": {"x": 1}}
    assert manifest["from_a_newer_deskprof"] == {"x": 1}  # the JSON form, as written
    manifest.write(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["from_a_newer_deskprof"]


def test_manifest_typed_readings() -> None:
    manifest = Manifest.from_json(
        {"schema_version": 2, "options": {"cpu_rate_hz": "50", "label": "x"}, "sources": None}
    )
    assert manifest.cpu_rate_hz == 50.0 and manifest.label == "x"
    assert manifest.sources == {} and manifest.source("sql") == {}
    assert (
        Manifest.from_json({"schema_version": 2, "options": {"cpu_rate_hz": 0}}).cpu_rate_hz == 100
    )


def test_manifest_rejects_what_is_not_one(tmp_path: Path) -> None:
    file = tmp_path / "manifest.json"
    file.write_text("[1, 2]")
    with pytest.raises(BundleError, match="not a capture manifest"):
        Manifest.read(file)


def test_writer_and_reader_share_the_manifest(tmp_path: Path) -> None:
    writer = BundleWriter(tmp_path / "b")
    writer.manifest.options = {"label": "shared"}
    writer.warn("a warning")
    writer.finish([])
    capture = open_capture(tmp_path / "b")
    assert capture.status == "complete" and capture.manifest.label == "shared"
    assert capture.warnings == ["a warning"]
    assert open_capture(capture) is capture


def test_option_errors_name_keywords_or_flags() -> None:
    error = OptionError("{duration_s} must be between 1 s and 6 h", "duration_s")
    assert str(error) == "duration_s must be between 1 s and 6 h"
    assert message(error, {"duration_s": "--duration"}) == "--duration must be between 1 s and 6 h"
    assert message(DeskprofError("plain"), {"duration_s": "--duration"}) == "plain"
    quoted = OptionError("{url} must be an http(s) URL, got 'x/{id}/{url'", "url")
    assert message(quoted, {"url": "--url"}) == "--url must be an http(s) URL, got 'x/{id}/{url'"


def test_cli_defaults_come_from_the_option_types() -> None:
    from deskprof.capturing.session import CaptureOptions
    from deskprof.cli import build_parser

    args = build_parser().parse_args(["capture", "--url", "http://127.0.0.1:1", "--pid", "9"])
    expected = defaults(CaptureOptions)
    assert args.duration == expected["duration_s"] and args.cpu_rate == expected["cpu_rate"]
    assert args.max_disk_mb == expected["max_disk_mb"]


def test_run_directories_are_absolute_and_distinct(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DESKPROF_DATA_DIR", str(tmp_path / "d"))
    first, second = paths.run_dir("captures", "Ticket list!"), paths.run_dir("captures", "")
    assert first.is_absolute() and first.parent == tmp_path / "d" / "captures"
    assert first.name.endswith("-ticket-list") and first != second
    with pytest.raises(ValueError, match="unknown run kind"):
        paths.run_dir("nonsense")


def test_findings_refuses_what_is_not_a_capture() -> None:
    import deskprof

    with pytest.raises(DeskprofError, match="takes an opened capture"):
        deskprof.findings(42)
