// The C# binding: the C API's bytes, progress, cancel, errors as exceptions, async jobs polled
// as a game loop would, options by name, IDisposable, no leaks. Usage: mono BindingTest.exe MODEL REFERENCE_PIXELS
using System;
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
