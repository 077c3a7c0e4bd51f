"""``deskprof report`` on a real capture: content, redaction of a planted secret, and the
page as a person sees it in headless Chromium (console, search, click, screenshot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "Zebra-7f3c9-planted"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# a path, not an import: importing a locustfile would gevent-patch the test process
SECRET_WORKLOAD = Path(__file__).resolve().parents[1] / "workloads" / "secret_search.py"


def deskprof(*args: str, env: dict | None = None, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "deskprof", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def secret_bundle(tmp_path_factory, seeded_sqlite) -> Path:
    """A capture of the reference service under a workload that sends ``SECRET`` in a
    search and a comment, launched with ``SECRET`` in its command line, parameters kept."""
    import os

    work = tmp_path_factory.mktemp("report")
    database = work / "opendesk.sqlite3"
    shutil.copy(seeded_sqlite.removeprefix("sqlite:///"), database)
    port = free_port()
    bundle = work / "bundle"
    env = {**os.environ, "DESKPROF_TEST_SECRET": SECRET}
    proc = deskprof(
        "capture", "--url", f"http://127.0.0.1:{port}",
        "--launch", f"env OPENDESK_DATABASE_URL=sqlite:///{database} API_TOKEN={SECRET} "
                    f"{sys.executable} -m opendesk serve --port {port}",
        "--duration", "6", "--sources", "cpu,sql,system", "--keep-parameters",
        "--workload", str(SECRET_WORKLOAD), "--users", "2", "--out", str(bundle),
        env=env,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return bundle


def test_the_secret_reaches_the_bundle_but_not_the_report(secret_bundle, tmp_path):
    # the planted secret really is in what was captured ...
    queries = pd.read_parquet(secret_bundle / "queries.parquet")
    assert queries["parameters"].str.contains(SECRET).any(), "kept parameters carry it"
    assert SECRET in (secret_bundle / "manifest.json").read_text()  # the launch command
    # ... and in no report
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    for out in (html, md):
        proc = deskprof("report", str(secret_bundle), "--out", str(out))
        assert proc.returncode == 0, proc.stderr
    texts = [html.read_text(), md.read_text()]
    texts += [p.read_text(errors="replace") for p in (tmp_path / "r_files").glob("*.html")]
    for text in texts:
        assert SECRET not in text
    # nor in the load generator's labels: its table, its raw records, Locust's own log
    workload = pd.read_parquet(secret_bundle / "workload.parquet")
    assert (workload["name"] == "/tickets?q=***").any(), workload["name"].unique()
    assert not workload["name"].str.contains(SECRET).any()
    for raw in (secret_bundle / "raw" / "workload").iterdir():
        assert SECRET not in raw.read_text(errors="replace"), raw.name
    findings = deskprof("findings", str(secret_bundle), "--format", "json")
    assert findings.returncode == 0 and SECRET not in findings.stdout
    page = texts[0]
    # what the report shows of a capture (the findings themselves are tested elsewhere;
    # a 6 s capture of small data on a busy machine may not repeat a query often enough)
    assert "GET /tickets" in page and "Findings (" in page and "Per endpoint" in page
    assert "Query profile" in page and 'id="flamegraph-1"' in page
    assert "<script src=" not in page.split("srcdoc=")[0]  # nothing fetched from a network
    assert html.stat().st_size < 5 * 1024 * 1024


def test_a_directory_that_is_no_bundle_gets_one_line(tmp_path):
    proc = deskprof("report", str(tmp_path), "--out", str(tmp_path / "x.html"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "neither a capture bundle" in proc.stderr


@pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs Debian's chromium and chromium-driver (installed by .ci/run as root)",
)
def test_the_report_renders_and_its_flame_graph_responds_in_chromium(secret_bundle, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path / "report.html"
    assert deskprof("report", str(secret_bundle), "--out", str(out)).returncode == 0
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1800",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        driver.get(out.as_uri())
        findings = driver.find_elements(By.CSS_SELECTOR, "li.finding")
        assert findings
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report-summary.png"))  # the top, as opened
        # the summary comes first and names what to fix first
        first = driver.find_element(By.CSS_SELECTOR, "main > section")
        assert first.get_attribute("id") == "summary"
        assert "What to fix first" in first.text
        # ranked by total saving, as it says, and no number printed with an exponent
        totals = [float(f.get_attribute("data-total-ms")) for f in findings]
        assert totals == sorted(totals, reverse=True), totals
        page = driver.find_element(By.TAG_NAME, "body").text
        assert not re.search(r"\b\d+(?:\.\d+)?e[+-]\d+\b", page), re.findall(
            r".{30}\d+(?:\.\d+)?e[+-]\d+.{10}", page
        )[:3]
        # a finding's link to its frames searches them in the flame graph
        link = driver.find_elements(By.CSS_SELECTOR, "a.show-frames")
        wanted = link[0].get_attribute("data-search") if link else ""
        if link:
            driver.execute_script("arguments[0].click();", link[0])
        driver.switch_to.frame(driver.find_element(By.ID, "flamegraph-1"))
        if wanted:
            WebDriverWait(driver, 10).until(
                lambda d: d.find_element(By.ID, "fg-search").get_attribute("value") == wanted
            )
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "g.frame[data-name]"))
        frames = driver.find_elements(By.CSS_SELECTOR, "g.frame[data-name]")
        names = [f.get_attribute("data-name") for f in frames]
        assert any("list_tickets" in n for n in names), names[:20]

        search = driver.find_element(By.ID, "fg-search")
        search.clear()
        search.send_keys("list_tickets")
        wait.until(lambda d: "matched" in d.find_element(By.ID, "fg-matched").text)
        matched = driver.find_element(By.ID, "fg-matched").text
        assert not matched.startswith("matched 0"), matched

        target = next(f for f in frames if "list_tickets" in f.get_attribute("data-name"))
        before = len(driver.find_elements(By.CSS_SELECTOR, "g.frame[data-name]"))
        target.click()
        # zoomed: the clicked frame fills the width, its ancestors fade, siblings go
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "g.frame.fade"))
        after = len(driver.find_elements(By.CSS_SELECTOR, "g.frame[data-name]"))
        assert after <= before
        driver.switch_to.default_content()
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, json.dumps(errors, indent=1)
    finally:
        driver.quit()
