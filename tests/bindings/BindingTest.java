// The Java binding: the C API's bytes, progress, live previews (pushed and polled), TAESD and the
// full VAE, a ControlNet and a mask, cancel, a callback's own exception, errors as
// BioespException, async jobs with callbacks on a worker thread, options by name, no leaks.
// Usage: java -cp bioesp.jar:. -Djava.library.path=DIR BindingTest MODEL REFERENCE_PIXELS
//        CONTROLNET CONTROL_PIXELS INPAINT_PIXELS MASK_PNG
import bioesp.*;
import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

public class BindingTest {
  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  static Options options(String prompt) {
    Options o = new Options("generate");
    o.add("prompts", prompt);
    o.set("steps", 3);
    o.set("seed", 42);
    o.set("width", 64);
    o.set("height", 64);
    return o;
  }

  static long rssKiB() throws Exception {
    for (String line : Files.readAllLines(Paths.get("/proc/self/status")))
      if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
    return 0;
  }

  static class Boom extends RuntimeException {
    Boom() { super("from the callback"); }
  }

  // Records every preview (keeping its Image) and cancels after step `stopAfter`.
  static class Recorder extends Preview {
    final List<Image> images = new ArrayList<>();
    final List<Long> steps = new ArrayList<>();
    final long stopAfter;
    String thread;
    Recorder(long stopAfter) { this.stopAfter = stopAfter; }
    @Override public boolean on_preview(Image image, long index, long step, long total) {
      check(index == 0 && total == 4, "preview " + index + " " + step + "/" + total);
      images.add(image);
      steps.add(step);
      thread = Thread.currentThread().getName();
      return step < stopAfter;
    }
  }

  static Options previewing(String prompt) {
    Options o = options(prompt);
    o.set("preview_every", 1);
    return o;
  }

  static WeakReference<?>[] dropRunningJob(Model model) {
    Options o = previewing("x");
    o.set("steps", 200);
    Preview preview = new Preview() {
      @Override public boolean on_preview(Image image, long index, long step, long total) { return true; }
    };
    return new WeakReference<?>[] {new WeakReference<>(model.generate_async(o, null, preview)), new WeakReference<>(preview)};
  }

  public static void main(String[] args) throws Exception {
    String modelDir = args[0];
    byte[] reference = Files.readAllBytes(Paths.get(args[1]));
    try (Model model = new Model(modelDir)) {
      final AtomicInteger calls = new AtomicInteger();
      Images images = model.generate(options("colibrí lagarto"), new Progress() {
        @Override public boolean on_progress(String stage, long current, long total) {
          check(stage.equals("denoise"), "stage " + stage);
          check(current == calls.incrementAndGet() && current <= total, "progress " + current + "/" + total);
          return true;
        }
      });
      check(images.size() == 1, "one image");
      Image image = images.get(0);
      check(image.width() == 64 && image.height() == 64 && image.channels() == 3, "size");
      check(Arrays.equals(image.pixels(), reference), "the binding's pixels differ from the C API's");
      check(calls.get() >= 3, "progress calls: " + calls.get());
      for (Image im : images) check(im.setting("seed").equals("42"), "seed setting");

      try {
        model.generate(options("x"), new Progress() {
          @Override public boolean on_progress(String stage, long current, long total) { return current < 1; }
        });
        throw new AssertionError("not cancelled");
      } catch (BioespException e) {
        check(e.getMessage().contains("cancel"), e.getMessage());
      }
      try {
        model.generate(options("x"), new Progress() {
          @Override public boolean on_progress(String stage, long current, long total) { throw new Boom(); }
        });
        throw new AssertionError("the callback's exception was lost");
      } catch (Boom e) {
        check(e.getMessage().equals("from the callback"), e.getMessage());
      }

      try (Job job = model.generate_async(options("x"), new Progress() {
        @Override public boolean on_progress(String stage, long current, long total) { throw new Boom(); }
      })) {
        job.take();
        throw new AssertionError("the async callback's exception was lost");
      } catch (Boom e) {
        check(e.getMessage().equals("from the callback"), e.getMessage());
      }

      final String caller = Thread.currentThread().getName();
      final String[] worker = {null};
      try (Job job = model.generate_async(options("colibrí lagarto"), new Progress() {
        @Override public boolean on_progress(String stage, long current, long total) {
          worker[0] = Thread.currentThread().getName();
          return true;
        }
      })) {
        while (!job.done()) Thread.sleep(5);
        check(job.state().equals("done"), job.state());
        check(Arrays.equals(job.take().get(0).pixels(), reference), "async pixels differ");
      }
      check(worker[0] != null && !worker[0].equals(caller), "async progress ran on " + worker[0]);

      // A ControlNet (the picture's Canny edges, scale 0.7) and a mask: the C API's bytes
      // (tests/bindings/reference.c draws the same).
      ControlNet net = new ControlNet(model, args[2]);
      Options steered = options("colibrí lagarto");
      steered.add_control(net, image, 0.7, 0.0, 1.0, "canny");
      Image s = model.generate(steered).get(0);
      check(Arrays.equals(s.pixels(), Files.readAllBytes(Paths.get(args[3]))), "the binding's ControlNet picture differs from the C API's");
      check(s.setting("controlnets").endsWith(":0.7 (canny)"), s.setting("controlnets"));
      Options painted = options("colibrí lagarto");
      painted.set_image("init_image", image);
      painted.set_image("mask", Images.load(args[5]).get(0));
      painted.set("strength", 1.0);
      check(Arrays.equals(model.generate(painted).get(0).pixels(), Files.readAllBytes(Paths.get(args[4]))),
            "the binding's inpainted picture differs from the C API's");
      Options window = options("x");
      window.add_control(net, image, 1.0, 0.9, 0.1, "none");
      try {
        model.generate(window);
        throw new AssertionError("a control window that ends before it starts was taken");
      } catch (BioespException e) {
        check(e.getMessage().contains("start"), e.getMessage());
      }
      net.close();
      try {
        options("x").add_control(net, image, 1.0, 0.0, 1.0, "none");
        throw new AssertionError("a closed ControlNet was taken");
      } catch (BioespException e) {
        check(e.getMessage().contains("closed"), e.getMessage());
      }

      // Live previews: every one (steps 1 to 4: PNDM's 3 steps are 4 UNet passes), Images of their own, the last the one the job
      // keeps for polling; the image the same bytes as without them; cancelled from the callback;
      // its exception comes back as itself; on the worker thread for jobs.
      Recorder all = new Recorder(99);
      check(Arrays.equals(model.generate(previewing("colibrí lagarto"), null, all).get(0).pixels(), reference),
            "previews changed the image");
      check(all.steps.equals(Arrays.asList(1L, 2L, 3L, 4L)), "preview steps " + all.steps);
      for (Image im : all.images) check(im.width() == 8 && im.height() == 8 && im.pixels().length == 192, "preview size");
      try {
        model.generate(previewing("x"), null, new Recorder(2));
        throw new AssertionError("not cancelled from the preview callback");
      } catch (BioespException e) {
        check(e.getMessage().contains("cancel"), e.getMessage());
      }
      Recorder stopped = new Recorder(2);
      try (Job job = model.generate_async(previewing("x"), null, stopped)) {
        job.take();
        throw new AssertionError("the job was not cancelled from the preview callback");
      } catch (BioespException e) {
        check(e.getMessage().contains("cancel") && stopped.steps.equals(Arrays.asList(1L, 2L)), e.getMessage() + " " + stopped.steps);
      }
      check(stopped.thread != null && !stopped.thread.equals(caller), "async preview ran on " + stopped.thread);
      Recorder async = new Recorder(99);
      try (Job job = model.generate_async(previewing("colibrí lagarto"), null, async)) {
        check(Arrays.equals(job.take().get(0).pixels(), reference), "async pixels with previews differ");
        check(async.steps.size() == 4 && Arrays.equals(job.preview().get(0).pixels(), async.images.get(3).pixels()),
              "the pushed and the polled preview differ");
      }
      Preview throwing = new Preview() {
        @Override public boolean on_preview(Image image, long index, long step, long total) { throw new Boom(); }
      };
      for (boolean asJob : new boolean[] {false, true}) {
        try {
          if (asJob) try (Job job = model.generate_async(previewing("x"), null, throwing)) { job.take(); }
          else model.generate(previewing("x"), null, throwing);
          throw new AssertionError("the preview callback's exception was lost");
        } catch (Boom e) {
          check(e.getMessage().equals("from the callback"), e.getMessage());
        }
      }
      // A job dropped while it runs: its finalizer cancels and frees it, and only then may its
      // Preview go (finalized with it, it would free the director under the worker). Weak
      // references clear before finalization: the Job's must clear in an earlier collection.
      WeakReference<?>[] dropped = dropRunningJob(model);
      boolean jobFirst = false;
      for (int i = 0; i < 1000 && dropped[1].get() != null; i++) {
        boolean jobGone = dropped[0].get() == null;
        System.gc();
        System.runFinalization();
        jobFirst = jobGone;
        Thread.sleep(10);
      }
      check(dropped[1].get() == null && jobFirst, "a dropped job's preview went with it, or never");
      // The autoencoders through "model" options: the model's own VAE named gives its bytes, a
      // TAESD in its place others, one for previews only full-size previews and the VAE's bytes.
      String taesd = Paths.get(modelDir, "..", "..", "golden", "fast", "taesd", "diffusers").toString();
      for (String vae : new String[] {Paths.get(modelDir, "vae").toString(), taesd}) {
        Options o = new Options("model");
        o.set("vae", vae);
        try (Model other = new Model(modelDir, o)) {
          Image drawn = other.generate(options("colibrí lagarto")).get(0);
          check(drawn.width() == 64 && Arrays.equals(drawn.pixels(), reference) == !vae.equals(taesd), "vae " + vae);
        }
      }
      Options o = new Options("model");
      o.set("preview_vae", taesd);
      try (Model previewing = new Model(modelDir, o)) {
        Recorder full = new Recorder(99);
        check(Arrays.equals(previewing.generate(previewing("colibrí lagarto"), null, full).get(0).pixels(), reference),
              "a preview decoder changed the image");
        check(full.images.get(0).width() == 64 && full.images.get(0).pixels().length == 64 * 64 * 3, "TAESD previews");
      }
    }
    // Every field by name, typed: a double, a choice, a bool, a seed; out of range is refused by name.
    Options train = new Options("train");
    check(train.names().contains("adam_beta1") && train.names().contains("device_index"), "train names");
    train.set("adam_beta1", 0.8);
    train.set("lr_scheduler", "cosine");
    train.set("gradient_checkpointing", true);
    train.set("seed", 7L);
    check(train.get("adam_beta1").equals("0.8") && train.get("lr_scheduler").equals("cosine")
          && train.get("gradient_checkpointing").equals("true") && train.get("seed").equals("7"), "train settings");
    try {
      train.set("adam_beta1", 1.0);
      throw new AssertionError("no error");
    } catch (BioespException e) {
      check(e.getMessage().contains("adam_beta1: must be at least 0 and below 1, not 1"), e.getMessage());
    }
    Options pull = new Options("pull");
    pull.set("repo", "CompVis/stable-diffusion-v1-4");
    pull.set("offline", true);
    pull.set("cache_dir", "/nonexistent");
    try {
      bioesp.pull(pull, null);
      throw new AssertionError("no error");
    } catch (BioespException e) {
      check(e.getMessage().contains("not in the cache"), e.getMessage());
    }
    try {
      new Model("/nonexistent/model");
      throw new AssertionError("no error");
    } catch (BioespException e) {
      check(e.getMessage().contains("no such model folder or file"), e.getMessage());
    }
    for (int i = 0; i < 20; i++) new Model(modelDir).close();
    long before = rssKiB();
    for (int i = 0; i < 200; i++) {
      try (Model m = new Model(modelDir)) {
      }
    }
    long growth = rssKiB() - before;
    check(growth < 40 * 1024, "200 load/free cycles grew the process by " + growth + " KiB");
    System.out.println("java binding: ok (200 cycles: " + growth + " KiB)");
  }
}
