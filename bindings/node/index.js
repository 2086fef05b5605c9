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

const SETTINGS = ['negative_prompt', 'steps', 'guidance', 'seed', 'scheduler', 'width', 'height',
  'images_per_prompt', 'clip_skip', 'strength', 'device_generator', 'init_image',
  'vae_tile_size', 'tiling', 'background'];

function generateOptions(prompt, settings) {
  const o = new native.GenerateOptions();
  for (const p of Array.isArray(prompt) ? prompt : [prompt]) {
    if (typeof p !== 'string') throw new TypeError('prompt must be a string or an array of strings');
    o.add_prompt(p);
  }
  for (const [key, value] of Object.entries(settings || {})) {
    if (key === 'onProgress' || key === 'signal' || key === 'pollMs') continue;
    if (!SETTINGS.includes(key)) throw new TypeError('unknown setting: ' + key);
    o[key] = key === 'init_image' ? value._native : value;
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
  save(path) { call(() => this._native.save(path)); }
  static load(path) { return call(() => new Image(native.Images.load(path).get(0))); }
}

function images(set) {
  const out = [];
  for (let i = 0; i < set.size(); i++) out.push(new Image(set.get(i)));
  return out;
}

class Model {
  // options: { config_dir, variant, device: 'cpu'|'cuda', device_index, dtype: 'f32'|'f16'|'bf16', threads }
  constructor(path, options = {}) {
    const o = new native.ModelOptions();
    for (const [key, value] of Object.entries(options)) {
      if (!(key in o)) throw new TypeError('unknown model option: ' + key);
      o[key] = value;
    }
    this._native = call(() => new native.Model(path, o));
  }

  // Resolves to an array of Image. settings: steps, seed, width, … as bioesp_generate_options,
  // plus onProgress(step, total) (return false to cancel) and signal (an AbortSignal).
  generate(prompt, settings = {}) {
    const job = call(() => this._native.generate_async(generateOptions(prompt, settings)));
    const pollMs = settings.pollMs || 5;
    return new Promise((resolve, reject) => {
      let last = -1;
      const onAbort = () => job.cancel();
      if (settings.signal) settings.signal.addEventListener('abort', onAbort, { once: true });
      const tick = () => {
        try {
          const step = job.step();
          if (settings.onProgress && step !== last) {
            last = step;
            if (settings.onProgress(step, job.total()) === false) job.cancel();
          }
          if (!job.done()) {
            setTimeout(tick, pollMs);
            return;
          }
          if (settings.signal) settings.signal.removeEventListener('abort', onAbort);
          const result = call(() => images(job.take()));
          job.close();
          resolve(result);
        } catch (e) {
          job.close();
          reject(e instanceof BioespError ? e : new BioespError(e.message));
        }
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
    const o = new native.AnimateOptions();
    for (const p of Array.isArray(prompts) ? prompts : [prompts]) o.add_prompt(p);
    for (const s of Array.isArray(seeds) ? seeds : [seeds]) o.add_seed(s);
    for (const [key, value] of Object.entries(settings)) {
      if (!(key in o)) throw new TypeError('unknown setting: ' + key);
      o[key] = value;
    }
    const set = call(() => this._native.animate(o, null));
    return {
      frames: images(set),
      save: (path, { fps = 8, loop = true, quality = 80 } = {}) => call(() => set.save_animation(path, fps, loop, quality)),
    };
  }

  addLora(path, scale, name) { call(() => this._native.add_lora(path, scale, name)); }
  setLoraScale(name, scale) { call(() => this._native.set_lora_scale(name, scale)); }
  removeLora(name) { call(() => this._native.remove_lora(name)); }
  // Frees the model now (else the garbage collector does, eventually).
  close() { this._native.close(); }
}

// Datasets, training and the Hub: blocking calls (run them in a worker_thread to keep a server
// responsive). Each takes a plain object of the C options' fields.
function options(Type, fields) {
  const o = new Type();
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'titles' && Type === native.FetchOptions) { value.forEach((t) => o.add_title(t)); continue; }
    if (key === 'include' && Type === native.PullOptions) { value.forEach((g) => o.add_include(g)); continue; }
    if (!(key in o)) throw new TypeError('unknown option: ' + key);
    o[key] = value;
  }
  return o;
}
const fetch = (fields) => call(() => native.fetch(options(native.FetchOptions, fields), null));
const prepare = (fields) => call(() => native.prepare(options(native.PrepareOptions, fields), null));
const train = (fields) => call(() => native.train(options(native.TrainOptions, fields), null));
const newModel = (fields) => call(() => native.new_model(options(native.NewModelOptions, fields)));
const pull = (fields) => call(() => native.pull(options(native.PullOptions, fields), null));
const push = (fields) => call(() => native.push(options(native.PushOptions, fields), null));

module.exports = {
  Model, Image, BioespError, version: native.version, embeddedModel: native.embedded_model,
  fetch, prepare, train, newModel, pull, push,
};
