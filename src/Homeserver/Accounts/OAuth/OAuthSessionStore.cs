using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

public sealed class OAuthSessionRow
{
    public string UserId { get; init; } = "";
    public string DeviceId { get; init; } = "";
    public string ClientId { get; init; } = "";
    public string Scope { get; init; } = "";
}

/// <summary>The sessions (devices) the OAuth API made: which client holds each, with what scope; cross-signing resets approved in the browser.</summary>
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

    public Task ApproveCrossSigningResetAsync(DbSession s, string userId, long untilTs) =>
        s.ExecuteAsync("""
            INSERT INTO oauth_cross_signing_resets (user_id, approved_until_ts) VALUES (@userId, @untilTs)
            ON CONFLICT (user_id) DO UPDATE SET approved_until_ts = @untilTs
            """, new { userId, untilTs });

    public async Task<long> CrossSigningResetApprovedUntilAsync(DbSession s, string userId) =>
        await s.QuerySingleOrDefaultAsync<long?>("SELECT approved_until_ts FROM oauth_cross_signing_resets WHERE user_id = @userId", new { userId }) ?? 0;
}
