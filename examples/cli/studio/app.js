// bioesp studio page: forms over the studio's JSON API, live state from /api/events.
"use strict";

const TEXT = {
  es: {
    studio: "estudio", tab_generate: "Generar", tab_gallery: "Galería", tab_datasets: "Datos", tab_train: "Entrenar",
    prompt: "Descripción", prompt_hint: "criatura especulativa colombiana, colibrí lagarto",
    negative: "Descripción negativa", negative_hint: "borroso, texto", images: "Imágenes", steps: "Pasos",
    guidance: "Guía", width: "Ancho", height: "Alto", seed: "Semilla", random: "aleatoria",
    seed_random: "Semilla aleatoria", seed_reuse: "Reusar la última semilla", random_short: "azar", reuse_short: "última", scheduler: "Muestreador",
    model_default: "el del modelo", lora: "LoRA", none: "ninguno", lora_scale: "Fuerza del LoRA",
    generate: "Generar", cancel: "Cancelar", model_size: "el del modelo",
    gallery_hint: "Cada imagen guarda su configuración: pulsa una para verla y reusarla.",
    dataset: "Conjunto de datos", run_name: "Nombre", automatic: "automático",
    instance_prompt: "Descripción de la instancia", train_steps: "Pasos", rank: "Rango",
    learning_rate: "Tasa de aprendizaje", resolution: "Resolución (0: la del modelo)", batch: "Lote",
    validation_prompt: "Descripción de validación", validation_every: "Validar cada (pasos)",
    checkpoint_every: "Punto de control cada (pasos)", train_start: "Entrenar", train_cancel: "Detener",
    loss: "Pérdida", validation: "Imágenes de validación", runs: "Entrenamientos",
    reuse: "Reusar la configuración", delete: "Borrar", close: "Cerrar",
    queued: "en cola…", progress: (i, n, s, t) => `imagen ${i}/${n} · paso ${s}/${t}`,
    need_prompt: "Escribe una descripción.", done: "listo", cancelled: "cancelado", failed: "falló", no_datasets: "No hay conjuntos de datos en la carpeta de datos.",
    dataset_info: (n, a) => `${n} imágenes` + (a ? " · con ATTRIBUTION.md" : ""),
    by: "por", license: "licencia", source: "fuente", no_caption: "(sin descripción)",
    train_progress: (stage, s, t, eta) => `${stage} ${s}/${t}` + (eta > 0 ? ` · faltan ${Math.round(eta)} s` : ""),
    starting: "empezando…", running: "entrenando", stopped: "detenido (se puede continuar)", resume: "Continuar",
    show: "Ver", state_done: "terminado", state_new: "nuevo", state_running: "en curso", state_stopped: "detenido",
    state_failed: "falló", loss_at: (s, l) => `paso ${s}: ${l}`,
    s_prompt: "descripción", s_negative_prompt: "negativa", s_seed: "semilla", s_steps: "pasos", s_guidance: "guía",
    s_scheduler: "muestreador", s_width: "ancho", s_height: "alto", s_lora: "LoRA", s_lora_scale: "fuerza del LoRA",
    s_model: "modelo", s_created: "creada",
    animations: "Animaciones", anim_hint: "Elige en la galería una imagen de inicio y una de final: la animación pasa de una criatura a la otra.",
    anim_from: "Inicio", anim_to: "Final", frames: "Cuadros", fps: "Cuadros por segundo", format: "Formato",
    pingpong: "ida y vuelta", animate: "Animar", as_from: "Inicio de animación", as_to: "Final de animación",
    fetch_title: "Nuevo conjunto desde Wikimedia Commons",
    fetch_hint: "Solo imágenes con licencia libre (CC0, dominio público, CC BY, CC BY-SA); cada una guarda su autoría y licencia.",
    source: "Fuente", source_campaign: "Campaña", source_category: "Categoría", source_search: "Búsqueda",
    fetch_value: "Nombre o texto", fetch_limit: "Cuántas imágenes", fetch_size: "Tamaño (0: el del modelo)", crop: "Recorte",
    crop_center: "centro", crop_attention: "donde hay más detalle", crop_pad: "imagen entera, con márgenes",
    fetch_start: "Descargar y preparar",
    fetch_stage: (stage, c, n) => ({ list: "buscando", download: "descargando", prepare: "preparando" }[stage] || stage) + (n ? ` ${c}/${n}` : ""),
    fetch_done: (d) => `listo: ${d.prepared} imágenes (${d.downloaded} descargadas, ${d.skipped} descartadas)`,
    strength: "Cuánto cambia", init_clear: "Empezar desde ruido", vary: "Variar esta imagen", s_init: "a partir de",
    s_strength: "cuánto cambia",
    anim_progress: (s, n) => `paso ${s}/${n}`, anim_caption: (a) => `${a.prompts[0]} → ${a.prompts[1]} · ${a.frames} cuadros`,
  },
  en: {
    studio: "studio", tab_generate: "Generate", tab_gallery: "Gallery", tab_datasets: "Datasets", tab_train: "Train",
    prompt: "Prompt", prompt_hint: "speculative Colombian creature, hummingbird lizard",
    negative: "Negative prompt", negative_hint: "blurry, text", images: "Images", steps: "Steps",
    guidance: "Guidance", width: "Width", height: "Height", seed: "Seed", random: "random",
    seed_random: "Random seed", seed_reuse: "Reuse the last seed", random_short: "random", reuse_short: "last", scheduler: "Scheduler",
    model_default: "the model's", lora: "LoRA", none: "none", lora_scale: "LoRA strength",
    generate: "Generate", cancel: "Cancel", model_size: "the model's",
    gallery_hint: "Every picture keeps its settings: click one to see and reuse them.",
    dataset: "Dataset", run_name: "Name", automatic: "automatic",
    instance_prompt: "Instance prompt", train_steps: "Steps", rank: "Rank",
    learning_rate: "Learning rate", resolution: "Resolution (0: the model's)", batch: "Batch",
    validation_prompt: "Validation prompt", validation_every: "Validate every (steps)",
    checkpoint_every: "Checkpoint every (steps)", train_start: "Train", train_cancel: "Stop",
    loss: "Loss", validation: "Validation images", runs: "Trainings",
    reuse: "Reuse these settings", delete: "Delete", close: "Close",
    queued: "queued…", progress: (i, n, s, t) => `image ${i}/${n} · step ${s}/${t}`,
    need_prompt: "Write a prompt.", done: "done", cancelled: "cancelled", failed: "failed", no_datasets: "No datasets in the datasets folder.",
    dataset_info: (n, a) => `${n} images` + (a ? " · with ATTRIBUTION.md" : ""),
    by: "by", license: "license", source: "source", no_caption: "(no caption)",
    train_progress: (stage, s, t, eta) => `${stage} ${s}/${t}` + (eta > 0 ? ` · ${Math.round(eta)} s left` : ""),
    starting: "starting…", running: "training", stopped: "stopped (can be resumed)", resume: "Resume",
    show: "Show", state_done: "finished", state_new: "new", state_running: "running", state_stopped: "stopped",
    state_failed: "failed", loss_at: (s, l) => `step ${s}: ${l}`,
    s_prompt: "prompt", s_negative_prompt: "negative", s_seed: "seed", s_steps: "steps", s_guidance: "guidance",
    s_scheduler: "scheduler", s_width: "width", s_height: "height", s_lora: "LoRA", s_lora_scale: "LoRA strength",
    s_model: "model", s_created: "created",
    animations: "Animations", anim_hint: "Pick a start and an end picture in the gallery: the animation morphs one creature into the other.",
    anim_from: "Start", anim_to: "End", frames: "Frames", fps: "Frames per second", format: "Format",
    pingpong: "ping-pong", animate: "Animate", as_from: "Animation start", as_to: "Animation end",
    fetch_title: "New dataset from Wikimedia Commons",
    fetch_hint: "Only freely licensed pictures (CC0, public domain, CC BY, CC BY-SA); each keeps its authors and license.",
    source: "Source", source_campaign: "Campaign", source_category: "Category", source_search: "Search",
    fetch_value: "Name or text", fetch_limit: "How many pictures", fetch_size: "Size (0: the model's)", crop: "Crop",
    crop_center: "centre", crop_attention: "where the detail is", crop_pad: "whole picture, padded",
    fetch_start: "Download and prepare",
    fetch_stage: (stage, c, n) => ({ list: "listing", download: "downloading", prepare: "preparing" }[stage] || stage) + (n ? ` ${c}/${n}` : ""),
    fetch_done: (d) => `done: ${d.prepared} pictures (${d.downloaded} downloaded, ${d.skipped} left out)`,
    strength: "How much it changes", init_clear: "Start from noise", vary: "Vary this picture", s_init: "starting from",
    s_strength: "how much it changes",
    anim_progress: (s, n) => `step ${s}/${n}`, anim_caption: (a) => `${a.prompts[0]} → ${a.prompts[1]} · ${a.frames} frames`,
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: "es", info: null, job: null, lastSeed: null, detail: null, run: null, points: [],
  animFrom: null, animTo: null, animJob: null, init: null };
const t = (key, ...args) => {
  const v = TEXT[state.lang][key];
  return typeof v === "function" ? v(...args) : v ?? key;
};

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
  if (state.detail) showDetail(state.detail);
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
  return {
    prompt: $("prompt").value, negative_prompt: $("negative_prompt").value,
    images: +$("images").value, steps: +$("steps").value, guidance: +$("guidance").value,
    width: +$("width").value, height: +$("height").value, seed: seed === "" ? -1 : Number(seed),
    scheduler: $("scheduler").value, lora: $("lora").value, lora_scale: +$("lora_scale").value,
    init: state.init || "", strength: +$("strength").value,
  };
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
    status.textContent = t("anim_progress", j.step, j.steps);
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
  const media = entry.format === "gif" ? el("img", { src, alt: t("anim_caption", entry) })
    : el("video", { src, controls: "", loop: "", muted: "", playsinline: "" });
  const remove = el("button", { class: "small", onclick: async () => {
    try { await api(`/api/animations/${encodeURIComponent(entry.file.split("/").pop())}`, undefined, "DELETE"); } catch (e) { showError(e.message); }
  } }, t("delete"));
  return el("figure", { class: "animation", "data-file": entry.file }, media, el("figcaption", {}, t("anim_caption", entry), " ", remove));
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
  if (j.state === "running" && j.steps) {
    status.textContent = t("progress", j.image + 1, j.images, j.step, j.steps);
    bar.value = (j.image + j.step / j.steps) / j.images;
  }
  if (["done", "cancelled", "failed"].includes(j.state)) {
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
  for (const k of ["prompt", "negative_prompt", "seed", "steps", "guidance", "scheduler", "width", "height", "lora", "lora_scale", "init", "strength", "model", "created"]) {
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
    g.replaceChildren(...list.map(picture));
    g.dataset.loaded = "1";
    $("animations").replaceChildren(...anims.map(animation));
  } catch (e) { showError(e.message); }
}

// --- datasets ---------------------------------------------------------------------------------
async function loadDatasets(pick) {
  try {
    const list = await api("/api/datasets");
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
    $("dataset-info").textContent = t("dataset_info", d.items.length, d.attribution);
    const safe = (u) => (/^https?:\/\//.test(u || "") ? u : null);
    $("dataset-items").replaceChildren(...d.items.map((it) => {
      const credit = el("p", { class: "credit" });
      if (it.author) credit.append(`${t("by")} `, el("span", { class: "author" }, it.author));
      if (it.license) {
        const lic = safe(it.license_url) ? el("a", { href: it.license_url, rel: "noopener noreferrer", target: "_blank" }, it.license) : it.license;
        credit.append(" · ", el("span", { class: "license" }, lic));
      }
      if (safe(it.page_url)) credit.append(" · ", el("a", { href: it.page_url, rel: "noopener noreferrer", target: "_blank" }, t("source")));
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
    status.textContent = t("fetch_stage", e.stage, e.current, e.total);
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
  svg.setAttribute("aria-label", t("loss_at", last[0], last[1].toPrecision(4)));
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
    $("train-status").textContent = t("train_progress", e.stage, e.step, e.total, e.eta);
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
    const runs = await api("/api/trainings");
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
  state.info = await api("/api/info");
  const saved = localStorage.getItem("bioesp-lang");
  state.lang = saved || state.info.lang || ((navigator.language || "es").startsWith("es") ? "es" : "en");
  for (const s of state.info.schedulers) $("scheduler").append(el("option", { value: s }, s));
  for (const l of state.info.loras) $("lora").append(el("option", { value: l }, l));
  applyLanguage();
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
    try { await api("/api/datasets/fetch", body); } catch (e) { showError(e.message); }
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
    startTraining(body);
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
      const { id } = await api("/api/animate", { from: state.animFrom, to: state.animTo, frames: +$("anim-frames").value,
        fps: +$("anim-fps").value, format: $("anim-format").value, pingpong: $("anim-pingpong").checked });
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
}

start().catch((e) => showError(e.message));
