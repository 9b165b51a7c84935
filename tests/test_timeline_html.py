"""The HTML timeline page: its embedded data, and how it behaves in a real browser.

The browser tests start headless Chromium themselves and talk to it over the
DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-separated JSON
messages on file descriptors 3 and 4), so they need no Python packages beyond
the standard library. Through it they load a page, wait for the page to say it
has drawn (``<body data-ready="1">``), run small scripts that call the page's
``window.concurrentlyTimeline`` hooks or dispatch real pointer, wheel and key
events, take a screenshot, and collect every console message and uncaught
exception the page produced.

Without Chromium the browser tests skip, except on CI (``CI`` set), where a
missing browser is a failure.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import os
import queue
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_concurrently.timeline_html import render_html

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO_ROOT / "build" / "timeline.png"
BROWSER_TIMEOUT = 60.0
WINDOW = (1400, 900)

# Without the background-networking flags a machine with no internet refuses
# Chromium's many attempts to phone home, and the refusals slow every launch.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)

DATA_OPEN = '<script type="application/json" id="timeline-data">'

PROBE_TEST = "tests/test_probe.py::test_probe[slow-db]"
EVIL = (
    "tests/test_evil.py::test_x[</script><script>alert(1)</script>"
    "<script>document.documentElement.dataset.pwned='script'</script>"
    "<img src=x onerror=\"document.documentElement.dataset.pwned='img'\">"
    "&amp; &lt;b&gt; \"quoted\" 'single' <!-- comment -->]"
)


# ---------------------------------------------------------------- synthetic data

OUTCOME_WEIGHTS = {
    "passed": 84,
    "failed": 4,
    "error": 2,
    "skipped": 4,
    "xfailed": 2,
    "xpassed": 1,
    "interrupted": 1,
    "rerun": 2,
}


def _pack_lanes(items: list[dict[str, Any]]) -> int:
    """Interval partitioning, as the run does it: overlapping bars never share a lane."""

    def bar_start(it: dict[str, Any]) -> float:
        return float(it["queued"] if it["queued"] is not None else it["setup"][0])

    def bar_end(it: dict[str, Any]) -> float:
        return float(max(p[1] for p in (it["setup"], it["call"], it["teardown"]) if p is not None))

    busy: list[tuple[float, int]] = []
    free: list[int] = []
    lanes = 0
    for it in sorted(items, key=bar_start):
        while busy and busy[0][0] <= bar_start(it):
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, lanes = lanes, lanes + 1
        it["lane"] = lane
        heapq.heappush(busy, (bar_end(it), lane))
    return lanes


def synthetic_timeline(n_tests: int, *, seed: int = 20261126) -> dict[str, Any]:
    """A plausible run: mixed outcomes, admission and lock waits, 3 fixtures, 2 stalls."""
    rng = random.Random(seed)
    wall = 12.0
    outcomes = list(OUTCOME_WEIGHTS)
    weights = list(OUTCOME_WEIGHTS.values())
    tests: list[dict[str, Any]] = []
    for i in range(n_tests - 1):
        start = 0.0 if i == 0 else rng.uniform(0.0, wall - 1.3)
        outcome = rng.choices(outcomes, weights)[0]
        queued: float | None = start
        admission_for = None
        if i and rng.random() < 0.1:
            queued = max(0.0, start - rng.uniform(0.02, 0.6))
            admission_for = rng.choice(["resource 'db'", "resource 'network'", None])
        setup = [start, start + rng.expovariate(1 / 0.02)]
        call: list[float] | None = [setup[1], setup[1] + min(rng.expovariate(1 / 0.2), 1.0)]
        if outcome == "skipped" or (outcome == "error" and rng.random() < 0.5):
            call = None
        after = call[1] if call else setup[1]
        teardown: list[float] | None = [after, after + rng.expovariate(1 / 0.01)]
        if outcome == "interrupted":
            teardown = None
        waits = []
        if call and rng.random() < 0.08:
            ws = rng.uniform(call[0], (call[0] + call[1]) / 2)
            we = ws + (call[1] - ws) * rng.uniform(0.2, 0.8)
            waits.append({"start": ws, "end": we, "for": rng.choice(["lock 'db'", "lock 'cache'"])})
        message = None
        if outcome in ("failed", "error"):
            message = f"AssertionError: assert {i} == {i + 1}"
        tests.append(
            {
                "nodeid": f"tests/test_mod_{i % 60:02d}.py::test_case_{i // 60}[{i}]",
                "outcome": outcome,
                "lane": -1,
                "queued": queued,
                "setup": setup,
                "call": call,
                "teardown": teardown,
                "waits": waits,
                "admission_for": admission_for,
                "resources": rng.choice([[], [], ["db"], ["db", "cache"], ["network"]]),
                "message": message,
                "concurrent": rng.random() > 0.01,
            }
        )
    # One test with known values, for the details panel checks.
    tests.append(
        {
            "nodeid": PROBE_TEST,
            "outcome": "failed",
            "lane": -1,
            "queued": 4.0,
            "setup": [4.25, 4.375],
            "call": [4.375, 5.5],
            "teardown": [5.5, 5.5625],
            "waits": [{"start": 4.5, "end": 4.75, "for": "lock 'db'"}],
            "admission_for": "resource 'db'",
            "resources": ["db", "group 'slow'"],
            "message": "AssertionError: assert 1 == 2",
            "concurrent": True,
        }
    )
    lanes = _pack_lanes(tests)
    stalls = [
        {
            "start": 3.0,
            "seconds": 0.4,
            "nodeid": tests[7]["nodeid"],
            "where": "tests/test_mod_07.py:12 in test_case_0",
        },
        {
            "start": 8.2,
            "seconds": 0.05,
            "nodeid": tests[42]["nodeid"],
            "where": "tests/test_mod_42.py:30 in test_case_0",
        },
    ]
    end = max(max(p[1] for p in (t["setup"], t["call"], t["teardown"]) if p) for t in tests)
    test_seconds = sum(
        max(p[1] for p in (t["setup"], t["call"], t["teardown"]) if p) - t["setup"][0]
        for t in tests
    )
    waited = sum(w["end"] - w["start"] for t in tests for w in t["waits"])
    waited += sum(t["setup"][0] - t["queued"] for t in tests)
    return {
        "schema": "pytest-concurrently-timeline/1",
        "created": "2026-11-26T23:30:00+00:00",
        "command": "pytest -q tests --concurrently-timeline build/timeline.html",
        "summary": {
            "tests": len(tests),
            "wall_seconds": end,
            "test_seconds": test_seconds,
            "speedup": test_seconds / end,
            "peak_in_flight": lanes,
            "stalled_seconds": sum(s["seconds"] for s in stalls),
            "waited_seconds": waited,
        },
        "tests": tests,
        "fixtures": [
            {
                "id": "service (session)",
                "name": "service",
                "scope": "session",
                "lane": 0,
                "setup": [0.0, 0.2],
                "teardown": [end - 0.1, end],
                "users": len(tests),
            },
            {
                "id": "db (module tests/test_mod_01.py)",
                "name": "db",
                "scope": "module",
                "lane": 1,
                "setup": [0.1, 0.3],
                "teardown": [6.0, 6.1],
                "users": 84,
            },
            {
                "id": "cache (module tests/test_mod_02.py)",
                "name": "cache",
                "scope": "module",
                "lane": 1,
                "setup": [6.2, 6.25],
                "teardown": None,
                "users": 83,
            },
        ],
        "stalls": stalls,
    }


def small_timeline() -> dict[str, Any]:
    return {
        "schema": "pytest-concurrently-timeline/1",
        "created": "2026-11-26T23:30:00+00:00",
        "command": "",
        "summary": {
            "tests": 2,
            "wall_seconds": 1.2,
            "test_seconds": 2.0,
            "speedup": 1.7,
            "peak_in_flight": 2,
            "stalled_seconds": 0.0,
            "waited_seconds": 0.0,
        },
        "tests": [
            {
                "nodeid": "tests/test_a.py::test_x[1]",
                "outcome": "passed",
                "lane": 0,
                "queued": 0.0,
                "setup": [0.0, 0.1],
                "call": [0.1, 1.1],
                "teardown": [1.1, 1.15],
                "waits": [],
                "admission_for": None,
                "resources": [],
                "message": None,
                "concurrent": True,
            },
            {
                "nodeid": "tests/test_a.py::test_y",
                "outcome": "skipped",
                "lane": 1,
                "queued": 0.0,
                "setup": [0.0, 0.05],
                "call": None,
                "teardown": [0.05, 0.06],
                "waits": [],
                "admission_for": None,
                "resources": [],
                "message": None,
                "concurrent": True,
            },
        ],
        "fixtures": [],
        "stalls": [],
    }


def evil_timeline() -> dict[str, Any]:
    data = small_timeline()
    data["command"] = "pytest -k '<b>bold</b></script><script>alert(1)</script>'"
    data["tests"][0].update(
        nodeid=EVIL,
        outcome="failed",
        message="AssertionError: '</script><img src=x onerror=alert(1)>' != '&lt;'",
        resources=["<img src=x onerror=\"document.documentElement.dataset.pwned='res'\">"],
        waits=[{"start": 0.2, "end": 0.3, "for": "lock '</script><script>alert(1)</script>'"}],
    )
    data["fixtures"] = [
        {
            "id": "<script>alert(1)</script> (session)",
            "name": "<script>alert(1)</script>",
            "scope": "session",
            "lane": 0,
            "setup": [0.0, 0.1],
            "teardown": [1.1, 1.2],
            "users": 2,
        }
    ]
    data["stalls"] = [
        {
            "start": 0.5,
            "seconds": 0.1,
            "nodeid": EVIL,
            "where": "</script><script>alert(1)</script>",
        }
    ]
    return data


# ---------------------------------------------------------------- pure Python


def embedded_json(page: str) -> Any:
    start = page.index(DATA_OPEN) + len(DATA_OPEN)
    end = page.index("</script>", start)
    return json.loads(page[start:end])


@pytest.mark.parametrize("make", [small_timeline, evil_timeline, lambda: synthetic_timeline(300)])
def test_data_round_trips_out_of_the_page(make: Any) -> None:
    data = make()
    page = render_html(data)
    assert embedded_json(page) == data
    assert page.count(DATA_OPEN) == 1


def test_data_cannot_end_its_script_element() -> None:
    page = render_html(evil_timeline())
    start = page.index(DATA_OPEN) + len(DATA_OPEN)
    payload = page[start : page.index("</script>", start)]
    assert "<" not in payload
    assert ">" not in payload
    assert "&" not in payload
    # The page holds exactly the template's own two script elements.
    assert len(re.findall(r"<script\b", page, re.IGNORECASE)) == 2


def test_page_is_self_contained() -> None:
    page = render_html(synthetic_timeline(50))
    assert "http://" not in page
    assert "https://" not in page
    # Nothing is loaded from anywhere: no src/href attributes, no CSS imports.
    assert not re.search(r"\b(src|href)\s*=", page, re.IGNORECASE)
    assert "@import" not in page
    assert "url(" not in page
    assert page.startswith("<!DOCTYPE html>")
    assert "__TIMELINE_DATA__" not in page


def test_accepts_any_mapping() -> None:
    data = small_timeline()
    data["summary"] = types.MappingProxyType(data["summary"])
    page = render_html(types.MappingProxyType(data))
    assert embedded_json(page)["summary"]["tests"] == 2


def test_refuses_numbers_json_cannot_carry() -> None:
    data = small_timeline()
    data["summary"]["speedup"] = float("nan")
    with pytest.raises(ValueError, match="JSON compliant"):
        render_html(data)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def chromium() -> str:
    if sys.platform == "win32":
        pytest.skip("the harness hands Chromium its pipes as file descriptors 3 and 4 (POSIX)")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is required on CI for the timeline page tests (apt install chromium)"
            )
        pytest.skip("chromium is not installed")
    return path


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol on a pipe.

    Every wait shares one deadline, BROWSER_TIMEOUT after the launch, so a hung
    browser fails the test instead of stalling the run.
    """

    def __init__(self, executable: str, workdir: Path, *, scale: float = 1.0) -> None:
        import fcntl  # POSIX only; imported here so the rest of the module loads anywhere

        self.deadline = time.monotonic() + BROWSER_TIMEOUT
        self.console: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        self._ids = itertools.count(1)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.log = workdir / "chromium.log"
        # Chromium reads commands from fd 3 and writes to fd 4. The child's
        # ends are first moved to 10 and up so that the dup2 calls below can
        # never overwrite one with the other.
        child_reads, self._to_browser = os.pipe()
        self._from_browser, child_writes = os.pipe()
        child_in = fcntl.fcntl(child_reads, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(child_writes, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(child_reads)
        os.close(child_writes)

        def wire() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir)
        with self.log.open("wb") as log:
            # A session of its own, so that a hang can be ended together with
            # every helper process Chromium started.
            self.proc = subprocess.Popen(
                [
                    executable,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--window-size={WINDOW[0]},{WINDOW[1]}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                close_fds=False,  # it would close fds 3 and 4 after wire() made them
                preexec_fn=wire,
                start_new_session=True,
            )
        os.close(child_in)
        os.close(child_out)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": WINDOW[0],
                    "height": WINDOW[1],
                    "deviceScaleFactor": scale,
                    "mobile": False,
                },
            )
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        buffer = bytearray()
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._inbox.put(None)
                return
            buffer += chunk
            while (end := buffer.find(b"\0")) >= 0:
                self._inbox.put(json.loads(bytes(buffer[:end])))
                del buffer[: end + 1]

    def _send(self, method: str, params: dict[str, Any] | None = None) -> int:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data) :]
        return ident

    def _next(self) -> dict[str, Any]:
        try:
            message = self._inbox.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"chromium did not finish within {BROWSER_TIMEOUT:.0f} s") from None
        if message is None:
            raise RuntimeError("chromium exited:\n" + self.log.read_text(errors="replace")[-3000:])
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            args = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.console.append(f"console.{params.get('type')}: {' '.join(args)}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.console.append(f"uncaught: {text}")
        elif method == "Page.javascriptDialogOpening":
            # A dialog would block the page until answered; answer and report it.
            self.console.append(f"dialog: {params.get('message')}")
            self._send("Page.handleJavaScriptDialog", {"accept": True})

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its result."""
        ident = self._send(method, params)
        while True:
            message = self._next()
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def open(self, url: str, *, wait_ready: bool = True) -> None:
        """Load *url*; with *wait_ready*, until the page has drawn for the first time."""
        seen = len(self.events)
        self.call("Page.navigate", {"url": url})
        while not any(e["method"] == "Page.loadEventFired" for e in self.events[seen:]):
            self._next()
        if wait_ready:
            self.evaluate(
                "new Promise((resolve) => { const check = () => document.body.dataset.ready === '1'"
                " ? resolve(true) : requestAnimationFrame(check); check(); })"
            )

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression, after awaiting it if it is a promise."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(
                "script failed: "
                + (details.get("exception", {}).get("description") or details.get("text", ""))
            )
        return result["result"].get("value")

    def probe(self, body: str) -> dict[str, Any]:
        """Run *body* as an async function with ``tl``, ``frame`` and ``out``; return ``out``."""
        value: dict[str, Any] = self.evaluate(
            "(async () => { const tl = window.concurrentlyTimeline;"
            " const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));"
            f" const out = {{}}; {body}\n; return out; }})()"
        )
        return value

    def dataset(self) -> dict[str, str]:
        """``document.body.dataset``: what the page says it drew."""
        value: dict[str, str] = self.evaluate("({ ...document.body.dataset })")
        return value

    def screenshot(self, path: Path) -> None:
        path.write_bytes(
            base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.session = None
                self._send("Browser.close")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self._to_browser)
        # The reader ends once the browser's end of the pipe is gone.
        self._reader.join(timeout=10)
        if not self._reader.is_alive():
            os.close(self._from_browser)


@contextmanager
def page(
    chromium: str,
    html: str,
    workdir: Path,
    *,
    scale: float = 1.0,
    before: str | None = None,
    fragment: str = "",
) -> Iterator[Browser]:
    """A browser showing *html*, drawn; *before* runs ahead of the page's own scripts."""
    path = workdir / "timeline.html"
    path.write_text(html, encoding="utf-8")
    browser = Browser(chromium, workdir, scale=scale)
    try:
        if before is not None:
            browser.call("Page.addScriptToEvaluateOnNewDocument", {"source": before})
        browser.open(path.as_uri() + fragment)
        yield browser
    finally:
        browser.close()


def js(value: object) -> str:
    """*value* as a JavaScript literal."""
    return json.dumps(value)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_harness_sees_console_errors(chromium: str, tmp_path: Path) -> None:
    # The "no console errors" checks below would pass vacuously if the
    # harness stopped seeing them.
    path = tmp_path / "broken.html"
    path.write_text(
        "<!DOCTYPE html><html><head></head><body><script>"
        "console.error('deliberate console error');"
        "setTimeout(() => { notDefinedAnywhere(); }, 10);"
        "</script></body></html>"
    )
    browser = Browser(chromium, tmp_path)
    try:
        browser.open(path.as_uri(), wait_ready=False)
        browser.evaluate("new Promise((resolve) => setTimeout(resolve, 100))")
    finally:
        browser.close()
    text = "\n".join(browser.console)
    assert "console.error: deliberate console error" in text
    assert "uncaught: ReferenceError: notDefinedAnywhere is not defined" in text


def test_five_thousand_tests_draw_and_screenshot(chromium: str, tmp_path: Path) -> None:
    data = synthetic_timeline(5000)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with page(chromium, render_html(data), tmp_path) as browser:
        drawn = browser.dataset()
        browser.screenshot(SCREENSHOT)
    assert browser.console == []
    assert drawn["ready"] == "1"
    # All 5,000 fit in the initial full view: every test bar is drawn.
    assert drawn["bars"] == "5000"
    assert drawn["fixtureBars"] == "3"
    assert drawn["stallMarks"] == "2"
    assert png_size(SCREENSHOT) == WINDOW
    print(f"5,000 tests: first draw {drawn['drawMs']} ms after the script started")


def test_selecting_a_bar_shows_its_details(chromium: str, tmp_path: Path) -> None:
    data = synthetic_timeline(5000)
    sample = [t["nodeid"] for t in random.Random(5).sample(data["tests"], 300)]
    probe = f"""
      const nodeid = {js(PROBE_TEST)}, sample = {js(sample)};
      const details = () => document.getElementById("details").innerText;
      out.selected = tl.select(nodeid);
      out.details = details();
      await frame();
      // Hit-testing agrees with where the page says the bars are.
      const p = tl.locate(nodeid);
      out.hit = tl.hit(p.x, p.y);
      out.sampleMisses = sample.filter((id) => {{
        const q = tl.locate(id);
        const h = tl.hit(q.x, q.y);
        return !h || h.nodeid !== id;
      }});
      // The same through real pointer events: hover, then click.
      tl.clear();
      out.overview = details();
      const canvas = document.getElementById("overlay");
      const r = canvas.getBoundingClientRect();
      const at = {{ clientX: r.left + p.x, clientY: r.top + p.y, bubbles: true, button: 0,
                   pointerId: 1, isPrimary: true }};
      canvas.dispatchEvent(new PointerEvent("pointermove", at));
      out.tip = document.getElementById("tip").innerText;
      canvas.dispatchEvent(new PointerEvent("pointerdown", at));
      canvas.dispatchEvent(new PointerEvent("pointerup", at));
      out.clicked = details();
      // Hovering a stall mark on the axis names who stalled the loop.
      for (let x = 0; x < r.width; x++) {{
        const h = tl.hit(x, 20);
        if (h && h.kind === "stall") {{ out.stallHit = h; break; }}
      }}
      tl.selectStall(0);
      out.stallDetails = details();
      out.fixtureSelected = tl.select("service (session)");
      out.fixtureDetails = details();
      // The search box selects the matching test.
      tl.clear();
      const find = document.getElementById("find");
      find.value = "TEST_PROBE";
      find.dispatchEvent(new KeyboardEvent("keydown", {{ key: "Enter", bubbles: true }}));
      out.found = details();
      out.foundCount = document.getElementById("find-count").textContent;
    """
    with page(chromium, render_html(data), tmp_path) as browser:
        out = browser.probe(probe)
    assert browser.console == []
    assert out["selected"] is True
    text = out["details"]
    assert PROBE_TEST in text
    for expected in (
        "failed",
        "AssertionError: assert 1 == 2",
        "125 ms",  # setup
        "1.13 s",  # call
        "62.5 ms",  # teardown
        "250 ms for admission (resource 'db')",
        "250 ms for lock 'db'",
        "group 'slow'",
    ):
        assert expected in text, (expected, text)
    assert out["hit"]["kind"] == "test"
    assert out["hit"]["nodeid"] == PROBE_TEST
    assert out["sampleMisses"] == []
    assert PROBE_TEST not in out["overview"]
    assert PROBE_TEST in out["tip"]
    assert "AssertionError: assert 1 == 2" in out["tip"]
    assert PROBE_TEST in out["clicked"]
    assert "1.13 s" in out["clicked"]
    assert out["stallHit"]["kind"] == "stall"
    assert out["stallHit"]["nodeid"] in {s["nodeid"] for s in data["stalls"]}
    stall = data["stalls"][0]
    assert stall["nodeid"] in out["stallDetails"]
    assert stall["where"] in out["stallDetails"]
    assert "400 ms" in out["stallDetails"]
    assert out["fixtureSelected"] is True
    assert "session" in out["fixtureDetails"]
    assert "5,000 tests" in out["fixtureDetails"]
    assert PROBE_TEST in out["found"]
    assert out["foundCount"] == "1/1"


def test_zoom_and_pan(chromium: str, tmp_path: Path) -> None:
    probe = """
      const bars = () => Number(document.body.dataset.bars);
      const key = async (k) => {
        document.body.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
        await frame();
      };
      out.full = tl.view(); out.fullBars = bars();
      for (let i = 0; i < 6; i++) await key("+");
      out.zoomed = tl.view(); out.zoomedBars = bars();
      await key("0");
      out.reset = tl.view(); out.resetBars = bars();
      const canvas = document.getElementById("overlay");
      const r = canvas.getBoundingClientRect();
      const at = (x) => ({ clientX: r.left + x, clientY: r.top + 300, bubbles: true, button: 0,
                           pointerId: 1, isPrimary: true });
      canvas.dispatchEvent(new WheelEvent("wheel", { ...at(400), deltaY: -600, cancelable: true }));
      await frame();
      out.wheeled = tl.view();
      canvas.dispatchEvent(new PointerEvent("pointerdown", at(600)));
      canvas.dispatchEvent(new PointerEvent("pointermove", at(400)));
      canvas.dispatchEvent(new PointerEvent("pointerup", at(400)));
      await frame();
      out.dragged = tl.view();
      await key("-");
      out.zoomedOut = tl.view();
      // Tall lanes overflow the view; dragging up scrolls down through them.
      await key("t");
      out.tall = tl.view(); out.tallBars = bars();
      canvas.dispatchEvent(new PointerEvent("pointerdown", at(500)));
      canvas.dispatchEvent(new PointerEvent("pointermove", { ...at(500), clientY: r.top + 100 }));
      canvas.dispatchEvent(new PointerEvent("pointerup", { ...at(500), clientY: r.top + 100 }));
      await frame();
      out.scrolled = tl.view();
    """
    with page(chromium, render_html(synthetic_timeline(2000)), tmp_path) as browser:
        out = browser.probe(probe)
    assert browser.console == []

    def width(v: dict[str, float]) -> float:
        return v["end"] - v["start"]

    assert width(out["zoomed"]) < width(out["full"]) / 10
    assert 0 < out["zoomedBars"] < out["fullBars"] == 2000
    assert out["reset"] == out["full"]
    assert out["resetBars"] == 2000
    assert width(out["wheeled"]) < width(out["full"])
    # Dragging 200 px to the left moves the view later in time, same width.
    assert out["dragged"]["start"] > out["wheeled"]["start"]
    assert width(out["dragged"]) == pytest.approx(width(out["wheeled"]))
    assert width(out["zoomedOut"]) > width(out["dragged"])
    assert out["tall"]["laneHeight"] == 16
    assert out["tallBars"] < out["fullBars"]
    assert out["scrolled"]["scrollY"] == out["tall"]["scrollY"] + 200


def test_device_pixel_ratio(chromium: str, tmp_path: Path) -> None:
    probe = """
      const c = document.getElementById("base");
      out.pixels = [c.width, c.height];
      out.css = [c.getBoundingClientRect().width, c.getBoundingClientRect().height];
      out.ratio = devicePixelRatio;
    """
    with page(chromium, render_html(synthetic_timeline(500)), tmp_path, scale=2) as browser:
        out = browser.probe(probe)
        drawn = browser.dataset()
    assert browser.console == []
    assert out["ratio"] == 2
    assert out["pixels"] == [round(out["css"][0] * 2), round(out["css"][1] * 2)]
    assert drawn["bars"] == "500"


def test_markup_in_the_data_stays_text(chromium: str, tmp_path: Path) -> None:
    data = evil_timeline()
    # Runs before the page's scripts: any alert() would be recorded.
    before = "window.alert = () => { document.documentElement.dataset.alerted = '1'; };"
    probe = f"""
      const nodeid = {js(EVIL)};
      out.selected = tl.select(nodeid);
      out.details = document.getElementById("details").innerText;
      out.command = document.getElementById("command").textContent;
      const p = tl.locate(nodeid);
      const canvas = document.getElementById("overlay");
      const r = canvas.getBoundingClientRect();
      canvas.dispatchEvent(new PointerEvent("pointermove",
        {{ clientX: r.left + p.x, clientY: r.top + p.y, bubbles: true }}));
      out.tip = document.getElementById("tip").innerText;
      tl.selectStall(0);
      out.stall = document.getElementById("details").innerText;
      tl.select({js(data["fixtures"][0]["id"])});
      out.fixture = document.getElementById("details").innerText;
      await frame(); await frame();
      out.images = document.images.length;
      out.scripts = document.scripts.length;
      out.pwned = document.documentElement.dataset.pwned || null;
      out.alerted = document.documentElement.dataset.alerted || null;
    """
    with page(chromium, render_html(data), tmp_path, before=before) as browser:
        out = browser.probe(probe)
    assert browser.console == []
    assert out["selected"] is True
    assert out["pwned"] is None
    assert out["alerted"] is None
    assert out["images"] == 0
    # Only the template's own two script elements.
    assert out["scripts"] == 2
    assert EVIL in out["details"]
    assert data["tests"][0]["message"] in out["details"]
    assert data["tests"][0]["resources"][0] in out["details"]
    assert "lock '</script><script>alert(1)</script>'" in out["details"]
    assert out["command"] == data["command"]
    assert EVIL in out["tip"]
    assert "</script><script>alert(1)</script>" in out["stall"]
    assert "<script>alert(1)</script> (session)" in out["fixture"]


def test_a_link_can_select_a_test(chromium: str, tmp_path: Path) -> None:
    nodeid = "tests/test_a.py::test_x[1]"
    fragment = "#test=" + urllib.parse.quote(nodeid, safe="")
    with page(chromium, render_html(small_timeline()), tmp_path, fragment=fragment) as browser:
        text = browser.evaluate('document.getElementById("details").innerText')
    assert browser.console == []
    assert nodeid in text
    assert "1.00 s" in text


def test_empty_timeline_still_loads(chromium: str, tmp_path: Path) -> None:
    data = small_timeline()
    data["tests"] = []
    data["summary"] = {}
    with page(chromium, render_html(data), tmp_path) as browser:
        drawn = browser.dataset()
    assert browser.console == []
    assert drawn["ready"] == "1"
    assert drawn["bars"] == "0"


def test_twenty_thousand_tests_performance(chromium: str, tmp_path: Path) -> None:
    # A rough look only: the timings are printed, never asserted.
    probe = """
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) { tl.zoom(0.7); await frame(); }
      out.tenZoomsMs = performance.now() - t0;
      out.bars = Number(document.body.dataset.bars);
    """
    with page(chromium, render_html(synthetic_timeline(20000)), tmp_path) as browser:
        drawn = browser.dataset()
        out = browser.probe(probe)
    assert browser.console == []
    assert drawn["ready"] == "1"
    assert int(drawn["bars"]) > 0
    print(
        f"20,000 tests: first draw {drawn['drawMs']} ms after the script started, "
        f"{drawn['bars']} bars in view; ten zoom steps with redraws {out['tenZoomsMs']:.0f} ms"
    )


RUN_SCREENSHOT = REPO_ROOT / "build" / "timeline-of-a-run.png"

RUN_SUITE = """
import asyncio
import time
import pytest

pytestmark = pytest.mark.concurrent

@pytest.fixture(scope="module")
async def service():
    await asyncio.sleep(0.05)
    yield "service"
    await asyncio.sleep(0.05)

@pytest.mark.parametrize("n", range(40))
async def test_uses(service, n):
    await asyncio.sleep(0.01 * (n % 7))
    assert n % 13 != 12

@pytest.mark.resource("db")
@pytest.mark.parametrize("n", range(5))
async def test_db(n):
    await asyncio.sleep(0.02)

async def test_blocks():
    await asyncio.sleep(0.02)
    time.sleep(0.2)
"""


def test_the_timeline_of_a_real_run_draws_every_test(
    chromium: str, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_run=RUN_SUITE)
    result = pytester.runpytest(
        "--concurrently-timeline", "timeline.html", "--concurrently-blocking-threshold=0.1"
    )
    result.assert_outcomes(passed=43, failed=3)
    html = (pytester.path / "timeline.html").read_text(encoding="utf-8")
    RUN_SCREENSHOT.parent.mkdir(exist_ok=True)
    with page(chromium, html, tmp_path) as browser:
        drawn = browser.dataset()
        browser.screenshot(RUN_SCREENSHOT)
        details = browser.evaluate(
            f"window.concurrentlyTimeline.select({js('test_run.py::test_uses[12]')});"
            "document.querySelector('#details').innerText"
        )
    assert browser.console == []
    assert drawn["ready"] == "1"
    assert drawn["bars"] == "46"
    assert drawn["fixtureBars"] == str(len(embedded_json(html)["fixtures"]))
    assert drawn["stallMarks"] == "1"
    assert "test_run.py::test_uses[12]" in details
    assert "assert (12 % 13) != 12" in details
