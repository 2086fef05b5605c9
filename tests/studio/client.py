"""The studio over raw HTTP, for the studio's tests: connect(URL) once, then request() and Events."""
import json
import socket
import threading
import time
from urllib.parse import urlparse

BASE = HOST = None


def connect(url):
    global BASE, HOST
    BASE = urlparse(url)
    HOST = f"{BASE.hostname}:{BASE.port}"


def request(method, path, payload=None, raw=False):
    body = b"" if payload is None else json.dumps(payload).encode()
    s = socket.create_connection((BASE.hostname, BASE.port), timeout=30)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, answer = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), answer if raw else json.loads(answer) if answer else None


class Events(threading.Thread):
    """Follows /api/events from now on: every event, in order."""

    def __init__(self):
        super().__init__(daemon=True)
        self.events, self.ready = [], threading.Event()

    def run(self):
        s = socket.create_connection((BASE.hostname, BASE.port))
        s.sendall(f"GET /api/events HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if not self.ready.is_set() and b"\r\n\r\n" in data:
                data = data.partition(b"\r\n\r\n")[2]
                self.ready.set()
            while b"\n\n" in data:
                block, _, data = data.partition(b"\n\n")
                for line in block.decode().split("\n"):
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))

    def wait_for(self, test, seconds=120):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if any(test(e) for e in list(self.events)):
                return True
            time.sleep(0.05)
        return False
