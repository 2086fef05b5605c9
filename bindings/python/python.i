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


Model.generate = _generate
Model.generate_async = _generate_async
Model.animate = _animate
Model.__enter__ = lambda self: self
Model.__exit__ = lambda self, *exc: self.close()
Job._take = Job.take
Job.take = _images
Job.__enter__ = lambda self: self
Job.__exit__ = lambda self, *exc: self.close()
Images.__len__ = Images.size
Images.__getitem__ = lambda self, i: self.get(i)
Image.__repr__ = lambda self: "<bioesp.Image %dx%dx%d>" % (self.width(), self.height(), self.channels())
%}
