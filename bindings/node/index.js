'use strict';
// bioesp for Node: Promises over the native addon's async jobs. Generation runs on a worker
// thread inside bioesp; the event loop only polls the job (every few milliseconds), so it never
// blocks. Pixels are Buffers.
const native = require('./bioesp.node');

class BioespError extends Error {}

// Native errors carry bioesp_last_error()'s message; rethrow them as BioespError.
function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw new BioespError(e && e.message ? e.message : String(e));
  }
}

// The settings of one options struct ("generate", "train", …) from a plain object, by field name:
// lists take an item or an array, the init image an Image, the rest their text (the library
// parses and range-checks it). `skip` names the keys that are not settings (callbacks).
function options(kind, fields, skip = []) {
  const o = call(() => new native.Options(kind));
  const names = vector(o.names());
  for (const [key, value] of Object.entries(fields || {})) {
    if (skip.includes(key)) continue;
    if (!names.includes(key)) throw new TypeError('unknown setting: ' + key);
    const type = o.type(key);
    call(() => {
      if (type.endsWith('_list')) {
        o.clear(key);
        for (const item of Array.isArray(value) ? value : [value]) o.add(key, String(item));
      } else if (type === 'image') {
        o.set_image(key, value._native);
      } else if (typeof value === 'boolean') {
        o.set(key, value ? '1' : '0');
      } else {
        o.set(key, value === null || value === undefined ? '' : String(value));
      }
    });
  }
  return o;
}

function vector(v) {
  const out = [];
  for (let i = 0; i < v.size(); i++) out.push(v.get(i));
  return out;
}

const CALLBACKS = ['onProgress', 'onPreview', 'signal', 'pollMs'];

// settings.controls: [[ControlNet, Image, scale = 1, start = 0, end = 1, preprocess = 'none'], …]
// (see bioesp_control), the one setting that is a list of structs.
function generateOptions(prompt, settings) {
  const prompts = Array.isArray(prompt) ? prompt : [prompt];
  if (prompts.some((p) => typeof p !== 'string')) throw new TypeError('prompt must be a string or an array of strings');
  const { controls = [], ...rest } = settings;
  const o = options('generate', { ...rest, prompts }, CALLBACKS);
  for (const [net, image, scale = 1, start = 0, end = 1, preprocess = 'none'] of controls) {
    if (!(net instanceof ControlNet) || !(image instanceof Image)) throw new TypeError('a control is [ControlNet, Image, …]');
    // Said here: SWIG's overload dispatch would turn the binding's own error into "Illegal arguments".
    if (net._closed) throw new BioespError('invalid argument: the ControlNet was closed');
    call(() => o.add_control(net._native, image._native, scale, start, end, preprocess));
  }
  return o;
}

class Image {
  constructor(image) { this._native = image; }
  get width() { return this._native.width(); }
  get height() { return this._native.height(); }
  get channels() { return this._native.channels(); }
  // width × height × channels bytes, row-major.
  get pixels() { return this._native.pixels(); }
  setting(key) { return this._native.setting(key); }
  // PNG or JPEG by the extension; settings: {jpeg_quality}.
  save(path, settings = {}) { call(() => this._native.save(path, options('save', settings))); }
  static load(path) { return call(() => new Image(native.Images.load(path).get(0))); }
}

// A ControlNet loaded once for a model (its device and dtype), for any number of generations.
class ControlNet {
  constructor(model, path) { this._native = call(() => new native.ControlNet(model._native, path)); }
  // Frees it now (else the garbage collector does); jobs that use it keep it until they end.
  close() {
    this._native.close();
    this._closed = true;
  }
}

function images(set) {
  const out = [];
  for (let i = 0; i < set.size(); i++) out.push(new Image(set.get(i)));
  return out;
}

class Model {
  // settings: the "model" options { config_dir, variant, device: 'cpu'|'cuda', device_index,
  // dtype: 'f32'|'f16'|'bf16', threads }
  constructor(path, settings = {}) {
    const o = options('model', settings);
    this._native = call(() => new native.Model(path, o));
  }

  // Resolves to an array of Image. settings: steps, seed, width, … as bioesp_generate_options,
  // plus onProgress(step, total), onPreview(image, index, step, total) (with preview_every: every
  // live preview, in order; the worker thread queues them, the event loop hands them over) — either
  // returns false to cancel — and signal (an AbortSignal).
  generate(prompt, settings = {}) {
    const queue = settings.onPreview ? new native.PreviewQueue() : null;
    const job = call(() => this._native.generate_async(generateOptions(prompt, settings), null, queue));
    const pollMs = settings.pollMs || 5;
    return new Promise((resolve, reject) => {
      // Once cancelled (a callback, the signal, a callback's exception) the promise rejects
      // whatever the job made of it; an exception in a callback is the rejection itself. The job
      // is closed only once done, so closing never waits for the worker.
      let last = -1, cancelled = false, failure = null;
      const cancel = () => {
        if (cancelled) return;
        cancelled = true;
        job.cancel();
      };
      if (settings.signal) settings.signal.addEventListener('abort', cancel, { once: true });
      const report = () => {
        const step = call(() => job.step());
        if (settings.onProgress && step !== last) {
          last = step;
          if (settings.onProgress(step, job.total()) === false) cancel();
        }
        while (queue && !cancelled && queue.pop()) {
          if (settings.onPreview(new Image(queue.image()), queue.index(), queue.step(), queue.total()) === false) cancel();
        }
      };
      const tick = () => {
        let done = true;
        try {
          done = call(() => job.done());  // before the previews: a finished job has queued them all
          if (!cancelled) report();
        } catch (e) {
          if (!failure) failure = e;
          cancel();
        }
        if (!done) {
          setTimeout(tick, pollMs);
          return;
        }
        if (settings.signal) settings.signal.removeEventListener('abort', cancel);
        let result;
        try {
          if (!cancelled) result = call(() => images(job.take()));
        } catch (e) {
          failure = e;
        }
        job.close();
        if (failure) reject(failure);
        else if (cancelled) reject(new BioespError('cancelled: the job was cancelled'));
        else resolve(result);
      };
      tick();
    });
  }

  // Blocks the calling thread (scripts, tests); prefer generate().
  generateSync(prompt, settings = {}) {
    return call(() => images(this._native.generate(generateOptions(prompt, settings))));
  }

  // Frames morphing between keyframes (blocks; see bioesp_animate): animate(['colibrí',
  // 'lagarto'], [1, 2], {frames: 24, pingpong: true}).save('morph.gif', {fps: 12}).
  animate(prompts, seeds, settings = {}) {
    const o = options('animate', { ...settings, prompts, seeds });
    const set = call(() => this._native.animate(o, null));
    return {
      frames: images(set),
      // settings: the "animation" options {fps, loop, quality}.
      save: (path, saving = {}) => call(() => set.save_animation(path, options('animation', saving))),
    };
  }

  addLora(path, scale, name) { call(() => this._native.add_lora(path, scale, name)); }
  setLoraScale(name, scale) { call(() => this._native.set_lora_scale(name, scale)); }
  removeLora(name) { call(() => this._native.remove_lora(name)); }
  // Textual inversion; token '' is the token the file names, else the file's stem.
  addEmbedding(path, token = '') { call(() => this._native.add_embedding(path, token)); }
  removeEmbedding(token) { call(() => this._native.remove_embedding(token)); }
  embeddings() { return call(() => this._native.embeddings()).split('\n').filter((t) => t); }
  // Frees the model now (else the garbage collector does, eventually).
  close() { this._native.close(); }
}

// Datasets, training and the Hub: blocking calls (run them in a worker_thread to keep a server
// responsive). Each takes a plain object of its C options' fields.
const fetch = (fields) => call(() => native.fetch(options('fetch', fields), null));
const prepare = (fields) => call(() => native.prepare(options('prepare', fields), null));
const train = (fields) => call(() => native.train(options('train', fields), null));
const newModel = (fields) => call(() => native.new_model(options('new_model', fields)));
const pull = (fields) => call(() => native.pull(options('pull', fields), null));
const push = (fields) => call(() => native.push(options('push', fields), null));
// The names of a kind's settings, and the schedulers by name.
const settings = (kind) => vector(call(() => new native.Options(kind)).names());
const schedulers = () => vector(native.schedulers());

module.exports = {
  Model, Image, ControlNet, BioespError, version: native.version, embeddedModel: native.embedded_model,
  fetch, prepare, train, newModel, pull, push, settings, schedulers, Options: native.Options,
};
