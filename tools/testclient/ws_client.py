#!/usr/bin/env python3
"""A WebSocket client (the `websockets` package) for edge's tunnel tests. Prints one JSON line.

usage: ws_client.py PORT HOST PATH MODE [ARG] [--cafile CA]
  MODE echo         a text and a binary message, each must come back unchanged
  MODE bulk MIB     MIB binary messages of 1 MiB sent while the echoes are read;
                    the echoed bytes must hash like the sent ones
  MODE idle         one echo, then waits for the peer to close; prints the seconds waited
  MODE handshake    prints the handshake's status (101, or the refusal's status and body)
  MODE headers      prints the first message (the origin's view of the request headers)
  MODE paced N      N text messages, 250 ms apart, each echo checked; prints how many came back
Connects to 127.0.0.1:PORT; HOST is the Host (and, with --cafile, the TLS server name).
"""
import asyncio, hashlib, json, os, socket, ssl, sys, time

import websockets

args = sys.argv[1:]
cafile = None
if "--cafile" in args:
    i = args.index("--cafile"); cafile = args[i + 1]; del args[i:i + 2]
port, host, path, mode = int(args[0]), args[1], args[2], args[3]
arg = args[4] if len(args) > 4 else None

def connect():
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setblocking(False)
    kw = dict(sock=sock, max_size=None, ping_interval=None, open_timeout=30, close_timeout=5)
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        kw.update(ssl=ctx, server_hostname=host)
    scheme = "wss" if cafile else "ws"
    return websockets.connect(f"{scheme}://{host}:{port}{path}", **kw)

async def main():
    if mode == "handshake":
        try:
            async with connect() as ws:
                return {"status": 101}
        except websockets.exceptions.InvalidStatusCode as e:
            return {"status": e.status_code}
    async with connect() as ws:
        if mode == "echo":
            text = "hello, tunnel \u2603"
            binary = bytes(range(256)) * 4
            await ws.send(text)
            got_text = await asyncio.wait_for(ws.recv(), 30)
            await ws.send(binary)
            got_binary = await asyncio.wait_for(ws.recv(), 30)
            return {"text": got_text == text and isinstance(got_text, str),
                    "binary": got_binary == binary and isinstance(got_binary, bytes)}
        if mode == "bulk":
            n = int(arg)
            sent, got = hashlib.sha256(), hashlib.sha256()
            async def send():
                for _ in range(n):
                    block = os.urandom(1 << 20)
                    sent.update(block)
                    await ws.send(block)
            received = 0
            sender = asyncio.ensure_future(send())
            while received < n << 20:
                m = await asyncio.wait_for(ws.recv(), 60)
                got.update(m)
                received += len(m)
            await sender
            return {"bytes": received, "same": sent.hexdigest() == got.hexdigest()}
        if mode == "idle":
            await ws.send("ping")
            await asyncio.wait_for(ws.recv(), 30)
            start = time.monotonic()
            try:
                await asyncio.wait_for(ws.recv(), 60)
                return {"error": "a message arrived"}
            except websockets.exceptions.ConnectionClosed:
                return {"closed_after": time.monotonic() - start}
        if mode == "paced":
            echoed = 0
            for i in range(int(arg)):
                await ws.send(f"message {i}")
                if await asyncio.wait_for(ws.recv(), 30) == f"message {i}":
                    echoed += 1
                await asyncio.sleep(0.25)
            return {"echoed": echoed}
        if mode == "headers":
            return {"headers": json.loads(await asyncio.wait_for(ws.recv(), 30))}
    return {"error": "unknown mode " + mode}

try:
    print(json.dumps(asyncio.run(main())), flush=True)
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
