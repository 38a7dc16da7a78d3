"""A headless Chromium driven over the Chrome DevTools Protocol (for the viewer's browser test and
benchmark). Only ever pointed at localhost URLs."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import imageio.v3 as iio
import numpy as np
from websockets.sync.client import connect

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1"]


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Chromium:
    """One headless browser with one page, ``width`` x ``height`` CSS pixels."""

    def __init__(self, width: int = 800, height: int = 600, timeout: float = 20.0):
        binary = find_chromium()
        if binary is None:
            raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="plenox-chromium-")
        port = free_port()
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as reply:
                    pages = [t for t in json.load(reply) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.2)
        self.page_ws = pages[0]["webSocketDebuggerUrl"]   # the page's DevTools socket (``drag`` opens a second)
        self.socket = connect(self.page_ws, max_size=64 * 2 ** 20, open_timeout=timeout)
        self.ids = itertools.count(1)
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def send(self, method: str, timeout: float = 30.0, **params) -> dict:
        """Call a DevTools method and return its result (events arriving meanwhile are dropped)."""
        call = next(self.ids)
        self.socket.send(json.dumps({"id": call, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise ValueError(f"only local pages are opened, not {url}")
        self.send("Page.navigate", url=url)

    def screenshot(self) -> np.ndarray:
        """The page as an (H, W, 3) uint8 array."""
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        return iio.imread(data)[..., :3]

    def cpu_seconds(self) -> float:
        """CPU time (user + system, seconds) used so far by this browser's processes."""
        total = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.profile.encode() not in f.read():
                        continue
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                continue
        return total / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        sock = getattr(self, "socket", None)
        if sock is not None:
            sock.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def drag(page_ws: str, width: int, height: int, rate: float) -> None:
    """A hand on the mouse: press the left button in the middle of a ``width`` x ``height`` page
    and drag left and right across it, ``rate`` moves per second, until the process is killed.
    Run in a process of its own (``python -c``), so the page's camera moves as a user's would,
    with nothing of the driving in the process that serves the page."""
    with connect(page_ws, max_size=2 ** 20) as sock:
        ids = itertools.count(1)

        def mouse(kind: str, x: float) -> None:
            sock.send(json.dumps({"id": next(ids), "method": "Input.dispatchMouseEvent",
                                  "params": {"type": kind, "x": x, "y": height / 2, "button": "left",
                                             "buttons": 1, "clickCount": 1}}))
            sock.recv()   # the reply (pages send no events unasked)

        x, dx = width / 2, width / 60
        mouse("mousePressed", x)
        while True:
            if not width * 0.2 < x + dx < width * 0.8:
                dx = -dx
            x += dx
            mouse("mouseMoved", x)
            time.sleep(1.0 / rate)
