using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

public sealed record BackupVersionRow(long Version, string Algorithm, string AuthData, long Etag);

public sealed record BackupKeyRow(string RoomId, string SessionId, long FirstMessageIndex, long ForwardedCount, long IsVerified, string SessionData);

/// <summary>Server-side room key backups: versions (never reused once deleted) and the encrypted session keys of each.</summary>
public sealed class KeyBackupStore
{
    public Task<BackupVersionRow?> LatestAsync(DbSession s, string userId) =>
        s.QuerySingleOrDefaultAsync<BackupVersionRow>("""
            SELECT version, algorithm, auth_data, etag FROM room_key_backup_versions WHERE user_id = @userId AND deleted = 0
            ORDER BY version DESC LIMIT 1
            """, new { userId });

    public Task<BackupVersionRow?> GetAsync(DbSession s, string userId, long version) =>
        s.QuerySingleOrDefaultAsync<BackupVersionRow>(
            "SELECT version, algorithm, auth_data, etag FROM room_key_backup_versions WHERE user_id = @userId AND version = @version AND deleted = 0",
            new { userId, version });

    public async Task<long> CreateAsync(DbSession s, string userId, string algorithm, string authData)
    {
        var version = await s.ExecuteScalarAsync<long>(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM room_key_backup_versions WHERE user_id = @userId", new { userId });
        await s.ExecuteAsync("""
            INSERT INTO room_key_backup_versions (user_id, version, algorithm, auth_data, etag, deleted) VALUES (@userId, @version, @algorithm, @authData, 0, 0)
            """, new { userId, version, algorithm, authData });
        return version;
    }

    public Task SetAuthDataAsync(DbSession s, string userId, long version, string authData) =>
        s.ExecuteAsync("UPDATE room_key_backup_versions SET auth_data = @authData WHERE user_id = @userId AND version = @version",
            new { userId, version, authData });

    public async Task<bool> DeleteVersionAsync(DbSession s, string userId, long version)
    {
        await s.ExecuteAsync("DELETE FROM room_key_backup_keys WHERE user_id = @userId AND version = @version", new { userId, version });
        return await s.ExecuteAsync("UPDATE room_key_backup_versions SET deleted = 1 WHERE user_id = @userId AND version = @version AND deleted = 0",
            new { userId, version }) == 1;
    }

    public Task BumpEtagAsync(DbSession s, string userId, long version) =>
        s.ExecuteAsync("UPDATE room_key_backup_versions SET etag = etag + 1 WHERE user_id = @userId AND version = @version", new { userId, version });

    public Task<long> CountAsync(DbSession s, string userId, long version) =>
        s.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM room_key_backup_keys WHERE user_id = @userId AND version = @version", new { userId, version });

    /// <summary>The version's keys, optionally of one room and one session.</summary>
    public async Task<List<BackupKeyRow>> KeysAsync(DbSession s, string userId, long version, string? roomId, string? sessionId) =>
        (await s.QueryAsync<BackupKeyRow>($"""
            SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM room_key_backup_keys
            WHERE user_id = @userId AND version = @version
            {(roomId is null ? "" : "AND room_id = @roomId")} {(sessionId is null ? "" : "AND session_id = @sessionId")}
            """, new { userId, version, roomId, sessionId })).ToList();

    public Task SetKeyAsync(DbSession s, string userId, long version, BackupKeyRow key) =>
        s.ExecuteAsync("""
            INSERT INTO room_key_backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
            VALUES (@userId, @version, @RoomId, @SessionId, @FirstMessageIndex, @ForwardedCount, @IsVerified, @SessionData)
            ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET first_message_index = excluded.first_message_index,
                forwarded_count = excluded.forwarded_count, is_verified = excluded.is_verified, session_data = excluded.session_data
            """, new { userId, version, key.RoomId, key.SessionId, key.FirstMessageIndex, key.ForwardedCount, key.IsVerified, key.SessionData });

    public Task<int> DeleteKeysAsync(DbSession s, string userId, long version, string? roomId, string? sessionId) =>
        s.ExecuteAsync($"""
            DELETE FROM room_key_backup_keys WHERE user_id = @userId AND version = @version
            {(roomId is null ? "" : "AND room_id = @roomId")} {(sessionId is null ? "" : "AND session_id = @sessionId")}
            """, new { userId, version, roomId, sessionId });
}
