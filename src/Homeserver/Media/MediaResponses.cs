using System.Text;

namespace Matrix.Homeserver.Media;

/// <summary>How media bytes go out: the spec's safety headers, a disposition that never renders active content inline, streaming.</summary>
public static class MediaResponses
{
    public const string ContentSecurityPolicy =
        "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

    /// <summary>The spec's list of types safe to serve inline ("Serving inline content").</summary>
    private static readonly HashSet<string> InlineTypes =
    [
        "text/css", "text/plain", "text/csv", "application/json", "application/ld+json", "image/jpeg", "image/gif", "image/png",
        "image/apng", "image/webp", "image/avif", "video/mp4", "video/webm", "video/ogg", "video/quicktime", "audio/mp4", "audio/webm",
        "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
    ];

    public static string BaseType(string contentType) => contentType.Split(';')[0].Trim().ToLowerInvariant();

    /// <summary><c>inline</c> for the safe types, <c>attachment</c> otherwise, with the file name when there is one.</summary>
    public static string Disposition(string contentType, string? fileName)
    {
        var kind = InlineTypes.Contains(BaseType(contentType)) ? "inline" : "attachment";
        if (string.IsNullOrEmpty(fileName))
            return kind;
        return fileName.All(c => c is >= ' ' and < '\x7f' and not '"' and not '\\')
            ? $"{kind}; filename=\"{fileName}\""
            : $"{kind}; filename*=utf-8''{Uri.EscapeDataString(fileName)}";
    }

    /// <summary>Text types get an explicit charset (the spec allows it), so browsers do not sniff one.</summary>
    public static string ServedContentType(string contentType) =>
        contentType.StartsWith("text/", StringComparison.OrdinalIgnoreCase) && !contentType.Contains("charset", StringComparison.OrdinalIgnoreCase)
            ? contentType + "; charset=utf-8"
            : contentType;

    public static void AddSafetyHeaders(IHeaderDictionary headers)
    {
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Cross-Origin-Resource-Policy"] = "cross-origin";
    }

    /// <summary>Streams a stored object; a file gone from the store is answered 404 as long as nothing was sent yet.</summary>
    public static async Task SendAsync(HttpContext context, IMediaStorage storage, string storageKey, string contentType, long size,
        string disposition, bool publicCache)
    {
        Stream? stream = null;
        var path = storage.LocalPath(storageKey);
        try
        {
            if (path is null)
                stream = await storage.OpenReadAsync(storageKey, context.RequestAborted);
            else if (!File.Exists(path))
                throw new FileNotFoundException(path);
        }
        catch (FileNotFoundException)
        {
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Matrix.Homeserver.Media")
                .LogWarning("Media object {Key} is missing from the store", storageKey);
            throw Http.MatrixException.NotFound("Media not found.");
        }
        await using (stream)
        {
            var response = context.Response;
            response.ContentType = ServedContentType(contentType);
            response.ContentLength = size;
            response.Headers.ContentDisposition = disposition;
            response.Headers.CacheControl = publicCache ? "public, max-age=86400" : "private, max-age=86400";
            AddSafetyHeaders(response.Headers);
            if (path is not null)
                await response.SendFileAsync(path, 0, size, context.RequestAborted);
            else
                await stream!.CopyToAsync(response.Body, 128 * 1024, context.RequestAborted);
        }
    }

    /// <summary>A boundary that cannot occur in the JSON part and is vanishingly unlikely in the bytes.</summary>
    public static string NewBoundary() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>The federation media answer: a multipart/mixed body of the (empty) JSON metadata and the media itself.</summary>
    public static async Task SendMultipartAsync(HttpContext context, IMediaStorage storage, string storageKey, string contentType, long size,
        string disposition)
    {
        var boundary = NewBoundary();
        var head = Encoding.UTF8.GetBytes(
            $"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n" +
            $"--{boundary}\r\nContent-Type: {contentType}\r\nContent-Disposition: {disposition}\r\n\r\n");
        var tail = Encoding.UTF8.GetBytes($"\r\n--{boundary}--\r\n");
        Stream stream;
        try
        {
            stream = await storage.OpenReadAsync(storageKey, context.RequestAborted);
        }
        catch (FileNotFoundException)
        {
            throw Http.MatrixException.NotFound("Media not found.");
        }
        await using (stream)
        {
            var response = context.Response;
            response.ContentType = $"multipart/mixed; boundary={boundary}";
            response.ContentLength = head.Length + size + tail.Length;
            await response.Body.WriteAsync(head, context.RequestAborted);
            await stream.CopyToAsync(response.Body, 128 * 1024, context.RequestAborted);
            await response.Body.WriteAsync(tail, context.RequestAborted);
        }
    }
}
