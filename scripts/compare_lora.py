#!/usr/bin/env python3
"""Relative L2 distance between the LoRA `up` weights (zero at the start, so: what training
changed) of two diffusers-layout LoRA files. Reads safetensors itself: only the standard library
and torch, which the GPU machine has."""
import json
import struct
import sys

import torch


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or ".lora.up." not in name:
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{name}: {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[start:end]), dtype=torch.float32).reshape(info["shape"])
    return out


a, b = load(sys.argv[1]), load(sys.argv[2])
if a.keys() != b.keys():
    raise SystemExit("the files hold other LoRA layers")
num = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
den = sum(float((b[k] ** 2).sum()) for k in b)
print(f"LoRA up weights, {sys.argv[1]} vs {sys.argv[2]}: relative L2 {(num / den) ** 0.5:.3g}")
