#!/usr/bin/env python3
"""A loopback stand-in for Wikimedia Commons: the MediaWiki Action API (query with
generator=categorymembers / generator=search / titles, prop=imageinfo with extmetadata, formatversion
1 and 2, `continue` across answers including imageinfo's `iicontinue` break) and the file servers
(originals and thumbnails, with Range). It misbehaves on demand, per scenario named in the URL path
(http://127.0.0.1:PORT/<scenario,scenario>/w/api.php):

  fv1        answers in formatversion 1 (pages keyed by id) whatever was asked
  maxlag     the first API request gets a maxlag error (HTTP 200, Retry-After, X-Database-Lag)
  api503     the first API request gets HTTP 503
  ratelimit  the second API request gets a ratelimited error
  flaky      files: 429 with Retry-After, 429 without, 503, and a connection dropped mid-file
  badfiles   one file's SHA-1 is announced wrong, one answers an HTML page, one JPEG is truncated
  slow       every file takes a second to arrive (for interrupting a fetch)
  longtitle  the frog's title is over 300 bytes (longer than a file name may be)

Every category answer carries two files and a continuation; when imageinfo is asked for thumbnails
the first answer gives image info for only some pages and continues with iicontinue, as Commons
does after 50 thumbnails. Requests without a bioesp User-Agent get 403 (as Wikimedia blocks generic
agents). Usage: commons_server.py IMAGE_DIR PORT_FILE [LOG_FILE]
"""
import hashlib
import http.server
import json
import os
import struct
import sys
import threading
import time
import urllib.parse

IMAGES = sys.argv[1]
PORT_FILE = sys.argv[2]
LOG = open(sys.argv[3], "a") if len(sys.argv) > 3 else None
lock = threading.Lock()
counters = {}


def count(key):
    with lock:
        counters[key] = counters.get(key, 0) + 1
        return counters[key]


def dims(data):
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return 0, 0


# The catalogue: every image in IMAGE_DIR, with licenses and credits chosen by file name.
FILES = []
for name in sorted(os.listdir(IMAGES)):
    data = open(os.path.join(IMAGES, name), "rb").read()
    w, h = dims(data)
    license, restrictions = "CC BY-SA 4.0", ""
    if "nonfree" in name:
        license = "CC BY-NC 4.0"
    if "person" in name:
        restrictions = "personality"
    if "cc0" in name:
        license = "CC0"
    FILES.append({
        "name": name, "title": "File:" + name, "data": data, "sha1": hashlib.sha1(data).hexdigest(),
        "width": w, "height": h, "license": license, "restrictions": restrictions,
        "mime": "image/png" if data[:4] == b"\x89PNG" else "image/jpeg",
    })


def title_of(f, scenarios):
    if "longtitle" in scenarios and f["name"].startswith("Rana"):
        return "File:Rana cc0 " + "de la selva húmeda del Chocó biogeográfico, " * 7 + "fotografiada de noche.jpg"
    return f["title"]


def imageinfo(f, base, thumb_width, scenarios):
    sha1 = f["sha1"]
    if "badfiles" in scenarios and "wrongsha" in f["name"]:
        sha1 = "0" * 40
    info = {
        "size": len(f["data"]), "width": f["width"], "height": f["height"], "sha1": sha1, "mime": f["mime"],
        "url": base + "/files/" + urllib.parse.quote(f["name"]),
        "descriptionurl": "https://commons.wikimedia.org/wiki/" + urllib.parse.quote(title_of(f, scenarios).replace(" ", "_")),
        "descriptionshorturl": "https://commons.wikimedia.org/w/index.php?curid=1",
        "extmetadata": {
            "LicenseShortName": {"value": f["license"], "source": "commons-desc-page"},
            "License": {"value": f["license"].lower().replace(" ", "-"), "source": "commons-templates", "hidden": ""},
            "LicenseUrl": {"value": "https://creativecommons.org/licenses/by-sa/4.0", "source": "commons-desc-page"},
            "UsageTerms": {"value": "Creative Commons Attribution-Share Alike 4.0", "source": "commons-desc-page"},
            "AttributionRequired": {"value": "true", "source": "commons-desc-page"},
            "Copyrighted": {"value": "True", "source": "commons-desc-page"},
            "Restrictions": {"value": f["restrictions"], "source": "commons-desc-page", "hidden": ""},
            "Artist": {"value": "<a href=\"//commons.wikimedia.org/wiki/User:Ana\" title=\"User:Ana\">Ana Mar&iacute;a &amp; Jos&#233;</a>",
                       "source": "commons-desc-page"},
            "Credit": {"value": "<span class=\"int-own-work\" lang=\"es\">Trabajo propio</span>", "source": "commons-desc-page"},
            "ImageDescription": {"value": "<p>Un colibr&iacute; en <b>Boyac&aacute;</b></p>", "source": "commons-desc-page"},
            "ObjectName": {"value": "Colibri coruscans", "source": "commons-desc-page"},
            "Categories": {"value": "Colibri coruscans|Uploaded via Campaign:Biodiversidad en Colombia 2025", "source": "commons-categories"},
            "DateTimeOriginal": {"value": "2025-03-01 10:00:00", "source": "commons-desc-page"},
        },
    }
    if thumb_width:
        tw = min(thumb_width, f["width"])
        info["thumburl"] = base + "/thumbs/" + str(thumb_width) + "/" + urllib.parse.quote(f["name"])
        info["thumbwidth"] = f["width"] if tw == f["width"] else tw
        info["thumbheight"] = f["height"]
    return info


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if LOG:
            LOG.write("%s %s\n" % (self.headers.get("User-Agent"), fmt % args))
            LOG.flush()

    def send(self, status, body, ctype="application/json; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        ua = self.headers.get("User-Agent", "")
        if not ua.startswith("bioesp/") or "libcurl/" not in ua:
            return self.send(403, b"Please set a user-agent and respect our robot policy", "text/plain")
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.split("/")
        scenarios = set(parts[1].split(",")) if len(parts) > 2 else set()
        base = "http://%s/%s" % (self.headers["Host"], parts[1])
        rest = "/" + "/".join(parts[2:])
        if rest == "/w/api.php":
            return self.api(urllib.parse.parse_qs(url.query), scenarios, base)
        if rest.startswith("/files/") or rest.startswith("/thumbs/"):
            name = urllib.parse.unquote(rest.split("/")[-1])
            return self.file(name, scenarios)
        self.send(404, b"not found", "text/plain")

    def api(self, q, scenarios, base):
        get = lambda k: q.get(k, [""])[0]
        n = count("api:" + ",".join(sorted(scenarios)))
        if "maxlag" in scenarios and n == 1:
            body = {"error": {"code": "maxlag", "info": "Waiting for 10.64.0.1: 6 seconds lagged.", "host": "db1",
                              "lag": 6, "type": "db"}, "servedby": "mw1"}
            return self.send(200, json.dumps(body).encode(), headers=[("Retry-After", "1"), ("X-Database-Lag", "6")])
        if "api503" in scenarios and n == 1:
            return self.send(503, b"<html><body>Service Unavailable</body></html>", "text/html", [("Retry-After", "1")])
        if "ratelimit" in scenarios and n == 2:
            body = {"error": {"code": "ratelimited", "info": "You've exceeded your rate limit."}}
            return self.send(200, json.dumps(body).encode(), headers=[("Retry-After", "1")])
        if get("action") != "query" or get("format") != "json" or get("maxlag") != "5":
            return self.send(200, json.dumps({"error": {"code": "badparams", "info": "bad request"}}).encode())
        fv1 = "fv1" in scenarios
        thumb = int(get("iiurlwidth") or 0)
        if get("titles"):
            wanted = get("titles").split("|")
            pages = [f for f in FILES if f["title"] in wanted]
            missing = [t for t in wanted if t not in {f["title"] for f in pages}]
            return self.answer(pages, missing, {}, thumb, fv1, base, scenarios, True)
        if get("generator") == "categorymembers":
            cat = get("gcmtitle")
            if get("gcmtype") != "file" or not cat.startswith("Category:"):
                return self.send(200, json.dumps({"error": {"code": "badparams", "info": "bad generator"}}).encode())
            members = FILES if cat != "Category:Empty" else []
        elif get("generator") == "search":
            if get("gsrnamespace") != "6":
                return self.send(200, json.dumps({"error": {"code": "badparams", "info": "namespace"}}).encode())
            words = get("gsrsearch").lower().split()
            members = [f for f in FILES if all(w in f["name"].lower() for w in words)]
        else:
            return self.send(200, json.dumps({"error": {"code": "badparams", "info": "no generator"}}).encode())
        # Continuation: two members per answer; the first answer of each pair of pages breaks
        # imageinfo after one page when thumbnails are asked (iicontinue).
        start = int(get("gcmcontinue") or get("gsroffset") or 0)
        if get("continue") not in ("", "gcmcontinue||", "gsroffset||"):
            return self.send(200, json.dumps({"error": {"code": "badcontinue", "info": "Invalid continue param."}}).encode())
        batch = members[start:start + 2]
        cont = {}
        more = start + 2 < len(members)
        key = "gcmcontinue" if get("generator") == "categorymembers" else "gsroffset"
        with_info = batch
        if thumb and len(batch) == 2 and not get("iicontinue"):
            with_info = batch[:1]
            cont = {"iicontinue": batch[1]["title"][5:] + "|20250301000000", "continue": key + "||"}
            if start:
                cont[key] = str(start)
        elif more:
            cont = {key: str(start + 2), "continue": key + "||"}
        return self.answer(batch, [], cont, thumb, fv1, base, scenarios, False, with_info)

    def answer(self, pages, missing, cont, thumb, fv1, base, scenarios, titles, with_info=None):
        with_info = pages if with_info is None else with_info
        out = []
        for i, f in enumerate(pages):
            p = {"pageid": 1000 + FILES.index(f), "ns": 6, "title": title_of(f, scenarios), "imagerepository": "local"}
            if f in with_info:
                p["imageinfo"] = [imageinfo(f, base, thumb, scenarios)]
            out.append(p)
        for i, t in enumerate(missing):
            out.append({"ns": 6, "title": t, "missing": "" if fv1 else True})
        body = {"batchcomplete": not cont} if not fv1 else ({"batchcomplete": ""} if not cont else {})
        if cont:
            body["continue"] = cont
        if fv1:
            pages_obj = {}
            for i, p in enumerate(out):
                pages_obj[str(p.get("pageid", -1 - i))] = p
            body["query"] = {"pages": pages_obj}
        else:
            body["query"] = {"pages": out}
        self.send(200, json.dumps(body).encode())

    def file(self, name, scenarios):
        f = next((x for x in FILES if x["name"] == name), None)
        if not f:
            return self.send(404, b"<html>404</html>", "text/html")
        data = f["data"]
        n = count("file:" + name + ":" + ",".join(sorted(scenarios)))
        if "slow" in scenarios:
            time.sleep(1.0)
        if "flaky" in scenarios:
            k = FILES.index(f) % 4
            if k == 0 and n == 1:
                return self.send(429, b"Too many requests", "text/plain", [("Retry-After", "1")])
            if k == 1 and n == 1:
                return self.send(429, b"Too many requests", "text/plain")
            if k == 2 and n == 1:
                return self.send(503, b"<html>Service Unavailable</html>", "text/html")
            if k == 3 and n == 1 and not self.headers.get("Range"):
                self.send_response(200)
                self.send_header("Content-Type", f["mime"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
        if "badfiles" in scenarios and "html" in name:
            return self.send(200, b"<!DOCTYPE html><html><body>Error: file not found</body></html>", "text/html")
        if "badfiles" in scenarios and "truncated" in name:
            data = data[:len(data) * 2 // 3]
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first = int(rng[6:].split("-")[0])
            if first >= len(data):
                return self.send(416, b"", "text/plain", [("Content-Range", "bytes */%d" % len(data))])
            return self.send(206, data[first:], f["mime"], [("Content-Range", "bytes %d-%d/%d" % (first, len(data) - 1, len(data)))])
        self.send(200, data, f["mime"])


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as pf:
    pf.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
