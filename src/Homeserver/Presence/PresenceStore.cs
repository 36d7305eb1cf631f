using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Presence;

public sealed record PresenceRow(string UserId, string State, string? StatusMsg, long LastActiveTs, long StreamId);

/// <summary>A remote user's presence as their server sent it.</summary>
public sealed record RemotePresence(string UserId, string State, string? StatusMsg, long LastActiveAgo);

public sealed class PresenceStore
{
    private const string Columns = "user_id, state, status_msg, last_active_ts, stream_id";

    public Task<PresenceRow?> GetAsync(DbSession s, string userId) =>
        s.QuerySingleOrDefaultAsync<PresenceRow>($"SELECT {Columns} FROM presence WHERE user_id = @userId", new { userId });

    public Task SetAsync(DbSession s, PresenceRow row) => s.DeferAsync($"""
        INSERT INTO presence ({Columns}) VALUES (@UserId, @State, @StatusMsg, @LastActiveTs, @StreamId)
        ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,
            last_active_ts = excluded.last_active_ts, stream_id = excluded.stream_id
        """, row);

    public async Task<List<PresenceRow>> GetManyAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        var rows = new List<PresenceRow>();
        foreach (var chunk in userIds.Chunk(500))
        {
            var args = new SqlArgs();
            rows.AddRange(await s.QueryAsync<PresenceRow>($"SELECT {Columns} FROM presence WHERE user_id IN {SqlList.In(args, "u", chunk)}", args));
        }
        return rows;
    }

    /// <summary>
    /// The rows of <paramref name="userIds"/> changed in the window: read by window when it is shorter than the list
    /// (each change takes a position), else by user, so that neither a crowd coming online at once nor a user sharing
    /// rooms with thousands makes every sync read everyone's presence.
    /// </summary>
    public async Task<List<PresenceRow>> ChangedSinceAsync(DbSession s, long after, long upTo, IReadOnlySet<string> userIds)
    {
        const string inWindow = "stream_id > @after AND stream_id <= @upTo";
        if (upTo - after <= userIds.Count)
            return (await s.QueryAsync<PresenceRow>($"SELECT {Columns} FROM presence WHERE {inWindow}", new { after, upTo }))
                .Where(r => userIds.Contains(r.UserId)).ToList();
        var rows = new List<PresenceRow>();
        foreach (var chunk in userIds.Chunk(500))
        {
            var args = new SqlArgs(new { after, upTo });
            rows.AddRange(await s.QueryAsync<PresenceRow>($"SELECT {Columns} FROM presence WHERE {inWindow} AND user_id IN {SqlList.In(args, "u", chunk)}", args));
        }
        return rows;
    }
}
