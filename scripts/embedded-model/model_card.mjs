// Writes the embedded model's card (README.md, Hugging Face style) to stdout: data, licenses,
// authors, settings, steps, the loss curves and (given its JSON) the diffusion classifier's
// accuracy, from the model folder and its training logs. The model's license is its most
// restrictive input's: CC BY-SA 4.0 as soon as one OpenMoji picture is in (share-alike).
//
//   node model_card.mjs MODEL_DIR DATASET_DIR SETTINGS_JSON TIMES_JSONL [EVALUATE_JSON]
// (SETTINGS_JSON: seed, vae_steps, vae_batch, unet_steps, unet_batch; TIMES_JSONL: train.sh's
// wall time of each stage run, a resumed stage on several lines.)
import fs from 'node:fs';
import path from 'node:path';

const [model, dataset, settingsFile, timesFile, evaluation] = process.argv.slice(2);
const lines = (p) => fs.readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
const times = fs.existsSync(timesFile) ? lines(timesFile) : [];
// A stage's wall time: the sum of its runs, with the devices and hosts they ran on.
function took(stage) {
  const runs = times.filter((t) => t.stage === stage);
  if (!runs.length) return 'time not recorded';
  const minutes = runs.reduce((n, t) => n + t.seconds, 0) / 60;
  const where = [...new Set(runs.map((t) => `${t.device === 'cuda' ? 'GPU' : 'CPU'}: ${t.host}`))].join('; ');
  return `${minutes.toFixed(0)} minutes on ${where}${runs.length > 1 ? ` (${runs.length} runs)` : ''}`;
}
const json = (p) => JSON.parse(fs.readFileSync(path.join(model, p), 'utf8'));
const manifest = lines(path.join(dataset, 'manifest.jsonl'));
const bytes = (dir) => fs.readdirSync(path.join(model, dir)).reduce((n, f) => n + fs.statSync(path.join(model, dir, f)).size, 0);

// A loss curve as a table: the mean loss over each tenth of the run.
function curve(log) {
  const rows = [];
  const per = Math.ceil(log.length / 10);
  for (let i = 0; i < log.length; i += per) {
    const part = log.slice(i, i + per);
    const mean = part.reduce((s, r) => s + r.loss, 0) / part.length;
    rows.push(`| ${part[0].step}–${part[part.length - 1].step} | ${mean.toFixed(4)} |`);
  }
  return ['| steps | mean loss |', '| --- | --- |', ...rows].join('\n');
}

// From the least to the most restrictive; a model trained on several is under the last one in.
const LICENSES = [
  { name: 'Apache-2.0', id: 'apache-2.0', title: 'Apache License 2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
  { name: 'CC BY 4.0', id: 'cc-by-4.0', title: 'Creative Commons Attribution 4.0', url: 'https://creativecommons.org/licenses/by/4.0/' },
  { name: 'CC BY-SA 4.0', id: 'cc-by-sa-4.0', title: 'Creative Commons Attribution-ShareAlike 4.0', url: 'https://creativecommons.org/licenses/by-sa/4.0/' },
];
const rank = (m) => {
  const i = LICENSES.findIndex((l) => l.name === m.license);
  if (i < 0) throw new Error(`${m.file}: license '${m.license}' is not one this card knows how to combine`);
  return i;
};
const license = LICENSES[Math.max(...manifest.map(rank))];
// Pictures, license and package of each family.
const families = [];
for (const m of manifest) {
  let f = families.find((x) => x.style === m.style);
  if (!f) families.push(f = { style: m.style, name: m.family, license: LICENSES[rank(m)], credit: m.credit.split(' (npm)')[0], n: 0 });
  f.n += 1;
}
const dataLines = families.map((f) => `- **${f.name}** (\`estilo ${f.style}\`): ${f.n} pictures, ${f.license.name} (${f.license.url}), npm ${f.credit}`).join('\n');
const grip = evaluation ? JSON.parse(fs.readFileSync(evaluation, 'utf8')) : null;
const unet = json('unet/config.json'), vae = json('vae/config.json'), te = json('text_encoder/config.json');
const captions = manifest.slice(0, 5).map((m) => `- \`${m.file}\`: ${m.caption}`).join('\n');
console.log(`---
license: ${license.id}
library_name: diffusers
pipeline_tag: text-to-image
language: [es, en]
tags: [bioesp, stable-diffusion, emoji, animals, plants]
---

# criaturas — bioesp's embedded text-to-image model

A small Stable Diffusion–format pipeline (${unet.sample_size * 2 ** (vae.block_out_channels.length - 1)} px images) trained from
scratch by [bioesp](../../README.md) itself, so \`bioesp generate\` draws animals, plants and their
speculative hybrids on a fresh machine with no download. Prompts are names in Spanish or English,
one or several: "lagarto", "mariposa", "parrot", "cactus tigre".

It loads in diffusers' \`StableDiffusionPipeline\` as well (the same folder layout and configs).

## Data

${manifest.length} pictures of animals, plants, fruit and vegetables from open emoji families, the
family's style tag in every caption:

${dataLines}

Names and keywords in Spanish and English from emojibase-data (MIT). Each picture is credited, with
its author and license, in [ATTRIBUTION.md](ATTRIBUTION.md). This model is a derived work of those
pictures and is distributed under the most restrictive of their licenses, the **${license.title}**
(${license.url})${license.id === 'cc-by-sa-4.0' ? ': its OpenMoji pictures are share-alike, so the model and works adapted from it carry the same license' : ''}.
Captions are the names and keywords as comma-separated tags, for example:

${captions}

Eight pictures of each family are held out of training (beings the other families still show);
bioesp's tests measure the model's denoising loss on them and how well it tells their captions apart.
${grip ? `
## Grip on prompts

The diffusion classifier (Li et al. 2023, \`bioesp evaluate --classify ${grip.candidates}\`): for each of the
${grip.pictures} held-out pictures, the model's own denoising loss with its caption and ${grip.candidates - 1} others, over
${grip.timesteps} fixed timesteps × ${grip.noises} fixed noise${grip.noises > 1 ? "s" : ""} each; the lowest wins. Top-1 accuracy among ${grip.candidates}:
**${(100 * grip.accuracy).toFixed(1)} %** (chance: ${(100 / grip.candidates).toFixed(1)} %); mean denoising loss with the right captions:
${grip.loss.toFixed(4)}.
` : ''}

## Architecture

| component | configuration | weights |
| --- | --- | --- |
| tokenizer | CLIP byte-level BPE learned from the captions, ${te.vocab_size} tokens | |
| text encoder | CLIPTextModel, ${te.num_hidden_layers} layers, width ${te.hidden_size} | ${(bytes('text_encoder') / 1e6).toFixed(1)} MB |
| UNet | UNet2DConditionModel, channels ${unet.block_out_channels.join('/')}, ${unet.layers_per_block} layers per block | ${(bytes('unet') / 1e6).toFixed(1)} MB |
| VAE | AutoencoderKL, channels ${vae.block_out_channels.join('/')}, ${vae.latent_channels} latent channels, factor ${2 ** (vae.block_out_channels.length - 1)}, scaling factor ${vae.scaling_factor.toFixed(4)} | ${(bytes('vae') / 1e6).toFixed(1)} MB |

Weights are float16 safetensors.

## Training

All with bioesp commands, by \`scripts/embedded-model/train.sh\` (seed ${settings.seed}):

1. \`bioesp prepare\`: ${manifest[0].prepared_size} px, padded on white.
2. \`bioesp new-model\`: weights initialised from the configs, the vocabulary learned from the captions.
3. \`bioesp train --train-vae\`: ${settings.vae_steps} steps, batch ${settings.vae_batch}, AdamW 1e-3 (cosine, 50 warm-up steps),
   L1 + 1e-6 KL, horizontal flips; ${took('vae')}.
4. \`bioesp train --full --train-text-encoder\`: ${settings.unet_steps} steps, batch ${settings.unet_batch}, AdamW 1e-3 (cosine, 100
   warm-up steps), min-SNR γ 5, half of the tags dropped and the rest shuffled, the empty caption 10 %
   of the time (classifier-free guidance), horizontal flips, each picture's latents (and its mirror
   image's) encoded once; ${took('unet')}.

VAE loss (L1 per pixel value + KL):

${curve(lines(path.join(model, 'train_log_vae.jsonl')))}

UNet and text encoder loss (noise prediction, min-SNR weighted):

${curve(lines(path.join(model, 'train_log.jsonl')))}

## Limits

${manifest[0].prepared_size} px pictures in the style of emoji; it knows the ${manifest.length} beings of its data and mixes
them, nothing else. Names outside the captions fall back to their word pieces.`);
