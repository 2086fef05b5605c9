#!/usr/bin/env python3
"""The studio against hostile and unlucky clients, over raw sockets.

hostile.py URL DIR [TEST ...]: a running studio at URL whose folder is DIR (with datasets/heldout). Checks
that 100 open event streams and 30 slow clients (headers or a body a line at a time) starve no
ordinary request (each answered within a second) and are cut at their deadline; that clients who
do not take their answers cannot make the studio hold more than its budget of them; that bodies
are capped whatever their transfer encoding; that a request with two Host headers is refused; that
damaged files (a name that is not UTF-8, a gallery JSON of the wrong type) leave every listing
answering with the rest; that JSON of the wrong type is refused by name; and, last, that a
training resumed from a studio.json of the wrong type is refused and the studio lives on.
"""
import json
import os
import select
import socket
import sys
import threading
import time
from urllib.parse import urlparse

BASE = urlparse(sys.argv[1])
DIR = sys.argv[2]
ADDR = (BASE.hostname, BASE.port)
HOST = f"{BASE.hostname}:{BASE.port}"
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"hostile: FAILED {what}", flush=True)


def connect(timeout=5):
    s = socket.create_connection(ADDR, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s):
    """(status, body) of one response on s (read until its end or the connection's)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return 0, b""
    status = int(lines[0].split()[1])
    length = next((int(l.split(":", 1)[1]) for l in lines[1:] if l.lower().startswith("content-length:")), None)
    body = bytearray(body)
    while length is None or len(body) < length:
        try:
            chunk = s.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        body += chunk
    return status, bytes(body)


def raw(text, body=b"", timeout=5):
    """Sends one request as written (its head text, then the body) and reads the answer."""
    s = connect(timeout)
    try:
        s.sendall(text.encode("latin1") + body)
        return read_response(s)
    finally:
        s.close()


def request(method, path, payload=None, headers=""):
    body = b"" if payload is None else json.dumps(payload).encode()
    kind = "Content-Type: application/json\r\n" if payload is not None else ""
    status, answer = raw(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{kind}{headers}"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n", body)
    try:
        return status, json.loads(answer or b"null")
    except ValueError:
        return status, answer


def timed_get(path):
    start = time.monotonic()
    try:
        status, _ = raw(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n", timeout=3)
    except OSError:
        status = 0
    return status, time.monotonic() - start


class SlowClient(threading.Thread):
    """Sends a request a line (or a body byte) every `every` seconds, forever; records when the
    studio answers (408) or cuts it."""

    def __init__(self, body, every=1.0):
        super().__init__(daemon=True)
        self.body, self.every, self.cut_after, self.answer = body, every, None, b""

    def run(self):
        start = time.monotonic()
        try:
            s = connect(timeout=30)
            if self.body:
                s.sendall(f"POST /api/generate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                          "Content-Length: 1000\r\n\r\n{".encode())
            else:
                s.sendall(b"GET /api/info HTTP/1.1\r\n")
            for i in range(60):
                if select.select([s], [], [], self.every)[0]:
                    self.answer = s.recv(100)
                    break
                s.sendall(b" " if self.body else f"X-Slow-{i}: still typing\r\n".encode())
        except OSError:
            pass
        self.cut_after = time.monotonic() - start


def event_stream():
    s = connect(timeout=10)
    s.sendall(f"GET /api/events HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode())
    return s


slow = []  # started by starvation(), checked by slow_clients_cut() once the other tests ran beside them


def starvation():
    print("hostile: 100 event streams and 30 slow clients", flush=True)
    streams = []
    try:
        streams += [event_stream() for _ in range(100)]
        slow.extend(SlowClient(body=i % 6 == 0) for i in range(30))
        for c in slow:
            c.start()
        follow(streams)
    finally:
        for s in streams:
            s.close()


def follow(streams):
    time.sleep(1.5)  # every slow client is in, and has sent a line or two
    times = [timed_get(p) for p in ["/api/info", "/api/gallery", "/api/datasets", "/", "/app.js"] * 4]
    check(all(status == 200 for status, _ in times), f"ordinary requests answered: {[s for s, _ in times]}")
    worst = max(t for _, t in times)
    check(worst < 1.0, f"every ordinary request within a second (slowest {worst:.2f} s)")
    print(f"hostile: slowest ordinary request {worst:.3f} s", flush=True)
    # The streams are live: each sees the events of a generation started now.
    status, job = request("POST", "/api/generate", {"prompt": "x", "steps": 1, "width": 64, "height": 64})
    check(status == 202, f"a generation starts beside them ({status} {job})")
    seen = 0
    for s in streams:
        s.settimeout(10)
        data = b""
        try:
            while b'"type":"job"' not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        seen += data.startswith(b"HTTP/1.1 200") and b'"type":"job"' in data
    check(seen == 100, f"all 100 event streams received the job's events ({seen})")


def slow_clients_cut():
    print("hostile: the slow clients (there all along) were cut at their deadline", flush=True)
    for c in slow:
        c.join(timeout=20)
    cut = [c.cut_after for c in slow]
    check(all(t is not None and t < 12 for t in cut), f"slow clients cut at their deadline: {cut}")
    answers = {c.answer[:12] for c in slow}
    check(answers == {b"HTTP/1.1 408"}, f"slow clients told why (408): {answers}")
    if all(cut):
        print(f"hostile: slow clients cut after {min(cut):.1f}–{max(cut):.1f} s", flush=True)


def catch_up():
    print("hostile: a page that reconnects catches up on what it missed", flush=True)
    for i in range(32):  # events to miss: more than one piece (256 KiB) of them
        request("POST", "/api/generate", {"prompt": f"{i} " + "x" * 1900, "negative_prompt": "y" * 1900, "steps": 1,
                                          "width": 64, "height": 64})
    for _ in range(600):
        _, info = request("GET", "/api/info")
        if not info["running"]:
            break
        time.sleep(0.1)
    last = info["event"]
    for header, first in [("", 1), (f"Last-Event-ID: {max(last - 5, 0)}\r\n", max(last - 4, 1))]:
        s = connect(timeout=10)
        s.sendall(f"GET /api/events?after=0 HTTP/1.1\r\nHost: {HOST}\r\n{header}\r\n".encode())
        data, ids = b"", []
        try:
            while not ids or ids[-1] < last:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
                ids = [int(l[4:]) for l in data.decode("utf-8", "replace").split("\n") if l.startswith("id: ")]
        except OSError:
            pass
        s.close()
        check(ids and ids[-1] >= last and ids == list(range(ids[0], ids[-1] + 1)) and (not header or ids[0] == first),
              f"events {ids[:3]}…{ids[-3:]} up to {last}, none missing{' from ' + str(first) if header else ''} ({len(data)} bytes)")
        check(header or len(data) > 256 << 10, f"the whole log is more than one piece ({len(data)} bytes)")


def slow_readers():
    print("hostile: clients that do not take their answers", flush=True)
    big = os.path.join(DIR, "gallery", "0-big.png")
    with open(big, "wb") as f:
        f.write(b"\x89PNG" + b"\0" * (40 << 20))
    ask = f"GET /files/gallery/0-big.png HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    readers = []
    try:
        for _ in range(20):  # 800 MB asked for, none of it read
            s = connect()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(ask)
            readers.append(s)
        time.sleep(2)
        status, _ = raw(f"GET /files/gallery/0-big.png HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")
        check(status == 503, f"a 40 MB file is refused while 256 MiB of answers wait ({status})")
        status, seconds = timed_get("/api/info")
        check(status == 200 and seconds < 1, f"small answers still go ({status}, {seconds:.2f} s)")
    finally:
        for s in readers:
            s.close()
    time.sleep(1)
    status, body = raw(f"GET /files/gallery/0-big.png HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n", timeout=30)
    check(status == 200 and len(body) == 4 + (40 << 20), f"once they are gone, it is served ({status}, {len(body)} bytes)")
    os.remove(big)


def bodies():
    print("hostile: bodies capped whatever their transfer encoding", flush=True)
    s = connect(timeout=10)
    s.sendall(f"POST /api/generate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n".encode())
    sent = 0
    try:
        while sent < 8 << 20:
            s.sendall(b"10000\r\n" + b" " * 0x10000 + b"\r\n")
            sent += 0x10000
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    status, _ = read_response(s)
    s.close()
    check(status in (411, 413), f"an 8 MiB chunked body is refused (status {status}, {sent >> 10} KiB sent)")
    small = b'{"prompt": "x", "steps": 1}'
    status, _ = raw(f"POST /api/generate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                    f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
    check(status in (411, 202), f"a small chunked body is refused or served ({status})")
    status, _ = raw(f"POST /api/generate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n", b"{}")
    check(status == 400, f"two Content-Length headers are refused ({status})")
    status, _ = raw(f"GET /api/info HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {'a' * 20000}\r\nConnection: close\r\n\r\n")
    check(status == 431, f"a 20 kB header is refused ({status})")


def hosts():
    print("hostile: one Host header", flush=True)
    for pair in [(HOST, "evil.example"), ("evil.example", HOST), (HOST, HOST)]:
        status, _ = raw(f"GET /api/info HTTP/1.1\r\nHost: {pair[0]}\r\nHost: {pair[1]}\r\nConnection: close\r\n\r\n")
        check(status == 400, f"Host {pair[0]} and Host {pair[1]} refused ({status})")
    status, _ = raw(f"GET /api/info HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")
    check(status == 200, f"one Host is served ({status})")


def damaged_files():
    print("hostile: a name that is not UTF-8 and a gallery JSON of the wrong type", flush=True)
    bad = b"caf\xe9"
    data = os.path.join(DIR.encode(), b"datasets")
    picture = os.path.join(data, b"heldout", b"bee.png")
    os.makedirs(os.path.join(data, bad), exist_ok=True)
    with open(picture, "rb") as f, open(os.path.join(data, bad, b"bee.png"), "wb") as g:
        g.write(f.read())
    with open(picture, "rb") as f, open(os.path.join(data, b"heldout", b"abeja-\xff.png"), "wb") as g:
        g.write(f.read())
    os.makedirs(os.path.join(DIR.encode(), b"trainings", bad, b"checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(DIR.encode(), b"loras"), exist_ok=True)
    with open(os.path.join(DIR.encode(), b"loras", b"estilo-\xfe.safetensors"), "wb") as g:
        g.write(b"not a LoRA")
    gallery = os.path.join(DIR, "gallery")
    with open(os.path.join(gallery, "0-bad-file.json"), "w") as g:
        json.dump({"file": 5, "prompt": "x"}, g)
    with open(os.path.join(gallery, "0-bad-seed.json"), "w") as g:
        json.dump({"file": "0-bad-seed.png", "prompt": ["x"], "seed": "many"}, g)
    with open(picture, "rb") as f, open(os.path.join(gallery, "0-bad-seed.png"), "wb") as g:
        g.write(f.read())
    with open(os.path.join(gallery, "animations", "0-bad.gif.json"), "w") as g:
        json.dump({"file": "animations/0-bad.gif", "prompts": "x", "frames": "six"}, g)
    with open(picture, "rb") as f, open(os.path.join(gallery, "animations", "0-bad.gif"), "wb") as g:
        g.write(f.read())
    for path, good in [("/api/datasets", "heldout"), ("/api/trainings", "t1"), ("/api/gallery", None),
                       ("/api/animations", None), ("/api/info", None), ("/api/datasets/heldout", "bee.png")]:
        status, answer = request("GET", path)
        text = json.dumps(answer)
        check(status == 200, f"{path} answers despite the damaged entries ({status} {text[:200]})")
        if status != 200:
            continue
        if good:
            check(good in text, f"{path} keeps the good entries ({text[:200]})")
        check("skipped" in answer and answer["skipped"], f"{path} reports what it skipped ({text[:300]})")
    status, answer = request("GET", "/api/gallery")
    if status == 200:
        check(all(isinstance(e.get("file"), str) and isinstance(e.get("seed"), int) for e in answer.get("items", [])),
              "the gallery lists only entries of the right types")
    status, answer = request("POST", "/api/animate", {"from": "0-bad-seed.png", "to": "0-bad-seed.png"})
    check(status == 400 and "seed" in json.dumps(answer), f"animating from a damaged entry names its field ({status} {answer})")


def wrong_types():
    print("hostile: JSON of the wrong type is refused by name", flush=True)
    for path, payload, field in [("/api/generate", {"prompt": "x", "seed": "abc"}, "seed"),
                                 ("/api/generate", {"prompt": ["x"]}, "prompt"),
                                 ("/api/train", {"dataset": 5}, "dataset"),
                                 ("/api/train", {"dataset": "heldout", "name": "x", "resume": "yes"}, "resume"),
                                 ("/api/train", {"dataset": "heldout", "train_text_encoder": 1}, "train_text_encoder"),
                                 ("/api/animate", {"from": 1, "to": 2}, "from"),
                                 ("/api/datasets/fetch", {"source": "search", "value": "x", "caption_from_metadata": "yes"},
                                  "caption_from_metadata"),
                                 ("/api/generate", {"prompt": "x", "stpes": 2}, "stpes"),
                                 ("/api/generate", {"prompt": "x", "steps": 2.5}, "steps"),
                                 ("/api/generate", {"prompt": "x", "tiling": "z"}, "tiling"),
                                 ("/api/train", {"dataset": "heldout", "threads": 2}, "threads"),
                                 ("/api/train", {"dataset": "heldout", "adam_beta1": 1}, "adam_beta1"),
                                 ("/api/generate", {"prompt": "x", "strength": 0}, "strength")]:
        status, answer = request("POST", path, payload)
        text = json.dumps(answer)
        check(status == 400 and field in text and "json.exception" not in text,
              f"{path} {payload}: 400 naming {field} ({status} {text})")


def bad_resume():
    print("hostile: a training resumed from a studio.json of the wrong type", flush=True)
    run = os.path.join(DIR, "trainings", "bad-settings")
    os.makedirs(os.path.join(run, "checkpoints"), exist_ok=True)
    with open(os.path.join(run, "studio.json"), "w") as f:
        json.dump({"dataset": "heldout", "prompt": "x", "steps": "many", "rank": 4, "resolution": 64}, f)
    status, answer = request("POST", "/api/train", {"dataset": "heldout", "name": "bad-settings", "resume": True})
    check(status == 400 and "steps" in json.dumps(answer), f"the resume is refused naming steps ({status} {answer})")
    time.sleep(1)
    try:
        status, _ = request("GET", "/api/info")
    except OSError as e:
        status = str(e)
    check(status == 200, f"the studio lives on ({status})")


tests = [hosts, starvation, catch_up, bodies, slow_readers, wrong_types, damaged_files, slow_clients_cut, bad_resume]
for test in [t for t in tests if t.__name__ in sys.argv[3:]] or tests:
    began = time.monotonic()
    try:
        test()
    except Exception as e:  # a test that cannot reach the studio fails, and the others still run
        check(False, f"{test.__name__}: {type(e).__name__}: {e}")
    print(f"hostile: ({test.__name__}: {time.monotonic() - began:.1f} s)", flush=True)
if failures:
    sys.exit(f"hostile: {len(failures)} failed")
print("hostile: ok")
