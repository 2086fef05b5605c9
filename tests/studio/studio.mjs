// The studio in headless Chromium against the tiny reference model: generate with live progress,
// reuse a picture's settings (the same picture again), img2img, the drawing canvas (pen, eraser,
// clear: a ControlNet's silhouette, a mask of a gallery picture, and the drawings a request may
// not send), cancel, the dataset's attribution, a LoRA
// training with its loss chart and validation pictures, stop and resume, Spanish and English,
// and the safety rules (other hosts, other sites, paths, sizes).
import { chromium } from "playwright-core";
import http from "node:http";
import assert from "node:assert/strict";
import fs from "node:fs";

const [base, dir] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
const errors = [];
const page = await browser.newPage({ locale: "en-US" });
page.on("pageerror", (e) => errors.push(String(e)));
page.setDefaultTimeout(60000);
const step = (what) => console.log(`studio: ${what}`);

const setRange = (sel, v) => page.$eval(sel, (e, v) => { e.value = v; e.dispatchEvent(new Event("input")); }, String(v));
const bytes = async (path) => Buffer.from(await (await fetch(base + path)).arrayBuffer());
const loaded = (sel) => page.waitForFunction((s) => { const e = document.querySelectorAll(s); return e.length && [...e].every((i) => i.complete && i.naturalWidth > 0); }, sel);
// Every text #gen-status shows, to see progress that passes quickly.
const watchStatus = () => page.evaluate(() => {
  window.seen = [];
  new MutationObserver(() => window.seen.push(document.getElementById("gen-status").textContent))
    .observe(document.getElementById("gen-status"), { childList: true, characterData: true, subtree: true });
});
const raw_status = async (path, body) =>
  (await fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body })).status;
const generated = async () => {
  await page.waitForSelector("#gen-status[data-state]");
  return page.$eval("#gen-status", (e) => e.dataset.state);
};

try {
  await page.goto(base);
  step("English for an English browser, Spanish on a click");
  await page.waitForFunction(() => document.querySelector("[data-tab=generate]").textContent === "Generate");
  await page.click("#lang");
  assert.equal(await page.textContent("[data-tab=generate]"), "Generar");
  assert.equal(await page.textContent("#generate-btn"), "Generar");
  assert.equal(await page.getAttribute("html", "lang"), "es");
  await page.click("#lang");
  assert.equal(await page.textContent("#generate-btn"), "Generate");

  await page.click("#generate-btn");
  assert.equal(await page.textContent("#error"), "Write a prompt.");

  step("generate two pictures with live progress");
  await page.fill("#prompt", "lagarto colibrí");
  await setRange("#steps", 6);
  await setRange("#images", 2);
  assert.equal(await page.textContent("output[for=steps]"), "6");
  await page.fill("#seed", "1234");
  await page.selectOption("#scheduler", "euler");
  assert.match(await page.textContent("#embeddings-hint"), /: bichito$/);  // cli_studio.sh's embedding
  await watchStatus();
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const seen = await page.evaluate(() => window.seen);
  assert.ok(seen.some((s) => /^image 1\/2 · step \d+\/6$/.test(s)), `progress of image 1: ${seen}`);
  assert.ok(seen.some((s) => /^image 2\/2 · step \d+\/6$/.test(s)), `progress of image 2: ${seen}`);
  assert.equal(await page.$eval("#gen-progress", (e) => e.value), 1);
  assert.equal(await page.locator("#results img").count(), 2);
  await loaded("#results img");

  step("the gallery keeps each picture's settings; reuse draws the same picture");
  await page.click("[data-tab=gallery]");
  await page.waitForFunction(() => document.querySelectorAll("#gallery-list .picture").length === 2);
  const second = page.locator('#gallery-list img[title="lagarto colibrí · 1235"]');
  const file = await second.evaluate((e) => e.parentElement.dataset.file);
  await second.click();
  await page.waitForSelector("#detail[open]");
  assert.equal(await page.textContent('#detail-settings dd[data-key="seed"]'), "1235");
  assert.equal(await page.textContent('#detail-settings dd[data-key="scheduler"]'), "euler");
  await page.click("#detail-reuse");
  assert.equal(await page.inputValue("#seed"), "1235");
  assert.equal(await page.inputValue("#prompt"), "lagarto colibrí");
  assert.equal(await page.inputValue("#images"), "1");
  assert.equal(await page.inputValue("#scheduler"), "euler");
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const again = await page.$eval("#results .picture", (e) => e.dataset.file);
  assert.notEqual(again, file);
  assert.ok((await bytes(`/files/gallery/${again}`)).equals(await bytes(`/files/gallery/${file}`)), "reused settings, other pixels");
  await page.click("#seed-reuse");
  assert.equal(await page.inputValue("#seed"), "1235");
  await page.click("#seed-random");
  assert.equal(await page.inputValue("#seed"), "");

  step("vary a picture: img2img from the gallery");
  await page.click("[data-tab=gallery]");
  const first = await page.$eval('#gallery-list img[title="lagarto colibrí · 1234"]', (e) => e.parentElement.dataset.file);
  await page.click('#gallery-list img[title="lagarto colibrí · 1234"]');
  await page.click("#detail-vary");
  assert.ok(await page.isVisible("#init-row"));
  assert.ok(await page.isDisabled("#width"));
  assert.equal(await page.inputValue("#seed"), "");
  await setRange("#strength", 0.3);
  await page.fill("#seed", "99");
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const varied = await page.$eval("#results .picture", (e) => e.dataset.file);
  // Drawn from the picture (the tiny model's random weights keep no likeness to measure): its
  // size, not the form's, and the img2img strength in the PNG's settings.
  const png = await bytes(`/files/gallery/${varied}`);
  assert.equal(png.readUInt32BE(16), (await bytes(`/files/gallery/${first}`)).readUInt32BE(16));
  assert.match(png.toString("latin1"), /strength\x00+0\.3/, "the PNG records the img2img strength");
  await page.click("#results .picture");
  assert.equal(await page.textContent('#detail-settings dd[data-key="init"]'), first);
  assert.equal(await page.textContent('#detail-settings dd[data-key="strength"]'), "0.3");
  await page.click("#detail-close");
  await page.click("#init-clear");
  assert.ok(await page.isHidden("#init-row"));

  step("draw: a silhouette a ControlNet follows (pen, eraser), then reused by its name");
  const info = await (await fetch(base + "/api/info")).json();
  assert.deepEqual(info.controlnets, ["bordes"]);  // cli_studio.sh's; its broken file is reported
  assert.ok(info.skipped.some((s) => s.entry === "roto.safetensors" && s.reason), JSON.stringify(info.skipped));
  const scribble = async (from, to) => {
    const box = await page.locator("#draw-canvas").boundingBox();
    await page.mouse.move(box.x + box.width * from[0], box.y + box.height * from[1]);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * to[0], box.y + box.height * to[1], { steps: 8 });
    await page.mouse.up();
  };
  // The canvas's opacity at a share of its width and height.
  const inked = (x, y) => page.$eval("#draw-canvas", (c, [x, y]) =>
    c.getContext("2d").getImageData(Math.floor(x * c.width), Math.floor(y * c.height), 1, 1).data[3], [x, y]);
  // A picture's pixels (read in the page), and the red of one at a share of its width and height.
  const pixels = (path) => page.evaluate(async (path) => {
    const img = new Image();
    img.src = path;
    await img.decode();
    const c = Object.assign(document.createElement("canvas"), { width: img.naturalWidth, height: img.naturalHeight });
    c.getContext("2d").drawImage(img, 0, 0);
    return { width: c.width, data: [...c.getContext("2d").getImageData(0, 0, c.width, c.height).data] };
  }, path);
  const red = (p, x, y) => p.data[(Math.floor(y * p.data.length / 4 / p.width) * p.width + Math.floor(x * p.width)) * 4];
  const gallery = async () => (await (await fetch(base + "/api/gallery")).json()).items;
  await page.click("#draw-box summary");
  await page.selectOption("#drawing-use", "control");
  assert.ok(await page.isVisible("#controlnet"));
  await page.click("#generate-btn");
  assert.equal(await page.textContent("#error"), "Draw something first (or choose nothing).");
  await scribble([0.1, 0.5], [0.9, 0.5]);
  assert.ok((await inked(0.7, 0.5)) > 200 && (await inked(0.7, 0.1)) === 0, "the pen draws where it goes");
  await page.click("#draw-eraser");
  await scribble([0.4, 0.3], [0.4, 0.7]);
  assert.equal(await inked(0.4, 0.5), 0, "the eraser takes the stroke away");
  assert.ok((await inked(0.7, 0.5)) > 200);
  await page.click("#draw-pen");
  await setRange("#control_scale", 0.8);
  await setRange("#steps", 3);
  await page.fill("#seed", "7");
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const steered = await page.$eval("#results .picture", (e) => e.dataset.file);
  assert.match((await bytes(`/files/gallery/${steered}`)).toString("latin1"), /controlnets\x00+[^\x00]*bordes:0\.8 \(scribble\)/);
  const steeredEntry = (await gallery()).find((e) => e.file === steered);
  assert.equal(steeredEntry.drawing_use, "control");
  assert.equal(steeredEntry.controlnet, "bordes");
  assert.equal(steeredEntry.control_scale, 0.8);
  const drawing = await pixels(`/files/gallery/drawings/${steeredEntry.drawing}`);  // black lines on white
  assert.deepEqual([red(drawing, 0.7, 0.5), red(drawing, 0.7, 0.1), red(drawing, 0.4, 0.5)], [0, 255, 255]);
  await page.selectOption("#drawing-use", "");
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const unsteered = await page.$eval("#results .picture", (e) => e.dataset.file);
  assert.ok(!(await bytes(`/files/gallery/${unsteered}`)).equals(await bytes(`/files/gallery/${steered}`)), "the ControlNet steers");
  await page.click("#draw-clear");
  assert.equal(await inked(0.7, 0.5), 0, "clear empties the canvas");
  await page.click("[data-tab=gallery]");
  await page.click(`#gallery-list [data-file="${steered}"]`);
  assert.equal(await page.textContent('#detail-settings dd[data-key="controlnet"]'), "bordes");
  await page.click("#detail-reuse");
  assert.equal(await page.inputValue("#drawing-use"), "control");
  await page.waitForFunction(() => { const c = document.getElementById("draw-canvas");
    return c.getContext("2d").getImageData(Math.floor(0.7 * c.width), Math.floor(0.5 * c.height), 1, 1).data[3] > 200; });
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const redrawn = await page.$eval("#results .picture", (e) => e.dataset.file);
  assert.ok((await bytes(`/files/gallery/${redrawn}`)).equals(await bytes(`/files/gallery/${steered}`)), "the reused drawing draws the same picture");
  assert.equal((await gallery()).find((e) => e.file === redrawn).drawing, steeredEntry.drawing);

  step("draw: the area of a gallery picture to paint again");
  await page.click("[data-tab=gallery]");
  await page.click('#gallery-list img[title="lagarto colibrí · 1234"]');
  await page.click("#detail-vary");
  assert.equal(await page.inputValue("#drawing-use"), "");
  await page.waitForSelector("#draw-under:not([hidden])");
  await setRange("#draw-brush", 40);
  await scribble([0.8, 0.05], [0.8, 0.95]);
  await page.selectOption("#drawing-use", "mask");
  assert.ok(await page.isHidden("#controlnet"));
  await setRange("#strength", 1);
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  const painted = await page.$eval("#results .picture", (e) => e.dataset.file);
  const [before_paint, after_paint] = [await pixels(`/files/gallery/${first}`), await pixels(`/files/gallery/${painted}`)];
  assert.equal(after_paint.width, before_paint.width, "the picture's size");
  const left = (p) => p.data.filter((_, i) => (i >> 2) % p.width < p.width / 2);
  assert.deepEqual(left(after_paint), left(before_paint), "the unpainted half is the picture's own");
  assert.ok([0.2, 0.5, 0.8].some((y) => red(after_paint, 0.8, y) !== red(before_paint, 0.8, y)), "the painted area is drawn again");
  const paintedEntry = (await gallery()).find((e) => e.file === painted);
  assert.equal(paintedEntry.drawing_use, "mask");
  assert.equal(paintedEntry.init, first);
  await page.selectOption("#drawing-use", "");
  await page.click("#init-clear");

  step("draw: what a request may not send as a drawing");
  const refused = async (body, status, pattern) => {
    const r = await fetch(base + "/api/generate", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "x", steps: 1, ...body }) });
    const why = r.status === 413 ? "" : (await r.json()).error;
    assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 100)}: ${why}`);
    assert.match(why, pattern);
  };
  // A PNG signature and header chunk claiming width × height, and nothing after it.
  const header = (w, h) => { const b = Buffer.alloc(33); Buffer.from("\x89PNG\r\n\x1a\n", "latin1").copy(b);
    b.writeUInt32BE(13, 8); b.write("IHDR", 12, "latin1"); b.writeUInt32BE(w, 16); b.writeUInt32BE(h, 20); b[24] = 8; return b; };
  const dataUrl = (b) => "data:image/png;base64," + b.toString("base64");
  const kept = steeredEntry.drawing, control = { drawing_use: "control" };
  await refused({ drawing: "data:image/png;base64,@@@@", ...control }, 400, /standard base64/);
  await refused({ drawing: "data:image/png;base64,QUJD=", ...control }, 400, /standard base64/);
  await refused({ drawing: dataUrl(Buffer.from("GIF89a not a png at all, not at all")), ...control }, 400, /not a PNG picture/);
  await refused({ drawing: dataUrl(header(100000, 100000)), ...control }, 400, /100000×100000 pixels; at most 2048/);
  await refused({ drawing: dataUrl(header(64, 64)), ...control }, 400, /cannot be read/);
  await refused({ drawing: "../../../etc/passwd.png", drawing_use: "mask", init: first }, 400, /no drawing kept/);
  await refused({ drawing: 5, ...control }, 400, /must be text/);
  await refused({ drawing: kept, drawing_use: "paint" }, 400, /control, mask/);
  await refused({ drawing: kept }, 400, /control, mask/);
  await refused({ drawing: kept, drawing_use: "mask" }, 400, /start from one/);
  await refused({ drawing: kept, ...control, controlnet: "ninguno" }, 400, /no ControlNet named ninguno/);
  await refused({ drawing: kept, ...control, control_start: 0.8, control_end: 0.2 }, 400, /below control_end/);
  await refused({ drawing: kept, ...control, control_scale: 5 }, 400, /control_scale must be between 0 and 2/);
  await refused({ drawing_use: "control" }, 400, /drawing_use needs a drawing/);
  await refused({ mask: "x" }, 400, /not set from the page: the drawing canvas paints it/);
  await refused({ drawing: "data:image/png;base64," + "A".repeat(70000), ...control }, 413, /^$/);
  const drawings = fs.readdirSync(`${dir}/gallery/drawings`), named = new Set((await gallery()).map((e) => e.drawing));
  assert.deepEqual(drawings.filter((f) => !named.has(f)), [], "only the drawings pictures were made with are kept");

  step("animate from one gallery picture to another");
  await page.click("[data-tab=gallery]");
  await page.click('#gallery-list img[title="lagarto colibrí · 1234"]');
  await page.click("#detail-from");
  assert.ok(await page.isDisabled("#anim-btn"), "an animation needs both ends");
  await page.locator('#gallery-list img[title="lagarto colibrí · 1235"]').first().click();
  await page.click("#detail-to");
  await setRange("#anim-frames", 4);
  await page.check("#anim-pingpong");
  await page.click("#anim-btn");
  await page.waitForSelector("#anim-status[data-state]");
  assert.equal(await page.$eval("#anim-status", (e) => e.dataset.state), "done");
  await loaded("#animations .animation img");
  const anim = (await (await fetch(base + "/api/animations")).json()).items[0];
  assert.deepEqual(anim.seeds, [1234, 1235]);
  assert.equal(anim.frames, 6);  // 4, and back without repeating the ends
  const gif = await bytes(`/files/gallery/${anim.file}`);
  assert.equal(gif.subarray(0, 6).toString(), "GIF89a");
  let frames = 0;
  for (let i = 0; i + 2 < gif.length; ++i) if (gif[i] === 0x21 && gif[i + 1] === 0xf9 && gif[i + 2] === 0x04) ++frames;
  assert.equal(frames, 6, "frames in the GIF");

  step("cancel a long run");
  await page.click("[data-tab=generate]");
  const before = (await (await fetch(base + "/api/gallery")).json()).items.length;
  await setRange("#steps", 100);
  await setRange("#images", 8);
  await watchStatus();
  await page.click("#generate-btn");
  await page.waitForFunction(() => window.seen.some((s) => /step [1-9]/.test(s)));
  await page.click("#cancel-btn");
  assert.equal(await generated(), "cancelled");
  assert.ok(await page.isEnabled("#generate-btn"));
  const after = (await (await fetch(base + "/api/gallery")).json()).items.length;
  assert.ok(after - before < 8, `a cancelled run of 8 drew ${after - before}`);

  step("the dataset view shows who made each picture and its license");
  await page.click("[data-tab=datasets]");
  await page.waitForSelector('.card[data-file="bee.png"]');
  const bee = page.locator('.card[data-file="bee.png"]');
  assert.equal(await bee.locator(".author").textContent(), "Google (Noto Emoji)");
  assert.equal(await bee.locator(".license").textContent(), "Apache-2.0");
  assert.match(await bee.locator(".caption").textContent(), /abeja, honeybee/);
  assert.equal(await bee.locator(".license a").getAttribute("href"), "https://www.apache.org/licenses/LICENSE-2.0");
  await loaded(".card img");
  assert.match(await page.textContent("#dataset-info"), /^8 images · with ATTRIBUTION.md$/);

  step("a dataset from Wikimedia Commons (a loopback one): listed, downloaded, prepared, credited");
  await page.click("#fetch-box summary");
  assert.equal(await page.inputValue("#fetch-source"), "campaign");
  assert.equal(await page.inputValue("#fetch-value"), "Biodiversidad en Colombia 2025");
  await page.fill("#fetch-name", "aves");
  await page.fill("#fetch-size", "64");
  await page.selectOption("#fetch-crop", "pad");
  await page.click("#fetch-btn");
  await page.waitForSelector("#fetch-status[data-state]", { timeout: 120000 });
  assert.equal(await page.$eval("#fetch-status", (e) => e.dataset.state), "done");
  assert.equal(await page.textContent("#fetch-status"), "done: 2 pictures (2 downloaded, 1 left out)");
  assert.match(await page.textContent("#fetch-notes"), /Flor nonfree\.jpg: license 'CC BY-NC 4\.0' is not among the allowed/);
  await page.waitForFunction(() => document.querySelector("#dataset-pick").value === "aves");
  await page.waitForSelector('.card[data-file="Ave 1.png"]');
  const ave = page.locator('.card[data-file="Ave 1.png"]');
  assert.equal(await ave.locator(".author").textContent(), "Ana María & José");
  assert.equal(await ave.locator(".license").textContent(), "CC BY-SA 4.0");
  assert.match(await ave.locator(".caption").textContent(), /Colibri coruscans/);
  await loaded(".card img");
  assert.equal(await page.$eval('.card[data-file="Ave 1.png"] img', (e) => e.naturalWidth), 64);
  assert.equal((await raw_status("/api/datasets/fetch", '{"source":"campaign","value":"x","name":"aves"}')), 409);
  await page.selectOption("#dataset-pick", "heldout");
  await page.waitForSelector('.card[data-file="bee.png"]');

  step("train a LoRA: loss chart, validation pictures, then draw with it");
  await page.click("[data-tab=train]");
  await page.waitForSelector('#train-dataset option[value="heldout"]', { state: "attached" });
  await page.selectOption("#train-dataset", "heldout");
  await page.fill("#train-name", "t1");
  await page.fill("#train-steps", "4");
  await page.fill("#train-resolution", "64");
  await page.fill("#train-vevery", "2");
  await page.fill("#train-cevery", "2");
  await page.click("#train-btn");
  await page.waitForSelector("#train-status[data-state]", { timeout: 300000 });
  assert.equal(await page.$eval("#train-status", (e) => e.dataset.state), "done");
  assert.equal(await page.$eval("#loss-chart", (e) => e.dataset.points), "4");
  assert.match(await page.getAttribute("#loss-chart", "aria-label"), /^step 4: [0-9.e-]+$/);
  assert.ok(await page.locator("#validation img").count() >= 2);
  await loaded("#validation img");
  await page.waitForFunction(() => /finished/.test(document.querySelector('#runs li[data-run="t1"]')?.textContent));
  await page.click("[data-tab=generate]");
  await page.waitForSelector('#lora option[value="t1"]', { state: "attached" });
  await page.selectOption("#lora", "t1");
  await setRange("#lora_scale", 0.5);
  await setRange("#steps", 3);
  await setRange("#images", 1);
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  await page.click("#results .picture");
  assert.equal(await page.textContent('#detail-settings dd[data-key="lora"]'), "t1");
  assert.equal(await page.textContent('#detail-settings dd[data-key="lora_scale"]'), "0.5");
  const withLora = await page.$eval("#results .picture", (e) => e.dataset.file);
  assert.ok((await bytes(`/files/gallery/${withLora}`)).includes("t1/pytorch_lora_weights.safetensors:0.5"), "the PNG names its LoRA");
  await page.click("#detail-close");

  step("stop a training and resume it from its checkpoint");
  await page.click("[data-tab=train]");
  await page.fill("#train-name", "t2");
  await page.fill("#train-steps", "400");
  await page.fill("#train-vevery", "0");
  await page.fill("#train-cevery", "0");
  await page.click("#train-btn");
  await page.waitForFunction(() => +document.querySelector("#loss-chart").dataset.points >= 2, null, { timeout: 300000 });
  await page.click("#train-cancel");
  await page.waitForSelector("#train-status[data-state=stopped]", { timeout: 300000 });
  const stopped = (await (await fetch(base + "/api/trainings/t2")).json()).log.length;
  assert.ok(stopped >= 2 && stopped < 400, `stopped after ${stopped}`);
  await page.click('#runs li[data-run="t2"] .resume');
  await page.waitForFunction((n) => +(/^step (\d+):/.exec(document.querySelector("#loss-chart").getAttribute("aria-label")) || [])[1] > n, stopped);
  await page.click("#train-cancel");
  await page.waitForSelector("#train-status[data-state=stopped]", { timeout: 300000 });
  const log = (await (await fetch(base + "/api/trainings/t2")).json()).log.map((p) => p[0]);
  assert.ok(log.length > stopped, `resumed: ${log.length} steps after ${stopped}`);
  assert.deepEqual(log, log.map((_, i) => i + 1), "the resumed run continues the step count");

  step("a second page follows the first one's work");
  const other = await browser.newPage({ locale: "es-CO" });
  await other.goto(base);
  await other.waitForSelector("html[data-ready]");  // the static page says "Generar" before its controls work
  assert.equal(await other.textContent("#generate-btn"), "Generar");
  await other.click("[data-tab=gallery]");
  const shown = (await (await fetch(base + "/api/gallery")).json()).items.length;
  await other.waitForFunction((n) => document.querySelectorAll("#gallery-list .picture").length === n, shown);
  await page.click("[data-tab=generate]");
  await page.selectOption("#lora", "");
  await page.click("#generate-btn");
  assert.equal(await generated(), "done");
  await other.waitForFunction((n) => document.querySelectorAll("#gallery-list .picture").length === n, shown + 1);
  await other.click("[data-tab=train]");
  await other.waitForSelector('#train-dataset option[value="heldout"]', { state: "attached" });
  await other.selectOption("#train-dataset", "heldout");
  await other.fill("#train-name", "t1");
  await other.click("#train-btn");
  await other.waitForFunction(() => !document.querySelector("#error").hidden);
  assert.equal(await other.textContent("#error"), "ya existe un entrenamiento llamado t1: continúalo o elige otro nombre");
  await other.close();

  step("delete a picture from the gallery");
  await page.click("[data-tab=gallery]");
  await page.click(`#gallery-list [data-file="${file}"]`);
  await page.click("#detail-delete");
  await page.waitForFunction((f) => !document.querySelector(`#gallery-list [data-file="${f}"]`), file);
  assert.equal((await fetch(`${base}/files/gallery/${file}`)).status, 404);

  step("safety");
  const url = new URL(base);
  const raw = (path, { method = "GET", headers = {}, body } = {}) => new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
  const json = { "Content-Type": "application/json" };
  assert.equal((await raw("/api/info", { headers: { Host: "evil.example" } })).status, 403);
  assert.equal((await raw("/api/info", { headers: { Host: `localhost:${url.port}` } })).status, 200);
  assert.equal((await raw("/api/generate", { method: "POST", headers: { ...json, Origin: "http://evil.example" }, body: '{"prompt":"x"}' })).status, 403);
  assert.equal((await raw("/api/generate", { method: "POST", headers: { "Content-Type": "text/plain" }, body: '{"prompt":"x"}' })).status, 415);
  assert.equal((await raw("/api/generate", { method: "POST", headers: json, body: "{" })).status, 400);
  const big = await raw("/api/generate", { method: "POST", headers: json, body: JSON.stringify({ prompt: "x".repeat(100000) }) });
  assert.equal(big.status, 413);
  const steps = await raw("/api/generate", { method: "POST", headers: json, body: '{"prompt":"x","steps":100000}' });
  assert.equal(steps.status, 400);
  assert.match(steps.text, /steps must be between 1 and 500/);
  const pasos = await raw("/api/generate", { method: "POST", headers: { ...json, "X-Bioesp-Lang": "es" }, body: '{"prompt":"x","steps":100000}' });
  assert.match(pasos.text, /pasos: debe estar entre 1 y 500/);
  assert.equal((await raw("/api/generate", { method: "POST", headers: json, body: '{"prompt":"x","lora":"../../etc/passwd"}' })).status, 400);
  for (const p of ["/files/gallery/..%2F..%2F..%2Fetc%2Fpasswd", "/files/gallery/../../etc/passwd",
                   "/files/datasets/heldout/manifest.jsonl", "/files/datasets/heldout/.hidden.png",
                   "/files/gallery/animations/..%2F..%2Fgallery", "/api/animations/x.png",
                   "/files/datasets/%2Fetc%2Fpasswd", "/api/datasets/..", "/api/trainings/..%2F..%2F"])
    assert.ok([400, 404].includes((await raw(p)).status), p);
  assert.equal((await raw("/api/train", { method: "POST", headers: json, body: '{"dataset":"../../"}' })).status, 400);
  assert.equal((await raw("/api/train", { method: "POST", headers: json, body: '{"dataset":"heldout","name":"t1"}' })).status, 409);

  assert.deepEqual(errors, [], "errors in the page");
  step("ok");
} finally {
  await browser.close();
}
