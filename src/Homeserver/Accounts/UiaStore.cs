using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public sealed class UiaSessionRow
{
    public string SessionId { get; init; } = "";
    public string Method { get; init; } = "";
    public string Path { get; init; } = "";
    public string? UserId { get; init; }
    public string Completed { get; init; } = "[]";
    public string? RegistrationToken { get; init; }
    /// <summary>The address an <c>m.login.email.identity</c> stage proved (JSON of <see cref="Email.ValidatedThreepid"/> and its session).</summary>
    public string? Threepid { get; init; }
    public long CreatedTs { get; init; }
    public string? RequestJson { get; init; }
    public string? PasswordHash { get; init; }
    public string? RegisteredUserId { get; init; }
    /// <summary>The account an <c>m.login.sso</c> stage proved, whether or not it was the session's user.</summary>
    public string? SsoUserId { get; init; }
}

public sealed class UiaStore
{
    public Task InsertAsync(DbSession s, UiaSessionRow row) =>
        s.ExecuteAsync("""
            INSERT INTO uia_sessions (session_id, method, path, user_id, completed, registration_token, created_ts, request_json, password_hash)
            VALUES (@SessionId, @Method, @Path, @UserId, @Completed, @RegistrationToken, @CreatedTs, @RequestJson, @PasswordHash)
            """, row);

    public Task<UiaSessionRow?> GetAsync(DbSession s, string sessionId) =>
        s.QuerySingleOrDefaultAsync<UiaSessionRow>("SELECT * FROM uia_sessions WHERE session_id = @sessionId", new { sessionId });

    public Task UpdateAsync(DbSession s, string sessionId, string completed, string? registrationToken, string? threepid) =>
        s.ExecuteAsync("""
            UPDATE uia_sessions SET completed = @completed, registration_token = @registrationToken, threepid = @threepid WHERE session_id = @sessionId
            """, new { sessionId, completed, registrationToken, threepid });

    public Task SetSsoResultAsync(DbSession s, string sessionId, string completed, string ssoUserId) =>
        s.ExecuteAsync("UPDATE uia_sessions SET completed = @completed, sso_user_id = @ssoUserId WHERE session_id = @sessionId",
            new { sessionId, completed, ssoUserId });

    public Task SetRegisteredUserAsync(DbSession s, string sessionId, string userId) =>
        s.ExecuteAsync("UPDATE uia_sessions SET registered_user_id = @userId, registration_token = NULL WHERE session_id = @sessionId", new { sessionId, userId });

    public Task DeleteAsync(DbSession s, string sessionId) =>
        s.ExecuteAsync("DELETE FROM uia_sessions WHERE session_id = @sessionId", new { sessionId });

    public Task<IEnumerable<UiaSessionRow>> ListExpiredAsync(DbSession s, long createdBefore) =>
        s.QueryAsync<UiaSessionRow>("SELECT * FROM uia_sessions WHERE created_ts < @createdBefore", new { createdBefore });
}
