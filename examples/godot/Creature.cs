// Godot 4 (.NET): generates a creature texture at runtime without freezing the game. Attach to a
// Sprite2D; put Bioesp.dll's sources (build/bindings/csharp/src/*.cs) in the project and
// libbioesp_csharp.so + libbioesp.so.0 where the game loads native libraries.
// The job runs on bioesp's worker thread; _Process polls it once per frame, showing its live
// previews (every 5 steps) until the creature is done. A Progress or Preview
// subclass would be called on that worker thread: it must not touch Godot nodes (hand results to
// the main thread instead); an exception it throws fails the job.
using Godot;
using Bioesp;

public partial class Creature : Sprite2D
{
    [Export] public string ModelPath = "res://models/tiny-sd1";
    [Export] public string Prompt = "colibrí lagarto, criatura especulativa colombiana";

    private Model _model;
    private Job _job;
    private long _shown;  // the step of the preview on screen

    public override void _Ready()
    {
        _model = new Model(ProjectSettings.GlobalizePath(ModelPath));
        var options = new Options("generate");  // any field of bioesp_generate_options, by name
        options.add("prompts", Prompt);
        options.set("steps", 25);
        options.set("seed", 7);
        options.set("background", "transparent");  // a sprite: RGBA, the plain backdrop matted away
        options.set("preview_every", 5);
        _job = _model.generate_async(options);
    }

    public override void _Process(double delta)
    {
        if (_job == null) return;
        if (!_job.done())
        {
            // The creature as it forms: the job's latest live preview, when a newer one came.
            long step = _job.preview_step();
            if (step > _shown)
            {
                _shown = step;
                using (Images previews = _job.preview()) Texture = ToTexture(previews.get(0));
            }
            return;
        }
        using (Images images = _job.take()) Texture = ToTexture(images.get(0));
        _job.Dispose();
        _job = null;
    }

    private static ImageTexture ToTexture(Bioesp.Image picture)
    {
        var format = picture.channels() == 4 ? Godot.Image.Format.Rgba8 : Godot.Image.Format.Rgb8;
        var image = Godot.Image.CreateFromData((int)picture.width(), (int)picture.height(), false, format,
                                               picture.pixels());
        return ImageTexture.CreateFromImage(image);
    }

    public override void _ExitTree()
    {
        _job?.Dispose();
        _model?.Dispose();
    }
}
