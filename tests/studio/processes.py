#!/usr/bin/env python3
"""processes.py URL DIR PID: the studio's trainings across processes (nproc), over raw HTTP, of
the studio whose pid is PID, on the dataset "heldout".

nproc out of range and the rank options a page may not set are refused by name; a 2-process
training finishes, the studio (rank 0) showing its progress with the number of processes while
one `bioesp train` worker of rank 1 runs beside it; one stopped at once is stopped with no worker
left; a long one stopped leaves no worker and one
checkpoint of 2 processes, and resumed goes on from it with its saved nproc; a worker killed with
SIGKILL fails the training within the timeout, naming the rank and its signal."""
import json
import os
import re
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client  # noqa: E402
from client import Events, request  # noqa: E402

client.connect(sys.argv[1])
DIR, STUDIO = sys.argv[2], int(sys.argv[3])


def workers():
    """The studio's children: {pid: RANK from their environment}."""
    out = {}
    for d in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{d}/stat").read()
            if int(stat.rpartition(")")[2].split()[1]) != STUDIO:
                continue
            env = dict(e.split("=", 1) for e in open(f"/proc/{d}/environ").read().split("\0") if "=" in e)
            out[int(d)] = env.get("RANK")
        except (OSError, ValueError):
            continue
    return out


def until(test, seconds, what):
    end = time.monotonic() + seconds
    while not test():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def checkpoints(name):
    folder = os.path.join(DIR, "trainings", name, "checkpoints")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def metadata(path):
    """A safetensors file's __metadata__."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def ended(events, name):
    for e in events.events:
        if e.get("type") == "train" and e.get("name") == name and e.get("state") in ("done", "stopped", "failed"):
            return e
    return None


def running(events, name, step):
    return lambda: any(e.get("type") == "train" and e.get("name") == name and e.get("state") == "running" and
                       e.get("stage") == "train" and e.get("step", 0) >= step for e in list(events.events))


settings = dict(dataset="heldout", resolution=64, validation_every=0, checkpoint_every=0, validation_steps=2, nproc=2)

# Refused by name: nproc out of range, the rank options (the studio starts the processes itself).
for bad, words in ((dict(nproc=0), ("nproc", "procesos")), (dict(nproc=99), ("8",)),
                   (dict(world_size=2), ("world_size",)), (dict(master_port=29500), ("master_port",))):
    code, answer = request("POST", "/api/train", {**settings, "name": "bad", **bad})
    assert code == 400 and any(w in answer["error"] for w in words), (bad, code, answer)
code, listing = request("GET", "/api/options")
assert isinstance(listing["train"]["process_rank"], str) and isinstance(listing["train"]["timeout"], dict), listing["train"]

events = Events()
events.start()
events.ready.wait(10)

# Two processes, three steps: done; the studio is rank 0, one worker of rank 1 beside it.
code, answer = request("POST", "/api/train", {**settings, "name": "p1", "steps": 3})
assert code == 202, answer
seen = {}
until(lambda: seen.update(workers()) or ended(events, "p1"), 300, "p1 did not end")
e = ended(events, "p1")
assert e["state"] == "done", e
assert list(seen.values()) == ["1"], f"workers seen: {seen}"
assert any(x.get("name") == "p1" and x.get("processes") == 2 for x in events.events if x.get("state") == "running")
out = os.path.join(DIR, "trainings", "p1")
assert os.path.getsize(os.path.join(out, "pytorch_lora_weights.safetensors")) > 0
assert len(open(os.path.join(out, "train_log.jsonl")).read().splitlines()) == 3
assert json.load(open(os.path.join(out, "studio.json")))["nproc"] == 2
until(lambda: not workers(), 10, "a worker outlived p1")

# Stopped at once (most likely before rank 0 hosts its rendezvous, which the worker then waits
# for in vain): stopped, not failed, and the worker gone within the grace rank 0's end gives it.
code, answer = request("POST", "/api/train", {**settings, "name": "p0", "steps": 2000})
assert code == 202, answer
request("POST", "/api/train/cancel", {})
until(lambda: ended(events, "p0"), 120, "p0 did not stop")
assert ended(events, "p0")["state"] == "stopped", ended(events, "p0")
assert not workers(), workers()

# A long one stopped: no worker left, one checkpoint (of 2 processes) that the resume goes on from.
code, answer = request("POST", "/api/train", {**settings, "name": "p2", "steps": 2000})
assert code == 202, answer
until(running(events, "p2", 2), 300, "p2 did not train")
assert list(workers().values()) == ["1"], workers()
code, _ = request("POST", "/api/train/cancel", {})
assert code == 200
until(lambda: ended(events, "p2"), 120, "p2 did not stop")
assert ended(events, "p2")["state"] == "stopped", ended(events, "p2")
until(lambda: not workers(), 10, "a worker outlived the stop")
[first] = checkpoints("p2")
assert re.fullmatch(r"checkpoint-\d{6}\.safetensors", first), first
assert metadata(os.path.join(DIR, "trainings", "p2", "checkpoints", first))["world_size"] == "2"
at = int(first[11:17])
events.events.clear()
code, answer = request("POST", "/api/train", {"name": "p2", "resume": True})
assert code == 202, answer
until(running(events, "p2", at + 2), 300, "the resumed p2 did not train")
assert any(e.get("processes") == 2 for e in events.events if e.get("state") == "running")
steps = [e["step"] for e in events.events if e.get("state") == "running" and e.get("stage") == "train"]
assert min(steps) > at, (at, steps)
request("POST", "/api/train/cancel", {})
until(lambda: ended(events, "p2"), 120, "the resumed p2 did not stop")
assert ended(events, "p2")["state"] == "stopped"
assert checkpoints("p2")[-1] > first, checkpoints("p2")

# A worker killed: the training fails within its timeout, naming rank 1 and the signal.
until(lambda: not workers(), 10, "a worker outlived the resumed p2")
code, answer = request("POST", "/api/train", {**settings, "name": "p3", "steps": 2000, "timeout": 20})
assert code == 202, answer
until(running(events, "p3", 1), 300, "p3 did not train")
[(worker, rank)] = workers().items()
os.kill(worker, signal.SIGKILL)
start = time.monotonic()
until(lambda: ended(events, "p3"), 60, "p3 did not end after its worker was killed")
e = ended(events, "p3")
print(f"processes: p3 {e['state']} {time.monotonic() - start:.1f} s after its worker was killed: {e.get('error')}")
assert e["state"] == "failed" and "rank 1 was killed by signal 9" in e["error"], e
assert time.monotonic() - start <= 35
for c in checkpoints("p3"):
    assert re.fullmatch(r"checkpoint-\d{6}\.safetensors", c), checkpoints("p3")
print("processes: ok")
