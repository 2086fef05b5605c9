// The C# binding: the C API's bytes, progress, live previews (pushed and polled), TAESD and the
// full VAE, a ControlNet and a mask, cancel, a callback's exception reported (never unwinding
// through C), errors as exceptions, async jobs polled as a game loop would, options by name,
// IDisposable, no leaks.
// Usage: mono BindingTest.exe MODEL REFERENCE_PIXELS CONTROLNET CONTROL_PIXELS INPAINT_PIXELS MASK_PNG
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Bioesp;

class CountingProgress : Progress {
  public int Calls;
  public override bool on_progress(string stage, long current, long total) {
    Calls++;
    return true;
  }
}

class CancellingProgress : Progress {
  public override bool on_progress(string stage, long current, long total) { return current < 1; }
}

// Records every preview (keeping its Image) and cancels after step StopAfter.
class Recorder : Preview {
  public readonly List<Image> Images = new List<Image>();
  public readonly List<long> Steps = new List<long>();
  public long StopAfter = 99;
  public int Thread;
  public override bool on_preview(Image image, long index, long step, long total) {
    if (index != 0 || total != 4) throw new Exception("preview " + index + " " + step + "/" + total);
    Images.Add(image);
    Steps.Add(step);
    Thread = System.Threading.Thread.CurrentThread.ManagedThreadId;
    return step < StopAfter;
  }
}

class Passing : Preview {
  public override bool on_preview(Image image, long index, long step, long total) { return true; }
}

class Throwing : Preview {
  public override bool on_preview(Image image, long index, long step, long total) {
    throw new InvalidOperationException("from the callback");
  }
}

static class BindingTest {
  static void Check(bool ok, string what) {
    if (!ok) throw new Exception("check failed: " + what);
  }

  static Options Settings(string prompt) {
    var o = new Options("generate");
    o.add("prompts", prompt);
    o.set("steps", 3);
    o.set("seed", 42);
    o.set("width", 64);
    o.set("height", 64);
    return o;
  }

  static WeakReference DropRunningJob(Model model) {
    var o = Previewing("x");
    o.set("steps", 200);
    return new WeakReference(model.generate_async(o, null, new Passing()));
  }

  static Options Previewing(string prompt) {
    var o = Settings(prompt);
    o.set("preview_every", 1);
    return o;
  }

  static long RssKiB() {
    var m = Regex.Match(File.ReadAllText("/proc/self/status"), @"VmRSS:\s+(\d+)");
    return long.Parse(m.Groups[1].Value);
  }

  static int Main(string[] args) {
    string modelDir = args[0];
    byte[] reference = File.ReadAllBytes(args[1]);
    using (var model = new Model(modelDir)) {
      var progress = new CountingProgress();
      using (Images images = model.generate(Settings("colibrí lagarto"), progress)) {
        Image image = images.get(0);
        Check(image.width() == 64 && image.height() == 64 && image.channels() == 3, "size");
        Check(image.pixels().SequenceEqual(reference), "the binding's pixels differ from the C API's");
        Check(progress.Calls >= 3, "progress calls " + progress.Calls);
        Check(image.setting("seed") == "42", "seed setting");

        // A ControlNet (the picture's Canny edges, scale 0.7) and a mask: the C API's bytes
        // (tests/bindings/reference.c draws the same).
        var net = new ControlNet(model, args[2]);
        var steered = Settings("colibrí lagarto");
        steered.add_control(net, image, 0.7, 0.0, 1.0, "canny");
        using (Images drawn = model.generate(steered)) {
          Check(drawn.get(0).pixels().SequenceEqual(File.ReadAllBytes(args[3])), "the binding's ControlNet picture differs from the C API's");
          Check(drawn.get(0).setting("controlnets").EndsWith(":0.7 (canny)"), drawn.get(0).setting("controlnets"));
        }
        var painted = Settings("colibrí lagarto");
        painted.set_image("init_image", image);
        painted.set_image("mask", Images.load(args[5]).get(0));
        painted.set("strength", 1.0);
        using (Images drawn = model.generate(painted))
          Check(drawn.get(0).pixels().SequenceEqual(File.ReadAllBytes(args[4])), "the binding's inpainted picture differs from the C API's");
        var window = Settings("x");
        window.add_control(net, image, 1.0, 0.9, 0.1, "none");
        try {
          model.generate(window);
          throw new Exception("a control window that ends before it starts was taken");
        } catch (ApplicationException e) {
          Check(e.Message.Contains("start"), e.Message);
        }
        net.close();
        try {
          Settings("x").add_control(net, image, 1.0, 0.0, 1.0, "none");
          throw new Exception("a closed ControlNet was taken");
        } catch (ApplicationException e) {
          Check(e.Message.Contains("closed"), e.Message);
        }
      }
      try {
        model.generate(Settings("x"), new CancellingProgress());
        throw new Exception("not cancelled");
      } catch (ApplicationException e) {
        Check(e.Message.Contains("cancel"), e.Message);
      }
      // A game loop: submit, poll once per frame, take when done.
      var keep = new CountingProgress();
      using (Job job = model.generate_async(Settings("colibrí lagarto"), keep)) {
        int frames = 0;
        while (!job.done()) {
          frames++;
          System.Threading.Thread.Sleep(2);
        }
        using (Images images = job.take()) Check(images.get(0).pixels().SequenceEqual(reference), "async pixels differ");
        Check(keep.Calls >= 3, "async progress calls " + keep.Calls);
      }
      // Live previews: every one (steps 1 to 4: PNDM's 3 steps are 4 UNet passes), Images of their own, the last the one the job
      // keeps for polling; the image the same bytes as without them; cancelled from the callback;
      // on the worker thread for jobs; an exception in it reported with its type and message.
      var all = new Recorder();
      using (Images images = model.generate(Previewing("colibrí lagarto"), null, all))
        Check(images.get(0).pixels().SequenceEqual(reference), "previews changed the image");
      Check(all.Steps.SequenceEqual(new long[] {1, 2, 3, 4}), "preview steps " + string.Join(",", all.Steps));
      Check(all.Images.All(im => im.width() == 8 && im.height() == 8 && im.pixels().Length == 192), "preview size");
      try {
        model.generate(Previewing("x"), null, new Recorder { StopAfter = 2 });
        throw new Exception("not cancelled from the preview callback");
      } catch (ApplicationException e) {
        Check(e.Message.Contains("cancel"), e.Message);
      }
      var stopped = new Recorder { StopAfter = 2 };
      using (Job job = model.generate_async(Previewing("x"), null, stopped)) {
        try {
          job.take();
          throw new Exception("the job was not cancelled from the preview callback");
        } catch (ApplicationException e) {
          Check(e.Message.Contains("cancel") && stopped.Steps.SequenceEqual(new long[] {1, 2}), e.Message);
        }
      }
      Check(stopped.Thread != 0 && stopped.Thread != System.Threading.Thread.CurrentThread.ManagedThreadId,
            "async preview ran on the caller's thread");
      var pushed = new Recorder();
      using (Job job = model.generate_async(Previewing("colibrí lagarto"), null, pushed)) {
        using (Images images = job.take()) Check(images.get(0).pixels().SequenceEqual(reference), "async pixels with previews differ");
        using (Images latest = job.preview())
          Check(pushed.Steps.Count == 4 && latest.get(0).pixels().SequenceEqual(pushed.Images[3].pixels()),
                "the pushed and the polled preview differ");
      }
      foreach (bool asJob in new[] {false, true}) {
        try {
          if (asJob) using (Job job = model.generate_async(Previewing("x"), null, new Throwing())) job.take();
          else model.generate(Previewing("x"), null, new Throwing());
          throw new Exception("the preview callback's exception was lost");
        } catch (ApplicationException e) {
          Check(e.Message.Contains("exception in a C# callback: System.InvalidOperationException: from the callback"), e.Message);
        }
      }
      // A job dropped while it runs: its finalizer cancels and frees it, and only then does the
      // Job's static table let its Preview go (finalized first, it would free the director under
      // the worker). Mono scans stacks conservatively, so the Preview's own collection is not
      // observable; the table's emptying is.
      WeakReference dropped = DropRunningJob(model);
      for (int i = 0; i < 1000 && dropped.IsAlive; i++) {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        System.Threading.Thread.Sleep(10);
      }
      var held = (System.Collections.ICollection)typeof(Job)
          .GetField("running", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static).GetValue(null);
      Check(!dropped.IsAlive && held.Count == 0, "a dropped job was never freed, or its callbacks never released");
      // The autoencoders through "model" options: the model's own VAE named gives its bytes, a
      // TAESD in its place others, one for previews only full-size previews and the VAE's bytes.
      string taesd = Path.Combine(modelDir, "..", "..", "golden", "fast", "taesd", "diffusers");
      foreach (string vae in new[] {Path.Combine(modelDir, "vae"), taesd}) {
        var o = new Options("model");
        o.set("vae", vae);
        using (var other = new Model(modelDir, o))
        using (Images drawn = other.generate(Settings("colibrí lagarto")))
          Check(drawn.get(0).width() == 64 && drawn.get(0).pixels().SequenceEqual(reference) == (vae != taesd), "vae " + vae);
      }
      var previewOnly = new Options("model");
      previewOnly.set("preview_vae", taesd);
      using (var previewing = new Model(modelDir, previewOnly)) {
        var full = new Recorder();
        using (Images images = previewing.generate(Previewing("colibrí lagarto"), null, full))
          Check(images.get(0).pixels().SequenceEqual(reference), "a preview decoder changed the image");
        Check(full.Images[0].width() == 64 && full.Images[0].pixels().Length == 64 * 64 * 3, "TAESD previews");
      }
    }
    // Every field by name, typed; out of range is refused by name.
    var train = new Options("train");
    Check(train.names().Contains("adam_beta1"), "train names");
    train.set("adam_beta1", 0.8);
    train.set("mixed_precision", "bf16");
    train.set("flip", true);
    Check(train.get("adam_beta1") == "0.8" && train.get("mixed_precision") == "bf16" && train.get("flip") == "true", "train settings");
    try {
      train.set("resolution", 4);
      throw new Exception("no error");
    } catch (ApplicationException e) {
      Check(e.Message.Contains("resolution: must be between 8 and 8192, not 4"), e.Message);
    }
    try {
      new Model("/nonexistent/model");
      throw new Exception("no error");
    } catch (ApplicationException e) {
      Check(e.Message.Contains("no such model folder or file"), e.Message);
    }
    for (int i = 0; i < 20; i++) using (new Model(modelDir)) {}
    long before = RssKiB();
    for (int i = 0; i < 200; i++) using (new Model(modelDir)) {}
    long growth = RssKiB() - before;
    Check(growth < 40 * 1024, "200 load/free cycles grew the process by " + growth + " KiB");
    Console.WriteLine("csharp binding: ok (200 cycles: " + growth + " KiB)");
    return 0;
  }
}
