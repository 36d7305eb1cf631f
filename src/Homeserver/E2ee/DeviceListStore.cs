using Dapper;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

public sealed record RemoteDeviceRow(string UserId, string DeviceId, string? DisplayName, string? KeyJson);

/// <summary>
/// The device-list stream (one row per change of a user's devices or cross-signing keys, local or remote) and the
/// cached device lists of remote users this server tracks through <c>m.device_list_update</c>.
/// </summary>
public sealed class DeviceListStore(StreamPositions streams)
{
    /// <summary>Records a change of the user's device list (seen by them alone when <paramref name="ownerOnly"/>); returns its stream position.</summary>
    public async Task<long> AddChangeAsync(DbSession s, string userId, bool ownerOnly = false)
    {
        var streamId = await streams.NextAsync(s, "device_lists");
        await s.ExecuteAsync("INSERT INTO device_list_changes (stream_id, user_id, owner_only) VALUES (@streamId, @userId, @ownerOnly)",
            new { streamId, userId, ownerOnly = ownerOnly ? 1 : 0 });
        return streamId;
    }

    /// <summary>The stream position of the user's latest change before <paramref name="before"/>, or null.</summary>
    public Task<long?> PreviousChangeAsync(DbSession s, string userId, long before) =>
        s.ExecuteScalarAsync<long?>("SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = @userId AND stream_id < @before",
            new { userId, before });

    /// <summary>Users whose device lists changed in the window, as <paramref name="viewer"/> may learn of them.</summary>
    public SqlRead<string, HashSet<string>> ChangedUsers(long after, long upTo, string viewer) => new(
        "SELECT DISTINCT user_id FROM device_list_changes WHERE stream_id > @after AND stream_id <= @upTo AND (owner_only = 0 OR user_id = @viewer)",
        new { after, upTo, viewer },
        rows => rows.ToHashSet(StringComparer.Ordinal));

    /// <summary>The last <c>stream_id</c> seen from the user's server, or null when this server does not track the user.</summary>
    public Task<long?> RemoteStreamIdAsync(DbSession s, string userId) =>
        s.QuerySingleOrDefaultAsync<long?>("SELECT stream_id FROM remote_device_lists WHERE user_id = @userId", new { userId });

    public async Task<HashSet<string>> TrackedRemoteUsersAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        if (userIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<string>($"SELECT user_id FROM remote_device_lists WHERE user_id IN {SqlList.In(args, "u", userIds)}", args))
            .ToHashSet(StringComparer.Ordinal);
    }

    public Task SetRemoteStreamIdAsync(DbSession s, string userId, long streamId) =>
        s.ExecuteAsync("""
            INSERT INTO remote_device_lists (user_id, stream_id) VALUES (@userId, @streamId)
            ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id
            """, new { userId, streamId });

    public async Task<List<RemoteDeviceRow>> RemoteDevicesAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        if (userIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<RemoteDeviceRow>(
            $"SELECT user_id, device_id, display_name, key_json FROM remote_devices WHERE user_id IN {SqlList.In(args, "u", userIds)}", args)).ToList();
    }

    public Task SetRemoteDeviceAsync(DbSession s, RemoteDeviceRow row) =>
        s.ExecuteAsync("""
            INSERT INTO remote_devices (user_id, device_id, display_name, key_json) VALUES (@UserId, @DeviceId, @DisplayName, @KeyJson)
            ON CONFLICT (user_id, device_id) DO UPDATE SET display_name = excluded.display_name, key_json = excluded.key_json
            """, row);

    public Task DeleteRemoteDeviceAsync(DbSession s, string userId, string deviceId) =>
        s.ExecuteAsync("DELETE FROM remote_devices WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });

    public async Task ForgetRemoteUserAsync(DbSession s, string userId)
    {
        await s.ExecuteAsync("DELETE FROM remote_device_lists WHERE user_id = @userId", new { userId });
        await DeleteRemoteDevicesAsync(s, userId);
    }

    /// <summary>
    /// Forgets the cached lists of the remote users among <paramref name="remoteLeft"/> (and, when <paramref name="localLeft"/>,
    /// among the room's joined members) who no longer share a joined room with a user of <paramref name="serverName"/>.
    /// </summary>
    public async Task ForgetUnsharedRemoteUsersAsync(DbSession s, string roomId, IReadOnlyCollection<string> remoteLeft, bool localLeft, string serverName)
    {
        var args = new SqlArgs(new { roomId, localUsers = "%:" + serverName });
        var candidates = new List<string>();
        if (remoteLeft.Count > 0)
            candidates.Add($"l.user_id IN {SqlList.In(args, "u", remoteLeft)}");
        if (localLeft)
            candidates.Add("l.user_id IN (SELECT state_key FROM current_state WHERE room_id = @roomId AND type = 'm.room.member' AND membership = 'join')");
        if (candidates.Count == 0)
            return;
        var unshared = await s.QueryAsync<string>($"""
            SELECT l.user_id FROM remote_device_lists l
            WHERE ({string.Join(" OR ", candidates)})
            AND NOT EXISTS (SELECT 1 FROM current_state theirs JOIN current_state ours ON ours.room_id = theirs.room_id
                WHERE theirs.state_key = l.user_id AND theirs.type = 'm.room.member' AND theirs.membership = 'join'
                AND ours.type = 'm.room.member' AND ours.membership = 'join' AND ours.state_key LIKE @localUsers)
            """, args);
        foreach (var userId in unshared.ToList())
            await ForgetRemoteUserAsync(s, userId);
    }

    public Task DeleteRemoteDevicesAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM remote_devices WHERE user_id = @userId", new { userId });
}
