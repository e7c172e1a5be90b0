#!/usr/bin/python3
"""Opens N TLS keep-alive connections to edged, speaking HTTP/2 or HTTP/1.1, sends one
request on each, reads the response, holds them idle and reports edged's RSS growth
(Debian python3-h2 for HTTP/2).

usage: idle_tls.py h2|h1 PORT PID N
Prints: rss_before_kib rss_after_kib per_conn_bytes
"""
import os, socket, ssl, sys, time
import h2.connection, h2.config, h2.events
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle_conns import rss_kib

proto, port, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"] if proto == "h2" else ["http/1.1"])

def one():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="bench")
    if proto == "h2":
        c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        c.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "bench"), (":path", "/1k.bin")], end_stream=True)
        s.sendall(c.data_to_send())
        done = False
        while not done:
            for e in c.receive_data(s.recv(65536)):
                if isinstance(e, h2.events.StreamEnded):
                    done = True
            s.sendall(c.data_to_send())
        return (s, c)
    s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 1024:
        data += s.recv(65536)
    return (s, None)

for _ in range(3):
    one()[0].close()
time.sleep(0.5)
before = rss_kib(pid)
held = [one() for _ in range(n)]
time.sleep(1.0)
after = rss_kib(pid)
print(before, after, round((after - before) * 1024 / max(1, len(held))))
