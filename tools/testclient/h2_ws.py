#!/usr/bin/env python3
"""WebSocket over HTTP/2 (RFC 8441) as a client sees it, on Python's `h2`.

usage: h2_ws.py PORT CAFILE AUTHORITY PATH [PROTOCOL] [--plain] [--idle]

Opens one TLS connection with ALPN h2 (--plain: h2c with prior knowledge),
checks that the server's SETTINGS enable extended CONNECT, opens a stream with
:method CONNECT and :protocol PROTOCOL (default websocket), and prints one
JSON object: the SETTINGS value, the response status and fields, and, after a
200, what came back for a text message, a 100,000-byte binary message (more
than the default flow-control window) and a close, then how the stream ended.
--idle: after the 200, sends nothing and reports whether the server ended the
stream within 10 s (the tunnel's idle timeout).
"""
import json, os, socket, ssl, struct, sys, time

import h2.config, h2.connection, h2.events, h2.settings

port, cafile, authority, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
proto = sys.argv[5] if len(sys.argv) > 5 and not sys.argv[5].startswith("--") else "websocket"
plain = "--plain" in sys.argv
idle = "--idle" in sys.argv

raw = socket.create_connection(("127.0.0.1", port), timeout=20)
if plain:
    sock = raw
else:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(raw, server_hostname=authority)
    assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()

conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
out = {"enable_connect_protocol": None}
stream = None
buf = b""
status, fields, ended, reset = None, [], False, None


def pump(until, seconds=10):
    """Reads and handles events until until() holds (or the time is up)."""
    global buf, status, fields, ended, reset
    deadline = time.time() + seconds
    while not until() and time.time() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                v = ev.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                if v is not None:
                    out["enable_connect_protocol"] = v.new_value
            elif isinstance(ev, h2.events.ResponseReceived):
                hs = [(k.decode(), v.decode()) for k, v in ev.headers]
                status = int(dict(hs)[":status"])
                fields = [[k, v] for k, v in hs if not k.startswith(":")]
            elif isinstance(ev, h2.events.DataReceived):
                buf += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, h2.events.StreamReset):
                reset = int(ev.error_code)
        sock.sendall(conn.data_to_send())


def frame(opcode, payload):
    """A client frame (masked, RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def message():
    """The next whole server frame in buf: (opcode, payload) or None."""
    global buf
    if len(buf) < 2:
        return None
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < at + n:
        return None
    op, payload, buf = buf[0] & 0x0F, buf[at:at + n], buf[at + n:]
    return op, payload


def send(data):
    """Sends on the stream within the windows, reading while they are shut."""
    while data:
        room = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
        if room <= 0:
            before = conn.local_flow_control_window(stream)
            pump(lambda: conn.local_flow_control_window(stream) > before, 5)
            continue
        conn.send_data(stream, data[:room])
        sock.sendall(conn.data_to_send())
        data = data[room:]


pump(lambda: out["enable_connect_protocol"] is not None, 5)
stream = conn.get_next_available_stream_id()
conn.send_headers(stream, [(":method", "CONNECT"), (":protocol", proto), (":scheme", "http" if plain else "https"),
                           (":path", path), (":authority", authority), ("sec-websocket-version", "13"),
                           ("origin", "https://" + authority)])
sock.sendall(conn.data_to_send())
pump(lambda: status is not None or reset is not None)
out["status"], out["fields"] = status, fields
if status == 200 and idle:
    pump(lambda: ended or reset is not None, 10)
elif status == 200:
    def wait_message():
        m = [None]
        def ready():
            m[0] = message()
            return m[0] is not None
        pump(ready)
        return m[0]
    send(frame(0x1, b"hello over h2"))
    m = wait_message()
    out["text"] = m[1].decode() if m and m[0] == 0x1 else repr(m)
    big = bytes(range(256)) * 390 + b"tail"   # 99,844 bytes: past the 65,535-byte windows both ways
    send(frame(0x2, big))
    m = wait_message()
    out["binary_ok"] = bool(m and m[0] == 0x2 and m[1] == big)
    out["binary_len"] = len(m[1]) if m else None
    send(frame(0x8, struct.pack("!H", 1000)))
    m = wait_message()
    out["close"] = m[0] == 0x8 if m else None
    conn.end_stream(stream)
    sock.sendall(conn.data_to_send())
    pump(lambda: ended or reset is not None)
out["ended"], out["reset"] = ended, reset
print(json.dumps(out), flush=True)
