using System.Runtime.InteropServices;

namespace Matrix.Homeserver.Media;

/// <summary>
/// libvips (Debian <c>libvips42</c>) through P/Invoke: image headers and shrink-on-load thumbnails. Optional: when the
/// library is missing, <see cref="Available"/> is false and callers fall back.
/// libvips' option lists are C varargs; they are declared here with fixed arguments ending in a NULL, which is the same
/// call on the System V x86-64 and AArch64 Linux ABIs.
/// </summary>
internal static partial class Vips
{
    private const string Library = "libvips.so.42";
    private const string GObject = "libgobject-2.0.so.0";

    /// <summary>VipsSize: only ever shrink; the spec forbids upscaled thumbnails.</summary>
    private const int SizeDown = 2;
    /// <summary>VipsInteresting: crop around the centre.</summary>
    private const int InterestingCentre = 1;

    private static readonly Lazy<bool> Loaded = new(Initialise);

    public static bool Available => Loaded.Value;

    public static string Version { get; private set; } = "";

    private static bool Initialise()
    {
        // vips_init loads the optional loader modules (ImageMagick, poppler, OpenSlide, HEIF, JPEG XL) with RTLD_GLOBAL;
        // OpenSlide brings the system libsqlite3, whose symbols then interpose on the SQLite bundled with this server and
        // crash it. Pointing VIPSHOME at a folder without modules keeps libvips to its built-in loaders (JPEG, PNG, GIF,
        // WebP, TIFF), which is also the smaller attack surface for untrusted uploads. It must be the C environment:
        // .NET's Environment.SetEnvironmentVariable does not reach getenv().
        setenv("VIPSHOME", Path.Combine(AppContext.BaseDirectory, "no-vips-modules"), 1);
        if (!NativeLibrary.TryLoad(Library, out var handle))
            return false;
        if (vips_init("homeserver") != 0)
            return false;
        // No operation cache: each thumbnail is made once and stored, and cached decoded images would only hold memory.
        vips_cache_set_max(0);
        // Loaders libvips marks as unfit for untrusted input (ImageMagick, PDF and the like) are refused (libvips 8.13+).
        if (NativeLibrary.TryGetExport(handle, "vips_block_untrusted_set", out _))
            vips_block_untrusted_set(1);
        Version = $"{vips_version(0)}.{vips_version(1)}.{vips_version(2)}";
        return true;
    }

    /// <summary>The image's dimensions from its header, or null when libvips cannot read the file as an image.</summary>
    public static (int Width, int Height)? ReadSize(string path)
    {
        var image = vips_image_new_from_file(path, IntPtr.Zero);
        if (image == IntPtr.Zero)
        {
            vips_error_clear();
            return null;
        }
        try
        {
            return (vips_image_get_width(image), vips_image_get_height(image));
        }
        finally
        {
            g_object_unref(image);
        }
    }

    /// <summary>Writes a thumbnail of <paramref name="source"/> to <paramref name="target"/>, whose suffix picks the format
    /// (e.g. <c>.jpg[Q=80,strip]</c>); returns the thumbnail's size or throws with libvips' message.</summary>
    public static (int Width, int Height) Thumbnail(string source, string target, int width, int height, bool crop)
    {
        var status = vips_thumbnail(source, out var image, width, "height", height, "size", SizeDown,
            crop ? "crop" : null, InterestingCentre, IntPtr.Zero);
        if (status != 0)
            throw new InvalidOperationException(TakeError());
        try
        {
            if (vips_image_write_to_file(image, target, IntPtr.Zero) != 0)
                throw new InvalidOperationException(TakeError());
            return (vips_image_get_width(image), vips_image_get_height(image));
        }
        finally
        {
            g_object_unref(image);
        }
    }

    private static string TakeError()
    {
        var message = Marshal.PtrToStringUTF8(vips_error_buffer()) ?? "libvips failed";
        vips_error_clear();
        return message.Trim();
    }

    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int vips_init(string argv0);

    [LibraryImport(Library)]
    private static partial int vips_version(int flag);

    [LibraryImport(Library)]
    private static partial void vips_cache_set_max(int max);

    [LibraryImport(Library)]
    private static partial void vips_block_untrusted_set(int state);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr vips_image_new_from_file(string name, IntPtr end);

    [LibraryImport(Library)]
    private static partial int vips_image_get_width(IntPtr image);

    [LibraryImport(Library)]
    private static partial int vips_image_get_height(IntPtr image);

    // The option after "size" is "crop", or NULL (ending the list early) for a scaled thumbnail.
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int vips_thumbnail(string filename, out IntPtr image, int width, string heightKey, int height,
        string sizeKey, int size, string? cropKey, int crop, IntPtr end);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int vips_image_write_to_file(IntPtr image, string name, IntPtr end);

    [LibraryImport(Library)]
    private static partial IntPtr vips_error_buffer();

    [LibraryImport(Library)]
    private static partial void vips_error_clear();

    [LibraryImport(GObject)]
    private static partial void g_object_unref(IntPtr gobject);
}
