// The Java binding: the C API's bytes, progress, cancel, a callback's own exception, errors as
// BioespException, async jobs with callbacks on a worker thread, no leaks.
// Usage: java -cp bioesp.jar:. -Djava.library.path=DIR BindingTest MODEL REFERENCE_PIXELS
import bioesp.*;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

public class BindingTest {
  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  static GenerateOptions options(String prompt) {
    GenerateOptions o = new GenerateOptions();
    o.add_prompt(prompt);
    o.setSteps(3);
    o.setSeed(42);
    o.setWidth(64);
    o.setHeight(64);
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
    }
    PullOptions pull = new PullOptions();
    pull.setRepo("CompVis/stable-diffusion-v1-4");
    pull.setOffline(true);
    pull.setCache_dir("/nonexistent");
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
