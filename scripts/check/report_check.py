"""Opens an `amalgam report` page in headless Chromium over the DevTools protocol (standard library only),
takes a full-page screenshot and fails on console errors, script exceptions, any request that leaves the page's
own file, or a plot that draws nothing.

    python3 scripts/check/report_check.py PAGE.html SCREENSHOT.png [CHROMIUM]

A plot is empty when none of its marks (a line's path, a dot, an interval, a bar, a heat-map cell) is rendered
with a non-zero box. Prints one line per plot problem and a summary; exit status 1 on any problem.
"""
import base64
import json
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


class DevTools:
    """A minimal WebSocket client (RFC 6455, text frames, no extensions) speaking the DevTools protocol."""

    def __init__(self, url):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        head, self.buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.next_id = 0
        self.events = []

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _receive(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            opcode = b0 & 0x0F
            if opcode in (0x1, 0x2, 0x0):
                message += payload
                if b0 & 0x80:
                    return json.loads(message)
            elif opcode == 0x8:
                raise RuntimeError("DevTools closed the WebSocket")
            # ping/pong frames are ignored

    def send(self, method, **params):
        self.next_id += 1
        data = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        header = bytes([0x81])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        while True:
            message = self._receive()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(self._receive())
        raise RuntimeError(f"no {method} within {timeout} s")


# Each plot's marks and whether any is drawn with a non-zero box; the page's size for the screenshot.
MEASURE = r"""
(() => {
  const plots = [...document.querySelectorAll('svg.plot')].map((svg, i) => {
    const title = (svg.querySelector('title') || {}).textContent || ('plot ' + i);
    const marks = [...svg.querySelectorAll('.series, .point, .interval, .bar, .cell')];
    const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length;
    const box = svg.getBoundingClientRect();
    return {title, marks: marks.length, drawn, width: box.width, height: box.height};
  });
  return JSON.stringify({plots, width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight});
})()
"""


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    page = pathlib.Path(sys.argv[1]).resolve()
    screenshot = pathlib.Path(sys.argv[2])
    chromium = sys.argv[3] if len(sys.argv) > 3 else (shutil.which("chromium") or "chromium")
    if not page.is_file():
        sys.exit(f"{page}: no such page; make it with `amalgam report … --out {sys.argv[1]}`")
    profile = tempfile.mkdtemp(prefix="report-check-")
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.time() + 60
        while port is None and time.time() < deadline:
            line = browser.stderr.readline()
            if not line and browser.poll() is not None:
                sys.exit(f"{chromium} exited (status {browser.returncode}) before DevTools listened")
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
        if port is None:
            sys.exit(f"{chromium}: DevTools did not start within 60 s")
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        target = next(t for t in targets if t.get("type") == "page")
        tools = DevTools(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.send(domain + ".enable")
        tools.send("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
        tools.send("Page.navigate", url=page.as_uri())
        tools.wait_for("Page.loadEventFired")
        measured = json.loads(tools.send("Runtime.evaluate", expression=MEASURE, returnByValue=True)["result"]["value"])
        width, height = 1400, min(int(measured["height"]) + 16, 16000)
        tools.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        shot = tools.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        partial = screenshot.with_name(screenshot.name + ".partial")
        partial.write_bytes(base64.b64decode(shot["data"]))
        os.replace(partial, screenshot)
        # Drain what arrived while measuring (console messages are events).
        tools.send("Runtime.evaluate", expression="0")
        try:
            tools.send("Browser.close")
        except RuntimeError:
            pass
    finally:
        if browser.poll() is None:
            browser.terminate()
            try:
                browser.wait(timeout=20)
            except subprocess.TimeoutExpired:
                browser.kill()
        shutil.rmtree(profile, ignore_errors=True)

    problems = []
    for e in tools.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            problems.append(f"console {params['type']}: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            problems.append("script exception: " + params.get("exceptionDetails", {}).get("text", "?"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            entry = params["entry"]
            problems.append(f"console {entry['level']} ({entry.get('source')}): {entry.get('text')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url != page.as_uri() and not url.startswith("data:"):
                problems.append(f"the page requested {url}: it must be self-contained")
    plots = measured["plots"]
    if not plots:
        problems.append("the page has no plot")
    for p in plots:
        if p["drawn"] == 0:
            problems.append(f"empty plot: {p['title']} ({p['marks']} marks, none drawn)")
        elif p["width"] < 50 or p["height"] < 50:
            problems.append(f"plot too small to read: {p['title']} ({p['width']:.0f}×{p['height']:.0f} px)")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{page}: {len(plots)} plots, {sum(p['drawn'] > 0 for p in plots)} drawn, {len(problems)} problems; screenshot {screenshot} "
          f"({width}×{height} px)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
