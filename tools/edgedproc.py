"""Starting a release edged in no-file mode for the long-running tool scripts
(disk_kill_loop.py, resume_chaos.py): one origin, two workers, a disk tier."""
import os, re, subprocess, threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGED = os.environ.get("EDGED", os.path.join(ROOT, ".build/release/edged"))
EXTRA = os.environ.get("EDGED_ARGS", "").split()

def start_edged(origin_port, state, disk="64MiB", exited="edged exited at start"):
    """edged on `state` in front of 127.0.0.1:origin_port (EDGED=, EDGED_ARGS= from the
    environment); returns the process and its HTTP port once its tenants are up."""
    p = subprocess.Popen([EDGED, "--origin", "http://127.0.0.1:%d" % origin_port, "--http", "127.0.0.1:0", "--workers", "2",
                          "--access-log", "off", "--state", state, "--cache-disk", disk] + EXTRA,
                         stderr=subprocess.PIPE, text=True)
    port = None
    while True:
        line = p.stderr.readline()
        if not line:
            raise SystemExit(exited)
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if m: port = int(m.group(1))
        if "tenant(s)" in line: break
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, port
