using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Profile;

public sealed class ProfileFieldRow
{
    public string Field { get; init; } = "";
    public string ValueJson { get; init; } = "";
}

/// <summary>Profile fields (displayname, avatar_url, m.tz and custom fields), each stored as its JSON value.</summary>
public sealed class ProfileStore
{
    public Task<IEnumerable<ProfileFieldRow>> GetAllAsync(DbSession s, string userId) =>
        s.QueryAsync<ProfileFieldRow>("SELECT field, value_json FROM profile_fields WHERE user_id = @userId ORDER BY field", new { userId });

    public Task<string?> GetAsync(DbSession s, string userId, string field) =>
        s.QuerySingleOrDefaultAsync<string?>("SELECT value_json FROM profile_fields WHERE user_id = @userId AND field = @field",
            new { userId, field });

    public Task SetAsync(DbSession s, string userId, string field, string valueJson) =>
        s.ExecuteAsync("""
            INSERT INTO profile_fields (user_id, field, value_json) VALUES (@userId, @field, @valueJson)
            ON CONFLICT (user_id, field) DO UPDATE SET value_json = excluded.value_json
            """, new { userId, field, valueJson });

    public Task DeleteAsync(DbSession s, string userId, string field) =>
        s.ExecuteAsync("DELETE FROM profile_fields WHERE user_id = @userId AND field = @field", new { userId, field });

    public Task DeleteAllAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM profile_fields WHERE user_id = @userId", new { userId });
}
