// Builds the embedded model's source folders from npm packages: the animals, plants, fruit and
// vegetables of three openly licensed emoji families — Google's Noto Emoji (Apache-2.0, the SVGs
// of googlefonts/noto-emoji as @iconify-json/noto packs them), Twemoji (CC BY 4.0, the SVGs of
// @twemoji/svg) and OpenMoji (CC BY-SA 4.0, the SVGs of openmoji) — with the Spanish and English
// names and keywords of emojibase-data (MIT). Each picture gets a caption of comma-separated tags
// (Spanish first, its family last as a style tag: "estilo noto") and a manifest line crediting its
// family, author and license. SVGs are rendered at SIZE px with librsvg's rsvg-convert (Debian's
// librsvg2-bin). The list of beings is emoji-datasource-google's (emoji.json: code points, names,
// subcategories).
//
// Each family holds out eight beings that the other two families still teach, so the held-out
// pictures measure whether the model follows a caption (name and style) it knows in other
// combinations, not whether it guesses unseen names.
//
//   node data.mjs NPM_DIR TRAIN_OUT HELDOUT_OUT [SIZE]   (NPM_DIR: the unpacked packages)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [npm, trainOut, heldoutOut, sizeArg = '128'] = process.argv.slice(2);
const size = Number(sizeArg);
if (!heldoutOut || !(size >= 16 && size <= 1024)) {
  console.error('usage: node data.mjs NPM_DIR TRAIN_OUT HELDOUT_OUT [SIZE (16-1024, default 128)]');
  process.exit(2);
}
const read = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
// The unpacked package whose folder is NAME-VERSION (npm pack's tarball name, scope dropped).
function pkg(name) {
  const dirs = fs.readdirSync(npm).filter((d) => d.startsWith(`${name}-`) && fs.statSync(path.join(npm, d)).isDirectory());
  if (dirs.length !== 1) throw new Error(`${npm}: expected one unpacked ${name}-VERSION folder, found ${dirs.length}`);
  const dir = path.join(npm, dirs[0]);
  return { dir, version: read(path.join(dir, 'package.json')).version };
}
const google = pkg('emoji-datasource-google'), twemoji = pkg('twemoji-svg'), openmoji = pkg('openmoji');
const noto = pkg('iconify-json-noto');
const notoIcons = read(path.join(noto.dir, 'icons.json')), notoChars = read(path.join(noto.dir, 'chars.json'));
const names = pkg('emojibase-data');
const byHex = (lang) => Object.fromEntries(read(path.join(names.dir, lang, 'data.json')).map((e) => [e.hexcode, e]));
const es = byHex('es'), en = byHex('en');
const openmojiMeta = Object.fromEntries(read(path.join(openmoji.dir, 'data', 'openmoji.json')).map((e) => [e.hexcode, e]));
const namesCredit = `names: emojibase-data ${names.version} (MIT)`;

// A file of `dir` named by the code points, as each family spells them (with or without FE0F).
function find(dir, hex, lower) {
  for (const h of [hex, hex.replace(/-FE0F/g, '')]) {
    const p = path.join(dir, `${lower ? h.toLowerCase() : h}.svg`);
    if (fs.existsSync(p)) return p;
  }
  return null;
}
// Noto's SVG text of a code point sequence (Iconify names it; an alias points at its parent), or null.
function notoSvg(hex) {
  let name = notoChars[hex.toLowerCase().replace(/-fe0f/g, '')];
  if (name && !notoIcons.icons[name]) name = (notoIcons.aliases || {})[name]?.parent;
  const icon = name && notoIcons.icons[name];
  if (!icon) return null;
  const w = icon.width || notoIcons.width, h = icon.height || notoIcons.height;
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 ${w} ${h}">${icon.body}</svg>`;
}
const rsvg = (out, ...input) => ['--width', String(size), '--height', String(size), '--keep-aspect-ratio', '--output', out, ...input];
// An SVG file, or SVG text (rsvg-convert reads it from its standard input).
function render(svg, out) { execFileSync('rsvg-convert', rsvg(out, svg)); }
function renderText(svg, out) { execFileSync('rsvg-convert', rsvg(out), { input: svg }); }

const CC_BY = ['CC BY 4.0', 'https://creativecommons.org/licenses/by/4.0/'];
const CC_BY_SA = ['CC BY-SA 4.0', 'https://creativecommons.org/licenses/by-sa/4.0/'];
const FAMILIES = [
  {
    key: 'noto', name: 'Noto Emoji', license: ['Apache-2.0', 'https://www.apache.org/licenses/LICENSE-2.0'],
    held: ['leopard', 'duck', 'crocodile', 'bee', 'tulip', 'pear', 'dolphin', 'hamster'],
    source: (e) => notoSvg(e.unified), write: renderText,
    author: () => 'Google (Noto Emoji)', page: () => 'https://github.com/googlefonts/noto-emoji',
    credit: `@iconify-json/noto ${noto.version} (npm)`,
  },
  {
    key: 'twemoji', name: 'Twemoji', license: CC_BY,
    held: ['zebra_face', 'owl', 'turtle', 'butterfly', 'sunflower', 'cherries', 'octopus', 'rabbit2'],
    source: (e) => find(twemoji.dir, e.unified, true), write: render,
    author: () => 'Twitter, Inc and other contributors (Twemoji)', page: () => 'https://github.com/jdecked/twemoji',
    credit: `@twemoji/svg ${twemoji.version} (npm)`,
  },
  {
    key: 'openmoji', name: 'OpenMoji', license: CC_BY_SA,
    held: ['fox_face', 'flamingo', 'snake', 'ladybug', 'hibiscus', 'lemon', 'tropical_fish', 'koala'],
    source: (e) => find(path.join(openmoji.dir, 'color', 'svg'), e.unified, false), write: render,
    author: (hex) => `${(openmojiMeta[hex] || openmojiMeta[hex.replace(/-FE0F/g, '')] || {}).openmoji_author || 'the OpenMoji contributors'} (OpenMoji)`,
    page: (hex) => `https://openmoji.org/library/emoji-${hex.replace(/-FE0F/g, '')}/`,
    credit: `openmoji ${openmoji.version} (npm)`,
  },
];
const GROUP = {
  'animal-mammal': ['mamífero', 'mammal'], 'animal-bird': ['ave', 'bird'], 'animal-amphibian': ['anfibio', 'amphibian'],
  'animal-reptile': ['reptil', 'reptile'], 'animal-marine': ['animal marino', 'sea animal'], 'animal-bug': ['insecto', 'bug'],
  'plant-flower': ['flor', 'flower'], 'plant-other': ['planta', 'plant'], 'food-fruit': ['fruta', 'fruit'],
  'food-vegetable': ['verdura', 'vegetable'],
};

const beings = read(path.join(google.dir, 'emoji.json')).filter((e) => GROUP[e.subcategory])
  .sort((a, b) => a.sort_order - b.sort_order);
for (const f of FAMILIES) {
  const missing = f.held.filter((h) => !beings.some((e) => e.short_names.includes(h)));
  if (missing.length) throw new Error(`${f.name}: held-out beings not in the data: ${missing.join(', ')}`);
}
for (const dir of [trainOut, heldoutOut]) fs.mkdirSync(dir, { recursive: true });
const manifests = { [trainOut]: [], [heldoutOut]: [] };
const counts = {};
for (const e of beings) {
  const hex = e.unified, plain = hex.replace(/-FE0F/g, '');
  const s = es[hex] || es[plain], n = en[hex] || en[plain];
  if (!s || !n) { console.error(`no names for ${e.short_name} (${hex}); skipped`); continue; }
  for (const f of FAMILIES) {
    const src = f.source(e);
    if (!src) continue;
    const tags = [];
    const add = (t) => { t = t.trim().toLowerCase(); if (t && !tags.includes(t)) tags.push(t); };
    add(s.label); add(n.label);
    GROUP[e.subcategory].forEach(add);
    (s.tags || []).slice(0, 3).forEach(add);
    (n.tags || []).slice(0, 3).forEach(add);
    add(`estilo ${f.key}`);
    const held = e.short_names.some((x) => f.held.includes(x));
    const dir = held ? heldoutOut : trainOut;
    const file = `${f.key}_${e.short_name.replace(/[^a-z0-9_+-]/gi, '_')}.png`;
    f.write(src, path.join(dir, file));
    const c = (counts[f.name] ||= { train: 0, heldout: 0 });
    c[held ? 'heldout' : 'train'] += 1;
    manifests[dir].push(JSON.stringify({
      file,
      title: `${f.name} ${n.label} (U+${hex.replace(/-/g, ' U+')})`,
      author: f.author(hex),
      license: f.license[0],
      license_url: f.license[1],
      page_url: f.page(hex),
      credit: `${f.credit}; ${namesCredit}`,
      object_name: s.label,
      family: f.name,
      style: f.key,
      caption: tags.join(', '),
    }));
  }
}
for (const [dir, lines] of Object.entries(manifests)) {
  fs.writeFileSync(path.join(dir, 'manifest.jsonl'), lines.join('\n') + '\n');
  console.log(`${dir}: ${lines.length} pictures`);
}
for (const [name, c] of Object.entries(counts)) console.log(`${name}: ${c.train} training, ${c.heldout} held out`);
