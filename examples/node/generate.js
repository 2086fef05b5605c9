'use strict';
// Generate a creature from Node without blocking the event loop:
//   node generate.js MODEL "PROMPT" OUT.png   (with build/node on NODE_PATH, or require its path)
const bioesp = require(process.env.BIOESP_NODE || 'bioesp');
const [modelPath, prompt, out] = process.argv.slice(2);

(async () => {
  const model = new bioesp.Model(modelPath);
  const [image] = await model.generate(prompt, {
    steps: 25,
    seed: 7,
    onProgress: (step, total) => process.stderr.write(`\rdenoise ${step}/${total}`),
  });
  image.save(out);
  model.close();
  process.stderr.write(`\nwrote ${out}\n`);
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
