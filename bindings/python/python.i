/* Python: keyword arguments, functions as progress callbacks, lists of images, `with`. */
%pythoncode %{
class _FunctionProgress(Progress):
    """A plain function as a Progress: fn(stage, current, total) -> False to cancel."""

    def __init__(self, fn):
        Progress.__init__(self)
        self._fn = fn

    def on_progress(self, stage, current, total):
        r = self._fn(stage, current, total)
        return r is None or bool(r)


def _as_progress(progress):
    if progress is None or isinstance(progress, Progress):
        return progress
    if callable(progress):
        return _FunctionProgress(progress)
    raise TypeError("progress must be a callable or a bioesp.Progress")


def _options(prompt, settings):
    if isinstance(prompt, GenerateOptions):
        if settings:
            raise TypeError("give a GenerateOptions or keyword settings, not both")
        return prompt
    o = GenerateOptions()
    for p in [prompt] if isinstance(prompt, str) else list(prompt or []):
        o.add_prompt(p)
    for key, value in settings.items():
        if key == "controls":
            for c in value:
                o.add_control(c)
            continue
        if key.startswith("_") or not hasattr(o, key):
            raise TypeError("unknown setting: " + key)
        setattr(o, key, value)
    return o


_model_generate = Model.generate
_model_generate_async = Model.generate_async


def _generate(self, prompt=None, progress=None, **settings):
    """generate("a hummingbird", steps=25, seed=1, progress=fn) -> list of Image. The GIL is
    released while it runs; progress is called with (stage, current, total)."""
    o = _options(prompt, settings)
    p = _as_progress(progress)
    images = _model_generate(self, o, p) if p is not None else _model_generate(self, o)
    return [images.get(i) for i in range(images.size())]


def _generate_async(self, prompt=None, progress=None, **settings):
    """The same, as a Job to poll (job.state, job.step, job.wait(ms), job.take())."""
    o = _options(prompt, settings)
    p = _as_progress(progress)
    job = _model_generate_async(self, o, p) if p is not None else _model_generate_async(self, o)
    job._progress = p  # alive as long as the job
    return job


_model_animate = Model.animate


def _animate(self, prompts, seeds, progress=None, **settings):
    """animate(["colibrí", "lagarto"], [1, 2], frames=24, pingpong=True) -> Images (frames);
    images.save_animation("morph.gif", fps, loop, quality) writes them."""
    o = AnimateOptions()
    for p in [prompts] if isinstance(prompts, str) else list(prompts):
        o.add_prompt(p)
    for s in [seeds] if isinstance(seeds, int) else list(seeds):
        o.add_seed(s)
    for key, value in settings.items():
        if key.startswith("_") or not hasattr(o, key):
            raise TypeError("unknown setting: " + key)
        setattr(o, key, value)
    return _model_animate(self, o, _as_progress(progress))


def _images(self):
    images = self._take()
    return [images.get(i) for i in range(images.size())]


class _FunctionTrainProgress(TrainProgress):
    """fn(stage, step, total, loss, learning_rate, eta_seconds) -> False to cancel."""

    def __init__(self, fn):
        TrainProgress.__init__(self)
        self._fn = fn

    def on_step(self, stage, step, total, loss, learning_rate, eta_seconds):
        r = self._fn(stage, step, total, loss, learning_rate, eta_seconds)
        return r is None or bool(r)


def _fill(o, settings):
    for key, value in settings.items():
        name = "_in" if key == "in_dir" else key
        if key.startswith("_") or not hasattr(o, name):
            raise TypeError("unknown setting: " + key)
        setattr(o, name, value)
    return o


_native_fetch, _native_prepare, _native_train, _native_pull, _native_push = fetch, prepare, train, pull, push
_native_new_model = new_model


def fetch(out, progress=None, titles=(), **settings):
    """fetch("fotos/", source="campaign", value="Biodiversidad en Colombia 2025", limit=40) -> Counts
    (.done downloaded, .skipped)."""
    o = _fill(FetchOptions(), dict(settings, out=out))
    for t in titles:
        o.add_title(t)
    return _native_fetch(o, _as_progress(progress))


def prepare(in_dir, out, progress=None, **settings):
    """prepare("fotos/", "dataset/", size=512, caption="criatura especulativa colombiana") -> Counts."""
    return _native_prepare(_fill(PrepareOptions(), dict(settings, in_dir=in_dir, out=out)), _as_progress(progress))


def train(model, data, out, progress=None, **settings):
    """train(model, "dataset/", "my-lora/", prompt="…", steps=200, rank=4) -> the LoRA file (or
    model folder). progress(stage, step, total, loss, lr, eta) -> False cancels."""
    if progress is not None and not isinstance(progress, TrainProgress):
        progress = _FunctionTrainProgress(progress)
    return _native_train(_fill(TrainOptions(), dict(settings, model=model, data=data, out=out)), progress)


def new_model(configs, data, out, **settings):
    """new_model("configs/", "dataset/", "new/", seed=1) -> a model folder to train from scratch."""
    return _native_new_model(_fill(NewModelOptions(), dict(settings, configs=configs, data=data, out=out)))


def pull(repo, progress=None, include=(), **settings):
    """pull("CompVis/stable-diffusion-v1-4") -> the snapshot folder in the Hub cache."""
    o = _fill(PullOptions(), dict(settings, repo=repo))
    for g in include:
        o.add_include(g)
    return _native_pull(o, _as_progress(progress))


def push(path, repo, progress=None, **settings):
    """push("my-lora/", "ana/criaturas", token=…) -> the commit URL ("" when nothing changed)."""
    return _native_push(_fill(PushOptions(), dict(settings, path=path, repo=repo)), _as_progress(progress))


Model.generate = _generate
Model.generate_async = _generate_async
Model.animate = _animate
Model.__enter__ = lambda self: self
Model.__exit__ = lambda self, *exc: self.close()
ControlNet.__enter__ = lambda self: self
ControlNet.__exit__ = lambda self, *exc: self.close()
Job._take = Job.take
Job.take = _images
Job.__enter__ = lambda self: self
Job.__exit__ = lambda self, *exc: self.close()
Images.__len__ = Images.size
Images.__getitem__ = lambda self, i: self.get(i)
Image.__repr__ = lambda self: "<bioesp.Image %dx%dx%d>" % (self.width(), self.height(), self.channels())
%}
