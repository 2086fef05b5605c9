/* Python: keyword arguments for every field of every options struct (through Options and the
 * library's table), functions as progress and preview callbacks, lists of images, `with`. */
%pythoncode %{
def _function_class(base, method):
    """A `base` subclass whose `method` calls a plain function: False (not None) cancels."""

    def __init__(self, fn):
        base.__init__(self)
        self._fn = fn

    def call(self, *args):
        r = self._fn(*args)
        return r is None or bool(r)

    return type("_Function" + base.__name__, (base,), {"__init__": __init__, method: call})


# fn(stage, current, total); fn(image, index, step, total); fn(stage, step, total, loss,
# learning_rate, eta_seconds).
_FUNCTIONS = {base: _function_class(base, method)
              for base, method in ((Progress, "on_progress"), (Preview, "on_preview"), (TrainProgress, "on_step"))}


def _as_callback(value, base):
    if value is None or isinstance(value, base):
        return value
    if callable(value):
        return _FUNCTIONS[base](value)
    raise TypeError("a callback must be a callable or a bioesp.%s, not %r" % (base.__name__, value))


def _as_progress(progress):
    return _as_callback(progress, Progress)


def _as_preview(preview):
    return _as_callback(preview, Preview)


# Python keywords that are field names elsewhere.
_KEYWORDS = {"in_dir": "in"}


def _set(o, name, value):
    """One setting by the field's type: lists take an item or an iterable, the image an Image,
    everything else its text (the library parses and range-checks it)."""
    kind = o.type(name)
    if kind.endswith("_list"):
        o.clear(name)
        for item in [value] if isinstance(value, (str, int)) else value:
            o.add(name, str(item))
    elif kind == "image":
        o.set_image(name, value)
    elif isinstance(value, bool):
        o.set(name, "1" if value else "0")
    else:
        o.set(name, "" if value is None else str(value))


def options(kind, **settings):
    """Options("generate") with keyword settings, e.g. options("train", steps=200, rank=8).
    Unknown names raise TypeError; bad values ValueError with the library's message."""
    o = Options(kind)
    names = set(o.names())
    for key, value in settings.items():
        if key == "controls" and kind == "generate":
            for control in value:  # (ControlNet, Image[, scale[, start, end[, preprocess]]])
                o.add_control(*control)
            continue
        name = _KEYWORDS.get(key, key)
        if name not in names:
            raise TypeError("unknown setting: " + key)
        _set(o, name, value)
    return o


def _with_prompts(kind, prompts, settings):
    if isinstance(prompts, Options):
        if settings:
            raise TypeError("give an Options or keyword settings, not both")
        return prompts
    return options(kind, prompts=[prompts] if isinstance(prompts, str) else list(prompts or []), **settings)


_model_init = Model.__init__
_model_generate = Model.generate
_model_generate_async = Model.generate_async
_model_animate = Model.animate


def _model_new(self, path, options_=None, **settings):
    """Model(path, device="cuda", dtype="f16", …): a folder, single file or Hub id."""
    _model_init(self, path, options_ if options_ is not None else options("model", **settings))


def _generate(self, prompt=None, progress=None, preview=None, **settings):
    """generate("a hummingbird", steps=25, seed=1, progress=fn) -> list of Image. The GIL is
    released while it runs; progress is called with (stage, current, total), and with
    preview_every=N preview with (image, index, step, total) every N steps."""
    o = _with_prompts("generate", prompt, settings)
    images = _model_generate(self, o, _as_progress(progress), _as_preview(preview))
    return [images.get(i) for i in range(images.size())]


def _generate_async(self, prompt=None, progress=None, preview=None, **settings):
    """The same, as a Job to poll (job.state, job.step, job.wait(ms), job.take()); the callbacks
    run on the job's worker thread."""
    o = _with_prompts("generate", prompt, settings)
    p, v = _as_progress(progress), _as_preview(preview)
    job = _model_generate_async(self, o, p, v)
    job._callbacks = (p, v)  # alive as long as the job
    return job


def _animate(self, prompts, seeds, progress=None, **settings):
    """animate(["colibrí", "lagarto"], [1, 2], frames=24, pingpong=True) -> Images (frames);
    images.save_animation("morph.gif", fps=12) writes them."""
    o = _with_prompts("animate", prompts, dict(settings, seeds=seeds))
    return _model_animate(self, o, _as_progress(progress))


_images_save_animation = Images.save_animation
_image_save = Image.save


def _save_animation(self, path, **settings):
    """save_animation("morph.gif", fps=12, loop=True, quality=80): GIF, MP4, WebM or PNG frames."""
    _images_save_animation(self, path, options("animation", **settings))


def _save(self, path, **settings):
    """save("creature.png") or save("creature.jpg", jpeg_quality=90), atomically."""
    _image_save(self, path, options("save", **settings))


def _listed(images):
    return [images.get(i) for i in range(images.size())]


def _images(self):
    return _listed(self._take())


def _previews(self):
    """The latest live preview of each image (preview_every=N), [] until the first."""
    return _listed(self._preview())


_native_fetch, _native_prepare, _native_train, _native_pull, _native_push = fetch, prepare, train, pull, push
_native_new_model = new_model


def fetch(out, progress=None, **settings):
    """fetch("fotos/", source="campaign", value="Biodiversidad en Colombia 2025", limit=40) -> Counts
    (.done downloaded, .skipped); titles=[…] with source="titles"."""
    return _native_fetch(options("fetch", out=out, **settings), _as_progress(progress))


def prepare(in_dir, out, progress=None, **settings):
    """prepare("fotos/", "dataset/", size=512, caption="criatura especulativa colombiana") -> Counts."""
    return _native_prepare(options("prepare", in_dir=in_dir, out=out, **settings), _as_progress(progress))


def train(model, data, out, progress=None, **settings):
    """train(model, "dataset/", "my-lora/", prompt="…", steps=200, rank=4) -> the LoRA file (or
    model folder). progress(stage, step, total, loss, lr, eta) -> False cancels."""
    return _native_train(options("train", model=model, data=data, out=out, **settings), _as_callback(progress, TrainProgress))


def new_model(configs, data, out, **settings):
    """new_model("configs/", "dataset/", "new/", seed=1) -> a model folder to train from scratch."""
    return _native_new_model(options("new_model", configs=configs, data=data, out=out, **settings))


def pull(repo, progress=None, **settings):
    """pull("CompVis/stable-diffusion-v1-4", include=["*.json"]) -> the snapshot folder in the Hub cache."""
    return _native_pull(options("pull", repo=repo, **settings), _as_progress(progress))


def push(path, repo, progress=None, **settings):
    """push("my-lora/", "ana/criaturas", token=…) -> the commit URL ("" when nothing changed)."""
    return _native_push(options("push", path=path, repo=repo, **settings), _as_progress(progress))


Model.__init__ = _model_new
Model.generate = _generate
Model.generate_async = _generate_async
Model.animate = _animate
Model.__enter__ = lambda self: self
Model.__exit__ = lambda self, *exc: self.close()
Images.save_animation = _save_animation
Image.save = _save
Job._take = Job.take
Job.take = _images
Job._preview = Job.preview
Job.preview = _previews
Job.__enter__ = lambda self: self
Job.__exit__ = lambda self, *exc: self.close()
Images.__len__ = Images.size
Images.__getitem__ = lambda self, i: self.get(i)
Image.__repr__ = lambda self: "<bioesp.Image %dx%dx%d>" % (self.width(), self.height(), self.channels())
Options.__repr__ = lambda self: "<bioesp.Options %s>" % self.kind()
%}
