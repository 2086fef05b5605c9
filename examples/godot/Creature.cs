// Godot 4 (.NET): generates a creature texture at runtime without freezing the game. Attach to a
// Sprite2D; put Bioesp.dll's sources (build/bindings/csharp/src/*.cs) in the project and
// libbioesp_csharp.so + libbioesp.so.0 where the game loads native libraries.
// The job runs on bioesp's worker thread; _Process polls it once per frame. A Progress or Preview
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

    public override void _Ready()
    {
        _model = new Model(ProjectSettings.GlobalizePath(ModelPath));
        var options = new Options("generate");  // any field of bioesp_generate_options, by name
        options.add("prompts", Prompt);
        options.set("steps", 25);
        options.set("seed", 7);
        options.set("background", "transparent");  // a sprite: RGBA, the plain backdrop matted away
        _job = _model.generate_async(options);
    }

    public override void _Process(double delta)
    {
        if (_job == null || !_job.done()) return;
        using (Images images = _job.take())
        {
            Bioesp.Image picture = images.get(0);
            var format = picture.channels() == 4 ? Godot.Image.Format.Rgba8 : Godot.Image.Format.Rgb8;
            var image = Godot.Image.CreateFromData((int)picture.width(), (int)picture.height(), false, format,
                                                   picture.pixels());
            Texture = ImageTexture.CreateFromImage(image);
        }
        _job.Dispose();
        _job = null;
    }

    public override void _ExitTree()
    {
        _job?.Dispose();
        _model?.Dispose();
    }
}
