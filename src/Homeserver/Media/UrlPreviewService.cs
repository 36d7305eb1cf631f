using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Media;

/// <summary>
/// <c>preview_url</c>: fetches a page through <see cref="GuardedHttp"/> (address and host rules, size and time limits),
/// reads its OpenGraph data, stores its image as media, and caches the answer per URL.
/// </summary>
public sealed class UrlPreviewService(
    GuardedHttp guarded, Database db, MediaStore store, MediaRepository media, ThumbnailService thumbnails, HomeserverConfig config,
    TimeProvider clock, ILogger<UrlPreviewService> logger)
{
    private readonly UrlPreviewConfig _config = config.Media.UrlPreview;

    public async Task<JsonObject> PreviewAsync(string url, CancellationToken ct)
    {
        if (!_config.Enabled)
            throw MatrixException.Unrecognized();
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
            throw MatrixException.InvalidParam("url must be an absolute http or https URL.");
        if (guarded.IsHostDenied(uri.IdnHost))
            throw MatrixException.Forbidden("Previews of this host are not allowed.");
        // The fragment never reaches the server: pages differing only in it share a preview.
        var cacheKey = uri.GetLeftPart(UriPartial.Query);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (await db.ReadAsync(s => store.GetPreviewAsync(s, cacheKey, now - _config.CacheMs), ct) is { } cached)
            return JsonNode.Parse(cached)!.AsObject();

        JsonObject og;
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            limit.CancelAfter(TimeSpan.FromMilliseconds(_config.TimeoutMs));
            try
            {
                og = await FetchAsync(uri, new Uri(cacheKey), limit.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new MatrixException(504, "M_UNKNOWN", "The URL took too long to fetch.");
            }
        }
        await db.WriteAsync(s => store.SetPreviewAsync(s, cacheKey, og.ToJsonString(), now), ct);
        return og;
    }

    /// <summary>The page's (or image's) OpenGraph data, with its image stored as media; <paramref name="ct"/> carries the time limit.</summary>
    private async Task<JsonObject> FetchAsync(Uri requested, Uri url, CancellationToken ct)
    {
        using var response = await GetAsync(url, ct);
        var mediaType = response.Content.Headers.ContentType?.MediaType?.ToLowerInvariant() ?? "";
        if (mediaType.StartsWith("image/", StringComparison.Ordinal))
            return await StoreImageAsync(response, ct) ?? [];
        if (mediaType is not ("text/html" or "application/xhtml+xml"))
            return [];
        var page = await ReadCappedAsync(response, _config.MaxPageBytes, ct);
        var og = OpenGraph.Parse(OpenGraph.Decode(page, response.Content.Headers.ContentType?.CharSet), response.RequestMessage?.RequestUri ?? requested);
        await ReplaceImageAsync(og, ct);
        return og;
    }

    private async Task<HttpResponseMessage> GetAsync(Uri uri, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            request.Headers.Accept.ParseAdd("text/html, application/xhtml+xml, image/*;q=0.9, */*;q=0.1");
            response = await guarded.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e) when (GuardedHttp.IsBlocked(e, out var reason))
        {
            throw MatrixException.Forbidden($"Previews of this URL are not allowed: {reason}.");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogInformation("URL preview fetch of {Host} failed: {Reason}", uri.Host, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", "The URL could not be fetched.");
        }
        if (!response.IsSuccessStatusCode)
        {
            response.Dispose();
            throw new MatrixException(502, "M_UNKNOWN", $"The URL answered {(int)response.StatusCode}.");
        }
        return response;
    }

    /// <summary>Pages are read up to the limit and cut there: the head, where OpenGraph lives, comes first.</summary>
    private static async Task<byte[]> ReadCappedAsync(HttpResponseMessage response, long limit, CancellationToken ct)
    {
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int read;
        while (buffer.Length < limit && (read = await body.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, limit - buffer.Length)), ct)) > 0)
            buffer.Write(chunk, 0, read);
        return buffer.ToArray();
    }

    private async Task ReplaceImageAsync(JsonObject og, CancellationToken ct)
    {
        if (og["og:image"]?.GetValue<string>() is not { } imageUrl)
            return;
        og.Remove("og:image");
        try
        {
            using var response = await GetAsync(new Uri(imageUrl), ct);
            if (response.Content.Headers.ContentType?.MediaType?.StartsWith("image/", StringComparison.OrdinalIgnoreCase) == true
                && await StoreImageAsync(response, ct) is { } image)
                foreach (var (key, value) in image)
                    og[key] = value?.DeepClone();
        }
        catch (MatrixException e)
        {
            logger.LogInformation("URL preview image skipped: {Reason}", e.Message);
        }
    }

    private async Task<JsonObject?> StoreImageAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var contentType = response.Content.Headers.ContentType?.MediaType ?? "application/octet-stream";
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        (string ContentUri, long Size) stored;
        try
        {
            stored = await media.StoreFetchedAsync(new IncomingUpload(body, response.Content.Headers.ContentLength, contentType, null), ct);
        }
        catch (MatrixException e) when (e.Status == 413)
        {
            return null;
        }
        var image = new JsonObject { ["og:image"] = stored.ContentUri, ["og:image:type"] = contentType, ["matrix:image:size"] = stored.Size };
        // Its dimensions, read from the image itself (as Synapse gives them), so clients can lay the preview out.
        var mediaId = stored.ContentUri[(stored.ContentUri.LastIndexOf('/') + 1)..];
        if (await db.ReadAsync(s => store.GetAsync(s, config.ServerName, mediaId), ct) is { StorageKey: { } key }
            && await thumbnails.ImageSizeAsync(key) is var (width, height))
        {
            image["og:image:width"] = width;
            image["og:image:height"] = height;
        }
        return image;
    }
}
