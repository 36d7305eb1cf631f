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
