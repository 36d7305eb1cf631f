using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Matrix.Homeserver.Media;

/// <summary>
/// Spec: Content repository. Uploads (<c>/_matrix/media/v3/upload</c>, <c>/_matrix/media/v1/create</c>), the authenticated
/// <c>/_matrix/client/v1/media/*</c> endpoints, and the deprecated unauthenticated <c>/_matrix/media/{v3,r0}/*</c> ones,
/// which do not serve media stored after the freeze.
/// </summary>
public sealed class MediaEndpoints(
    MediaRepository repository, ThumbnailService thumbnails, UrlPreviewService previews, IMediaStorage storage, Authenticator authenticator,
    HomeserverConfig config) : IEndpoints
{
    private const int MaxFileNameLength = 1024;
    private const int MaxDimension = 10_000;

    public void Map(IEndpointRouteBuilder app)
    {
        foreach (var version in new[] { "v3", "r0" })
        {
            var legacy = $"/_matrix/media/{version}";
            app.MapPost($"{legacy}/upload", UploadAsync);
            app.MapGet($"{legacy}/config", ConfigAsync);
            app.MapGet($"{legacy}/preview_url", PreviewAsync);
            app.MapGet($"{legacy}/download/{{serverName}}/{{mediaId}}", context => DownloadAsync(context, legacy: true));
            app.MapGet($"{legacy}/download/{{serverName}}/{{mediaId}}/{{fileName}}", context => DownloadAsync(context, legacy: true));
            app.MapGet($"{legacy}/thumbnail/{{serverName}}/{{mediaId}}", context => ThumbnailAsync(context, legacy: true));
        }
        app.MapPut("/_matrix/media/v3/upload/{serverName}/{mediaId}", UploadToCreatedAsync);
        app.MapPost("/_matrix/media/v1/create", CreateAsync);
        app.MapV1("GET", "media/config", ConfigAsync);
        app.MapV1("GET", "media/preview_url", PreviewAsync);
        app.MapV1("GET", "media/download/{serverName}/{mediaId}", context => DownloadAsync(context, legacy: false));
        app.MapV1("GET", "media/download/{serverName}/{mediaId}/{fileName}", context => DownloadAsync(context, legacy: false));
        app.MapV1("GET", "media/thumbnail/{serverName}/{mediaId}", context => ThumbnailAsync(context, legacy: false));
    }

    private async Task UploadAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var contentUri = await repository.UploadAsync(requester, ReadUpload(context), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["content_uri"] = contentUri });
    }

    private async Task CreateAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var (contentUri, expiresAt) = await repository.CreateAsync(requester, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["content_uri"] = contentUri, ["unused_expires_at"] = expiresAt });
    }

    private async Task UploadToCreatedAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await repository.UploadToPendingAsync(requester, context.Route("serverName"), context.Route("mediaId"), ReadUpload(context),
            context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private IncomingUpload ReadUpload(HttpContext context)
    {
        // The server-wide body limit is sized for JSON; uploads get the media limit.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = config.Media.MaxUploadBytes;
        var fileName = context.Query("filename");
        if (fileName.Length > MaxFileNameLength)
            throw MatrixException.InvalidParam($"filename is longer than {MaxFileNameLength} characters.");
        // The type is served back as the Content-Type header: anything that is not a well-formed media type is stored as opaque bytes.
        var contentType = context.Request.ContentType is { } given && MediaTypeHeaderValue.TryParse(given, out var parsed)
            && parsed.MediaType.HasValue && given.Length <= 255
            ? given
            : "application/octet-stream";
        return new IncomingUpload(context.Request.Body, context.Request.ContentLength, contentType, fileName.Length == 0 ? null : fileName);
    }

    private async Task ConfigAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["m.upload.size"] = config.Media.MaxUploadBytes });
    }

    private async Task PreviewAsync(HttpContext context)
    {
        await authenticator.AuthenticateAsync(context);
        var url = context.Query("url");
        if (url.Length == 0)
            throw MatrixException.MissingParam("url");
        await context.WriteJsonAsync(await previews.PreviewAsync(url, context.RequestAborted));
    }

    private async Task DownloadAsync(HttpContext context, bool legacy)
    {
        if (!legacy)
            await authenticator.AuthenticateAsync(context);
        var media = await repository.FindAsync(context.Route("serverName"), context.Route("mediaId"), AllowRemote(context, legacy),
            OptionalLong(context, "timeout_ms"), legacy, context.RequestAborted);
        var fileName = context.Request.RouteValues.ContainsKey("fileName") ? context.Route("fileName") : media.UploadName;
        await MediaResponses.SendAsync(context, storage, media.StorageKey!, media.ContentType!, media.SizeBytes ?? 0,
            MediaResponses.Disposition(media.ContentType!, fileName), publicCache: legacy);
    }

    private async Task ThumbnailAsync(HttpContext context, bool legacy)
    {
        if (!legacy)
            await authenticator.AuthenticateAsync(context);
        var (width, height, method, animated) = ReadThumbnailParameters(context);
        var media = await repository.FindAsync(context.Route("serverName"), context.Route("mediaId"), AllowRemote(context, legacy),
            OptionalLong(context, "timeout_ms"), legacy, context.RequestAborted);
        var thumbnail = await thumbnails.GetAsync(media, width, height, method, animated, context.RequestAborted);
        await MediaResponses.SendAsync(context, storage, thumbnail.StorageKey, thumbnail.ContentType, thumbnail.SizeBytes,
            ThumbnailDisposition(thumbnail), publicCache: legacy);
    }

    /// <summary>Thumbnails are always inline (the spec requires it), so only safe image types are ever sent as one.</summary>
    public static string ThumbnailDisposition(ThumbnailAnswer thumbnail) =>
        "inline; filename=\"thumbnail." + MediaResponses.BaseType(thumbnail.ContentType).Split('/')[^1] + "\"";

    public static (int Width, int Height, string Method, bool Animated) ReadThumbnailParameters(HttpContext context)
    {
        var width = Dimension(context, "width");
        var height = Dimension(context, "height");
        var method = context.Query("method") is { Length: > 0 } given ? given : "scale";
        if (method is not ("crop" or "scale"))
            throw MatrixException.InvalidParam("method must be crop or scale.");
        var animated = context.Query("animated") switch
        {
            "" or "false" => false,
            "true" => true,
            _ => throw MatrixException.InvalidParam("animated must be true or false."),
        };
        return (width, height, method, animated);
    }

    private static int Dimension(HttpContext context, string name)
    {
        var text = context.Query(name);
        if (text.Length == 0)
            throw MatrixException.MissingParam(name);
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, null, out var value) || value is < 1 or > MaxDimension)
            throw MatrixException.InvalidParam($"{name} must be a whole number from 1 to {MaxDimension}.");
        return value;
    }

    public static long? OptionalLong(HttpContext context, string name)
    {
        var text = context.Query(name);
        if (text.Length == 0)
            return null;
        return long.TryParse(text, System.Globalization.NumberStyles.None, null, out var value)
            ? value
            : throw MatrixException.InvalidParam($"{name} must be a non-negative whole number.");
    }

    /// <summary>Only the legacy endpoints have <c>allow_remote</c> (servers fetching each other's media used it to avoid loops).</summary>
    private static bool AllowRemote(HttpContext context, bool legacy) => !legacy || context.Query("allow_remote") != "false";
}
