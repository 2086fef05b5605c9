"""The Python binding: the C API's bytes, progress, previews (pushed and polled), cancel, a callback's own
exception, errors as exceptions, async jobs without the GIL, TAESD and the full VAE, ControlNets and masks,
no leaks.
Usage: test_python.py MODEL REFERENCE_PIXELS CONTROLNET CONTROL_PIXELS INPAINT_PIXELS"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import bioesp

model_dir, reference = sys.argv[1], open(sys.argv[2], "rb").read()
controlnet_dir, control_reference, inpaint_reference = sys.argv[3], open(sys.argv[4], "rb").read(), open(sys.argv[5], "rb").read()
settings = dict(steps=3, seed=42, width=64, height=64)


def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


# The model that ships with bioesp is found from the binding too.
assert os.path.isfile(os.path.join(bioesp.embedded_model(), "model_index.json")), bioesp.embedded_model()

with bioesp.Model(model_dir) as model:
    seen = []
    [image] = model.generate("colibrí lagarto", progress=lambda stage, cur, total: seen.append((stage, cur, total)), **settings)
    assert (image.width(), image.height(), image.channels()) == (64, 64, 3)
    assert image.pixels() == reference, "the binding's pixels differ from the C API's"
    assert seen and seen[-1][1] == seen[-1][2] and all(s == "denoise" for s, _, _ in seen), seen
    assert image.setting("seed") == "42"

    # A subclass, and a callback that cancels.
    class Stop(bioesp.Progress):
        def on_progress(self, stage, current, total):
            return current < 1
    try:
        model.generate("x", progress=Stop(), **settings)
        raise AssertionError("not cancelled")
    except RuntimeError as e:
        assert "cancel" in str(e), e

    # An exception in the callback comes back as itself.
    class Boom(Exception):
        pass
    def boom(*args):
        raise Boom("from the callback")
    try:
        model.generate("x", progress=boom, **settings)
        raise AssertionError("the callback's exception was lost")
    except Boom as e:
        assert str(e) == "from the callback"

    # … also from a job's worker thread.
    try:
        model.generate_async("x", progress=boom, **settings).take()
        raise AssertionError("the async callback's exception was lost")
    except Boom as e:
        assert str(e) == "from the callback"

    # Async: the GIL is free while it runs (another thread makes progress), same bytes.
    ticks = []
    stop = threading.Event()
    t = threading.Thread(target=lambda: [ticks.append(1) or stop.wait(0.001) for _ in iter(lambda: stop.is_set(), True)])
    t.start()
    steps = []
    with model.generate_async("colibrí lagarto", progress=lambda s, c, n: steps.append(c), **settings) as job:
        assert job.wait(-1) and job.state() == "done"
        [again] = job.take()
    stop.set()
    t.join()
    assert again.pixels() == reference
    assert steps, "no progress from the job's worker thread"
    assert ticks, "another Python thread could not run during generation"
    # Live previews from a job: the latest, an Image at 1/8 of the size (the linear latent-RGB
    # map), the step it shows; the image itself the same bytes as without previews.
    with model.generate_async("colibrí lagarto", preview_every=1, **settings) as job:
        assert job.wait(-1)
        [preview] = job.preview()
        assert (preview.width(), preview.height(), preview.channels()) == (8, 8, 3)
        assert job.preview_step() == job.total(), (job.preview_step(), job.total())
        assert job.take()[0].pixels() == reference
    # Pushed previews: every one (steps 1 to 4 of image 0: PNDM's 3 steps are 4 UNet passes), Images
    # of their own to keep, the last the picture the job keeps for polling; the image the same bytes
    # as without them.
    shown = []
    [same] = model.generate("colibrí lagarto", preview_every=1,
                            preview=lambda im, index, step, total: shown.append((im, index, step, total)), **settings)
    assert same.pixels() == reference
    assert [(i, s, n) for _, i, s, n in shown] == [(0, 1, 4), (0, 2, 4), (0, 3, 4), (0, 4, 4)], shown
    assert all((im.width(), im.height(), im.channels(), len(im.pixels())) == (8, 8, 3, 192) for im, _, _, _ in shown)
    assert shown[-1][0].pixels() == preview.pixels(), "the pushed and the polled preview differ"
    assert len(model.generate("colibrí lagarto", preview_every=3, preview=lambda *a: shown.append(a), **settings)) == 1
    assert len(shown) == 5 and shown[-1][2] == 3  # steps / N of them
    # Cancelled from the preview callback (a subclass, on a job's worker thread too); its
    # exception comes back as itself.
    class StopAt2(bioesp.Preview):
        def __init__(self):
            bioesp.Preview.__init__(self)
            self.steps, self.thread = [], None
        def on_preview(self, image, index, step, total):
            self.steps.append(step)
            self.thread = threading.current_thread()
            return step < 2
    stop_at = StopAt2()
    try:
        model.generate("x", preview_every=1, preview=stop_at, **settings)
        raise AssertionError("not cancelled")
    except RuntimeError as e:
        assert "cancel" in str(e) and stop_at.steps == [1, 2], (e, stop_at.steps)
    stop_at = StopAt2()
    with model.generate_async("x", preview=stop_at, preview_every=1, **settings) as job:
        try:
            job.take()
            raise AssertionError("the job was not cancelled")
        except RuntimeError as e:
            assert "cancel" in str(e) and stop_at.steps == [1, 2], (e, stop_at.steps)
    assert stop_at.thread is not threading.current_thread()
    with model.generate_async("x", preview_every=1, preview=boom, **settings) as job:
        for _ in range(2):  # a second take() raises it again
            try:
                job.take()
                raise AssertionError("the preview callback's exception was lost")
            except Boom as e:
                assert str(e) == "from the callback"
    try:
        model.generate("x", preview=lambda *a: None, **settings)
        raise AssertionError("a preview callback without preview_every was taken")
    except ValueError as e:
        assert "preview_every" in str(e), e
    o = bioesp.Options("generate")
    o.add("prompts", "colibrí lagarto")
    for name, text in [("steps", "3"), ("seed", "42"), ("width", "64"), ("height", "64")]:
        o.set(name, text)
    assert model.generate(o)[0].pixels() == reference
    # img2img through a keyword: the init image is an Image; a bad value names the field.
    [varied] = model.generate("colibrí", init_image=image, strength=0.5, **settings)
    assert varied.setting("strength") == "0.5"
    try:
        model.generate("x", steps=0)
        raise AssertionError("no error")
    except ValueError as e:
        assert "steps: must be between 1 and 1000, not 0" in str(e), e
    assert "ddpm" in bioesp.schedulers()

    # The autoencoders through the model's keywords: the model's own VAE named gives its bytes; a
    # TAESD in its place draws others; one for previews only decodes them at full size.
    taesd = os.path.join(os.path.dirname(os.path.dirname(model_dir)), "golden", "fast", "taesd", "diffusers")
    with bioesp.Model(model_dir, vae=os.path.join(model_dir, "vae")) as full:
        assert full.generate("colibrí lagarto", **settings)[0].pixels() == reference
    with bioesp.Model(model_dir, vae=taesd) as tiny:
        [drawn] = tiny.generate("colibrí lagarto", **settings)
        assert (drawn.width(), drawn.height()) == (64, 64) and drawn.pixels() != reference
        assert drawn.setting("vae") == taesd
    sizes = []
    with bioesp.Model(model_dir, preview_vae=taesd) as previewing:
        [same] = previewing.generate("colibrí lagarto", preview_every=4,
                                     preview=lambda im, *a: sizes.append((im.width(), im.height())), **settings)
        assert same.pixels() == reference and sizes == [(64, 64)], sizes
    try:
        bioesp.Model(model_dir, preview_vae=os.path.join(model_dir, "vae"))
        raise AssertionError("a full VAE was taken as a preview decoder")
    except ValueError as e:
        assert "tiny autoencoder" in str(e), e

    # A ControlNet and a mask: the C API's bytes (tests/bindings/reference.c draws the same).
    with tempfile.TemporaryDirectory() as tmp:
        image.save(os.path.join(tmp, "picture.png"))
        picture = bioesp.Images.load(os.path.join(tmp, "picture.png")).get(0)
        net = bioesp.ControlNet(model, controlnet_dir)
        [steered] = model.generate("colibrí lagarto", controls=[(net, picture, 0.7, 0.0, 1.0, "canny")], **settings)
        assert steered.pixels() == control_reference, "the binding's ControlNet picture differs from the C API's"
        assert steered.setting("controlnets").endswith(":0.7 (canny)"), steered.setting("controlnets")
        rows = b"".join(b"\0" + bytes(255 if x >= 32 else 0 for x in range(64)) for _ in range(64))
        png = b"\x89PNG\r\n\x1a\n"
        for kind, data in ((b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)), (b"IDAT", zlib.compress(rows)), (b"IEND", b"")):
            png += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        open(os.path.join(tmp, "mask.png"), "wb").write(png)
        mask = bioesp.Images.load(os.path.join(tmp, "mask.png")).get(0)
        [painted] = model.generate("colibrí lagarto", init_image=picture, mask=mask, strength=1.0, **settings)
        assert painted.pixels() == inpaint_reference, "the binding's inpainted picture differs from the C API's"
        net.close()
        try:
            model.generate("x", controls=[(net, picture)], **settings)
            raise AssertionError("a closed ControlNet was taken")
        except ValueError as e:
            assert "closed" in str(e), e
        try:
            model.generate("x", controls=[(bioesp.ControlNet(model, controlnet_dir), picture, 1.0, 0.9, 0.1)], **settings)
            raise AssertionError("a control window that ends before it starts was taken")
        except ValueError as e:
            assert "start" in str(e), e
    # Weighted prompts and a textual-inversion embedding (diffusers' layout, written here).
    import json, struct, tempfile
    plain = model.generate("colibrí lagarto", **settings)[0].pixels()
    weighted = model.generate("colibrí lagarto", prompt_syntax="weighted", **settings)[0]
    assert weighted.pixels() == plain and weighted.setting("prompt_syntax") == "weighted"
    assert model.generate("(colibrí:1.4) lagarto", prompt_syntax="weighted", **settings)[0].pixels() != plain
    with tempfile.TemporaryDirectory() as tmp:
        header = json.dumps({"<bichito>": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]}}).encode()
        path = os.path.join(tmp, "learned_embeds.safetensors")
        open(path, "wb").write(struct.pack("<Q", len(header)) + header + struct.pack("<64f", *[i / 64 for i in range(64)]))
        model.add_embedding(path)  # the token the file names
        assert model.embeddings() == "<bichito>\n"
        drawn = model.generate("a <bichito>", prompt_syntax="weighted", **settings)[0]
        assert drawn.setting("embeddings") == path + ":<bichito>"
        model.remove_embedding("<bichito>")
        assert model.embeddings() == ""
    try:
        model.generate("x", prompt_syntax="markdown", **settings)
        raise AssertionError("no error")
    except ValueError as e:
        assert "prompt_syntax: must be one of plain, weighted, not 'markdown'" in str(e), e

    # Animations: frames as Images, the ends equal single generations, saved as a GIF.
    import os, tempfile
    frames = model.animate(["colibrí lagarto", "frailejón"], [42, 43], frames=3, steps=3, width=64, height=64)
    assert len(frames) == 3 and frames[0].pixels() == reference
    with tempfile.TemporaryDirectory() as tmp:
        frames.save_animation(os.path.join(tmp, "morph.gif"), fps=8.0, loop=True, quality=80)
        image.save(os.path.join(tmp, "c.jpg"), jpeg_quality=40)
        assert open(os.path.join(tmp, "c.jpg"), "rb").read(2) == b"\xff\xd8"
        assert open(os.path.join(tmp, "morph.gif"), "rb").read(6) == b"GIF89a"

# Errors as exceptions with the message.
try:
    bioesp.Model("/nonexistent/model")
    raise AssertionError("no error")
except OSError as e:
    assert "no such model folder or file" in str(e), e
try:
    bioesp.Model(model_dir).generate("x", steps=2, colour="red")
    raise AssertionError("no error")
except TypeError as e:
    assert "colour" in str(e)
m = bioesp.Model(model_dir)
m.close()
try:
    m.generate("x", steps=2)
    raise AssertionError("a closed model generated")
except ValueError as e:
    assert "closed" in str(e)

# Datasets, training and the Hub through the binding.
import os, tempfile
with tempfile.TemporaryDirectory() as tmp:
    with bioesp.Model(model_dir) as m:
        os.mkdir(os.path.join(tmp, "fotos"))
        for i, p in enumerate(["colibrí", "rana", "tucán"]):
            m.generate(p, steps=2, seed=i, width=64, height=64)[0].save(os.path.join(tmp, "fotos", "%d.png" % i))
    counts = bioesp.prepare(os.path.join(tmp, "fotos"), os.path.join(tmp, "dataset"), size=64, caption="criatura",
                            background="102030", crop="pad")
    assert (counts.done, counts.skipped) == (3, 0)
    losses = []
    # fields the old bindings lacked: the optimizer's betas, epsilon and weight decay, the device index
    lora = bioesp.train(model_dir, os.path.join(tmp, "dataset"), os.path.join(tmp, "lora"), prompt="criatura",
                        resolution=64, steps=2, seed=1, adam_beta1=0.8, adam_beta2=0.99, adam_epsilon=1e-6,
                        adam_weight_decay=0, device_index=0,
                        progress=lambda stage, step, total, loss, lr, eta: losses.append(loss))
    assert lora.endswith("pytorch_lora_weights.safetensors") and os.path.exists(lora) and losses
    try:
        bioesp.train(model_dir, os.path.join(tmp, "dataset"), os.path.join(tmp, "lora2"), prompt="x", resolution=64,
                     steps=2, progress=lambda *a: (_ for _ in ()).throw(KeyError("stop training")))
        raise AssertionError("the training callback's exception was lost")
    except KeyError as e:
        assert "stop training" in str(e)
    # Across processes by the rank options (rows of the options table, so keywords here): rank 1
    # in a process of its own, rank 0 in this one, which alone writes; a world that never fills is
    # an error within its timeout.
    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    ranks = dict(prompt="criatura", resolution=64, steps=2, seed=1, world_size=2, master_port=free_port(), timeout=60)
    dataset, quiet = os.path.join(tmp, "dataset"), os.path.join(tmp, "rank1")
    other = subprocess.Popen([sys.executable, "-c", "import ast, sys, bioesp; "
                              "bioesp.train(*sys.argv[1:4], process_rank=1, **ast.literal_eval(sys.argv[4]))",
                              model_dir, dataset, quiet, repr(ranks)])
    try:
        steps = []
        both = bioesp.train(model_dir, dataset, os.path.join(tmp, "rank0"), process_rank=0,
                            progress=lambda stage, step, total, loss, lr, eta: steps.append(step) if stage == "train" else None,
                            **ranks)
        assert other.wait(60) == 0 and os.path.exists(both) and steps == [1, 2] and not os.path.exists(quiet), steps
    finally:
        other.kill()  # a no-op once it exited; else rank 0 failed and rank 1 must not linger
        other.wait()
    start = time.monotonic()
    try:
        bioesp.train(model_dir, dataset, os.path.join(tmp, "alone"), **{**ranks, "master_port": free_port(), "timeout": 2})
    except Exception as e:
        # Its 2 s timeout, not the default's: a loose bound (model load under a loaded machine).
        assert "only 1 of 2 ranks joined" in str(e) and time.monotonic() - start < 60, (e, time.monotonic() - start)
    else:
        raise AssertionError("a world of 2 that never filled trained")
    try:
        bioesp.pull("CompVis/stable-diffusion-v1-4", offline=True, cache_dir=os.path.join(tmp, "empty"))
        raise AssertionError("no error")
    except OSError as e:
        assert "not in the cache" in str(e), e
    os.environ.pop("HF_TOKEN", None)
    os.environ["HF_HOME"] = tmp  # no token file either
    try:
        bioesp.push(lora, "ana/criaturas")
        raise AssertionError("no error")
    except ValueError as e:
        assert "token" in str(e), e

# Create and destroy 200 times: memory stays flat.
for _ in range(20):
    bioesp.Model(model_dir).close()
before = rss_kib()
for _ in range(200):
    with bioesp.Model(model_dir) as m:
        pass
growth = rss_kib() - before
assert growth < 20 * 1024, "200 load/free cycles grew the process by %d KiB" % growth
print("python binding: ok (200 cycles: %+d KiB)" % growth)
