"""Writes bioesp.pyi from bioesp.pyi.in: one TypedDict of keyword settings per options kind, every
field the library's options table sets by name, with its help. Run with the built module on
PYTHONPATH: gen_pyi.py TEMPLATE OUT"""
import sys

import bioesp

TYPES = {"bool": "bool", "int": "int", "uint64": "int", "float": "float", "double": "float", "string": "str",
         "rgb": "str", "string_list": "Union[str, Iterable[str]]", "uint64_list": "Union[int, Iterable[int]]",
         "image": "Image"}
KINDS = ["weights", "model", "generate", "animate", "animation", "save", "fetch", "prepare", "train",
         "new_model", "pull", "push"]
# Python keywords that name fields (see python.i).
KEYWORDS = {"in": "in_dir"}


def hint(o, name):
    t = o.type(name)
    if t == "choice":
        return "Literal[%s]" % ", ".join(repr(c) for c in o.choices(name).split("|"))
    return TYPES[t]


def settings_class(kind):
    o = bioesp.Options(kind)
    lines = ["class %sSettings(TypedDict, total=False):" % "".join(w.capitalize() for w in kind.split("_"))]
    for name in o.names():
        lines.append("    %s: %s  # %s" % (KEYWORDS.get(name, name), hint(o, name), o.help(name)))
    return "\n".join(lines)


template, out = sys.argv[1:3]
text = open(template, encoding="utf-8").read().replace("@SETTINGS@", "\n\n".join(settings_class(k) for k in KINDS))
open(out, "w", encoding="utf-8").write(text)
