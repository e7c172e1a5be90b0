#!/usr/bin/env python3
"""A WebSocket origin (RFC 6455) for edge's tunnel tests, on the `websockets` package.

usage: ws_origin.py PORT   (0 picks a free port; the bound port is printed)

Paths:
  /echo     every message comes back as it came (text as text, binary as binary)
  /refuse   the upgrade is refused: 403 with a body of its own
  /headers  the first message sent is the JSON list of the handshake's request headers
"""
import asyncio, http, json, logging, sys

import websockets

async def handler(ws, path=None):
    path = path if path is not None else ws.path
    if path == "/headers":
        await ws.send(json.dumps([[k, v] for k, v in ws.request_headers.raw_items()]))
    async for message in ws:
        await ws.send(message)

def refuse(path, request_headers):
    if path == "/refuse":
        return (http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain"), ("X-Origin", "ws")], b"no websockets here\n")
    return None

logging.getLogger("websockets").setLevel(logging.CRITICAL)   # a tunnel cut by edge is expected here

async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), process_request=refuse,
                                max_size=None, ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
