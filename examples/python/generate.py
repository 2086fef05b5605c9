"""Generate a creature from Python: python3 generate.py MODEL "PROMPT" OUT.png
(PYTHONPATH=build/python from a build tree). The GIL is free while bioesp works."""
import sys

import bioesp

model_path, prompt, out = sys.argv[1:4]
with bioesp.Model(model_path) as model:
    [image] = model.generate(prompt, steps=25, seed=7,
                             progress=lambda stage, step, total: print(f"\r{stage} {step}/{total}", end="", file=sys.stderr))
    image.save(out)
print(f"\nwrote {out} ({image.width()}x{image.height()})", file=sys.stderr)
