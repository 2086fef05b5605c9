// Builds the embedded model's source folders from two npm packages: the Noto Emoji pictures of
// emoji-datasource-google (Apache-2.0) and the Spanish and English names and keywords of
// emojibase-data (MIT). Animals, plants, fruit and vegetables; each picture gets a caption of
// comma-separated tags (Spanish first) and a manifest line crediting Google's Noto Emoji.
//
//   node data.mjs EMOJI_DATASOURCE_DIR EMOJIBASE_DIR TRAIN_OUT HELDOUT_OUT
import fs from 'node:fs';
import path from 'node:path';

const [edg, ebd, trainOut, heldoutOut] = process.argv.slice(2);
if (!heldoutOut) {
  console.error('usage: node data.mjs EMOJI_DATASOURCE_DIR EMOJIBASE_DIR TRAIN_OUT HELDOUT_OUT');
  process.exit(2);
}
const read = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const emoji = read(path.join(edg, 'emoji.json'));
const byHex = (lang) => Object.fromEntries(read(path.join(ebd, lang, 'data.json')).map((e) => [e.hexcode, e]));
const es = byHex('es'), en = byHex('en');
const version = read(path.join(edg, 'package.json')).version;

// Kept out of training: the quality test measures the model's denoising loss on them.
const HELDOUT = new Set(['leopard', 'duck', 'crocodile', 'bee', 'tulip', 'pear', 'dolphin', 'hamster']);
const GROUP = {
  'animal-mammal': ['mamífero', 'mammal'], 'animal-bird': ['ave', 'bird'], 'animal-amphibian': ['anfibio', 'amphibian'],
  'animal-reptile': ['reptil', 'reptile'], 'animal-marine': ['animal marino', 'sea animal'], 'animal-bug': ['insecto', 'bug'],
  'plant-flower': ['flor', 'flower'], 'plant-other': ['planta', 'plant'], 'food-fruit': ['fruta', 'fruit'],
  'food-vegetable': ['verdura', 'vegetable'],
};

const chosen = emoji.filter((e) => e.has_img_google && GROUP[e.subcategory])
  .sort((a, b) => a.sort_order - b.sort_order);
for (const dir of [trainOut, heldoutOut]) fs.mkdirSync(dir, { recursive: true });
const manifests = { [trainOut]: [], [heldoutOut]: [] };
for (const e of chosen) {
  const hex = e.unified, plain = hex.replace(/-FE0F/g, '');
  const s = es[hex] || es[plain], n = en[hex] || en[plain];
  if (!s || !n) { console.error(`no names for ${e.short_name} (${hex}); skipped`); continue; }
  const tags = [];
  const add = (t) => { t = t.trim().toLowerCase(); if (t && !tags.includes(t)) tags.push(t); };
  add(s.label); add(n.label);
  GROUP[e.subcategory].forEach(add);
  (s.tags || []).slice(0, 3).forEach(add);
  (n.tags || []).slice(0, 3).forEach(add);
  const caption = tags.join(', ');
  const dir = e.short_names.some((x) => HELDOUT.has(x)) ? heldoutOut : trainOut;
  const file = `${e.short_name.replace(/[^a-z0-9_+-]/gi, '_')}.png`;
  fs.copyFileSync(path.join(edg, 'img', 'google', '64', e.image), path.join(dir, file));
  manifests[dir].push(JSON.stringify({
    file,
    title: `Noto Emoji ${n.label} (U+${hex.replace(/-/g, ' U+')})`,
    author: 'Google (Noto Emoji)',
    license: 'Apache-2.0',
    license_url: 'https://www.apache.org/licenses/LICENSE-2.0',
    page_url: 'https://github.com/googlefonts/noto-emoji',
    credit: `emoji-datasource-google ${version} (npm); names: emojibase-data (MIT)`,
    object_name: s.label,
    caption,
  }));
}
for (const [dir, lines] of Object.entries(manifests)) {
  fs.writeFileSync(path.join(dir, 'manifest.jsonl'), lines.join('\n') + '\n');
  console.log(`${dir}: ${lines.length} pictures`);
}
