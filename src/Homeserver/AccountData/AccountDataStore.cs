using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.AccountData;

/// <summary>Per-user account data; global entries have an empty room ID.</summary>
public sealed class AccountDataStore
{
    public const string Global = "";

    public Task<string?> GetAsync(DbSession s, string userId, string roomId, string dataType) =>
        s.QuerySingleOrDefaultAsync<string?>(
            "SELECT content FROM account_data WHERE user_id = @userId AND room_id = @roomId AND data_type = @dataType",
            new { userId, roomId, dataType });

    private sealed record UserContent(string UserId, string Content);

    /// <summary>
    /// One type of global account data of many users (an event's recipients) in one query per 500: user to content,
    /// users without it left out.
    /// </summary>
    private async Task<Dictionary<string, string>> GlobalOfUsersAsync(DbSession s, IReadOnlyCollection<string> userIds, string dataType)
    {
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var chunk in userIds.Chunk(500))
        {
            var args = new SqlArgs(new { roomId = Global, dataType });
            var sql = $"SELECT user_id, content FROM account_data WHERE room_id = @roomId AND data_type = @dataType AND user_id IN {SqlList.In(args, "user", chunk)}";
            foreach (var row in await s.QueryAsync<UserContent>(sql, args))
                found[row.UserId] = row.Content;
        }
        return found;
    }

    /// <summary>
    /// What each of many users' global account data of one type makes (push rules, ignore lists): from
    /// <paramref name="cached"/> where it knows, the rest made by <paramref name="make"/> from one read (null: none stored).
    /// </summary>
    public Task<Dictionary<string, T>> GlobalOfUsersAsync<T>(DbSession s, IReadOnlyCollection<string> userIds, string dataType,
        Func<string, T?> cached, Func<string, string?, T> make) where T : class =>
        CachedOrRead.ManyAsync(userIds, cached, async missing =>
        {
            var stored = await GlobalOfUsersAsync(s, missing, dataType);
            return missing.Select(userId => (userId, make(userId, stored.GetValueOrDefault(userId))));
        });

    public Task SetAsync(DbSession s, string userId, string roomId, string dataType, string content, long streamId) =>
        s.ExecuteAsync("""
            INSERT INTO account_data (user_id, room_id, data_type, content, stream_id) VALUES (@userId, @roomId, @dataType, @content, @streamId)
            ON CONFLICT (user_id, room_id, data_type) DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id
            """, new { userId, roomId, dataType, content, streamId });

    public sealed record Entry(string RoomId, string DataType, string Content);

    /// <summary>The user's account data changed after <paramref name="after"/> (everything when 0), global and per room.</summary>
    public SqlRead<Entry, List<Entry>> ChangedSince(string userId, long after, long upTo) => SqlReads.Rows<Entry>(
        "SELECT room_id, data_type, content FROM account_data WHERE user_id = @userId AND stream_id > @after AND stream_id <= @upTo",
        new { userId, after, upTo });

    /// <summary>The user's account data of one type in every room (room tags, for one).</summary>
    public SqlRead<Entry, List<Entry>> OfType(string userId, string dataType) => SqlReads.Rows<Entry>(
        "SELECT room_id, data_type, content FROM account_data WHERE user_id = @userId AND data_type = @dataType AND room_id <> ''",
        new { userId, dataType });

    public Task DeleteAllAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM account_data WHERE user_id = @userId", new { userId });
}
