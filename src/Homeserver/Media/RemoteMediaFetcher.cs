using System.Net;
using System.Text.Json.Nodes;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Matrix.Homeserver.Media;

/// <summary>
/// Brings other servers' media into the local cache: the authenticated federation endpoint (a multipart answer, or a
/// redirect followed through <see cref="GuardedHttp"/>), falling back to the legacy <c>/_matrix/media/v3/download</c> of
/// servers that predate it. Concurrent requests for the same media share one download.
/// </summary>
public sealed class RemoteMediaFetcher(
    FederationClient federation, GuardedHttp guarded, Database db, MediaStore store, IMediaStorage storage, MediaStaging staging,
    HomeserverConfig config, TimeProvider clock, ILogger<RemoteMediaFetcher> logger)
{
    private readonly SingleFlight<MediaRow> _downloads = new();

    public Task<MediaRow> FetchAsync(string serverName, string mediaId, TimeSpan wait, CancellationToken ct) =>
        _downloads.RunAsync(serverName + "/" + mediaId, () => DownloadAsync(serverName, mediaId, wait), ct);

    private async Task<MediaRow> DownloadAsync(string serverName, string mediaId, TimeSpan wait)
    {
        // Shared by every waiting request, so no single request's cancellation stops it; bounded by its own time limit.
        using var timeout = new CancellationTokenSource(wait + TimeSpan.FromMinutes(5));
        var ct = timeout.Token;
        var waitMs = (long)wait.TotalMilliseconds;
        HttpResponseMessage response;
        try
        {
            response = await federation.GetStreamingAsync(serverName,
                $"/_matrix/federation/v1/media/download/{mediaId}?timeout_ms={waitMs}", signed: true, ct);
            if (await IsUnrecognisedAsync(response, ct))
            {
                response.Dispose();
                response = await federation.GetStreamingAsync(serverName,
                    $"/_matrix/media/v3/download/{serverName}/{mediaId}?allow_remote=false&allow_redirect=true&timeout_ms={waitMs}", signed: false, ct);
            }
        }
        catch (FederationException e)
        {
            logger.LogInformation("Fetching media {Server}/{MediaId} failed: {Reason}", serverName, mediaId, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", $"Could not reach {serverName} to fetch the media.");
        }
        using (response)
        {
            await ThrowForErrorAsync(response, serverName, ct);
            if (response.Content.Headers.ContentLength > config.Media.MaxRemoteBytes)
                throw RemoteTooLarge();
            var content = response.Content.Headers.ContentType?.MediaType == "multipart/mixed"
                ? await OpenMultipartAsync(response, ct)
                : new RemoteContent(await response.Content.ReadAsStreamAsync(ct), response.Content.Headers.ContentType?.ToString(),
                    response.Content.Headers.ContentDisposition?.FileNameStar ?? Unquote(response.Content.Headers.ContentDisposition?.FileName));
            // The redirect's response (when there was one) is released with the body.
            using var redirect = content.Redirect;
            await using var body = content.Body;
            using var file = await staging.ReceiveAsync(body, config.Media.MaxRemoteBytes, RemoteTooLarge, ct);
            var contentType = string.IsNullOrWhiteSpace(content.ContentType) ? "application/octet-stream" : content.ContentType;
            var storageKey = MediaIds.NewStorageKey("remote");
            await storage.PutAsync(storageKey, file, contentType, ct);
            var row = new MediaRow
            {
                ServerName = serverName, MediaId = mediaId, ContentType = contentType, UploadName = content.FileName, SizeBytes = file.Size,
                StorageKey = storageKey, CreatedTs = clock.GetUtcNow().ToUnixTimeMilliseconds(),
                // The freeze counts a cache entry as new media: it is as new as the moment it was fetched.
                Authenticated = config.Media.LegacyUnauthenticatedAccess ? 0 : 1,
            };
            if (await db.WriteAsync(s => store.InsertAsync(s, row, file.Sha256), CancellationToken.None))
                return row;
            await storage.DeleteAsync(storageKey, CancellationToken.None);
            return (await db.ReadAsync(s => store.GetAsync(s, serverName, mediaId), CancellationToken.None))!;
        }
    }

    /// <summary>The media's bytes and metadata; <see cref="Redirect"/> is the response they stream from, when a redirect was followed.</summary>
    private sealed record RemoteContent(Stream Body, string? ContentType, string? FileName, HttpResponseMessage? Redirect = null);

    /// <summary>Servers without the federation media endpoints answer 404 (or 400/405) with M_UNRECOGNIZED.</summary>
    private static async Task<bool> IsUnrecognisedAsync(HttpResponseMessage response, CancellationToken ct) =>
        response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest or HttpStatusCode.MethodNotAllowed
        && await ErrcodeAsync(response, ct) is "M_UNRECOGNIZED" or null;

    private static async Task<string?> ErrcodeAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json" || response.Content.Headers.ContentLength > 65536)
            return null;
        try
        {
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))?["errcode"]?.GetValue<string>();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private async Task ThrowForErrorAsync(HttpResponseMessage response, string serverName, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
            return;
        var errcode = await ErrcodeAsync(response, ct);
        throw response.StatusCode switch
        {
            HttpStatusCode.NotFound => MatrixException.NotFound("Media not found."),
            HttpStatusCode.GatewayTimeout when errcode == "M_NOT_YET_UPLOADED" =>
                new MatrixException(504, "M_NOT_YET_UPLOADED", "Content has not yet been uploaded."),
            _ when errcode == "M_TOO_LARGE" => RemoteTooLarge(),
            _ => new MatrixException(502, "M_UNKNOWN", $"{serverName} answered {(int)response.StatusCode} for the media."),
        };
    }

    /// <summary>The spec's two parts: JSON metadata (unused), then the bytes or a <c>Location</c> to fetch them from.</summary>
    private async Task<RemoteContent> OpenMultipartAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var boundary = response.Content.Headers.ContentType?.Parameters.FirstOrDefault(p => p.Name == "boundary")?.Value?.Trim('"')
            ?? throw new MatrixException(502, "M_UNKNOWN", "The remote server's multipart answer has no boundary.");
        var reader = new MultipartReader(boundary, await response.Content.ReadAsStreamAsync(ct)) { HeadersLengthLimit = 16 * 1024 };
        var metadata = await reader.ReadNextSectionAsync(ct);
        var media = metadata is null ? null : await reader.ReadNextSectionAsync(ct);
        if (media is null)
            throw new MatrixException(502, "M_UNKNOWN", "The remote server's multipart answer lacks the media part.");
        if (media.Headers?.TryGetValue("Location", out var location) == true && Uri.TryCreate(location, UriKind.Absolute, out var target)
            && target.Scheme is "https" or "http")
            return await FollowLocationAsync(target, ct);
        ContentDispositionHeaderValue.TryParse(media.ContentDisposition, out var disposition);
        var fileName = disposition is null ? null
            : disposition.FileNameStar.HasValue ? disposition.FileNameStar.Value
            : disposition.FileName.HasValue ? HeaderUtilities.RemoveQuotes(disposition.FileName).Value : null;
        return new RemoteContent(media.Body, media.ContentType, fileName);
    }

    private async Task<RemoteContent> FollowLocationAsync(Uri target, CancellationToken ct)
    {
        HttpResponseMessage redirected;
        try
        {
            redirected = await guarded.Client.GetAsync(target, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e)
        {
            throw new MatrixException(502, "M_UNKNOWN",
                GuardedHttp.IsBlocked(e, out var reason) ? $"The media redirect was refused: {reason}." : "The media redirect could not be followed.");
        }
        if (!redirected.IsSuccessStatusCode)
        {
            redirected.Dispose();
            throw new MatrixException(502, "M_UNKNOWN", $"The media redirect answered {(int)redirected.StatusCode}.");
        }
        if (redirected.Content.Headers.ContentLength > config.Media.MaxRemoteBytes)
        {
            redirected.Dispose();
            throw RemoteTooLarge();
        }
        return new RemoteContent(await redirected.Content.ReadAsStreamAsync(ct),
            redirected.Content.Headers.ContentType?.ToString(),
            redirected.Content.Headers.ContentDisposition?.FileNameStar ?? Unquote(redirected.Content.Headers.ContentDisposition?.FileName), redirected);
    }

    private static string? Unquote(string? value) => value?.Trim('"');

    private static MatrixException RemoteTooLarge() => new(502, "M_TOO_LARGE", "The remote media is too large to serve.");
}
