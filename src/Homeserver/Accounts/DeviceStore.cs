using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public sealed class DeviceRow
{
    public string UserId { get; init; } = "";
    public string DeviceId { get; init; } = "";
    public string? DisplayName { get; init; }
    public string? LastSeenIp { get; init; }
    public long? LastSeenTs { get; init; }
    public string? LastSeenUserAgent { get; init; }
}

public sealed class DeviceStore
{
    /// <summary>Creates the device unless it exists; an existing device keeps its display name.</summary>
    public Task EnsureAsync(DbSession s, string userId, string deviceId, string? displayName, long now) =>
        s.ExecuteAsync("""
            INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES (@userId, @deviceId, @displayName, @now)
            ON CONFLICT (user_id, device_id) DO NOTHING
            """, new { userId, deviceId, displayName, now });

    public Task<DeviceRow?> GetAsync(DbSession s, string userId, string deviceId) =>
        s.QuerySingleOrDefaultAsync<DeviceRow>(
            "SELECT * FROM devices WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });

    public Task<IEnumerable<DeviceRow>> ListAsync(DbSession s, string userId) =>
        s.QueryAsync<DeviceRow>("SELECT * FROM devices WHERE user_id = @userId ORDER BY device_id", new { userId });

    public async Task<bool> SetDisplayNameAsync(DbSession s, string userId, string deviceId, string? displayName) =>
        await s.ExecuteAsync("UPDATE devices SET display_name = @displayName WHERE user_id = @userId AND device_id = @deviceId",
            new { userId, deviceId, displayName }) == 1;

    public Task UpdateLastSeenAsync(DbSession s, string userId, string deviceId, string? ip, string? userAgent, long now) =>
        s.ExecuteAsync("""
            UPDATE devices SET last_seen_ip = @ip, last_seen_ts = @now, last_seen_user_agent = @userAgent
            WHERE user_id = @userId AND device_id = @deviceId
            """, new { userId, deviceId, ip, userAgent, now });

    public Task DeleteAsync(DbSession s, string userId, string deviceId) =>
        s.ExecuteAsync("DELETE FROM devices WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });
}
