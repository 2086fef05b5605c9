// Generates a creature into a PImage without freezing the sketch: the job runs on a worker
// thread and draw() polls it, showing its live previews (every 5 steps) while it forms. Set the
// model folder (or a Hub id) in MODEL.
import bioesp.*;

String MODEL = System.getenv("BIOESP_MODEL") != null ? System.getenv("BIOESP_MODEL") : "models/tiny-sd1";
Model model;
Job job;
PImage creature, forming;  // the finished image; the latest preview shown
long formingStep = 0;

void setup() {
  size(512, 512);
  model = new Model(MODEL);
  Options o = new Options("generate");  // any field of bioesp_generate_options, by name
  o.add("prompts", "colibrí lagarto, criatura especulativa colombiana");
  o.set("steps", 25);
  o.set("seed", 7);
  o.set("preview_every", 5);
  job = model.generate_async(o);
}

void draw() {
  background(240);
  if (job != null && job.done()) {
    Images images = job.take();
    creature = toPImage(images.get(0));
    job.close();
    job = null;
  }
  if (creature != null) {
    image(creature, 0, 0, width, height);
  } else if (job != null) {
    long step = job.preview_step();  // 0 until the first preview
    if (step > formingStep) {  // a newer one: convert it once, not every frame
      formingStep = step;
      forming = toPImage(job.preview().get(0));
    }
    if (forming != null) image(forming, 0, 0, width, height);
    fill(0);
    text("denoising " + job.step() + " / " + job.total(), 20, 20);
  }
}

PImage toPImage(Image im) {
  byte[] px = im.pixels();
  int w = (int) im.width(), h = (int) im.height(), c = (int) im.channels();
  PImage out = createImage(w, h, RGB);
  out.loadPixels();
  for (int i = 0; i < w * h; i++) {
    int r = px[i * c] & 0xFF, g = px[i * c + (c > 1 ? 1 : 0)] & 0xFF, b = px[i * c + (c > 2 ? 2 : 0)] & 0xFF;
    out.pixels[i] = 0xFF000000 | (r << 16) | (g << 8) | b;
  }
  out.updatePixels();
  return out;
}
