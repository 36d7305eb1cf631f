using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Media;

/// <summary>What to send for a thumbnail request: a stored object and its content type (the original when it is small enough).</summary>
public sealed record ThumbnailAnswer(string StorageKey, string ContentType, long SizeBytes, bool IsOriginal);

/// <summary>
/// Thumbnails in the configured sizes, made on first request with libvips and stored. A request gets the smallest
/// configured size of its method at least as large as asked for; an image already that small is answered with itself.
/// </summary>
public sealed class ThumbnailService(
    Database db, MediaStore store, IMediaStorage storage, MediaStaging staging, HomeserverConfig config, ILogger<ThumbnailService> logger)
{
    private static readonly HashSet<string> Thumbnailable = ["image/jpeg", "image/png", "image/gif", "image/webp"];
    private static readonly HashSet<string> Animatable = ["image/gif", "image/webp"];

    private readonly ThumbnailConfig _config = config.Media.Thumbnails;
    private readonly SemaphoreSlim _workers = new(Math.Max(1, Environment.ProcessorCount));
    private readonly SingleFlight<ThumbnailAnswer> _renderings = new();

    private int _libraryReported;

    /// <summary>
    /// Whether libvips is there, loaded by the first image that needs it rather than at start: it and the libraries it
    /// brings hold about 20 MB, which a server nobody sends images to need not carry.
    /// </summary>
    private bool LibraryLoaded()
    {
        if (Interlocked.Exchange(ref _libraryReported, 1) == 0)
            if (Vips.Available)
                logger.LogInformation("Thumbnails by libvips {Version}", Vips.Version);
            else
                logger.LogWarning("libvips (Debian package libvips42) is not installed: no thumbnails; images up to {Bytes} bytes are sent whole instead",
                    _config.FallbackOriginalMaxBytes);
        return Vips.Available;
    }

    public async Task<ThumbnailAnswer> GetAsync(MediaRow media, int width, int height, string method, bool animated, CancellationToken ct)
    {
        var contentType = BaseType(media.ContentType!);
        if (!Thumbnailable.Contains(contentType))
            throw CannotThumbnail("Cannot generate thumbnails for this content type.");
        var original = new ThumbnailAnswer(media.StorageKey!, media.ContentType!, media.SizeBytes ?? 0, IsOriginal: true);
        if (animated && Animatable.Contains(contentType) && original.SizeBytes <= _config.FallbackOriginalMaxBytes)
            return original;
        if (!_config.Enabled || !LibraryLoaded())
            return original.SizeBytes <= _config.FallbackOriginalMaxBytes
                ? original
                : throw CannotThumbnail("Thumbnails are not available on this server, and the original is too large to send instead.");

        if (Choose(width, height, method) is not { } target)
            return original;
        var stored = await db.ReadAsync(s => store.GetThumbnailAsync(s, media.ServerName, media.MediaId, target.Width, target.Height, target.Method), ct);
        if (stored is not null)
            return Answer(stored, original);
        return await _renderings.RunAsync($"{media.ServerName}/{media.MediaId}/{target.Width}x{target.Height}/{target.Method}",
            () => MakeAsync(media, original, target), ct);
    }

    /// <summary>
    /// The smallest configured size of the method (or, lacking any, of either method) covering the request; null when none
    /// does, as a smaller thumbnail than asked for must not be sent: the original is.
    /// </summary>
    public ThumbnailSize? Choose(int width, int height, string method)
    {
        var sizes = _config.Sizes.Where(s => s.Method == method).ToList();
        if (sizes.Count == 0)
            sizes = _config.Sizes;
        return sizes.Where(s => s.Width >= width && s.Height >= height).OrderBy(s => (long)s.Width * s.Height).FirstOrDefault();
    }

    private async Task<ThumbnailAnswer> MakeAsync(MediaRow media, ThumbnailAnswer original, ThumbnailSize target)
    {
        await _workers.WaitAsync();
        try
        {
            using var localCopy = storage.LocalPath(media.StorageKey!) is null ? await CopyToStagingAsync(media.StorageKey!) : null;
            var source = localCopy?.Path ?? storage.LocalPath(media.StorageKey!)!;
            var size = await Task.Run(() => Vips.ReadSize(source));
            if (size is not var (sourceWidth, sourceHeight))
                throw CannotThumbnail("The content could not be read as an image.");
            if ((long)sourceWidth * sourceHeight > _config.MaxSourcePixels)
                throw MatrixException.TooLarge("The image is too large to thumbnail.");

            ThumbnailRow row;
            if (sourceWidth <= target.Width && sourceHeight <= target.Height)
                row = new ThumbnailRow
                {
                    Width = target.Width, Height = target.Height, Method = target.Method, ContentType = original.ContentType,
                    SizeBytes = original.SizeBytes, StorageKey = original.StorageKey,
                };
            else
                row = await RenderAsync(source, BaseType(media.ContentType!) == "image/jpeg", target);
            if (await db.WriteAsync(s => store.InsertThumbnailAsync(s, media.ServerName, media.MediaId, row), CancellationToken.None))
                return Answer(row, original);
            if (row.StorageKey != original.StorageKey)
                await storage.DeleteAsync(row.StorageKey, CancellationToken.None);
            var existing = await db.ReadAsync(
                s => store.GetThumbnailAsync(s, media.ServerName, media.MediaId, target.Width, target.Height, target.Method), CancellationToken.None);
            return Answer(existing!, original);
        }
        finally
        {
            _workers.Release();
        }
    }

    private async Task<ThumbnailRow> RenderAsync(string source, bool jpeg, ThumbnailSize target)
    {
        var output = staging.NewPath(jpeg ? ".jpg" : ".png");
        try
        {
            // Metadata is stripped: a photo's EXIF location has no place in a thumbnail.
            var format = jpeg ? "[Q=80,strip]" : "[strip]";
            await Task.Run(() => Vips.Thumbnail(source, output + format, target.Width, target.Height, target.Method == "crop"));
        }
        catch (InvalidOperationException e)
        {
            logger.LogInformation("Thumbnailing failed: {Reason}", e.Message);
            try { File.Delete(output); } catch (IOException) { }
            throw CannotThumbnail("The image could not be thumbnailed.");
        }
        using var file = new StagedFile(output, new FileInfo(output).Length, "");
        var contentType = jpeg ? "image/jpeg" : "image/png";
        var key = MediaIds.NewStorageKey("thumbnail");
        await storage.PutAsync(key, file, contentType, CancellationToken.None);
        return new ThumbnailRow
        {
            Width = target.Width, Height = target.Height, Method = target.Method, ContentType = contentType, SizeBytes = file.Size, StorageKey = key,
        };
    }

    /// <summary>An image's width and height (URL previews give them); null without libvips or when it is not one.</summary>
    public async Task<(int Width, int Height)?> ImageSizeAsync(string storageKey)
    {
        if (!LibraryLoaded())
            return null;
        using var localCopy = storage.LocalPath(storageKey) is null ? await CopyToStagingAsync(storageKey) : null;
        var source = localCopy?.Path ?? storage.LocalPath(storageKey)!;
        return await Task.Run(() => Vips.ReadSize(source));
    }

    private async Task<StagedFile> CopyToStagingAsync(string storageKey)
    {
        await using var stream = await storage.OpenReadAsync(storageKey, CancellationToken.None);
        return await staging.ReceiveAsync(stream, long.MaxValue, () => MatrixException.TooLarge("too large"), CancellationToken.None);
    }

    private static ThumbnailAnswer Answer(ThumbnailRow row, ThumbnailAnswer original) =>
        new(row.StorageKey, row.ContentType, row.SizeBytes, row.StorageKey == original.StorageKey);

    private static string BaseType(string contentType) => contentType.Split(';')[0].Trim().ToLowerInvariant();

    private static MatrixException CannotThumbnail(string message) => new(400, "M_UNKNOWN", message);
}
