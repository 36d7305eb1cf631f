using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Media;

public sealed class MediaRow
{
    public string ServerName { get; init; } = "";
    public string MediaId { get; init; } = "";
    public string? UserId { get; init; }
    /// <summary>Null while an ID made by <c>/create</c> waits for its content.</summary>
    public string? ContentType { get; init; }
    public string? UploadName { get; init; }
    public long? SizeBytes { get; init; }
    public string? StorageKey { get; init; }
    public long CreatedTs { get; init; }
    public long? UnusedExpiresTs { get; init; }
    /// <summary>1 when stored after the freeze of unauthenticated media: the legacy endpoints do not serve it.</summary>
    public long Authenticated { get; init; }

    /// <summary>The admin who quarantined it: then it is served to nobody.</summary>
    public string? QuarantinedBy { get; init; }
    /// <summary>1 when an admin protected it from quarantine.</summary>
    public long SafeFromQuarantine { get; init; }

    public bool IsPending => StorageKey is null;
}

public sealed class ThumbnailRow
{
    public long Width { get; init; }
    public long Height { get; init; }
    public string Method { get; init; } = "";
    public string ContentType { get; init; } = "";
    public long SizeBytes { get; init; }
    public string StorageKey { get; init; } = "";
}

/// <summary>Media metadata: local uploads (and IDs awaiting content), cached remote media, thumbnails, URL previews.</summary>
public sealed class MediaStore
{
    private const string Columns =
        "server_name, media_id, user_id, content_type, upload_name, size_bytes, storage_key, created_ts, unused_expires_ts, authenticated";

    public Task<MediaRow?> GetAsync(DbSession s, string serverName, string mediaId) =>
        s.QuerySingleOrDefaultAsync<MediaRow?>($"SELECT {Columns}, quarantined_by, safe_from_quarantine FROM media WHERE server_name = @serverName AND media_id = @mediaId",
            new { serverName, mediaId });

    /// <summary>False when the ID exists already (a remote file cached meanwhile by another request).</summary>
    public async Task<bool> InsertAsync(DbSession s, MediaRow row, string? sha256) =>
        await s.ExecuteAsync($"""
            INSERT INTO media ({Columns}, sha256)
            VALUES (@ServerName, @MediaId, @UserId, @ContentType, @UploadName, @SizeBytes, @StorageKey, @CreatedTs, @UnusedExpiresTs,
                    @Authenticated, @sha256)
            ON CONFLICT DO NOTHING
            """, new
        {
            row.ServerName, row.MediaId, row.UserId, row.ContentType, row.UploadName, row.SizeBytes, row.StorageKey, row.CreatedTs,
            row.UnusedExpiresTs, row.Authenticated, sha256,
        }) == 1;

    /// <summary>Gives a pending ID its content; false when another upload got there first.</summary>
    public async Task<bool> CompletePendingAsync(DbSession s, string serverName, string mediaId, string contentType, string? uploadName,
        long size, string sha256, string storageKey) =>
        await s.ExecuteAsync("""
            UPDATE media SET content_type = @contentType, upload_name = @uploadName, size_bytes = @size, sha256 = @sha256,
                storage_key = @storageKey, unused_expires_ts = NULL
            WHERE server_name = @serverName AND media_id = @mediaId AND storage_key IS NULL
            """, new { serverName, mediaId, contentType, uploadName, size, sha256, storageKey }) == 1;

    public async Task<long> BytesUploadedByAsync(DbSession s, string userId) =>
        await s.ExecuteScalarAsync<long?>("SELECT SUM(size_bytes) FROM media WHERE user_id = @userId", new { userId }) ?? 0;

    /// <summary>Expiry times of the user's IDs still waiting for content, soonest first.</summary>
    public async Task<List<long>> PendingExpiriesAsync(DbSession s, string userId, long now) =>
        (await s.QueryAsync<long>("""
            SELECT unused_expires_ts FROM media
            WHERE user_id = @userId AND storage_key IS NULL AND unused_expires_ts > @now ORDER BY unused_expires_ts
            """, new { userId, now })).ToList();

    public Task<int> DeleteExpiredPendingAsync(DbSession s, long now) =>
        s.ExecuteAsync("DELETE FROM media WHERE storage_key IS NULL AND unused_expires_ts <= @now", new { now });

    public Task<ThumbnailRow?> GetThumbnailAsync(DbSession s, string serverName, string mediaId, int width, int height, string method) =>
        s.QuerySingleOrDefaultAsync<ThumbnailRow?>("""
            SELECT width, height, method, content_type, size_bytes, storage_key FROM media_thumbnails
            WHERE server_name = @serverName AND media_id = @mediaId AND width = @width AND height = @height AND method = @method
            """, new { serverName, mediaId, width = (long)width, height = (long)height, method });

    /// <summary>False when the same thumbnail was stored meanwhile.</summary>
    public async Task<bool> InsertThumbnailAsync(DbSession s, string serverName, string mediaId, ThumbnailRow row) =>
        await s.ExecuteAsync("""
            INSERT INTO media_thumbnails (server_name, media_id, width, height, method, content_type, size_bytes, storage_key)
            VALUES (@serverName, @mediaId, @Width, @Height, @Method, @ContentType, @SizeBytes, @StorageKey)
            ON CONFLICT DO NOTHING
            """, new { serverName, mediaId, row.Width, row.Height, row.Method, row.ContentType, row.SizeBytes, row.StorageKey }) == 1;

    public Task<string?> GetPreviewAsync(DbSession s, string url, long notBefore) =>
        s.QuerySingleOrDefaultAsync<string?>("SELECT og_json FROM url_previews WHERE url = @url AND fetched_ts >= @notBefore",
            new { url, notBefore });

    public Task SetPreviewAsync(DbSession s, string url, string ogJson, long now) =>
        s.ExecuteAsync("""
            INSERT INTO url_previews (url, og_json, fetched_ts) VALUES (@url, @ogJson, @now)
            ON CONFLICT (url) DO UPDATE SET og_json = excluded.og_json, fetched_ts = excluded.fetched_ts
            """, new { url, ogJson, now });

    public Task<int> DeleteStalePreviewsAsync(DbSession s, long before) =>
        s.ExecuteAsync("DELETE FROM url_previews WHERE fetched_ts < @before", new { before });
}
