// The few Godot 4 (.NET) types examples/godot/Creature.cs uses, with Godot's signatures and no
// behaviour: Mono compiles the example against them and the real C# binding, so a change of the
// binding that breaks the example fails here. Godot itself is not on this machine.
namespace Godot
{
    public class ExportAttribute : System.Attribute { }

    public class Texture2D { }

    public class Image
    {
        public enum Format { Rgb8 = 4, Rgba8 = 5 }
        public static Image CreateFromData(int width, int height, bool useMipmaps, Format format, byte[] data) { return new Image(); }
    }

    public class ImageTexture : Texture2D
    {
        public static ImageTexture CreateFromImage(Image image) { return new ImageTexture(); }
    }

    public static class ProjectSettings
    {
        public static string GlobalizePath(string path) { return path; }
    }

    public class Node
    {
        public virtual void _Ready() { }
        public virtual void _Process(double delta) { }
        public virtual void _ExitTree() { }
    }

    public class Sprite2D : Node
    {
        public Texture2D Texture { get; set; }
    }
}
