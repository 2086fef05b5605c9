#!/usr/bin/env python3
"""A loopback stand-in for the Hugging Face Hub, speaking the wire format huggingface_hub uses:

  GET  /api/models/{repo}/revision/{rev}        model info with the commit ("sha")
  GET  /api/models/{repo}/tree/{rev}?recursive=true   three entries a page, Link: rel="next"
  HEAD/GET /{repo}/resolve/{rev}/{path}         regular files: 200, ETag = git blob SHA-1;
                                                LFS files: 302 to the storage host, X-Linked-Etag =
                                                sha256, X-Linked-Size; X-Repo-Commit always;
                                                a renamed repository answers 307 to its new name
  POST /api/repos/create                        409 when it exists
  POST /api/models/{repo}/preupload/main        uploadMode lfs|regular, the remote oid
  POST /{repo}.git/info/lfs/objects/batch       basic (small) or multipart (large) upload actions
  POST /{repo}.git/info/lfs/objects/verify
  POST /api/models/{repo}/commit/main           NDJSON: header, file (base64), lfsFile

and a second "storage" host (another port) serving LFS objects with Range, taking basic and
multipart uploads. Requests are validated as the Hub would (tokens, JSON shapes, hashes, sizes);
anything wrong is a 400 with the reason. The storage host refuses requests that carry an
Authorization header (a client must drop the token when a redirect leaves the Hub).

Tokens: hf_write (write access), hf_read (read only). Repository gated/tiny is gated: no token
can download it. Scenarios, as a path prefix of the endpoint (http://127.0.0.1:PORT/s/a,b):

  ratelimit  the first revision request of each repository gets 429 with Retry-After: 1
  drop       the first storage GET of each object closes the connection halfway
  badhash    the storage serves corrupted bytes (the hash does not match)
  down       every API request gets 503
  vanish     resolve answers EntryNotFound for unet/config.json

Usage: hub_server.py PORT_FILE LOG_FILE [--seed ORG/NAME=DIR]... [--alias OLD=NEW]...
PORT_FILE receives "HUB_PORT STORAGE_PORT". The log has one line per request:
"<host> <METHOD> <path> auth=<yes|no> range=<…>".
"""
import base64
import hashlib
import http.server
import json
import os
import sys
import threading
import urllib.parse

PORT_FILE, LOG_FILE = sys.argv[1], sys.argv[2]
LOG = open(LOG_FILE, "a", buffering=1)
lock = threading.Lock()
TOKENS = {"hf_write": "write", "hf_read": "read"}
MULTIPART_THRESHOLD = 100_000
CHUNK = 64_000
LFS_EXT = (".safetensors", ".bin", ".ckpt", ".pt", ".png", ".jpg", ".gguf")

objects = {}   # sha256 -> bytes (the LFS storage)
parts = {}     # (sha256, n) -> bytes
repos = {}     # id -> {"commits": {sha: files}, "refs": {rev: sha}, "gated": bool, "private": bool}
aliases = {}   # old id -> new id
counters = {}
hub_port = storage_port = 0


def once(key):
    with lock:
        counters[key] = counters.get(key, 0) + 1
        return counters[key] == 1


def git_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path, data):
    return path.endswith(LFS_EXT) or len(data) > 10_000_000 or b"\0" in data[:512]


def pointer(data):
    sha = hashlib.sha256(data).hexdigest()
    return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (sha.encode(), len(data))


def commit_id(files, parent):
    h = hashlib.sha1(parent.encode())
    for p in sorted(files):
        h.update(p.encode() + b"\0" + git_oid(files[p]).encode())
    return h.hexdigest()


def add_commit(repo, files):
    r = repos[repo]
    parent = r["refs"].get("main", "")
    sha = commit_id(files, parent)
    r["commits"][sha] = files
    r["refs"]["main"] = sha
    for p, d in files.items():
        if is_lfs(p, d):
            objects[hashlib.sha256(d).hexdigest()] = d
    return sha


def seed(repo, directory):
    repos[repo] = {"commits": {}, "refs": {}, "gated": repo.startswith("gated/"), "private": False}
    files = {}
    for root, _, names in os.walk(directory):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, directory)] = open(full, "rb").read()
    files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    add_commit(repo, files)
    # A tag and a second commit, so revisions other than main resolve to other commits.
    repos[repo]["refs"]["v1"] = repos[repo]["refs"]["main"]


args = sys.argv[3:]
for i in range(0, len(args), 2):
    if args[i] == "--seed":
        name, d = args[i + 1].split("=", 1)
        seed(name, d)
    elif args[i] == "--alias":
        old, new = args[i + 1].split("=", 1)
        aliases[old] = new


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    storage = False

    def log_message(self, *a):
        pass

    # ---- helpers
    def send(self, status, body=b"", headers=None, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code=None, message="", headers=None):
        h = dict(headers or {})
        if code:
            h["X-Error-Code"] = code
        if message:
            h["X-Error-Message"] = message
        self.send(status, {"error": message or code or "error"}, h)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def token(self):
        a = self.headers.get("Authorization", "")
        return TOKENS.get(a[7:]) if a.startswith("Bearer ") else None

    def split(self):
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        scenarios = set()
        if path.startswith("/s/"):
            _, _, sc, rest = path.split("/", 3)
            scenarios = set(sc.split(","))
            path = "/" + rest
        return path, urllib.parse.parse_qs(u.query), scenarios

    def log_request_line(self):
        LOG.write("%s %s %s auth=%s range=%s\n" % ("storage" if self.storage else "hub", self.command, self.path,
                                                   "yes" if self.headers.get("Authorization") else "no",
                                                   self.headers.get("Range", "-")))

    def serve_bytes(self, data, headers, scenarios, key):
        """GET with Range; `drop` closes the first transfer halfway."""
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                return self.send(416, b"", {"Content-Range": "bytes */%d" % len(data)})
        if "badhash" in scenarios:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        chunk = data[start:]
        self.send_response(206 if start else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        if "drop" in scenarios and once("drop " + key) and len(chunk) > 1:
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(chunk)

    # ---- verbs
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.log_request_line()
        path, query, scenarios = self.split()
        if self.storage:
            return self.storage_get(path, query)
        if "down" in scenarios and path.startswith("/api/"):
            return self.error(503, message="down for maintenance")
        parts_ = path.strip("/").split("/")
        if parts_[:2] == ["api", "models"] and len(parts_) >= 6 and parts_[4] in ("revision", "tree"):
            repo = "/".join(parts_[2:4])
            rev = urllib.parse.unquote("/".join(parts_[5:]))
            if repo in aliases:
                moved = "/api/models/%s/%s" % (aliases[repo], "/".join(parts_[4:]))
                query_ = urllib.parse.urlsplit(self.path).query
                return self.send(307, b"", {"Location": moved + ("?" + query_ if query_ else "")})
            r = repos.get(repo)
            if r is None or (r["private"] and not self.token()):
                return self.error(401 if not self.token() else 404, "RepoNotFound", "Repository not found")
            if parts_[4] == "revision" and "ratelimit" in scenarios and once("ratelimit " + repo):
                return self.error(429, message="rate limited", headers={"Retry-After": "1"})
            sha = r["refs"].get(rev, rev if rev in r["commits"] else None)
            if sha is None:
                return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
            files = r["commits"][sha]
            if parts_[4] == "revision":
                return self.send(200, {"id": repo, "modelId": repo, "sha": sha, "private": r["private"],
                                       "gated": "manual" if r["gated"] else False,
                                       "siblings": [{"rfilename": p} for p in sorted(files)]})
            entries = []
            dirs = set()
            for p in sorted(files):
                d = p.split("/")[:-1]
                for k in range(1, len(d) + 1):
                    dirs.add("/".join(d[:k]))
            for d in sorted(dirs):
                entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
            for p in sorted(files):
                data = files[p]
                e = {"type": "file", "path": p}
                if is_lfs(p, data):
                    e.update(oid=git_oid(pointer(data)), size=len(data),
                             lfs={"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": len(pointer(data))})
                else:
                    e.update(oid=git_oid(data), size=len(data))
                entries.append(e)
            if query.get("recursive", ["false"])[0] != "true":
                return self.send(400, {"error": "this server only lists recursively"})
            cursor = int(query.get("cursor", ["0"])[0])
            page = entries[cursor:cursor + 3]
            headers = {}
            if cursor + 3 < len(entries):
                u = urllib.parse.urlsplit(self.path)
                nxt = "http://127.0.0.1:%d%s?recursive=true&cursor=%d" % (hub_port, u.path, cursor + 3)
                headers["Link"] = '<%s>; rel="next"' % nxt
            return self.send(200, page, headers)
        if len(parts_) >= 5 and parts_[2] == "resolve":
            repo = "/".join(parts_[:2])
            rev = parts_[3]
            fpath = urllib.parse.unquote("/".join(parts_[4:]))
            if repo in aliases:
                return self.send(307, b"", {"Location": "/%s/resolve/%s/%s" % (aliases[repo], rev, "/".join(parts_[4:]))})
            r = repos.get(repo)
            if r is None:
                return self.error(401, "RepoNotFound", "Repository not found")
            if r["gated"]:
                return self.error(403 if self.token() else 401, "GatedRepo",
                                  "Access to model %s is restricted. You must have access to it and be authenticated." % repo)
            sha = r["refs"].get(rev, rev if rev in r["commits"] else None)
            if sha is None:
                return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
            files = r["commits"][sha]
            if fpath not in files or ("vanish" in scenarios and fpath == "unet/config.json"):
                return self.error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha})
            data = files[fpath]
            if is_lfs(fpath, data):
                digest = hashlib.sha256(data).hexdigest()
                sc = "/s/" + ",".join(sorted(scenarios)) if scenarios else ""
                loc = "http://127.0.0.1:%d%s/lfs/%s?sig=x" % (storage_port, sc, digest)
                return self.send(302, b"", {"Location": loc, "X-Repo-Commit": sha, "X-Linked-Etag": '"%s"' % digest,
                                            "X-Linked-Size": str(len(data)), "ETag": '"%s"' % git_oid(pointer(data))})
            return self.serve_bytes(data, {"ETag": '"%s"' % git_oid(data), "X-Repo-Commit": sha}, scenarios, fpath)
        return self.error(404, message="no such endpoint: " + path)

    def storage_get(self, path, query):
        _, path_scen, scenarios = self.split()
        if self.headers.get("Authorization"):
            return self.send(400, {"error": "storage: an Authorization header must not reach the storage host"})
        parts_ = path.strip("/").split("/")
        if parts_[0] == "lfs" and len(parts_) == 2 and parts_[1] in objects:
            return self.serve_bytes(objects[parts_[1]], {"ETag": '"%s"' % parts_[1]}, scenarios, parts_[1])
        return self.send(404, {"error": "no such object"})

    def do_PUT(self):
        self.log_request_line()
        path, _, _ = self.split()
        if not self.storage:
            return self.error(405, message="PUT goes to the storage host")
        if self.headers.get("Authorization"):
            return self.send(400, {"error": "storage: an Authorization header must not reach the storage host"})
        data = self.body()
        parts_ = path.strip("/").split("/")
        if parts_[0] == "upload" and len(parts_) == 2:
            if hashlib.sha256(data).hexdigest() != parts_[1]:
                return self.send(400, {"error": "storage: the uploaded bytes do not match the oid"})
            with lock:
                objects[parts_[1]] = data
            return self.send(200, b"")
        if parts_[0] == "part" and len(parts_) == 3:
            with lock:
                parts[(parts_[1], int(parts_[2]))] = data
            return self.send(200, b"", {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})
        return self.send(404, {"error": "storage: no such upload URL"})

    def do_POST(self):
        self.log_request_line()
        path, _, scenarios = self.split()
        raw = self.body()
        if self.storage:
            parts_ = path.strip("/").split("/")
            if parts_[0] == "complete" and len(parts_) == 2:
                oid = parts_[1]
                req = json.loads(raw)
                if req.get("oid") != oid:
                    return self.send(400, {"error": "completion: oid mismatch"})
                data = b""
                for i, p in enumerate(req.get("parts", [])):
                    chunk = parts.get((oid, p["partNumber"]))
                    if p["partNumber"] != i + 1 or chunk is None or p["etag"] != '"%s"' % hashlib.md5(chunk).hexdigest():
                        return self.send(400, {"error": "completion: part %d missing or its etag wrong" % (i + 1)})
                    data += chunk
                if hashlib.sha256(data).hexdigest() != oid:
                    return self.send(400, {"error": "completion: assembled parts do not match the oid"})
                with lock:
                    objects[oid] = data
                return self.send(200, {})
            return self.send(404, {"error": "storage: no such endpoint"})
        if "down" in scenarios:
            return self.error(503, message="down for maintenance")
        access = self.token()
        if access is None:
            return self.error(401, message="Invalid credentials in Authorization header")
        if access != "write":
            return self.error(403, message="You don't have the rights to create or write to this repository")
        parts_ = path.strip("/").split("/")
        if path == "/api/repos/create":
            req = json.loads(raw)
            if not isinstance(req.get("name"), str) or "/" in req["name"]:
                return self.send(400, {"error": "create: 'name' must be the repository name without the owner"})
            repo = "%s/%s" % (req.get("organization") or "user", req["name"])
            url = "http://127.0.0.1:%d/%s" % (hub_port, repo)
            if repo in repos:
                return self.send(409, {"error": "You already created this model repo", "url": url})
            repos[repo] = {"commits": {}, "refs": {}, "gated": False, "private": bool(req.get("private"))}
            add_commit(repo, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
            return self.send(200, {"url": url, "name": repo})
        if parts_[:2] == ["api", "models"] and len(parts_) == 6 and parts_[4] == "preupload":
            repo = "/".join(parts_[2:4])
            if repo not in repos:
                return self.error(404, "RepoNotFound", "Repository not found")
            current = repos[repo]["commits"][repos[repo]["refs"]["main"]]
            out = []
            for f in json.loads(raw)["files"]:
                sample = base64.b64decode(f["sample"], validate=True)
                if len(sample) > 512 or not isinstance(f["size"], int):
                    return self.send(400, {"error": "preupload: the sample is at most 512 bytes, size an integer"})
                lfs = f["path"].endswith(LFS_EXT) or f["size"] > 10_000_000 or b"\0" in sample
                e = {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
                if f["path"] in current:
                    d = current[f["path"]]
                    e["oid"] = hashlib.sha256(d).hexdigest() if lfs else git_oid(d)
                out.append(e)
            return self.send(200, {"files": out, "commitOid": repos[repo]["refs"]["main"]})
        if len(parts_) == 6 and parts_[1].endswith(".git") and parts_[2:5] == ["info", "lfs", "objects"]:
            repo = parts_[0] + "/" + parts_[1][:-4]
            if self.headers.get("Accept") != "application/vnd.git-lfs+json" or \
                    self.headers.get("Content-Type") != "application/vnd.git-lfs+json":
                return self.send(400, {"error": "LFS: Accept and Content-Type must be application/vnd.git-lfs+json"})
            req = json.loads(raw)
            if parts_[5] == "verify":
                d = objects.get(req.get("oid"))
                if d is None or len(d) != req.get("size"):
                    return self.send(404, {"message": "LFS verify: object not found"})
                return self.send(200, {})
            if parts_[5] != "batch" or req.get("operation") != "upload" or "basic" not in req.get("transfers", []) \
                    or req.get("hash_algo") != "sha256":
                return self.send(400, {"error": "LFS batch: operation upload, basic transfer, sha256 expected"})
            answer = []
            multipart = False
            for o in req["objects"]:
                oid, size = o["oid"], o["size"]
                e = {"oid": oid, "size": size, "authenticated": True}
                verify = {"href": "http://127.0.0.1:%d/%s.git/info/lfs/objects/verify" % (hub_port, repo)}
                if oid in objects:
                    pass  # already stored: no actions
                elif size > MULTIPART_THRESHOLD and "multipart" in req["transfers"]:
                    multipart = True
                    header = {"chunk_size": str(CHUNK)}
                    for n in range(1, (size + CHUNK - 1) // CHUNK + 1):
                        header["%05d" % n] = "http://127.0.0.1:%d/part/%s/%d?sig=x" % (storage_port, oid, n)
                    e["actions"] = {"upload": {"href": "http://127.0.0.1:%d/complete/%s" % (storage_port, oid),
                                               "header": header}, "verify": verify}
                else:
                    e["actions"] = {"upload": {"href": "http://127.0.0.1:%d/upload/%s?sig=x" % (storage_port, oid)},
                                    "verify": verify}
                answer.append(e)
            return self.send(200, {"transfer": "multipart" if multipart else "basic", "objects": answer},
                             ctype="application/vnd.git-lfs+json")
        if parts_[:2] == ["api", "models"] and len(parts_) == 6 and parts_[4] == "commit":
            repo = "/".join(parts_[2:4])
            if repo not in repos:
                return self.error(404, "RepoNotFound", "Repository not found")
            if self.headers.get("Content-Type") != "application/x-ndjson":
                return self.send(400, {"error": "commit: Content-Type must be application/x-ndjson"})
            lines = [json.loads(l) for l in raw.decode().splitlines() if l.strip()]
            if not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
                return self.send(400, {"error": "commit: the first line must be the header with a summary"})
            files = dict(repos[repo]["commits"][repos[repo]["refs"]["main"]])
            for l in lines[1:]:
                v = l["value"]
                if l["key"] == "file":
                    if v.get("encoding") != "base64":
                        return self.send(400, {"error": "commit: file content must be base64"})
                    files[v["path"]] = base64.b64decode(v["content"], validate=True)
                elif l["key"] == "lfsFile":
                    if v.get("algo") != "sha256" or v.get("oid") not in objects:
                        return self.send(400, {"error": "commit: LFS object %s was not uploaded" % v.get("oid")})
                    files[v["path"]] = objects[v["oid"]]
                else:
                    return self.send(400, {"error": "commit: unknown line key " + str(l.get("key"))})
            sha = add_commit(repo, files)
            return self.send(200, {"commitOid": sha, "commitUrl": "http://127.0.0.1:%d/%s/commit/%s" % (hub_port, repo, sha)})
        return self.error(404, message="no such endpoint: " + path)


class StorageHandler(Handler):
    storage = True


hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
store = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StorageHandler)
hub_port, storage_port = hub.server_address[1], store.server_address[1]
threading.Thread(target=store.serve_forever, daemon=True).start()
with open(PORT_FILE + ".tmp", "w") as f:
    f.write("%d %d\n" % (hub_port, storage_port))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
hub.serve_forever()
