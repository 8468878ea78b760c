#!/usr/bin/python3
"""Large HTTP/2 cleartext transfers with an independent client (python3-h2), for the cross-node
root tests.

  h2bulk.py serve PORT
      An h2c (prior knowledge) server. GET /blob/N?seed=S answers N bytes of the seeded stream
      below; GET /short/N announces 2N bytes, sends N and resets the stream (INTERNAL_ERROR): a
      response broken off after its head; POST (any path) reads the whole body and answers its
      sha256 in hex and its length.
      Each connection runs in its own thread; flow control is honoured both ways.

  h2bulk.py serve1 PORT
      The same answers over HTTP/1.1 (keep-alive, content-length), for routes whose upstream
      speaks HTTP/1.1.

  h2bulk.py get HOST PORT SIZE COUNT [STREAMS]
  h2bulk.py post HOST PORT SIZE COUNT [STREAMS]
      COUNT transfers of SIZE bytes over one connection, up to STREAMS at a time (default 1). The
      client uses large windows, as h2load -w 22 -W 30 does: 4 MiB per stream, 1 GiB for the
      connection. Prints one JSON line per transfer: {"i", "status", "bytes", "sha256", "error",
      "seconds"}; an error (reset, GOAWAY, connection lost, short body) is reported, never hidden.

The data is the sha256 counter stream of the seed (block k = sha256(seed || k)), so both ends can
make and check it without holding it whole.
"""

import hashlib
import json
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

STREAM_WINDOW = 4 << 20
CONNECTION_WINDOW = 1 << 30
CHUNK = 16384


class Pattern:
    """The seeded byte stream, produced in order in pieces of any size."""

    def __init__(self, seed):
        self.seed = seed.encode()
        self.counter = 0
        self.buf = b""

    def take(self, n):
        while len(self.buf) < n:
            more = []
            for _ in range(max(1, (n - len(self.buf)) // 32 + 1)):
                more.append(
                    hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
                )
                self.counter += 1
            self.buf += b"".join(more)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


# ---------------------------------------------------------------- server


def serve(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(128)
    print("listening", flush=True)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=ServerConnection(s).run, daemon=True).start()


class ServerConnection:
    def __init__(self, sock):
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.uploads = {}  # stream id -> [sha256, bytes]
        self.downloads = {}  # stream id -> [Pattern, bytes left, reset at the end]

    def run(self):
        try:
            self.conn.initiate_connection()
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
            self.conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
            self.flush()
            while True:
                self.pump()
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                for ev in self.conn.receive_data(data):
                    self.event(ev)
                self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            self.sock.close()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            h = dict(ev.headers)
            if h.get(":method") == "POST":
                self.uploads[ev.stream_id] = [hashlib.sha256(), 0]
            else:
                path = h.get(":path", "/")
                size, seed, short = 0, "x", False
                if path.startswith("/short/"):
                    size, short = int(path[len("/short/"):]), True
                elif path.startswith("/blob/"):
                    rest = path[len("/blob/"):]
                    num, _, query = rest.partition("?")
                    size = int(num)
                    if query.startswith("seed="):
                        seed = query[5:]
                self.conn.send_headers(
                    ev.stream_id,
                    [(":status", "200"), ("content-length", str(size * 2 if short else size))],
                    end_stream=size == 0,
                )
                if size:
                    self.downloads[ev.stream_id] = [Pattern(seed), size, short]
        elif isinstance(ev, h2.events.DataReceived):
            up = self.uploads.get(ev.stream_id)
            if up is not None:
                up[0].update(ev.data)
                up[1] += len(ev.data)
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            up = self.uploads.pop(ev.stream_id, None)
            if up is not None:
                body = ("%s %d\n" % (up[0].hexdigest(), up[1])).encode()
                self.conn.send_headers(
                    ev.stream_id, [(":status", "200"), ("content-length", str(len(body)))]
                )
                self.conn.send_data(ev.stream_id, body, end_stream=True)
        elif isinstance(ev, h2.events.StreamReset):
            self.uploads.pop(ev.stream_id, None)
            self.downloads.pop(ev.stream_id, None)

    def pump(self):
        """Sends what the windows allow; blocks in recv (for WINDOW_UPDATE) when nothing can go."""
        progress = True
        while progress and self.downloads:
            progress = False
            for sid in list(self.downloads):
                d = self.downloads[sid]
                try:
                    n = min(self.conn.local_flow_control_window(sid), CHUNK, d[1])
                except h2.exceptions.StreamClosedError:
                    del self.downloads[sid]
                    continue
                if n <= 0:
                    continue
                d[1] -= n
                self.conn.send_data(sid, d[0].take(n), end_stream=d[1] == 0 and not d[2])
                if d[1] == 0:
                    if d[2]:
                        self.conn.reset_stream(sid, error_code=2)
                    del self.downloads[sid]
                progress = True
            self.flush()


def serve1(port):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            size, seed = 0, "x"
            if self.path.startswith("/blob/"):
                num, _, query = self.path[len("/blob/"):].partition("?")
                size = int(num)
                if query.startswith("seed="):
                    seed = query[5:]
            self.send_response(200)
            self.send_header("content-length", str(size))
            self.end_headers()
            p = Pattern(seed)
            left = size
            while left > 0:
                n = min(left, 1 << 16)
                self.wfile.write(p.take(n))
                left -= n

        def do_POST(self):
            left = int(self.headers.get("content-length", "0"))
            h = hashlib.sha256()
            total = 0
            while left > 0:
                b = self.rfile.read(min(left, 1 << 16))
                if not b:
                    break
                h.update(b)
                total += len(b)
                left -= len(b)
            body = ("%s %d\n" % (h.hexdigest(), total)).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("listening", flush=True)
    server.serve_forever()


# ---------------------------------------------------------------- client


def client(mode, host, port, size, count, streams):
    s = socket.create_connection((host, port), timeout=120)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
    conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
    s.sendall(conn.data_to_send())
    results = {}
    active = {}  # stream id -> state
    next_i = 0
    dead = None

    def start(i):
        sid = conn.get_next_available_stream_id()
        seed = "t%d" % i
        st = {
            "i": i,
            "status": None,
            "bytes": 0,
            "hash": hashlib.sha256(),
            "start": time.monotonic(),
            "body": b"",
        }
        if mode == "get":
            conn.send_headers(
                sid,
                [
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":authority", host),
                    (":path", "/blob/%d?seed=%s" % (size, seed)),
                ],
                end_stream=True,
            )
        else:
            conn.send_headers(
                sid,
                [
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":authority", host),
                    (":path", "/upload"),
                    ("content-length", str(size)),
                ],
            )
            st["pattern"] = Pattern(seed)
            st["left"] = size
            # Hashed as it is sent, not up front: computing 200 MiB's hash here took 10-20 s on a
            # loaded machine, between the preface and the HEADERS, and the proxy rightly closed
            # the connection at its 10 s request-header timeout (GOAWAY, last stream 0).
            st["sent"] = hashlib.sha256()
        active[sid] = st

    def finish(sid, error):
        st = active.pop(sid)
        out = {
            "i": st["i"],
            "status": st["status"],
            "bytes": st["bytes"],
            "seconds": round(time.monotonic() - st["start"], 3),
            "error": error,
        }
        if mode == "get":
            out["sha256"] = st["hash"].hexdigest()
        else:
            # The server's answer: "<sha256> <length>"; checked against what was sent.
            text = st["body"].decode(errors="replace").split()
            out["sha256"] = text[0] if text else ""
            out["bytes"] = int(text[1]) if len(text) > 1 else 0
            want = st["sent"].hexdigest()
            if error is None and st["left"] > 0:
                out["error"] = "answered with %d bytes still to send" % st["left"]
            elif error is None and out["sha256"] != want:
                out["error"] = "server saw sha256 %s, sent %s" % (out["sha256"], want)
        results[st["i"]] = out
        print(json.dumps(out), flush=True)

    while (next_i < count or active) and dead is None:
        while next_i < count and len(active) < streams:
            start(next_i)
            next_i += 1
        # Upload what the windows allow.
        if mode == "post":
            for sid, st in list(active.items()):
                while st.get("left", 0) > 0:
                    try:
                        n = min(conn.local_flow_control_window(sid), CHUNK, st["left"])
                    except h2.exceptions.StreamClosedError:
                        break
                    if n <= 0:
                        break
                    st["left"] -= n
                    chunk = st["pattern"].take(n)
                    st["sent"].update(chunk)
                    conn.send_data(sid, chunk, end_stream=st["left"] == 0)
        out = conn.data_to_send()
        if out:
            s.sendall(out)
        try:
            data = s.recv(1 << 20)
        except OSError as e:
            dead = "connection error: %s" % e
            break
        if not data:
            dead = "connection closed by the proxy"
            break
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            dead = "protocol error: %r" % e
            break
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                st = active.get(ev.stream_id)
                if st is not None:
                    st["status"] = int(dict(ev.headers).get(":status", "0"))
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                st = active.get(ev.stream_id)
                if st is not None:
                    if mode == "get":
                        st["hash"].update(ev.data)
                        st["bytes"] += len(ev.data)
                    else:
                        st["body"] += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id in active:
                    st = active[ev.stream_id]
                    err = None
                    if mode == "get" and st["bytes"] != size:
                        err = "short body: %d of %d bytes" % (st["bytes"], size)
                    finish(ev.stream_id, err)
            elif isinstance(ev, h2.events.StreamReset):
                if ev.stream_id in active:
                    finish(ev.stream_id, "stream reset: %s" % ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                dead = "GOAWAY: %s last stream %s %s" % (
                    ev.error_code, ev.last_stream_id, ev.additional_data
                )
    for sid in list(active):
        finish(sid, dead or "unfinished")
    for i in range(next_i, count):
        results[i] = {"i": i, "status": None, "bytes": 0, "error": "not started: " + str(dead)}
        print(json.dumps(results[i]), flush=True)
    try:
        s.close()
    except OSError:
        pass


def main():
    mode = sys.argv[1]
    if mode == "serve":
        serve(int(sys.argv[2]))
        return
    if mode == "serve1":
        serve1(int(sys.argv[2]))
        return
    host, port, size, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    streams = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    client(mode, host, port, size, count, streams)


if __name__ == "__main__":
    main()
