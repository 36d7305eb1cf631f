using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Media;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's media admin API, moderating part: a medium's details, the media a room's events point at; quarantine (one medium, a room's, a user's) and its
/// lifting; protection from quarantine; deletion (one medium, a user's, local media by age and size) and purging the
/// cache of remote media. Quarantined media is served to nobody; deleted media is gone with its thumbnails.
/// </summary>
public sealed partial class AdminMediaModerationEndpoints(
    AdminAuth auth, AdminMediaModerationStore store, AdminMediaStore listing, MediaStore media, IMediaStorage storage, Database db,
    HomeserverConfig config, ILogger<AdminMediaModerationEndpoints> logger) : IEndpoints
{
    private const string Media = AdminAuth.Prefix + "/v1/media";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Media + "/{serverName}/{mediaId}", InfoAsync);
        app.MapPost(Media + "/quarantine/{serverName}/{mediaId}", QuarantineAsync);
        app.MapPost(Media + "/unquarantine/{serverName}/{mediaId}", UnquarantineAsync);
        app.MapGet(AdminAuth.Prefix + "/v1/room/{roomId}/media", RoomMediaAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/room/{roomId}/media/quarantine", QuarantineRoomAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/quarantine_media/{roomId}", QuarantineRoomAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/user/{userId}/media/quarantine", QuarantineUserAsync);
        app.MapPost(Media + "/protect/{mediaId}", context => ProtectAsync(context, true));
        app.MapPost(Media + "/unprotect/{mediaId}", context => ProtectAsync(context, false));
        app.MapDelete(Media + "/{serverName}/{mediaId}", DeleteOneAsync);
        app.MapPost(Media + "/delete", DeleteOldAsync);
        app.MapPost(Media + "/{serverName}/delete", DeleteOldAsync);
        app.MapDelete(AdminAuth.Prefix + "/v1/users/{userId}/media", DeleteUserMediaAsync);
        app.MapPost(AdminAuth.Prefix + "/v1/purge_media_cache", PurgeRemoteCacheAsync);
    }

    private async Task InfoAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var row = await StoredAsync(context, context.Route("serverName"));
        await context.WriteJsonAsync(new JsonObject
        {
            ["media_info"] = new JsonObject
            {
                ["media_origin"] = row.ServerName,
                ["user_id"] = row.UserId,
                ["media_id"] = row.MediaId,
                ["media_type"] = row.ContentType,
                ["media_length"] = row.SizeBytes,
                ["upload_name"] = row.UploadName,
                ["created_ts"] = row.CreatedTs,
                ["last_access_ts"] = null,
                ["quarantined_by"] = row.QuarantinedBy,
                ["safe_from_quarantine"] = row.SafeFromQuarantine != 0,
                ["authenticated"] = row.Authenticated != 0,
            },
        });
    }

    private async Task QuarantineAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var (serverName, mediaId) = (context.Route("serverName"), context.Route("mediaId"));
        var done = await db.WriteAsync(s => store.QuarantineAsync(s, serverName, mediaId, admin.UserId.Value), context.RequestAborted);
        logger.LogWarning("{Admin} quarantined mxc://{Server}/{MediaId} ({Count} changed)", admin.UserId.Value, serverName, mediaId, done);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task UnquarantineAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var (serverName, mediaId) = (context.Route("serverName"), context.Route("mediaId"));
        await db.WriteAsync(s => store.UnquarantineAsync(s, serverName, mediaId), context.RequestAborted);
        logger.LogWarning("{Admin} lifted the quarantine of mxc://{Server}/{MediaId}", admin.UserId.Value, serverName, mediaId);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task RoomMediaAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var media = await db.ReadAsync(s => MediaOfRoomAsync(s, roomId), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["local"] = UriList(media.Where(m => m.ServerName == config.ServerName)),
            ["remote"] = UriList(media.Where(m => m.ServerName != config.ServerName)),
        });

        static JsonArray UriList(IEnumerable<(string ServerName, string MediaId)> media) =>
            new(media.Select(m => (JsonNode)$"mxc://{m.ServerName}/{m.MediaId}").ToArray());
    }

    /// <summary>Every medium any event of the room points at (its content URIs anywhere in the event), local or cached remote.</summary>
    private async Task<List<(string ServerName, string MediaId)>> MediaOfRoomAsync(DbSession s, string roomId) =>
        (await store.EventJsonOfRoomAsync(s, roomId)).SelectMany(json => ContentUri().Matches(json))
            .Select(m => (m.Groups["server"].Value, m.Groups["id"].Value)).Distinct().Order().ToList();

    private async Task QuarantineRoomAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var count = await db.WriteAsync(async s =>
        {
            var quarantined = 0;
            foreach (var (serverName, mediaId) in await MediaOfRoomAsync(s, roomId))
                quarantined += await store.QuarantineAsync(s, serverName, mediaId, admin.UserId.Value);
            return quarantined;
        }, context.RequestAborted);
        logger.LogWarning("{Admin} quarantined {Count} media of {RoomId}", admin.UserId.Value, count, roomId);
        await context.WriteJsonAsync(new JsonObject { ["num_quarantined"] = count });
    }

    private async Task QuarantineUserAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var userId = auth.LocalUserId(context).Value;
        var count = await db.WriteAsync(s => store.QuarantineUploadsOfAsync(s, config.ServerName, userId, admin.UserId.Value), context.RequestAborted);
        logger.LogWarning("{Admin} quarantined {Count} media of {UserId}", admin.UserId.Value, count, userId);
        await context.WriteJsonAsync(new JsonObject { ["num_quarantined"] = count });
    }

    private async Task ProtectAsync(HttpContext context, bool safe)
    {
        await auth.RequireAdminAsync(context);
        var mediaId = context.Route("mediaId");
        if (await db.WriteAsync(s => store.ProtectAsync(s, config.ServerName, mediaId, safe), context.RequestAborted) == 0)
            throw MatrixException.NotFound("Unknown media.");
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteOneAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var row = await StoredAsync(context, RequireLocal(context.Route("serverName")));
        await context.WriteJsonAsync(await DeleteAsync(admin.UserId.Value, [row.MediaId], context.RequestAborted));
    }

    /// <summary>
    /// Local media created before <c>before_ts</c> (this server keeps no access times: creation stands for the last
    /// access) and larger than <c>size_gt</c>; unless <c>keep_profiles=false</c>, what profiles and room avatars show stays.
    /// </summary>
    private async Task DeleteOldAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        if (context.Request.RouteValues.ContainsKey("serverName"))
            RequireLocal(context.Route("serverName"));
        if (context.Query("before_ts").Length == 0)
            throw MatrixException.MissingParam("before_ts");
        var beforeTs = AdminQuery.NonNegativeLong(context, "before_ts", 0);
        var sizeGreaterThan = AdminQuery.NonNegativeLong(context, "size_gt", 0);
        var keepImagesInUse = AdminQuery.Boolean(context, "keep_profiles") ?? true;
        var candidates = await db.ReadAsync(async s =>
        {
            var old = await store.StoredBeforeAsync(s, config.ServerName, beforeTs, sizeGreaterThan);
            if (!keepImagesInUse)
                return old;
            var inUse = (await store.ImageUrisInUseAsync(s)).SelectMany(json => ContentUri().Matches(json))
                .Where(m => m.Groups["server"].Value == config.ServerName).Select(m => m.Groups["id"].Value).ToHashSet(StringComparer.Ordinal);
            return old.Where(id => !inUse.Contains(id)).ToList();
        }, context.RequestAborted);
        await context.WriteJsonAsync(await DeleteAsync(admin.UserId.Value, candidates, context.RequestAborted));
    }

    /// <summary>The page of the user's uploads the list API would show for the same parameters.</summary>
    private async Task DeleteUserMediaAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var userId = (await auth.ExistingLocalUserAsync(context)).UserId;
        var (from, limit) = AdminQuery.Page(context);
        var orderBy = AdminQuery.OneOf(context, "order_by", "created_ts", AdminMediaStore.UserMediaSortColumns.Keys.ToList());
        var backwards = context.Query("dir").Length == 0 && context.Query("order_by").Length == 0 || AdminQuery.Backwards(context);
        var (rows, _) = await db.ReadAsync(s => listing.ListForUserAsync(s, config.ServerName, userId, from, limit, orderBy, backwards), context.RequestAborted);
        await context.WriteJsonAsync(await DeleteAsync(admin.UserId.Value, rows.Select(r => r.MediaId).ToList(), context.RequestAborted));
    }

    private async Task PurgeRemoteCacheAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        if (context.Query("before_ts").Length == 0)
            throw MatrixException.MissingParam("before_ts");
        var beforeTs = AdminQuery.NonNegativeLong(context, "before_ts", 0);
        var cached = await db.ReadAsync(s => store.CachedBeforeAsync(s, config.ServerName, beforeTs), context.RequestAborted);
        var deleted = 0;
        foreach (var server in cached.GroupBy(m => m.ServerName))
            deleted += (await RemoveAsync(server.Key, server.Select(m => m.MediaId).ToList(), context.RequestAborted)).Count;
        logger.LogWarning("{Admin} purged {Count} cached remote media", admin.UserId.Value, deleted);
        await context.WriteJsonAsync(new JsonObject { ["deleted"] = deleted });
    }

    private async Task<JsonObject> DeleteAsync(string admin, List<string> mediaIds, CancellationToken ct)
    {
        var deleted = await RemoveAsync(config.ServerName, mediaIds, ct);
        logger.LogWarning("{Admin} deleted {Count} local media", admin, deleted.Count);
        return new JsonObject { ["deleted_media"] = new JsonArray(deleted.Select(id => (JsonNode)id).ToArray()), ["total"] = deleted.Count };
    }

    /// <summary>Rows first, then files: a crash in between leaves unreferenced files, never rows pointing at nothing.</summary>
    private async Task<List<string>> RemoveAsync(string serverName, List<string> mediaIds, CancellationToken ct)
    {
        if (mediaIds.Count == 0)
            return [];
        var objects = await db.WriteAsync(s => store.DeleteAsync(s, serverName, mediaIds), ct);
        foreach (var stored in objects)
        {
            try
            {
                await storage.DeleteAsync(stored.StorageKey, ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or HttpRequestException)
            {
                logger.LogWarning("The file {Key} of deleted media {MediaId} could not be removed: {Reason}", stored.StorageKey, stored.MediaId, e.Message);
            }
        }
        return objects.Select(o => o.MediaId).Distinct().ToList();
    }

    private async Task<MediaRow> StoredAsync(HttpContext context, string serverName)
    {
        var mediaId = context.Route("mediaId");
        var row = await db.ReadAsync(s => media.GetAsync(s, serverName, mediaId), context.RequestAborted);
        return row is { IsPending: false } ? row : throw MatrixException.NotFound("Unknown media.");
    }

    private string RequireLocal(string serverName) =>
        serverName == config.ServerName ? serverName : throw MatrixException.InvalidParam("Can only delete local media.");

    [GeneratedRegex(@"mxc://(?<server>[A-Za-z0-9.:\-\[\]]+)/(?<id>[A-Za-z0-9_\-]+)")]
    private static partial Regex ContentUri();
}
