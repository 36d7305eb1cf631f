using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

public sealed class BrowserSessionRow
{
    public string UserId { get; init; } = "";
    public long AuthTime { get; init; }
    public long ExpiresTs { get; init; }
}

/// <summary>Browser sign-ins to the server's pages, by the SHA-256 of their cookie, shared by every process.</summary>
public sealed class OAuthBrowserSessionStore
{
    public Task InsertAsync(DbSession s, string sessionHash, string userId, long authTime, long expiresTs) =>
        s.ExecuteAsync("INSERT INTO oauth_browser_sessions (session_hash, user_id, auth_time, expires_ts) VALUES (@sessionHash, @userId, @authTime, @expiresTs)",
            new { sessionHash, userId, authTime, expiresTs });

    public Task<BrowserSessionRow?> GetAsync(DbSession s, string sessionHash) =>
        s.QuerySingleOrDefaultAsync<BrowserSessionRow>("SELECT * FROM oauth_browser_sessions WHERE session_hash = @sessionHash", new { sessionHash });

    public Task DeleteAsync(DbSession s, string sessionHash) =>
        s.ExecuteAsync("DELETE FROM oauth_browser_sessions WHERE session_hash = @sessionHash", new { sessionHash });

    public Task DeleteForUserAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM oauth_browser_sessions WHERE user_id = @userId", new { userId });

    public Task DeleteExpiredAsync(DbSession s, long now) =>
        s.ExecuteAsync("DELETE FROM oauth_browser_sessions WHERE expires_ts <= @now", new { now });
}
