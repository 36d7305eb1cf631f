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

    public Task SetAsync(DbSession s, string userId, string roomId, string dataType, string content) =>
        s.ExecuteAsync("""
            INSERT INTO account_data (user_id, room_id, data_type, content) VALUES (@userId, @roomId, @dataType, @content)
            ON CONFLICT (user_id, room_id, data_type) DO UPDATE SET content = excluded.content
            """, new { userId, roomId, dataType, content });

    public Task DeleteAllAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM account_data WHERE user_id = @userId", new { userId });
}
