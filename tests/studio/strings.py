#!/usr/bin/env python3
"""strings.py DIR: the studio's two string tables (DIR/strings.en.json, DIR/strings.es.json) have
the same keys with the same {blanks}; every key the server (say, field_name) or the page (t,
data-i18n) names exists; and every key is named somewhere (keys built from a prefix — the page's
settings s_*, states state_*, fetch stages fetch_stage_*, fields field_* — count as named)."""
import glob
import json
import os
import re
import sys

folder = sys.argv[1]
tables = {lang: json.load(open(os.path.join(folder, f"strings.{lang}.json"), encoding="utf-8")) for lang in ("en", "es")}
problems = []
if tables["en"].keys() != tables["es"].keys():
    problems.append(f"keys in one table only: {sorted(tables['en'].keys() ^ tables['es'].keys())}")
for key in tables["en"].keys() & tables["es"].keys():
    blanks = [set(re.findall(r"\{(\w+)\}", tables[lang][key])) for lang in ("en", "es")]
    if blanks[0] != blanks[1]:
        problems.append(f"{key}: blanks {sorted(blanks[0])} in English, {sorted(blanks[1])} in Spanish")

sources = {p: open(p, encoding="utf-8").read() for ext in ("cpp", "h", "js", "html") for p in glob.glob(os.path.join(folder, f"*.{ext}"))}
named = set()
for path, text in sources.items():
    calls = re.findall(r'\b(?:say|t)\("(\w+)"[,)]', text) + re.findall(r'data-i18n(?:-placeholder|-title)?="(\w+)"', text)
    calls += ["field_" + k for k in re.findall(r'field_name\("(\w+)"\)', text)]
    for key in calls:
        named.add(key)
        if key not in tables["en"]:
            problems.append(f"{os.path.basename(path)} names {key}, which the tables lack")
everything = "\n".join(sources.values())
for key in tables["en"]:
    if key not in named and f'"{key}"' not in everything and not re.match(r"(s|state|fetch_stage|field)_", key):
        problems.append(f"{key} is named nowhere")
for p in problems:
    print(f"strings: {p}")
sys.exit(1 if problems else 0)
