using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

public sealed class OAuthSessionRow
{
    public string UserId { get; init; } = "";
    public string DeviceId { get; init; } = "";
    public string ClientId { get; init; } = "";
    public string Scope { get; init; } = "";
}

/// <summary>The sessions (devices) the OAuth API made: which client holds each, with what scope.</summary>
public sealed class OAuthSessionStore
{
    public Task UpsertAsync(DbSession s, string userId, string deviceId, string clientId, string scope, long now) =>
        s.ExecuteAsync("""
            INSERT INTO oauth_sessions (user_id, device_id, client_id, scope, created_ts) VALUES (@userId, @deviceId, @clientId, @scope, @now)
            ON CONFLICT (user_id, device_id) DO UPDATE SET client_id = @clientId, scope = @scope, created_ts = @now
            """, new { userId, deviceId, clientId, scope, now });

    public Task<OAuthSessionRow?> GetAsync(DbSession s, string userId, string deviceId) =>
        s.QuerySingleOrDefaultAsync<OAuthSessionRow>(
            "SELECT * FROM oauth_sessions WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });
}
