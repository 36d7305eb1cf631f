using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.ServerServer;

namespace Matrix.Homeserver.Media;

/// <summary>Spec (server-server): Content repository. This server's own media for other servers, as multipart answers.</summary>
public sealed class FederationMediaEndpoints(
    FederationRequestAuth auth, MediaRepository repository, ThumbnailService thumbnails, IMediaStorage storage, HomeserverConfig config)
    : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/_matrix/federation/v1/media/download/{mediaId}", DownloadAsync);
        app.MapGet("/_matrix/federation/v1/media/thumbnail/{mediaId}", ThumbnailAsync);
    }

    private async Task DownloadAsync(HttpContext context)
    {
        await auth.AuthenticateAsync(context);
        var media = await LocalMediaAsync(context);
        await MediaResponses.SendMultipartAsync(context, storage, media.StorageKey!, media.ContentType!, media.SizeBytes ?? 0,
            MediaResponses.Disposition(media.ContentType!, media.UploadName));
    }

    private async Task ThumbnailAsync(HttpContext context)
    {
        await auth.AuthenticateAsync(context);
        var (width, height, method, animated) = MediaEndpoints.ReadThumbnailParameters(context);
        var media = await LocalMediaAsync(context);
        var thumbnail = await thumbnails.GetAsync(media, width, height, method, animated, context.RequestAborted);
        await MediaResponses.SendMultipartAsync(context, storage, thumbnail.StorageKey, thumbnail.ContentType, thumbnail.SizeBytes,
            MediaEndpoints.ThumbnailDisposition(thumbnail));
    }

    /// <summary>Only media uploaded here is served: a server never proxies a third server's media.</summary>
    private Task<MediaRow> LocalMediaAsync(HttpContext context) =>
        repository.FindAsync(config.ServerName, context.Route("mediaId"), allowRemote: false, MediaEndpoints.OptionalLong(context, "timeout_ms"),
            legacy: false, context.RequestAborted);
}
