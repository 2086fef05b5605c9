// bioesp studio page: forms over the studio's JSON API, live state from /api/events.
"use strict";

// The words of both languages: the tables the server's own messages come from.
const TEXT = {};
const $ = (id) => document.getElementById(id);
const state = { lang: "es", info: null, job: null, lastSeed: null, detail: null, run: null, points: [],
  animFrom: null, animTo: null, animJob: null, init: null,
  // The canvas: the eraser on, a stroke going on, the reused picture's drawing ({name, use}) until it is changed.
  draw: { erase: false, down: false, saved: null } };
// The text of `key` with its {blanks} filled from `blanks`.
const t = (key, blanks = {}) =>
  (TEXT[state.lang]?.[key] ?? key).replace(/\{(\w+)\}/g, (m, name) => (name in blanks ? String(blanks[name]) : m));

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-placeholder]")) e.placeholder = t(e.dataset.i18nPlaceholder);
  for (const e of document.querySelectorAll("[data-i18n-title]")) e.title = t(e.dataset.i18nTitle);
  $("lang").textContent = state.lang === "es" ? "EN" : "ES";
  fillSizes();
  showEmbeddings();
  if (state.detail) showDetail(state.detail);
}

// Entries a listing left out (a name that is not UTF-8, damaged settings), with the reasons.
function showSkipped(id, skipped) {
  const e = $(id);
  e.hidden = !skipped.length;
  e.textContent = t("skipped", { entries: skipped.map((s) => `${s.entry} (${s.reason})`).join("; ") });
}

// The embeddings a prompt may name (the studio attached them from its embeddings folder).
function showEmbeddings() {
  const tokens = state.info?.embeddings ?? [];
  $("embeddings-hint").hidden = !tokens.length;
  $("embeddings-hint").textContent = t("embeddings_hint", { tokens: tokens.join(", ") });
}

function showError(message) {
  const e = $("error");
  e.textContent = message;
  e.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => (e.hidden = true), 8000);
}

async function api(path, body, method) {
  const headers = { "X-Bioesp-Lang": state.lang };  // the server's messages in the page's language
  const init = body === undefined ? { method: method || "GET", headers }
    : { method: method || "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, init);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || `${r.status} ${r.statusText}`);
  return j;
}

// --- settings from the library's options table -------------------------------------------------
// GET /api/options lists, per kind of options, every field a page may set: its type, range,
// choices, default and help (the library's words). A form's own controls take the range and the
// help; every other field gets a control under "More settings", showing the default; moreSettings
// sends the ones changed (the others keep the studio's default).
function control(name, row) {
  const props = { name, title: row.help, "data-more": row.type, onchange: (e) => { e.target.dataset.changed = "1"; } };
  if (row.type === "bool") return el("input", { ...props, type: "checkbox", ...(row.default ? { checked: "" } : {}) });
  if (row.type === "choice") {
    const s = el("select", props, el("option", { value: "" }, String(row.default || "—")));
    for (const c of row.choices) s.append(el("option", { value: c }, c));
    return s;
  }
  if (row.type === "rgb") return el("input", { ...props, type: "color", value: `#${row.default}` });
  if (row.type === "text") return el("input", { ...props, maxlength: "2000", placeholder: row.default });
  const range = { ...(row.min != null ? { min: row.min } : {}), ...(row.max != null ? { max: row.max } : {}) };
  return el("input", { ...props, ...range, type: "number", step: row.step ?? "any", placeholder: String(row.default) });
}

function buildSettings(options, form, kinds) {
  const grid = el("div", { class: "grid" });
  for (const kind of kinds) {
    for (const [name, row] of Object.entries(options[kind] || {})) {
      if (typeof row !== "object") continue;  // the studio sets it (the reason is the value)
      const own = form.elements.namedItem(name);
      if (own) {
        own.title = row.help;
        if (own.type === "number") for (const k of ["min", "max"]) if (row[k] != null) own[k] = row[k];
        continue;
      }
      grid.append(el("label", { class: row.type === "bool" ? "check" : "" }, el("span", {}, name), " ", control(name, row)));
    }
  }
  if (grid.children.length) form.querySelector("[type=submit]").closest(".row").before(el("details", { class: "more" }, el("summary", { "data-i18n": "more_settings" }), grid));
}

function moreSettings(form, body) {
  for (const c of form.querySelectorAll("[data-more]")) {
    delete body[c.name];  // as a FormData gave it
    if (!c.dataset.changed) continue;
    if (c.type === "checkbox") body[c.name] = c.checked;
    else if (c.type === "color") body[c.name] = c.value.slice(1);
    else if (c.value !== "") body[c.name] = c.value;
  }
  return body;
}

// --- tabs -------------------------------------------------------------------------------------
function showTab(name) {
  for (const b of document.querySelectorAll("[role=tab]")) b.setAttribute("aria-selected", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== name;
  if (name === "gallery") loadGallery();
  if (name === "datasets" || name === "train") loadDatasets();
  if (name === "train") loadRuns();
}

// --- generation -------------------------------------------------------------------------------
function fillSizes() {
  for (const id of ["width", "height"]) {
    const s = $(id), keep = s.value;
    s.replaceChildren(el("option", { value: "0" }, t("model_size") + (state.info?.native_size ? ` (${state.info.native_size})` : "")));
    for (const v of [64, 128, 256, 384, 512, 640, 768, 1024]) s.append(el("option", { value: String(v) }, String(v)));
    s.value = keep || "0";
    if (s.value === "") s.value = "0";
  }
}

function setSize(id, v) {
  const s = $(id);
  if (![...s.options].some((o) => o.value === String(v))) s.append(el("option", { value: String(v) }, String(v)));
  s.value = String(v);
}

function formSettings() {
  const seed = $("seed").value.trim();
  const body = {
    prompt: $("prompt").value, negative_prompt: $("negative_prompt").value,
    images: +$("images").value, steps: +$("steps").value, guidance: +$("guidance").value,
    width: +$("width").value, height: +$("height").value, seed: seed === "" ? -1 : Number(seed),
    scheduler: $("scheduler").value, lora: $("lora").value, lora_scale: +$("lora_scale").value,
    init: state.init || "", strength: +$("strength").value, ...drawingSettings(),
  };
  return moreSettings($("gen-form"), body);
}

// --- the drawing canvas -----------------------------------------------------------------------
// Strokes on a transparent layer over the starting picture (when there is one), at the size the
// pictures will have, at most DRAW_MAX pixels a side (the library resizes a control image or a
// mask to the picture). Sent as a PNG data URL: black lines on white for a ControlNet (the studio
// gives it the scribble pre-processor), or white where to paint again on black, as a mask.
const DRAW_MAX = 512;

function pictureSize() {
  const img = $("init-img");
  if (state.init && img.naturalWidth) return [img.naturalWidth, img.naturalHeight];
  const n = state.info?.native_size || 512;
  return [+$("width").value || n, +$("height").value || n];
}

function fitCanvas() {
  const c = $("draw-canvas"), [w, h] = pictureSize(), k = Math.min(1, DRAW_MAX / Math.max(w, h));
  const cw = Math.max(1, Math.round(w * k)), ch = Math.max(1, Math.round(h * k));
  if (c.width !== cw || c.height !== ch) {  // the strokes so far, stretched to the new size
    const copy = el("canvas", { width: c.width, height: c.height });
    copy.getContext("2d").drawImage(c, 0, 0);
    c.width = cw;
    c.height = ch;
    c.getContext("2d").drawImage(copy, 0, 0, cw, ch);
  }
  $("draw-under").hidden = !state.init;
  if (state.init) $("draw-under").src = $("init-img").src;
}

function stroke(ev) {
  const c = $("draw-canvas"), r = c.getBoundingClientRect(), ctx = c.getContext("2d");
  const x = (ev.clientX - r.left) * c.width / r.width, y = (ev.clientY - r.top) * c.height / r.height;
  ctx.globalCompositeOperation = state.draw.erase ? "destination-out" : "source-over";
  ctx.strokeStyle = "#000";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = +$("draw-brush").value * c.width / r.width;
  ctx.lineTo(x, y);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x, y);
}

// The canvas as the server takes it (strokes: the pixels more than half opaque), or null when
// nothing is drawn.
function drawingURL(use) {
  const c = $("draw-canvas"), layer = c.getContext("2d").getImageData(0, 0, c.width, c.height), px = layer.data;
  const [on, off] = use === "mask" ? [255, 0] : [0, 255];
  let drawn = false;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i + 3] >= 128 ? on : off;
    drawn ||= v === on;
    px[i] = px[i + 1] = px[i + 2] = v;
    px[i + 3] = 255;
  }
  if (!drawn) return null;
  const out = el("canvas", { width: c.width, height: c.height });
  out.getContext("2d").putImageData(layer, 0, 0);
  return out.toDataURL("image/png");
}

function drawingSettings() {
  const use = $("drawing-use").value;
  if (!use) return {};
  const saved = state.draw.saved;
  const drawing = saved && saved.use === use ? saved.name : drawingURL(use);
  if (!drawing) throw new Error(t("draw_first"));
  if (use === "mask") return { drawing, drawing_use: use };
  return { drawing, drawing_use: use, controlnet: $("controlnet").value, control_scale: +$("control_scale").value };
}

// A kept drawing back on the canvas as strokes, to be drawn again or changed.
function showDrawing(name, use) {
  const img = new Image();
  img.onload = () => {
    fitCanvas();
    const c = $("draw-canvas"), ctx = c.getContext("2d");
    ctx.globalCompositeOperation = "copy";
    ctx.drawImage(img, 0, 0, c.width, c.height);
    const layer = ctx.getImageData(0, 0, c.width, c.height), px = layer.data;
    for (let i = 0; i < px.length; i += 4) {
      const inked = (px[i] >= 128) === (use === "mask");  // white for a mask, black for a silhouette
      px[i] = px[i + 1] = px[i + 2] = 0;
      px[i + 3] = inked ? 255 : 0;
    }
    ctx.putImageData(layer, 0, 0);
  };
  img.src = `/files/gallery/drawings/${encodeURIComponent(name)}`;
}

function clearDrawing() {
  const c = $("draw-canvas");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
  state.draw.saved = null;
}

function syncDrawing() {
  for (const e of document.querySelectorAll(".for-control")) e.hidden = $("drawing-use").value !== "control";
}

function setupDrawing() {
  const c = $("draw-canvas");
  c.addEventListener("pointerdown", (ev) => {
    fitCanvas();
    state.draw.down = true;
    state.draw.saved = null;
    c.setPointerCapture(ev.pointerId);
    c.getContext("2d").beginPath();
    stroke(ev);
  });
  c.addEventListener("pointermove", (ev) => { if (state.draw.down) stroke(ev); });
  for (const e of ["pointerup", "pointercancel"]) c.addEventListener(e, () => { state.draw.down = false; });
  const tool = (erase) => {
    state.draw.erase = erase;
    $("draw-pen").setAttribute("aria-pressed", String(!erase));
    $("draw-eraser").setAttribute("aria-pressed", String(erase));
  };
  $("draw-pen").addEventListener("click", () => tool(false));
  $("draw-eraser").addEventListener("click", () => tool(true));
  $("draw-clear").addEventListener("click", clearDrawing);
  $("draw-box").addEventListener("toggle", fitCanvas);
  for (const id of ["width", "height"]) $(id).addEventListener("change", fitCanvas);
  $("init-img").addEventListener("load", fitCanvas);
  $("drawing-use").addEventListener("change", syncDrawing);
  for (const n of state.info.controlnets) $("controlnet").append(el("option", { value: n }, n));
  syncDrawing();
}

// img2img from a gallery picture (its size replaces width and height), or none.
function setInit(file, strength) {
  state.init = file || null;
  $("init-row").hidden = !file;
  $("width").disabled = $("height").disabled = !!file;
  if (file) {
    $("init-img").src = `/files/gallery/${encodeURIComponent(file)}`;
    if (strength) $("strength").value = strength;
  } else {
    $("init-img").removeAttribute("src");
    fitCanvas();
  }
  syncOutputs();
}

function syncOutputs() {
  for (const o of document.querySelectorAll("output[for]")) o.textContent = $(o.htmlFor).value;
}

function reuse(entry) {
  $("prompt").value = entry.prompt ?? "";
  $("negative_prompt").value = entry.negative_prompt ?? "";
  $("images").value = 1;
  $("steps").value = entry.steps;
  $("guidance").value = entry.guidance;
  setSize("width", entry.width);
  setSize("height", entry.height);
  $("seed").value = entry.seed;
  $("scheduler").value = entry.scheduler ?? "";
  if (entry.lora && ![...$("lora").options].some((o) => o.value === entry.lora)) $("lora").append(el("option", { value: entry.lora }, entry.lora));
  $("lora").value = entry.lora ?? "";
  $("lora_scale").value = entry.lora_scale ?? 1;
  setInit(entry.init, entry.strength);
  clearDrawing();
  $("drawing-use").value = entry.drawing ? entry.drawing_use : "";
  if (entry.drawing) {  // sent again by its name unless it is changed
    state.draw.saved = { name: entry.drawing, use: entry.drawing_use };
    showDrawing(entry.drawing, entry.drawing_use);
    if (entry.controlnet) $("controlnet").value = entry.controlnet;
    $("control_scale").value = entry.control_scale ?? 1;
    $("draw-box").open = true;
  }
  syncDrawing();
  syncOutputs();
  showTab("generate");
  $("prompt").focus();
}

function setRunning(job) {
  state.job = job;
  $("generate-btn").disabled = !!job;
  $("cancel-btn").disabled = !job;
}

function onAnimationJob(j) {
  const status = $("anim-status"), bar = $("anim-progress");
  if (j.state === "queued") status.textContent = t("queued");
  if (j.state === "running" && j.steps) {
    status.textContent = t("anim_progress", { step: j.step, steps: j.steps });
    bar.value = j.step / j.steps;
  }
  if (["done", "cancelled", "failed"].includes(j.state)) {
    status.textContent = t(j.state) + (j.error ? `: ${j.error}` : "");
    status.dataset.state = j.state;
    if (j.state === "done") bar.value = 1;
    state.animJob = null;
    updateAnimButtons();
    if (j.error) showError(j.error);
  }
}

function updateAnimButtons() {
  $("anim-btn").disabled = !!state.animJob || !state.animFrom || !state.animTo;
  $("anim-cancel").disabled = !state.animJob;
}

function animation(entry) {
  const src = `/files/gallery/${entry.file.split("/").map(encodeURIComponent).join("/")}`;
  const caption = t("anim_caption", { from: entry.prompts[0], to: entry.prompts[1], frames: entry.frames });
  const media = entry.format === "gif" ? el("img", { src, alt: caption })
    : el("video", { src, controls: "", loop: "", muted: "", playsinline: "" });
  const remove = el("button", { class: "small", onclick: async () => {
    try { await api(`/api/animations/${encodeURIComponent(entry.file.split("/").pop())}`, undefined, "DELETE"); } catch (e) { showError(e.message); }
  } }, t("delete"));
  return el("figure", { class: "animation", "data-file": entry.file }, media, el("figcaption", {}, caption, " ", remove));
}

function setKeyframe(which, entry) {
  state[which === "from" ? "animFrom" : "animTo"] = entry.file;
  const img = $(which === "from" ? "anim-from" : "anim-to");
  img.src = `/files/gallery/${encodeURIComponent(entry.file)}`;
  img.alt = entry.prompt;
  img.dataset.keyframe = entry.file;
  updateAnimButtons();
}

function onJob(j) {
  if (state.animJob && j.id === state.animJob) return onAnimationJob(j);
  if (!state.job || j.id !== state.job) return;
  const status = $("gen-status"), bar = $("gen-progress");
  if (j.state === "queued") status.textContent = t("queued");
  const preview = $("gen-preview");
  if (j.state === "running" && j.steps) {
    status.textContent = t("progress", { image: j.image + 1, images: j.images, step: j.step, steps: j.steps });
    bar.value = (j.image + j.step / j.steps) / j.images;
    // The picture as it forms: the job's latest live preview (404, and hidden, until the first).
    preview.onload = () => { preview.hidden = false; };
    preview.onerror = () => { preview.hidden = true; };
    preview.src = `/api/jobs/${encodeURIComponent(j.id)}/preview?image=${j.image}&step=${j.step}`;
  }
  if (["done", "cancelled", "failed"].includes(j.state)) {
    preview.hidden = true;
    status.textContent = t(j.state) + (j.error ? `: ${j.error}` : "");
    status.dataset.state = j.state;
    if (j.state === "done") bar.value = 1;
    setRunning(null);
    if (j.error) showError(j.error);
  }
}

function picture(entry) {
  const img = el("img", { src: `/files/gallery/${encodeURIComponent(entry.file)}`, alt: entry.prompt, title: `${entry.prompt} · ${entry.seed}`, loading: "lazy" });
  return el("button", { class: "picture", "data-file": entry.file, onclick: () => showDetail(entry) }, img);
}

function onImage(e) {
  state.lastSeed = e.entry.seed;
  if (e.job === state.job) $("results").prepend(picture(e.entry));
  const g = $("gallery-list");
  if (g.dataset.loaded) g.prepend(picture(e.entry));
}

function showDetail(entry) {
  state.detail = entry;
  $("detail-img").src = `/files/gallery/${encodeURIComponent(entry.file)}`;
  $("detail-img").alt = entry.prompt;
  const dl = $("detail-settings");
  dl.replaceChildren();
  for (const k of ["prompt", "negative_prompt", "seed", "steps", "guidance", "scheduler", "width", "height", "lora", "lora_scale", "init", "strength", "drawing_use", "controlnet", "control_scale", "model", "created"]) {
    let v = entry[k];
    if (v === undefined || v === "" || (k.startsWith("lora") && !entry.lora) || (k === "strength" && !entry.init)) continue;
    if (k === "created") v = new Date(v).toLocaleString(state.lang);
    dl.append(el("dt", {}, t("s_" + k)), el("dd", { "data-key": k }, String(v)));
  }
  if (!$("detail").open) $("detail").showModal();
}

async function loadGallery() {
  try {
    const [list, anims] = await Promise.all([api("/api/gallery"), api("/api/animations")]);
    const g = $("gallery-list");
    g.replaceChildren(...list.items.map(picture));
    g.dataset.loaded = "1";
    $("animations").replaceChildren(...anims.items.map(animation));
    showSkipped("gallery-skipped", [...list.skipped, ...anims.skipped]);
  } catch (e) { showError(e.message); }
}

// --- datasets ---------------------------------------------------------------------------------
async function loadDatasets(pick) {
  try {
    const { items: list, skipped } = await api("/api/datasets");
    showSkipped("datasets-skipped", skipped);
    for (const id of ["dataset-pick", "train-dataset"]) {
      const s = $(id), keep = (id === "dataset-pick" && pick) || s.value;
      s.replaceChildren(...list.map((d) => el("option", { value: d.name }, `${d.name} (${d.images})`)));
      if (keep) s.value = keep;
    }
    if (!list.length) $("dataset-info").textContent = t("no_datasets");
    else showDataset($("dataset-pick").value);
  } catch (e) { showError(e.message); }
}

async function showDataset(name) {
  if (!name) return;
  try {
    const d = await api(`/api/datasets/${encodeURIComponent(name)}`);
    $("dataset-info").textContent = t("dataset_info", { images: d.items.length }) + (d.attribution ? t("dataset_attribution") : "");
    showSkipped("dataset-skipped", d.skipped);
    const safe = (u) => (/^https?:\/\//.test(u || "") ? u : null);
    $("dataset-items").replaceChildren(...d.items.map((it) => {
      const credit = el("p", { class: "credit" });
      if (it.author) credit.append(`${t("by")} `, el("span", { class: "author" }, it.author));
      if (it.license) {
        const lic = safe(it.license_url) ? el("a", { href: it.license_url, rel: "noopener noreferrer", target: "_blank" }, it.license) : it.license;
        credit.append(" · ", el("span", { class: "license" }, lic));
      }
      if (safe(it.page_url)) credit.append(" · ", el("a", { href: it.page_url, rel: "noopener noreferrer", target: "_blank" }, t("source_link")));
      return el("figure", { class: "card", "data-file": it.file },
        el("img", { src: `/files/datasets/${encodeURIComponent(name)}/${encodeURIComponent(it.file)}`, alt: it.title || it.file, loading: "lazy" }),
        el("figcaption", {}, el("p", { class: "caption" }, it.caption || t("no_caption")), credit));
    }));
  } catch (e) { showError(e.message); }
}

function onFetch(e) {
  const status = $("fetch-status");
  if (e.state === "starting") {
    state.fetching = e.name;
    $("fetch-notes").replaceChildren();
    delete status.dataset.state;
    $("fetch-progress").value = 0;
  } else if (e.name !== state.fetching) {
    if (state.fetching || e.state !== "running") return;
    state.fetching = e.name;  // started from another page
  }
  $("fetch-btn").disabled = !!state.fetching;
  $("fetch-cancel").disabled = !state.fetching;
  if (e.note) $("fetch-notes").append(el("li", {}, e.note));
  if (e.state === "running" && e.stage) {
    status.textContent = t("fetch_stage_" + e.stage) + (e.total ? t("fetch_count", e) : "");
    if (e.total) $("fetch-progress").value = e.current / e.total;
  }
  if (["done", "stopped", "failed"].includes(e.state)) {
    status.textContent = e.state === "done" ? t("fetch_done", e) : t("state_" + e.state) + (e.error ? `: ${e.error}` : "");
    status.dataset.state = e.state;
    if (e.error) showError(e.error);
    state.fetching = null;
    $("fetch-btn").disabled = false;
    $("fetch-cancel").disabled = true;
    if (e.state === "done") loadDatasets(e.name);
  }
}

// --- training ---------------------------------------------------------------------------------
function drawChart() {
  const svg = $("loss-chart"), NS = "http://www.w3.org/2000/svg", pts = state.points;
  svg.replaceChildren();
  svg.dataset.points = pts.length;
  if (!pts.length) return;
  const W = 600, H = 200, pad = 30;
  const maxStep = Math.max(...pts.map((p) => p[0]), 1), lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  const x = (s) => pad + (W - 2 * pad) * (s / maxStep), y = (l) => H - pad - (H - 2 * pad) * ((l - lo) / (hi - lo || 1));
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
  line.setAttribute("class", "loss");
  svg.append(line);
  for (const [text, px, py] of [[hi.toPrecision(3), 2, pad], [lo.toPrecision(3), 2, H - pad], [String(maxStep), W - pad, H - 8]]) {
    const e = document.createElementNS(NS, "text");
    e.setAttribute("x", px); e.setAttribute("y", py); e.textContent = text;
    svg.append(e);
  }
  const last = pts[pts.length - 1];
  svg.setAttribute("aria-label", t("loss_at", { step: last[0], loss: last[1].toPrecision(4) }));
}

function addValidation(run, files) {
  for (const f of files) {
    $("validation").append(el("img", { src: `/files/trainings/${encodeURIComponent(run)}/validation/${encodeURIComponent(f)}`, alt: f, title: f }));
  }
}

function setTraining(name) {
  state.run = name;
  $("train-btn").disabled = !!name;
  $("train-cancel").disabled = !name;
}

function onTrain(e) {
  if (e.state === "starting") {
    state.points = [];
    $("validation").replaceChildren();
    setTraining(e.name);
    $("train-status").textContent = t("starting");
    delete $("train-status").dataset.state;
  }
  if (e.name !== state.run && e.state !== "starting") {
    if (!state.run && e.state === "running") setTraining(e.name);  // started from another page
    else return;
  }
  state.points.push(...(e.points || []));
  drawChart();
  addValidation(e.name, e.validation || []);
  if (e.state === "running") {
    $("train-status").textContent = t("train_progress", e) + (e.eta > 0 ? t("train_eta", { eta: Math.round(e.eta) }) : "") +
      (e.processes > 1 ? t("train_processes", e) : "");
    if (e.stage === "train" && e.total) $("train-progress").value = e.step / e.total;
  }
  if (["done", "stopped", "failed"].includes(e.state)) {
    $("train-status").textContent = t("state_" + e.state) + (e.error ? `: ${e.error}` : "");
    $("train-status").dataset.state = e.state;
    if (e.error) showError(e.error);
    setTraining(null);
    loadRuns();
    refreshLoras();
  }
}

async function showRun(name) {
  try {
    const r = await api(`/api/trainings/${encodeURIComponent(name)}`);
    state.points = r.log;
    drawChart();
    $("validation").replaceChildren();
    addValidation(name, r.validation);
    $("train-status").textContent = `${name}: ${t("state_" + r.state)}`;
  } catch (e) { showError(e.message); }
}

async function loadRuns() {
  try {
    const { items: runs, skipped } = await api("/api/trainings");
    showSkipped("runs-skipped", skipped);
    $("runs").replaceChildren(...runs.map((r) => el("li", { "data-run": r.name },
      `${r.name} · ${t("state_" + r.state)} `,
      el("button", { class: "small", onclick: () => showRun(r.name) }, t("show")),
      r.state === "stopped" && !state.run ? el("button", { class: "small resume", onclick: () => startTraining({ dataset: r.settings?.dataset, name: r.name, resume: true }) }, t("resume")) : null)));
  } catch (e) { showError(e.message); }
}

async function startTraining(body) {
  try {
    await api("/api/train", body);
  } catch (e) { showError(e.message); }
}

async function refreshLoras() {
  try {
    state.info = await api("/api/info");
    const s = $("lora"), keep = s.value;
    s.replaceChildren(el("option", { value: "", "data-i18n": "none" }, t("none")), ...state.info.loras.map((l) => el("option", { value: l }, l)));
    s.value = keep;
  } catch (e) { showError(e.message); }
}

// --- start ------------------------------------------------------------------------------------
function listen(after) {
  const es = new EventSource(`/api/events?after=${after}`);
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    if (e.type === "job") onJob(e);
    else if (e.type === "image") onImage(e);
    else if (e.type === "animation") { if ($("gallery-list").dataset.loaded) $("animations").prepend(animation(e.entry)); }
    else if (e.type === "removed") {
      document.querySelectorAll(`[data-file="${CSS.escape(e.file)}"]`).forEach((n) => n.remove());
      for (const [key, id] of [["animFrom", "anim-from"], ["animTo", "anim-to"]])
        if (state[key] === e.file) { state[key] = null; $(id).removeAttribute("src"); updateAnimButtons(); }
      if (state.init === e.file) setInit(null);
    }
    else if (e.type === "train") onTrain(e);
    else if (e.type === "fetch") onFetch(e);
  };
}

async function start() {
  await Promise.all(["es", "en"].map(async (l) => { TEXT[l] = await api(`/strings.${l}.json`); }));
  const [info, options] = await Promise.all([api("/api/info"), api("/api/options")]);
  state.info = info;
  showSkipped("info-skipped", state.info.skipped);
  const saved = localStorage.getItem("bioesp-lang");
  state.lang = saved || state.info.lang || ((navigator.language || "es").startsWith("es") ? "es" : "en");
  for (const s of options.generate.scheduler.choices) $("scheduler").append(el("option", { value: s }, s));
  buildSettings(options, $("gen-form"), ["generate"]);
  buildSettings(options, $("anim-form"), ["animate", "animation"]);
  buildSettings(options, $("fetch-form"), ["fetch", "prepare"]);
  buildSettings(options, $("train-form"), ["train"]);
  for (const l of state.info.loras) $("lora").append(el("option", { value: l }, l));
  applyLanguage();
  setupDrawing();
  syncOutputs();
  if (state.info.running) { setRunning(state.info.running.id); }
  if (state.info.training) setTraining(state.info.training);
  listen(state.info.event);

  for (const b of document.querySelectorAll("[role=tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "es" ? "en" : "es";
    localStorage.setItem("bioesp-lang", state.lang);
    applyLanguage();
  });
  for (const r of document.querySelectorAll("input[type=range]")) r.addEventListener("input", syncOutputs);
  $("seed-random").addEventListener("click", () => ($("seed").value = ""));
  $("seed-reuse").addEventListener("click", () => { if (state.lastSeed != null) $("seed").value = state.lastSeed; });
  $("prompt").addEventListener("keydown", (ev) => {  // Ctrl+Enter draws
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !$("generate-btn").disabled) $("gen-form").requestSubmit();
  });
  $("gen-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!$("prompt").value.trim()) { showError(t("need_prompt")); $("prompt").focus(); return; }
    $("results").replaceChildren();
    $("gen-progress").value = 0;
    delete $("gen-status").dataset.state;
    try {
      const { id } = await api("/api/generate", formSettings());
      setRunning(id);
      $("gen-status").textContent = t("queued");
    } catch (e) { showError(e.message); }
  });
  $("cancel-btn").addEventListener("click", async () => {
    if (state.job) try { await api(`/api/jobs/${state.job}/cancel`, {}); } catch (e) { showError(e.message); }
  });
  $("fetch-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [k, v] of new FormData($("fetch-form")).entries()) body[k] = v;
    try { await api("/api/datasets/fetch", moreSettings($("fetch-form"), body)); } catch (e) { showError(e.message); }
  });
  $("fetch-cancel").addEventListener("click", async () => {
    try { await api("/api/datasets/fetch/cancel", {}); } catch (e) { showError(e.message); }
  });
  $("dataset-pick").addEventListener("change", (e) => showDataset(e.target.value));
  $("train-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.points = [];  // the last run's chart goes at once
    drawChart();
    $("validation").replaceChildren();
    const f = new FormData($("train-form")), body = {};
    for (const [k, v] of f.entries()) body[k] = v;
    startTraining(moreSettings($("train-form"), body));
  });
  $("train-cancel").addEventListener("click", async () => {
    try { await api("/api/train/cancel", {}); } catch (e) { showError(e.message); }
  });
  $("detail-vary").addEventListener("click", () => {
    const d = state.detail;
    $("detail").close();
    state.detail = null;
    reuse(d);
    setInit(d.file, null);
    clearDrawing();  // a new start: the picture's own drawing was for the one before
    $("drawing-use").value = "";
    syncDrawing();
    $("seed").value = "";
  });
  $("init-clear").addEventListener("click", () => setInit(null));
  $("detail-from").addEventListener("click", () => { setKeyframe("from", state.detail); $("detail").close(); state.detail = null; });
  $("detail-to").addEventListener("click", () => { setKeyframe("to", state.detail); $("detail").close(); state.detail = null; });
  $("anim-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("anim-progress").value = 0;
    delete $("anim-status").dataset.state;
    try {
      const { id } = await api("/api/animate", moreSettings($("anim-form"), { from: state.animFrom, to: state.animTo,
        frames: +$("anim-frames").value, fps: +$("anim-fps").value, format: $("anim-format").value, pingpong: $("anim-pingpong").checked }));
      state.animJob = id;
      updateAnimButtons();
      $("anim-status").textContent = t("queued");
    } catch (e) { showError(e.message); }
  });
  $("anim-cancel").addEventListener("click", async () => {
    if (state.animJob) try { await api(`/api/jobs/${state.animJob}/cancel`, {}); } catch (e) { showError(e.message); }
  });
  $("detail-close").addEventListener("click", () => { $("detail").close(); state.detail = null; });
  $("detail-reuse").addEventListener("click", () => { const d = state.detail; $("detail").close(); state.detail = null; reuse(d); });
  $("detail-delete").addEventListener("click", async () => {
    const d = state.detail;
    $("detail").close();
    state.detail = null;
    try { await api(`/api/gallery/${encodeURIComponent(d.file)}`, undefined, "DELETE"); } catch (e) { showError(e.message); }
  });
  document.documentElement.dataset.ready = "1";  // every control answers from now on
}

start().catch((e) => showError(e.message));
