'use strict';
// The Node binding: the C API's bytes as a Buffer, a Promise that leaves the event loop free,
// progress, every preview, TAESD and the full VAE, cancel (callbacks and AbortSignal), a
// ControlNet and a mask, errors as BioespError, no leaks.
// Usage: node test_node.js BUILD_NODE_DIR MODEL REFERENCE_PIXELS CONTROLNET CONTROL_PIXELS INPAINT_PIXELS MASK_PNG
const assert = require('assert');
const fs = require('fs');
const [dir, modelDir, refPath, controlnetDir, controlPath, inpaintPath, maskPath] = process.argv.slice(2);
const bioesp = require(dir);
const reference = fs.readFileSync(refPath);
const settings = { steps: 3, seed: 42, width: 64, height: 64 };

function rssKiB() {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
}

(async () => {
  // The model that ships with bioesp is found from the binding too.
  assert.ok(fs.existsSync(bioesp.embeddedModel() + '/model_index.json'), bioesp.embeddedModel());
  const model = new bioesp.Model(modelDir);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const steps = [];
  const [image] = await model.generate('colibrí lagarto', { ...settings, onProgress: (s, t) => steps.push([s, t]) });
  clearInterval(timer);
  assert.ok(Buffer.isBuffer(image.pixels));
  assert.deepStrictEqual([image.width, image.height, image.channels], [64, 64, 3]);
  assert.ok(image.pixels.equals(reference), "the binding's pixels differ from the C API's");
  assert.ok(ticks > 0, 'the event loop was blocked while generating');
  assert.ok(steps.length > 0 && steps[steps.length - 1][0] === steps[steps.length - 1][1], JSON.stringify(steps));
  assert.strictEqual(image.setting('seed'), '42');
  assert.ok(model.generateSync('colibrí lagarto', settings)[0].pixels.equals(reference));
  // Live previews: every one, in order (steps 1 to 4 of image 0: PNDM's 3 steps are 4 UNet passes), as Images at 1/8 of the size
  // (the linear latent-RGB map); the image the same bytes as without them; cancelled by returning
  // false, and none after that.
  const previews = [];
  const [previewed] = await model.generate('colibrí lagarto', {
    ...settings, preview_every: 1, onPreview: (im, index, step, total) => previews.push([im.width, im.pixels.length, index, step, total]) });
  assert.ok(previewed.pixels.equals(reference));
  assert.deepStrictEqual(previews, [1, 2, 3, 4].map((step) => [8, 192, 0, step, 4]));
  const stopped = [];
  await assert.rejects(model.generate('x', { ...settings, preview_every: 1, onPreview: (im, index, step) => stopped.push(step) && step < 2 }),
    (e) => e instanceof bioesp.BioespError && /cancel/.test(e.message));
  assert.deepStrictEqual(stopped, [1, 2]);
  // A callback's exception is the rejection itself; the signal aborted after it is harmless.
  const thrown = new Error('from the callback');
  const late = new AbortController();
  await assert.rejects(model.generate('x', { ...settings, signal: late.signal, preview_every: 1, onPreview: () => { throw thrown; } }),
    (e) => e === thrown);
  late.abort();
  // The autoencoders through the model's settings: the model's own VAE named gives its bytes, a
  // TAESD in its place others, one for previews only full-size previews and the VAE's bytes.
  const taesd = require('path').join(modelDir, '..', '..', 'golden', 'fast', 'taesd', 'diffusers');
  for (const [vae, same] of [[modelDir + '/vae', true], [taesd, false]]) {
    const other = new bioesp.Model(modelDir, { vae });
    const [drawn] = other.generateSync('colibrí lagarto', settings);
    assert.ok(drawn.width === 64 && drawn.pixels.equals(reference) === same, vae);
    other.close();
  }
  const previewing = new bioesp.Model(modelDir, { preview_vae: taesd });
  const sizes = [];
  const [fullSize] = await previewing.generate('colibrí lagarto', { ...settings, preview_every: 4, onPreview: (im) => sizes.push(im.width) });
  assert.ok(fullSize.pixels.equals(reference));
  assert.deepStrictEqual(sizes, [64]);
  previewing.close();

  await assert.rejects(model.generate('x', { ...settings, onProgress: (s) => s < 1 }),
    (e) => e instanceof bioesp.BioespError && /cancel/.test(e.message));
  const abort = new AbortController();
  const pending = model.generate('x', { ...settings, steps: 50 });
  const aborted = model.generate('x', { ...settings, steps: 50, signal: abort.signal });
  abort.abort();
  await assert.rejects(aborted, /cancel/);
  await pending;
  assert.throws(() => new bioesp.Model('/nonexistent/model'),
    (e) => e instanceof bioesp.BioespError && /no such model folder or file/.test(e.message));
  assert.throws(() => model.generateSync('x', { colour: 'red' }), /unknown setting: colour/);
  assert.throws(() => model.generateSync('x', { steps: 0 }),
    (e) => e instanceof bioesp.BioespError && /steps: must be between 1 and 1000, not 0/.test(e.message));
  assert.ok(bioesp.schedulers().includes('ddpm'));
  assert.ok(bioesp.settings('train').includes('adam_epsilon') && bioesp.settings('fetch').includes('allow_restricted'));
  const [varied] = await model.generate('colibrí', { ...settings, init_image: image, strength: 0.5 });
  assert.strictEqual(varied.setting('strength'), '0.5');
  // A ControlNet (the picture's Canny edges, scale 0.7) and a mask: the C API's bytes
  // (tests/bindings/reference.c draws the same).
  const net = new bioesp.ControlNet(model, controlnetDir);
  const [steered] = await model.generate('colibrí lagarto', { ...settings, controls: [[net, image, 0.7, 0, 1, 'canny']] });
  assert.ok(steered.pixels.equals(fs.readFileSync(controlPath)), "the binding's ControlNet picture differs from the C API's");
  assert.match(steered.setting('controlnets'), /:0\.7 \(canny\)$/);
  const [painted] = model.generateSync('colibrí lagarto', { ...settings, init_image: image, mask: bioesp.Image.load(maskPath), strength: 1 });
  assert.ok(painted.pixels.equals(fs.readFileSync(inpaintPath)), "the binding's inpainted picture differs from the C API's");
  assert.throws(() => model.generateSync('x', { ...settings, controls: [[net, image, 1, 0.9, 0.1]] }),
    (e) => e instanceof bioesp.BioespError && /start/.test(e.message));
  assert.throws(() => model.generateSync('x', { ...settings, controls: [[image, net]] }), /a control is \[ControlNet, Image/);
  net.close();
  assert.throws(() => model.generateSync('x', { ...settings, controls: [[net, image]] }),
    (e) => e instanceof bioesp.BioespError && /the ControlNet was closed/.test(e.message));
  const morph = model.animate(['colibrí lagarto', 'frailejón'], [42, 43], { frames: 3, steps: 3, width: 64, height: 64 });
  assert.strictEqual(morph.frames.length, 3);
  assert.ok(morph.frames[0].pixels.equals(reference), 'the first frame is not the single generation');
  assert.throws(() => bioesp.pull({ repo: 'CompVis/stable-diffusion-v1-4', offline: true, cache_dir: '/nonexistent' }),
    (e) => e instanceof bioesp.BioespError && /not in the cache/.test(e.message));
  // Weighted prompts and an embedding (A1111's safetensors layout, written here).
  const header = Buffer.from(JSON.stringify({ emb_params: { dtype: 'F32', shape: [1, 32], data_offsets: [0, 128] } }));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  const values = Buffer.alloc(128);
  for (let i = 0; i < 32; i++) values.writeFloatLE(i / 32 - 0.5, i * 4);
  const file = require('os').tmpdir() + `/bichito-${process.pid}.safetensors`;
  fs.writeFileSync(file, Buffer.concat([size, header, values]));
  model.addEmbedding(file);
  assert.deepStrictEqual(model.embeddings(), [`bichito-${process.pid}`]);
  const [weighted] = model.generateSync(`(bichito-${process.pid}:1.2)`, { ...settings, prompt_syntax: 'weighted' });
  assert.strictEqual(weighted.setting('prompt_syntax'), 'weighted');
  model.removeEmbedding(`bichito-${process.pid}`);
  fs.unlinkSync(file);
  assert.throws(() => model.removeEmbedding('bichito'), (e) => e instanceof bioesp.BioespError && /no embedding/.test(e.message));
  model.close();
  assert.throws(() => model.generateSync('x', settings), /closed/);

  for (let i = 0; i < 20; i++) new bioesp.Model(modelDir).close();
  const before = rssKiB();
  for (let i = 0; i < 200; i++) new bioesp.Model(modelDir).close();
  const growth = rssKiB() - before;
  assert.ok(growth < 40 * 1024, `200 load/free cycles grew the process by ${growth} KiB`);
  console.log(`node binding: ok (200 cycles: ${growth} KiB)`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
