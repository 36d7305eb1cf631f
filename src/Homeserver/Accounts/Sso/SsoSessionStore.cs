using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// Where a finished single sign-on goes: a client's redirect URL (with a login token), a user-interactive auth session's
/// <c>m.login.sso</c> stage, or a page of this server's own (the OAuth 2.0 login) to return to signed in.
/// </summary>
public sealed record SsoTarget(string? ClientRedirectUrl, string? UiaSession, string? ReturnTo);

public sealed class SsoSessionRow
{
    public string StateHash { get; init; } = "";
    public string IdpId { get; init; } = "";
    public string Nonce { get; init; } = "";
    public string? CodeVerifier { get; init; }
    public string? ClientRedirectUrl { get; init; }
    public string? UiaSession { get; init; }
    public string? ReturnTo { get; init; }
    public long ExpiresTs { get; init; }

    public SsoTarget Target => new(ClientRedirectUrl, UiaSession, ReturnTo);
}

/// <summary>Sign-ins sent to an upstream provider and not yet back: each comes back once, before it expires.</summary>
public sealed class SsoSessionStore
{
    public async Task InsertAsync(DbSession s, SsoSessionRow row, long now)
    {
        await s.ExecuteAsync("DELETE FROM sso_sessions WHERE expires_ts < @now", new { now });
        await s.ExecuteAsync("""
            INSERT INTO sso_sessions (state_hash, idp_id, nonce, code_verifier, client_redirect_url, uia_session, return_to, expires_ts)
            VALUES (@StateHash, @IdpId, @Nonce, @CodeVerifier, @ClientRedirectUrl, @UiaSession, @ReturnTo, @ExpiresTs)
            """, row);
    }

    /// <summary>The live session with this state, removed so that it cannot be used again; null if unknown, used or expired.</summary>
    public async Task<SsoSessionRow?> TakeAsync(DbSession s, string stateHash, long now)
    {
        var row = await s.QuerySingleOrDefaultAsync<SsoSessionRow>("SELECT * FROM sso_sessions WHERE state_hash = @stateHash", new { stateHash });
        if (row is null || await s.ExecuteAsync("DELETE FROM sso_sessions WHERE state_hash = @stateHash", new { stateHash }) != 1)
            return null;
        return row.ExpiresTs < now ? null : row;
    }
}
