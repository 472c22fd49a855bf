"""A minimal headless-Chromium driver over the Chrome DevTools Protocol (tests only).

Starts Debian's ``chromium`` with a fresh profile and ``--remote-debugging-port=0``, reads the
port from ``DevToolsActivePort`` and talks to the browser over one websocket (``websockets``
package), with flattened target sessions. No browser download, no network.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


class BrowserError(RuntimeError):
    pass


class Browser:
    """A headless Chromium process; ``ws_url`` is its browser-level DevTools endpoint."""

    def __init__(self, executable: str = CHROMIUM, width: int = 1280, height: int = 900, timeout: float = 30.0):
        exe = shutil.which(executable) or executable
        if not Path(exe).exists():
            raise BrowserError(f"{executable} not found (apt-get install chromium)")
        self.profile = Path(tempfile.mkdtemp(prefix="wq-chromium-"))
        self.log_path = self.profile / "chromium.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}: {self.log()}")
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    self.ws_url = f"ws://127.0.0.1:{lines[0]}{lines[1]}"
                    return
            time.sleep(0.1)
        self.close()
        raise BrowserError(f"chromium did not open its DevTools port within {timeout:.0f} s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def open(self, url: str, script: str, screenshot: Path | None = None, width: int = 1280,
             settle_s: float = 0.5, timeout: float = 60.0, slice_height: int | None = None) -> "PageResult":
        """Load ``url`` in a new tab, evaluate ``script`` (an expression returning a JSON-able value)
        and optionally save a full-page PNG screenshot (``slice_height``: also save it in slices
        ``<stem>-01.png``, ... of that height, easier to look at)."""
        return asyncio.run(asyncio.wait_for(
            _open(self.ws_url, url, script, screenshot, width, settle_s, slice_height), timeout))


@dataclass
class PageResult:
    value: Any
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


async def _open(ws_url: str, url: str, script: str, screenshot: Path | None, width: int,
                settle_s: float, slice_height: int | None = None) -> PageResult:
    from websockets.asyncio.client import connect

    res = PageResult(value=None)
    ids = itertools.count(1)
    pending: dict[int, asyncio.Future] = {}
    loaded = asyncio.Event()
    async with connect(ws_url, max_size=None, ping_interval=None) as ws:

        async def reader() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if "id" in msg and msg["id"] in pending:
                    pending.pop(msg["id"]).set_result(msg)
                    continue
                method, params = msg.get("method"), msg.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    res.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                       for a in params.get("args", [])))
                elif method == "Runtime.exceptionThrown":
                    d = params.get("exceptionDetails", {})
                    res.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    e = params["entry"]
                    res.console_errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}")
                elif method == "Page.javascriptDialogOpening":
                    res.dialogs.append(params.get("message", ""))
                    asyncio.ensure_future(send("Page.handleJavaScriptDialog", {"accept": True}, session))
                elif method == "Network.requestWillBeSent":
                    res.requests.append(params.get("request", {}).get("url", ""))
                elif method == "Page.loadEventFired":
                    loaded.set()

        async def send(method: str, params: dict | None = None, session_id: str | None = None) -> dict:
            i = next(ids)
            fut = asyncio.get_running_loop().create_future()
            pending[i] = fut
            msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
            if session_id:
                msg["sessionId"] = session_id
            await ws.send(json.dumps(msg))
            out = await fut
            if "error" in out:
                raise BrowserError(f"{method}: {out['error']}")
            return out.get("result", {})

        task = asyncio.ensure_future(reader())
        session = None
        try:
            target = (await send("Target.createTarget", {"url": "about:blank"}))["targetId"]
            session = (await send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await send(f"{domain}.enable", {}, session)
            await send("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
            await send("Page.navigate", {"url": url}, session)
            await asyncio.wait_for(loaded.wait(), 30)
            await asyncio.sleep(settle_s)
            ev = await send("Runtime.evaluate", {"expression": script, "returnByValue": True,
                                                 "awaitPromise": True}, session)
            if "exceptionDetails" in ev:
                raise BrowserError(f"check script failed: {ev['exceptionDetails']}")
            res.value = ev.get("result", {}).get("value")
            if screenshot is not None:
                metrics = await send("Page.getLayoutMetrics", {}, session)
                size = metrics.get("cssContentSize") or metrics["contentSize"]
                shot = await send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 16000), "scale": 1},
                }, session)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                y, k = 0, 1
                while slice_height and y < size["height"]:
                    part = await send("Page.captureScreenshot", {
                        "format": "png", "captureBeyondViewport": True,
                        "clip": {"x": 0, "y": y, "width": width,
                                 "height": min(slice_height, size["height"] - y), "scale": 1},
                    }, session)
                    (screenshot.parent / f"{screenshot.stem}-{k:02d}.png").write_bytes(base64.b64decode(part["data"]))
                    y, k = y + slice_height, k + 1
            await send("Target.closeTarget", {"targetId": target})
        finally:
            task.cancel()
    return res
