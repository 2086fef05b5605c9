#!/usr/bin/env python3
"""jobs.py URL DIR LORA: the studio's runs on the library's jobs, over raw HTTP.

Three runs submitted at once, the middle one with the LoRA named LORA (trained by studio.mjs): each
run's pictures are drawn with its own LoRA or none (the library's jobs queue behind one another,
but a LoRA is the model's state, so the studio attaches it only when the jobs before are done;
the PNGs' "loras" setting says what each was drawn with), and the runs finish in the order they
were asked for. Prompts are read with A1111's weights unless a run asks for plain, and may name
the embeddings of the studio's folder; eta reaches the library (recorded for DDIM, refused by it
for PNDM). Then a queued run cancelled before it starts draws nothing, and a running one shows
its live preview and, cancelled, stops within a step. Meanwhile a run that sets every generate option GET /api/options
offers the page, each to another value than its default, is queued with each of them as asked.
"""
import json
import os
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import client  # noqa: E402
from client import Events, request  # noqa: E402

client.connect(sys.argv[1])
DIR, LORA = sys.argv[2], sys.argv[3]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"jobs: FAILED {what}", flush=True)


def png_text(path):
    """A PNG's text chunks (tEXt, zTXt, iTXt) as a dict."""
    data, out, at = open(path, "rb").read(), {}, 8
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        chunk = data[at + 8:at + 8 + n]
        at += 12 + n
        if kind == b"tEXt":
            k, _, v = chunk.partition(b"\0")
            out[k.decode("latin1")] = v.decode("latin1")
        elif kind == b"zTXt":
            k, _, v = chunk.partition(b"\0")
            out[k.decode("latin1")] = zlib.decompress(v[1:]).decode("latin1")
        elif kind == b"iTXt":
            k, _, rest = chunk.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            rest = rest.split(b"\0", 2)[2]
            out[k.decode()] = (zlib.decompress(rest) if compressed else rest).decode()
    return out


def other_value(row):
    """A value of the row's type and range that is not its default."""
    if row["type"] == "bool":
        return not row["default"]
    if row["type"] == "choice":
        return next(c for c in reversed(row["choices"]) if c != row["default"])
    if row["type"] in ("text", "rgb"):
        return "colibrí"
    for v in (row.get("max"), row.get("min")):
        if v is not None and v != row["default"]:
            return int(v) if row["type"] in ("int", "uint64") else v
    return row["default"] + 1


def same(a, b):
    return a == b or isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-6 * max(1, abs(b))


def finished(e, run):
    return e["type"] == "job" and e["id"] == run and e["state"] in ("done", "cancelled", "failed")


events = Events()
events.start()
events.ready.wait(10)
print("jobs: three runs at once, the middle one with a LoRA", flush=True)
ask = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "images": 2}
runs = []
for lora in ["", LORA, ""]:
    status, answer = request("POST", "/api/generate", dict(ask, lora=lora, lora_scale=0.5, seed=7))
    check(status == 202, f"run with LoRA '{lora}' accepted ({status} {answer})")
    runs.append(answer["id"] if status == 202 else None)
check(all(events.wait_for(lambda e, r=r: finished(e, r)) for r in runs), "the three runs finish")
done = [e["id"] for e in events.events if e["type"] == "job" and e["id"] in runs and e["state"] == "done"]
check(done == runs, f"they finish done, in the order asked: {done}")
for run, lora in zip(runs, ["", LORA, ""]):
    pictures = [e["entry"] for e in events.events if e["type"] == "image" and e["job"] == run]
    check(len(pictures) == 2, f"{run}: two pictures ({len(pictures)})")
    for p in pictures:
        drawn = png_text(f"{DIR}/gallery/{p['file']}").get("loras", "")
        expected = f"{LORA}/pytorch_lora_weights.safetensors:0.5" if lora else ""
        check(drawn.endswith(expected) and bool(drawn) == bool(lora), f"{p['file']} drawn with '{drawn}', asked '{lora}'")
order = [e["job"] for e in events.events if e["type"] == "image" and e["job"] in runs]
check(order == sorted(order, key=runs.index), f"pictures saved in the runs' order: {order}")

print("jobs: prompts read with weights unless a run asks for plain; embeddings; other syntaxes refused", flush=True)
for p in [e["entry"] for e in events.events if e["type"] == "image" and e["job"] == runs[0]]:
    drawn = png_text(f"{DIR}/gallery/{p['file']}").get("prompt_syntax")
    check(p["prompt_syntax"] == "weighted" and drawn == "weighted", f"{p['file']}: weighted by default ({p['prompt_syntax']}, {drawn})")
status, plain = request("POST", "/api/generate", dict(ask, prompt="(x:1.2)", images=1, prompt_syntax="plain"))
check(status == 202 and events.wait_for(lambda e: finished(e, plain["id"])), f"a plain run is drawn ({status} {plain})")
[p] = [e["entry"] for e in events.events if e["type"] == "image" and e["job"] == plain["id"]] or [{}]
check(p.get("prompt_syntax") == "plain" and "prompt_syntax" not in png_text(f"{DIR}/gallery/{p.get('file')}"),
      f"the plain picture says so (and its PNG, as diffusers' would, nothing): {p}")
status, info = request("GET", "/api/info")
check(info["embeddings"] == ["bichito"] and [s["entry"] for s in info["skipped"]] == ["roto.pt", "roto.safetensors"],
      f"the embeddings and ControlNets folders' good files taken, the broken ones reported ({info['embeddings']}, {info['skipped']})")
status, run = request("POST", "/api/generate", dict(ask, prompt="un (bichito:1.2)", images=1))
check(status == 202 and events.wait_for(lambda e: finished(e, run["id"])), f"a run naming the embedding is drawn ({status} {run})")
files = [e["entry"]["file"] for e in events.events if e["type"] == "image" and e["job"] == run["id"]]
drawn = png_text(f"{DIR}/gallery/{files[0]}").get("embeddings", "") if files else ""
check(drawn.endswith("embeddings/bichito.safetensors:bichito"), f"its PNG names the embedding ({drawn})")
status, answer = request("POST", "/api/generate", dict(ask, prompt_syntax="markdown"))
check(status == 400 and "plain" in json.dumps(answer), f"prompt_syntax markdown is refused with the choices ({status} {answer})")

print("jobs: eta reaches the library: DDIM's recorded, one for PNDM refused by it", flush=True)
for scheduler, ok in [("ddim", True), ("pndm", False)]:
    _, run = request("POST", "/api/generate", dict(ask, images=1, scheduler=scheduler, eta=0.5))
    ended = events.wait_for(lambda e, r=run["id"]: finished(e, r))
    last = [e for e in events.events if finished(e, run["id"])][-1:] if ended else []
    drawn = [e["entry"] for e in events.events if e["type"] == "image" and e["job"] == run["id"]]
    if ok:
        check(len(drawn) == 1 and png_text(f"{DIR}/gallery/{drawn[0]['file']}").get("eta") == "0.5", f"DDIM with eta 0.5: {drawn}")
    else:
        check(last and last[0]["state"] == "failed" and "eta applies to the ddim and tcd" in last[0].get("error", ""),
              f"PNDM with eta fails with the library's reason: {last}")

print("jobs: a queued run cancelled before it starts, a running one cancelled", flush=True)
_, first = request("POST", "/api/generate", dict(ask, steps=500, images=4, width=128, height=128))
_, second = request("POST", "/api/generate", dict(ask, images=3))
status, _ = request("POST", f"/api/jobs/{second['id']}/cancel", {})
check(status == 200, f"the queued run is cancelled ({status})")
_, options = request("GET", "/api/options")
offered = {k: other_value(r) for k, r in options["generate"].items() if isinstance(r, dict)}
status, every = request("POST", "/api/generate", dict(offered, prompt="x", images=1))
check(status == 202, f"a run with every generate option offered is accepted ({status} {every})")
if status == 202:
    events.wait_for(lambda e: e["type"] == "job" and e["id"] == every["id"] and e["state"] == "queued", 10)
    request("POST", f"/api/jobs/{every['id']}/cancel", {})
    queued = [e for e in events.events if e["type"] == "job" and e["id"] == every["id"] and e["state"] == "queued"]
    settings = queued[0]["settings"] if queued else {}
    differ = {k: (v, settings.get(k)) for k, v in offered.items() if not same(settings.get(k), v)}
    check(queued and not differ, f"the run is queued with every option as asked (asked, queued): {differ}")
check(events.wait_for(lambda e: e["type"] == "job" and e["id"] == first["id"] and e["state"] == "running" and e.get("step", 0) >= 1),
      "the first run draws")
status, running = request("GET", "/api/info")
check(running["running"] and running["running"]["id"] == first["id"] and running["running"]["steps"] >= 500,
      f"/api/info names the run being drawn, its picture and step ({running['running']})")
# The picture as it forms: the job's latest live preview, a PNG at the latents' size (the
# linear latent-RGB map: 16 px for 128); none for a run that is not drawing.
status, png = request("GET", f"/api/jobs/{first['id']}/preview", raw=True)
check(status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (16, 16),
      f"the running picture's preview ({status}, {png[:24]!r})")
status, _ = request("GET", f"/api/jobs/{second['id']}/preview")
check(status == 404, f"no preview of a run not drawing ({status})")
request("POST", f"/api/jobs/{first['id']}/cancel", {})
for run in (first["id"], second["id"]):
    check(events.wait_for(lambda e, r=run: finished(e, r), 60), f"{run} ends")
    states = [e["state"] for e in events.events if e["type"] == "job" and e["id"] == run and e["state"] != "running"]
    check(states[-1:] == ["cancelled"], f"{run} ends cancelled ({states})")
drawn = {r: sum(1 for e in events.events if e["type"] == "image" and e["job"] == r) for r in (first["id"], second["id"])}
check(drawn[first["id"]] < 4 and drawn[second["id"]] == 0, f"the cancelled runs drew less than asked: {drawn}")
status, answer = request("POST", "/api/jobs/g999/cancel", {})
check(status == 404, f"an unknown run: 404 ({status} {answer})")
if failures:
    sys.exit(f"jobs: {len(failures)} failed")
print("jobs: ok")
