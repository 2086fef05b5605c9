// The C# binding: the C API's bytes, progress, cancel, errors as exceptions, async jobs polled
// as a game loop would, IDisposable, no leaks. Usage: mono BindingTest.exe MODEL REFERENCE_PIXELS
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

  static GenerateOptions Options(string prompt) {
    var o = new GenerateOptions();
    o.add_prompt(prompt);
    o.steps = 3;
    o.seed = 42;
    o.width = 64;
    o.height = 64;
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
      using (Images images = model.generate(Options("colibrí lagarto"), progress)) {
        Image image = images.get(0);
        Check(image.width() == 64 && image.height() == 64 && image.channels() == 3, "size");
        Check(image.pixels().SequenceEqual(reference), "the binding's pixels differ from the C API's");
        Check(progress.Calls >= 3, "progress calls " + progress.Calls);
        Check(image.setting("seed") == "42", "seed setting");
      }
      try {
        model.generate(Options("x"), new CancellingProgress());
        throw new Exception("not cancelled");
      } catch (ApplicationException e) {
        Check(e.Message.Contains("cancel"), e.Message);
      }
      // A game loop: submit, poll once per frame, take when done.
      var keep = new CountingProgress();
      using (Job job = model.generate_async(Options("colibrí lagarto"), keep)) {
        int frames = 0;
        while (!job.done()) {
          frames++;
          System.Threading.Thread.Sleep(2);
        }
        using (Images images = job.take()) Check(images.get(0).pixels().SequenceEqual(reference), "async pixels differ");
        Check(keep.Calls >= 3, "async progress calls " + keep.Calls);
      }
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
