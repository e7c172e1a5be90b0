#!/usr/bin/python3
"""Loads edged's dashboard in headless Chromium through the DevTools protocol.

usage: dashboard_check.py URL SCREENSHOT.png

Prints "count N" once the page shows a request counter, then waits for a line
on stdin (the test sends traffic meanwhile), then prints "count M" once the
counter has changed (or "count N" again after 20 s), then every JavaScript
exception and console error the page produced ("error ..."), writes a PNG
screenshot and prints "done". Runs python3's websockets package (Debian's).
"""
import asyncio, base64, json, os, re, shutil, signal, subprocess, sys, tempfile, time

import websockets


def launch(profile):
    """Starts Chromium; returns the process and its DevTools address, or the
    process and what it printed when it ended or said nothing for 30 s."""
    chrome = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         "--user-data-dir=" + profile, "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    said = []
    deadline = time.time() + 30
    while time.time() < deadline:
        line = chrome.stderr.readline()
        if not line:
            break
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            return chrome, m.group(1), said
        said.append(line.strip())
    return chrome, None, said


def stop(chrome):
    try:
        os.killpg(chrome.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    chrome.wait()


async def main(url, shot):
    profile = tempfile.mkdtemp(prefix="edge-chromium-")
    # Chromium now and then exits at once on a loaded machine (the whole test
    # suite runs beside it): it gets three tries, each with a fresh profile.
    for attempt in range(3):
        chrome, ws_url, said = launch(profile)
        if ws_url:
            break
        stop(chrome)
        shutil.rmtree(profile, ignore_errors=True)
        profile = tempfile.mkdtemp(prefix="edge-chromium-")
    try:
        if not ws_url:
            print("error chromium did not start: " + " | ".join(said[-5:]), flush=True)
            return 1
        async with websockets.connect(ws_url, max_size=None) as ws:
            ids = iter(range(1, 1 << 30))
            pending = {}
            errors = []

            async def reader():
                async for raw in ws:
                    msg = json.loads(raw)
                    if "id" in msg and msg["id"] in pending:
                        pending.pop(msg["id"]).set_result(msg)
                        continue
                    method, params = msg.get("method"), msg.get("params", {})
                    if method == "Runtime.exceptionThrown":
                        d = params.get("exceptionDetails", {})
                        errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "?")))
                    elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                        errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
                    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                        errors.append("log: " + params["entry"].get("text", ""))

            task = asyncio.ensure_future(reader())

            async def call(method, params=None, session=None):
                i = next(ids)
                fut = asyncio.get_event_loop().create_future()
                pending[i] = fut
                msg = {"id": i, "method": method, "params": params or {}}
                if session:
                    msg["sessionId"] = session
                await ws.send(json.dumps(msg))
                r = await asyncio.wait_for(fut, 30)
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})

            target = (await call("Target.createTarget", {"url": "about:blank"}))["targetId"]
            s = (await call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
            for m in ("Runtime.enable", "Log.enable", "Page.enable"):
                await call(m, session=s)
            await call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=s)
            await call("Page.navigate", {"url": url}, session=s)

            async def counter():
                r = await call("Runtime.evaluate", {"expression": "document.getElementById('total-requests') && document.getElementById('total-requests').textContent",
                                                    "returnByValue": True}, session=s)
                v = r.get("result", {}).get("value")
                return int(v) if isinstance(v, str) and v.isdigit() else None

            first = None
            deadline = time.time() + 30
            while time.time() < deadline and first is None:
                first = await counter()
                if first is None:
                    await asyncio.sleep(0.2)
            print(f"count {first}", flush=True)
            await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)
            later = first
            deadline = time.time() + 20
            while time.time() < deadline and later == first:
                await asyncio.sleep(0.3)
                later = await counter()
            # Let a chart or two draw with the new points before the picture.
            await asyncio.sleep(2.5)
            print(f"count {later}", flush=True)
            png = (await call("Page.captureScreenshot", {"format": "png"}, session=s))["data"]
            with open(shot, "wb") as f:
                f.write(base64.b64decode(png))
            for e in errors:
                print("error " + e.replace("\n", " "), flush=True)
            print("done", flush=True)
            task.cancel()
        return 0
    finally:
        # Chromium's zygote, GPU and utility processes outlive its main one: the whole group goes.
        stop(chrome)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.get_event_loop().run_until_complete(main(sys.argv[1], sys.argv[2])))
