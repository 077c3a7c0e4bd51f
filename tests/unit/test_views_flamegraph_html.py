"""The flame graph page: self-contained, carries the data, safe with hostile frame names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from deskprof.errors import DeskprofError
from deskprof.views import HtmlView, flamegraph, flamegraph_html
from tests.unit.test_views_flametree import LIST, MAIN, QUERY, T0, ten_row_capture

DATA = re.compile(r'<script type="application/json" id="fg-data">(.*?)</script>', re.S)


def embedded(page: str) -> dict:
    match = DATA.search(page)
    assert match, "no data element"
    return json.loads(match.group(1))


def names_of(data: dict) -> list[str]:
    trie = data["trie"]
    return [trie["names"][i] for i in trie["name"]]


def test_page_is_self_contained():
    samples, stacks = ten_row_capture()
    page = flamegraph_html(samples, stacks, title="ten rows")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page, re.I)
    assert "<link" not in page and "<script src" not in page
    for hook in ('id="fg-search"', 'id="fg-reset"', 'id="fg-endpoint"', 'id="fg-matched"'):
        assert hook in page
    assert 'name="fg-state"' in page and "data-name" in page  # the JS tags frames
    assert "d3-flame-graph" in page and "https://d3js.org v7.9.2" in page  # vendored, inline


def test_page_carries_every_sample_by_endpoint_and_state():
    samples, stacks = ten_row_capture()
    data = embedded(flamegraph_html(samples, stacks, short_paths=False))
    assert data["mode"] == "profile"
    assert sum(data["rows"]["weight"]) == 24
    assert data["endpoints"][0] == "GET /list"  # heaviest first
    assert set(data["endpoints"]) == {"GET /list", "GET /item", ""}
    names = names_of(data)
    assert {MAIN, LIST, QUERY} <= set(names)
    up = data["trie"]["up"]
    assert all(1 <= u <= i for i, u in enumerate(up) if i)
    by_state = {0: 0, 1: 0}
    for state, weight in zip(data["rows"]["state"], data["rows"]["weight"], strict=True):
        by_state[state] += weight
    assert by_state == {0: 13, 1: 11}
    assert data["period_ms"] == pytest.approx(10.0)
    assert data["initial"] == {"endpoint": -1, "state": "cpu"}


def test_filters_narrow_the_embedded_data_and_the_subtitle_says_so():
    samples, stacks = ten_row_capture()
    page = flamegraph_html(
        samples, stacks, endpoint="GET /list", start_ns=T0, end_ns=T0 + 60_000_000, state="both"
    )
    data = embedded(page)
    assert sum(data["rows"]["weight"]) == 6 and data["endpoints"] == ["GET /list"]
    assert "endpoint GET /list" in page and "window" in page
    assert "6 samples (on CPU and waiting)" in page
    with pytest.raises(DeskprofError, match="state must be one of"):
        flamegraph_html(samples, stacks, state="idle")


def test_hostile_frame_names_cannot_break_out_of_the_page():
    samples, stacks = ten_row_capture()
    evil = "</script><script>alert(1)</script> (<img src=x onerror=alert(2)>:1)"
    stacks.at[0, "frames"] = [MAIN, evil]
    page = flamegraph_html(samples, stacks, title="<b>t</b>")
    data_text = DATA.search(page).group(1)
    assert "<" not in data_text and ">" not in data_text
    assert "</script><script>alert" not in page
    assert "<b>t</b>" not in page and "&lt;b&gt;t&lt;/b&gt;" in page
    assert any(n.startswith("</script><script>alert(1)") for n in names_of(embedded(page)))


def test_notebook_view_isolates_scripts_and_saves(tmp_path):
    samples, stacks = ten_row_capture()
    capture = SimpleNamespace(samples=samples, stacks=stacks, cpu_rate_hz=50.0)
    view = flamegraph(capture, title="from a capture")
    assert isinstance(view, HtmlView) and "50 Hz ·" in view.html
    shown = view._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in shown
    assert "<script" not in shown and "&lt;script" in shown
    out = view.save(tmp_path / "sub" / "flame.html")
    assert out.read_text(encoding="utf-8") == view.html
    with pytest.raises(DeskprofError, match="samples, stacks"):
        flamegraph(object())


DRIVER = """<script>
setTimeout(function () {
  var box = document.getElementById('fg-search');
  box.value = 'query'; box.dispatchEvent(new Event('input'));
  var frame = document.querySelector('g.frame[data-name^="handle_list"]');
  frame.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  var out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({
    matched: document.getElementById('fg-matched').textContent,
    frames: Array.from(document.querySelectorAll('g.frame')).map(function (g) {
      return g.getAttribute('data-name'); }),
    faded: document.querySelectorAll('g.frame.fade').length});
  document.body.appendChild(out);
}, 300);
</script></body>"""


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (Debian package)")
def test_page_renders_zooms_and_searches_in_headless_chromium(tmp_path):
    samples, stacks = ten_row_capture()
    page = flamegraph_html(samples, stacks, state="both").replace("</body>", DRIVER)
    path = tmp_path / "flame.html"
    path.write_text(page, encoding="utf-8")
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--window-size=1200,800",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    ).stdout
    probe = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert probe, f"the page did not run: {dom[:300]}"
    result = json.loads(
        probe.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert "handle_list (/srv/api.py:10)" in result["frames"]
    assert result["matched"].startswith("matched 2 frames: 12 of 24 samples (50.0%)")
    assert result["faded"] == 2  # zoomed: "all" and main are ancestors of the clicked frame
