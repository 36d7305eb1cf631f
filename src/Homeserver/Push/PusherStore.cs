using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

public sealed class PusherRow
{
    public string UserId { get; init; } = "";
    public string AppId { get; init; } = "";
    public string Pushkey { get; init; } = "";
    public string Kind { get; init; } = "";
    public string AppDisplayName { get; init; } = "";
    public string DeviceDisplayName { get; init; } = "";
    public string? ProfileTag { get; init; }
    public string Lang { get; init; } = "";
    public string DataJson { get; init; } = "{}";
    public string? DeviceId { get; init; }
    public long CreatedTs { get; init; }
    /// <summary>The stream position of the last notifying event sent (or deliberately skipped) to this pusher.</summary>
    public long LastStreamOrdering { get; init; }
}

/// <summary>Pushers: where a user's notifications go (a push gateway URL per app and pushkey), and how far each got.</summary>
public sealed class PusherStore
{
    private const string Columns =
        "user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang, data_json, device_id, created_ts, last_stream_ordering";

    public async Task<List<PusherRow>> ForUserAsync(DbSession s, string userId) =>
        (await s.QueryAsync<PusherRow>($"SELECT {Columns} FROM pushers WHERE user_id = @userId ORDER BY created_ts, app_id, pushkey", new { userId })).ToList();

    public async Task<List<PusherRow>> ForUsersAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        var found = new List<PusherRow>();
        foreach (var chunk in userIds.Chunk(500))
        {
            var args = new SqlArgs();
            found.AddRange(await s.QueryAsync<PusherRow>($"SELECT {Columns} FROM pushers WHERE user_id IN {SqlList.In(args, "user", chunk)}", args));
        }
        return found;
    }

    public async Task<List<PusherRow>> AllAsync(DbSession s) =>
        (await s.QueryAsync<PusherRow>($"SELECT {Columns} FROM pushers")).ToList();

    /// <summary>Creates or updates the pusher; an update keeps its creation time and delivery position.</summary>
    public Task UpsertAsync(DbSession s, PusherRow row) => s.ExecuteAsync($"""
        INSERT INTO pushers ({Columns})
        VALUES (@UserId, @AppId, @Pushkey, @Kind, @AppDisplayName, @DeviceDisplayName, @ProfileTag, @Lang, @DataJson, @DeviceId, @CreatedTs, @LastStreamOrdering)
        ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET kind = excluded.kind, app_display_name = excluded.app_display_name,
            device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag, lang = excluded.lang,
            data_json = excluded.data_json, device_id = excluded.device_id
        """, row);

    public Task<int> DeleteAsync(DbSession s, string userId, string appId, string pushkey) =>
        s.ExecuteAsync("DELETE FROM pushers WHERE user_id = @userId AND app_id = @appId AND pushkey = @pushkey", new { userId, appId, pushkey });

    /// <summary>Without <c>append</c>, a pushkey belongs to one user: other users' pushers for it go.</summary>
    public Task DeleteOtherUsersAsync(DbSession s, string userId, string appId, string pushkey) =>
        s.ExecuteAsync("DELETE FROM pushers WHERE app_id = @appId AND pushkey = @pushkey AND user_id <> @userId", new { userId, appId, pushkey });

    /// <summary>A pushkey the gateway rejected is dead for every user.</summary>
    public Task DeletePushkeyAsync(DbSession s, string appId, string pushkey) =>
        s.ExecuteAsync("DELETE FROM pushers WHERE app_id = @appId AND pushkey = @pushkey", new { appId, pushkey });

    public Task DeleteForDeviceAsync(DbSession s, string userId, string deviceId) =>
        s.ExecuteAsync("DELETE FROM pushers WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });

    public Task DeleteForUserAsync(DbSession s, string userId) => s.ExecuteAsync("DELETE FROM pushers WHERE user_id = @userId", new { userId });

    public Task AdvanceAsync(DbSession s, PusherRow pusher, long position) => s.ExecuteAsync("""
        UPDATE pushers SET last_stream_ordering = @position
        WHERE user_id = @UserId AND app_id = @AppId AND pushkey = @Pushkey AND last_stream_ordering < @position
        """, new { pusher.UserId, pusher.AppId, pusher.Pushkey, position });
}
