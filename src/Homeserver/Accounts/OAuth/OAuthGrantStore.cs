using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>An authorisation request, from the client's request to the tokens it ends with.</summary>
public sealed class OAuthGrantRow
{
    public const string Code = "code";
    public const string Device = "device";
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Denied = "denied";
    public const string Exchanged = "exchanged";

    public string GrantId { get; init; } = "";
    public string Kind { get; init; } = "";
    public string ClientId { get; init; } = "";
    public string Scope { get; init; } = "";
    public string DeviceId { get; init; } = "";
    public string? RedirectUri { get; init; }
    public string? ResponseMode { get; init; }
    public string? State { get; init; }
    public string? Nonce { get; init; }
    public string? CodeChallenge { get; init; }
    public string? CodeHash { get; init; }
    public string? UserCode { get; init; }
    public string Status { get; init; } = "";
    public string? UserId { get; init; }
    public long? AuthTime { get; init; }
    public long CreatedTs { get; init; }
    public long ExpiresTs { get; init; }
    public long? LastPollTs { get; init; }

    public bool OpenId => Scope.Split(' ').Contains("openid");
}

public sealed class OAuthGrantStore
{
    public Task InsertAsync(DbSession s, OAuthGrantRow grant) =>
        s.ExecuteAsync("""
            INSERT INTO oauth_grants (grant_id, kind, client_id, scope, device_id, redirect_uri, response_mode, state, nonce, code_challenge,
                                      code_hash, user_code, status, created_ts, expires_ts)
            VALUES (@GrantId, @Kind, @ClientId, @Scope, @DeviceId, @RedirectUri, @ResponseMode, @State, @Nonce, @CodeChallenge,
                    @CodeHash, @UserCode, @Status, @CreatedTs, @ExpiresTs)
            """, grant);

    public Task<OAuthGrantRow?> GetAsync(DbSession s, string grantId) =>
        s.QuerySingleOrDefaultAsync<OAuthGrantRow>("SELECT * FROM oauth_grants WHERE grant_id = @grantId", new { grantId });

    public Task<OAuthGrantRow?> ByCodeHashAsync(DbSession s, string codeHash) =>
        s.QuerySingleOrDefaultAsync<OAuthGrantRow>("SELECT * FROM oauth_grants WHERE code_hash = @codeHash", new { codeHash });

    public Task<OAuthGrantRow?> ByUserCodeAsync(DbSession s, string userCode) =>
        s.QuerySingleOrDefaultAsync<OAuthGrantRow>("SELECT * FROM oauth_grants WHERE user_code = @userCode", new { userCode });

    /// <summary>The user's decision on a pending request; false when it was no longer pending (decided in another tab).</summary>
    public async Task<bool> DecideAsync(DbSession s, string grantId, string status, string userId, long authTime, string? codeHash, long expiresTs) =>
        await s.ExecuteAsync("""
            UPDATE oauth_grants SET status = @status, user_id = @userId, auth_time = @authTime, code_hash = COALESCE(@codeHash, code_hash),
                expires_ts = @expiresTs
            WHERE grant_id = @grantId AND status = 'pending'
            """, new { grantId, status, userId, authTime, codeHash, expiresTs }) == 1;

    /// <summary>Marks an approved request used; false when it already was (a code or device code is good once).</summary>
    public async Task<bool> MarkExchangedAsync(DbSession s, string grantId) =>
        await s.ExecuteAsync("UPDATE oauth_grants SET status = 'exchanged' WHERE grant_id = @grantId AND status = 'approved'", new { grantId }) == 1;

    public Task RecordPollAsync(DbSession s, string grantId, long now) =>
        s.ExecuteAsync("UPDATE oauth_grants SET last_poll_ts = @now WHERE grant_id = @grantId", new { grantId, now });

    public Task DeleteExpiredAsync(DbSession s, long now) =>
        s.ExecuteAsync("DELETE FROM oauth_grants WHERE expires_ts <= @now", new { now });
}
