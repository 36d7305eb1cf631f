using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>A stored file of a medium (the original or a thumbnail), to delete once its rows are gone.</summary>
public sealed record StoredMediaObject(string MediaId, string StorageKey);

/// <summary>
/// The SQL of quarantining, protecting and deleting media. Protected media is never quarantined; quarantine and
/// protection apply to stored media (an ID still waiting for its upload is not media yet).
/// </summary>
public sealed class AdminMediaModerationStore
{
    private const string Quarantinable = "storage_key IS NOT NULL AND safe_from_quarantine = 0";

    public Task<int> QuarantineAsync(DbSession s, string serverName, string mediaId, string admin) => s.ExecuteAsync(
        $"UPDATE media SET quarantined_by = @admin WHERE server_name = @serverName AND media_id = @mediaId AND {Quarantinable}",
        new { serverName, mediaId, admin });

    public Task<int> UnquarantineAsync(DbSession s, string serverName, string mediaId) => s.ExecuteAsync(
        "UPDATE media SET quarantined_by = NULL WHERE server_name = @serverName AND media_id = @mediaId", new { serverName, mediaId });

    /// <summary>Quarantines every upload of the user not yet quarantined; the number it did.</summary>
    public Task<int> QuarantineUploadsOfAsync(DbSession s, string serverName, string userId, string admin) => s.ExecuteAsync(
        $"UPDATE media SET quarantined_by = @admin WHERE server_name = @serverName AND user_id = @userId AND quarantined_by IS NULL AND {Quarantinable}",
        new { serverName, userId, admin });

    public Task<int> ProtectAsync(DbSession s, string serverName, string mediaId, bool safe) => s.ExecuteAsync(
        "UPDATE media SET safe_from_quarantine = @safe WHERE server_name = @serverName AND media_id = @mediaId AND storage_key IS NOT NULL",
        new { serverName, mediaId, safe = safe ? 1L : 0L });

    /// <summary>The media IDs of one server's stored media created before a time and larger than a size.</summary>
    public async Task<List<string>> StoredBeforeAsync(DbSession s, string serverName, long beforeTs, long sizeGreaterThan) =>
        (await s.QueryAsync<string>("""
            SELECT media_id FROM media WHERE server_name = @serverName AND storage_key IS NOT NULL AND created_ts < @beforeTs
            AND COALESCE(size_bytes, 0) > @sizeGreaterThan AND safe_from_quarantine = 0 ORDER BY media_id
            """, new { serverName, beforeTs, sizeGreaterThan })).ToList();

    /// <summary>Remote media cached here before a time: every server's but this one's.</summary>
    public async Task<List<(string ServerName, string MediaId)>> CachedBeforeAsync(DbSession s, string localServer, long beforeTs) =>
        (await s.QueryAsync<(string, string)>(
            "SELECT server_name, media_id FROM media WHERE server_name <> @localServer AND storage_key IS NOT NULL AND created_ts < @beforeTs",
            new { localServer, beforeTs })).ToList();

    /// <summary>The content URIs that profiles and room avatars use (<c>mxc://...</c> as stored in their JSON).</summary>
    public async Task<List<string>> ImageUrisInUseAsync(DbSession s) =>
        (await s.QueryAsync<string>("""
            SELECT value_json FROM profile_fields WHERE field = 'avatar_url'
            UNION ALL
            SELECT e.json FROM current_state c JOIN events e ON e.event_id = c.event_id WHERE c.type = 'm.room.avatar' AND c.state_key = ''
            """)).ToList();

    /// <summary>The JSON of every event of a room, to find the media it points at.</summary>
    public async Task<List<string>> EventJsonOfRoomAsync(DbSession s, string roomId) =>
        (await s.QueryAsync<string>("SELECT json FROM events WHERE room_id = @roomId", new { roomId })).ToList();

    /// <summary>Deletes the media's rows and those of its thumbnails; returns their stored files, which are then to go.</summary>
    public async Task<List<StoredMediaObject>> DeleteAsync(DbSession s, string serverName, IReadOnlyCollection<string> mediaIds)
    {
        var objects = new List<StoredMediaObject>();
        foreach (var chunk in mediaIds.Chunk(500))
        {
            var args = new SqlArgs(new { serverName });
            var ids = SqlList.In(args, "id", chunk);
            objects.AddRange(await s.QueryAsync<StoredMediaObject>($"""
                SELECT media_id, storage_key FROM media WHERE server_name = @serverName AND media_id IN {ids} AND storage_key IS NOT NULL
                UNION ALL
                SELECT media_id, storage_key FROM media_thumbnails WHERE server_name = @serverName AND media_id IN {ids}
                """, args));
            await s.ExecuteAsync($"DELETE FROM media_thumbnails WHERE server_name = @serverName AND media_id IN {ids}", args);
            await s.ExecuteAsync($"DELETE FROM media WHERE server_name = @serverName AND media_id IN {ids}", args);
        }
        return objects;
    }
}
