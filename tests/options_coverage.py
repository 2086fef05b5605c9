"""Every field of every options struct reaches every room: the library's options table, the
command line and the bindings. Fails when a field of a `typedef struct bioesp_*_options` in
bioesp.h is missing from the table (or out of its order), when a row has neither a flag nor a
reason it is not exposed, when `bioesp CMD --help` leaves out a flag of its kinds (or lists one
twice), or when the Python binding cannot set a field by name.

Usage: options_coverage.py HEADER TABLE_PROGRAM CLI [--python DIR] [--studio]

--studio (a CLI built with the studio): `CLI studio --options` prints what its GET /api/options
answers, {"KIND": {"FIELD": ROW | "why the page does not set it", ...}, ...}; it fails unless
every kind the studio passes to the library is there and each of its fields is listed (a ROW,
which the page builds its control from, only for a field the table sets by name; else a
reason)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zlib
import struct

# The commands and the kinds of options they pass to the library.
COMMANDS = {"inspect": ["weights"], "generate": ["model", "generate", "save"],
            "animate": ["model", "animate", "animation"], "fetch": ["fetch"], "prepare": ["prepare"],
            "train": ["train"], "new-model": ["new_model"], "pull": ["pull"], "push": ["push"],
            "evaluate": ["model", "evaluate"]}
TYPE_NAMES = ["bool", "int", "uint64", "float", "double", "string", "choice", "rgb", "string_list",
              "uint64_list", "image", "function", "pointer", "size", "struct_list"]

problems = []


def problem(text):
    problems.append(text)


def header_fields(path):
    """{kind: [field, ...]} from the typedef'd options structs, in declaration order."""
    text = re.sub(r"/\*.*?\*/", "", open(path, encoding="utf-8").read(), flags=re.S)
    out = {}
    for kind, body in re.findall(r"typedef struct bioesp_(\w+)_options \{(.*?)\} bioesp_\1_options;", text, re.S):
        names = []
        for decl in body.split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            first, *rest = decl.split(",")
            names.append(re.search(r"(\w+)\s*(\[\w*\])?$", first).group(1))
            names += [re.search(r"(\w+)\s*(\[\w*\])?$", r.strip()).group(1) for r in rest]
        out[kind] = names
    return out


def table(program):
    """{kind: [row dict, ...]} from the table program's lines."""
    out = {}
    for line in subprocess.run([program], check=True, capture_output=True, text=True).stdout.splitlines():
        kind, name, flag, type_, choices, hidden = line.split("\t")
        out.setdefault(kind, []).append({"name": name, "flag": flag, "type": TYPE_NAMES[int(type_)],
                                         "choices": choices, "hidden": hidden})
    return out


def check_table(fields, rows):
    if sorted(fields) != sorted(rows):
        problem("kinds: the header has %s, the table %s" % (sorted(fields), sorted(rows)))
    for kind, names in fields.items():
        table_names = [r["name"] for r in rows.get(kind, [])]
        for name in names:
            if name not in table_names:
                problem("%s.%s: in bioesp.h, not in the options table" % (kind, name))
        for name in table_names:
            if name not in names:
                problem("%s.%s: in the options table, not in bioesp.h" % (kind, name))
        if names != table_names and set(names) == set(table_names):
            problem("%s: the table's rows are not in the struct's order" % kind)
        for r in rows.get(kind, []):
            if bool(r["flag"]) == bool(r["hidden"]):
                problem("%s.%s: needs a flag or a reason it is not exposed, not both" % (kind, r["name"]))


def check_cli(cli, rows):
    covered = {k for kinds in COMMANDS.values() for k in kinds}
    for kind in rows:
        if kind not in covered:
            problem("%s: no command passes these options" % kind)
    for command, kinds in COMMANDS.items():
        help_text = subprocess.run([cli, command, "--help"], capture_output=True, text=True)
        if help_text.returncode != 0:
            problem("bioesp %s --help: exit %d" % (command, help_text.returncode))
            continue
        listed = re.findall(r"^\s+(?:--\[no-\]|--)([\w-]+)", help_text.stdout, re.M)
        for flag in set(listed):
            if listed.count(flag) > 1:
                problem("bioesp %s --help lists --%s %d times" % (command, flag, listed.count(flag)))
        for kind in kinds:
            for r in rows[kind]:
                if r["flag"] and r["flag"] not in listed:
                    problem("bioesp %s --help does not list --%s (%s.%s)" % (command, r["flag"], kind, r["name"]))


def tiny_png(path):
    """A 2×2 RGB PNG, written without any imaging library."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + bytes([40, 80, 120] * 2) for _ in range(2))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
    open(path, "wb").write(png + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def value_for(o, name, default):
    """A value the field accepts, and what get() then answers."""
    t = o.type(name)
    if t == "bool":
        return ("0", "false") if default == "true" else ("1", "true")
    if t == "choice":
        first = o.choices(name).split("|")[0]
        return first, first
    if t == "string":
        return "colibrí", "colibrí"
    if t == "rgb":
        return "102030", "102030"
    return default, default  # numbers: the default is in range


def check_python(directory, rows):
    sys.path.insert(0, directory)
    import bioesp  # noqa: E402  (the built module)
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "tiny.png")
        tiny_png(png)
        image = bioesp.Images.load(png).get(0)
        for kind, kind_rows in rows.items():
            o = bioesp.Options(kind)
            settable = [r["name"] for r in kind_rows if not r["hidden"]]
            if list(o.names()) != settable:
                problem("python Options(%r).names() is not the table's settable fields" % kind)
            for name in settable:
                try:
                    t = o.type(name)
                    if t == "image":
                        o.set_image(name, image)
                        want = "2x2x3"
                    elif t.endswith("_list"):
                        o.add(name, "7")
                        want = '["7"]' if t == "string_list" else "[7]"
                    else:
                        text, want = value_for(o, name, o.get(name))
                        o.set(name, text)
                    if o.get(name) != want:
                        problem("python %s.%s: set, then get answered %r, not %r" % (kind, name, o.get(name), want))
                except Exception as e:  # noqa: BLE001 (report every field, then fail)
                    problem("python %s.%s: %s: %s" % (kind, name, type(e).__name__, e))
            try:
                bioesp.options(kind, colour="red")
                problem("python options(%r, colour=…) was accepted" % kind)
            except TypeError:
                pass


# The kinds the studio passes to the library (its generate, animate, fetch + prepare and train).
STUDIO_KINDS = ["generate", "animate", "animation", "fetch", "prepare", "train"]


def check_studio(cli, rows):
    answer = json.loads(subprocess.run([cli, "studio", "--options"], check=True, capture_output=True, text=True).stdout)
    for kind in STUDIO_KINDS:
        if kind not in answer:
            problem("studio: GET /api/options lacks the kind %s" % kind)
    for kind, fields in answer.items():
        names = [r["name"] for r in rows.get(kind, [])]
        for r in rows.get(kind, []):
            if r["name"] not in fields:
                problem("studio %s.%s: neither set by the page nor listed with a reason" % (kind, r["name"]))
            elif isinstance(fields[r["name"]], dict) and r["hidden"]:
                problem("studio %s.%s: offered to the page, but the table does not set it by name" % (kind, r["name"]))
        for name, row in fields.items():
            if name not in names:
                problem("studio %s.%s: not a field of the table" % (kind, name))
            elif isinstance(row, dict):
                if row.get("type") not in TYPE_NAMES + ["text"] or "default" not in row:
                    problem("studio %s.%s: a row without its type or default (%s)" % (kind, name, row))
            elif not isinstance(row, str) or not row.strip():
                problem("studio %s.%s: neither a row nor a reason (%r)" % (kind, name, row))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("header")
    p.add_argument("table")
    p.add_argument("cli")
    p.add_argument("--python")
    p.add_argument("--studio", action="store_true")
    a = p.parse_args()
    fields, rows = header_fields(a.header), table(a.table)
    check_table(fields, rows)
    check_cli(a.cli, rows)
    if a.python:
        check_python(a.python, rows)
    if a.studio:
        check_studio(a.cli, rows)
    for text in problems:
        print(text)
    n = sum(len(r) for r in rows.values())
    print("%d kinds, %d fields: %s" % (len(rows), n, "%d problems" % len(problems) if problems else "every field reachable"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
