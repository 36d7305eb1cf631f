using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public sealed class AccessTokenRow
{
    public string TokenHash { get; init; } = "";
    public string UserId { get; init; } = "";
    public string DeviceId { get; init; } = "";
    public long? ExpiresTs { get; init; }
    public string? RefreshTokenHash { get; init; }
    public long Used { get; init; }
}

public sealed class RefreshTokenRow
{
    public string TokenHash { get; init; } = "";
    public string UserId { get; init; } = "";
    public string DeviceId { get; init; } = "";
    public long? ExpiresTs { get; init; }
    public string? PredecessorHash { get; init; }
}

public sealed class LoginTokenRow
{
    public string UserId { get; init; } = "";
    public long ExpiresTs { get; init; }
}

/// <summary>Access, refresh and login tokens. Only SHA-256 hashes of tokens are stored.</summary>
public sealed class TokenStore(AccessTokenCache cache)
{
    public Task InsertAccessTokenAsync(DbSession s, string tokenHash, string userId, string deviceId, long now, long? expiresTs, string? refreshTokenHash) =>
        s.ExecuteAsync("""
            INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts, refresh_token_hash, used)
            VALUES (@tokenHash, @userId, @deviceId, @now, @expiresTs, @refreshTokenHash, 0)
            """, new { tokenHash, userId, deviceId, now, expiresTs, refreshTokenHash });

    /// <summary>An admin's token acting as the user, on a device ID of no device of theirs.</summary>
    public Task InsertPuppetTokenAsync(DbSession s, string tokenHash, string userId, string deviceId, string admin, long now, long? expiresTs) =>
        s.ExecuteAsync("""
            INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts, refresh_token_hash, used, puppeted_by)
            VALUES (@tokenHash, @userId, @deviceId, @now, @expiresTs, NULL, 0, @admin)
            """, new { tokenHash, userId, deviceId, now, expiresTs, admin });

    /// <summary>
    /// An access token with its user, in one query (every authenticated request asks). The user's columns start at
    /// <c>is_admin</c>, never null: Dapper maps a part whose first column is null to no object at all.
    /// </summary>
    public async Task<(AccessTokenRow Token, UserRow User)?> GetAccessTokenWithUserAsync(DbSession s, string tokenHash) =>
        (await s.QueryAsync<AccessTokenRow, UserRow, (AccessTokenRow, UserRow)>("""
            SELECT t.token_hash, t.user_id, t.device_id, t.expires_ts, t.refresh_token_hash, t.used,
                   u.is_admin, u.user_id, u.password_hash, u.deactivated, u.created_ts, u.locked, u.suspended, u.is_guest, u.ratelimit_per_second, u.ratelimit_burst, u.shadow_banned
            FROM access_tokens t JOIN users u ON u.user_id = t.user_id
            WHERE t.token_hash = @tokenHash
            """, (token, user) => (token, user), new { tokenHash }, splitOn: "is_admin")).Cast<(AccessTokenRow, UserRow)?>().FirstOrDefault();

    public Task MarkAccessTokenUsedAsync(DbSession s, string tokenHash) =>
        WriteAsync(s, "UPDATE access_tokens SET used = 1 WHERE token_hash = @tokenHash", new { tokenHash });

    public Task DeleteAccessTokenAsync(DbSession s, string tokenHash) =>
        WriteAsync(s, "DELETE FROM access_tokens WHERE token_hash = @tokenHash", new { tokenHash });

    public Task InsertRefreshTokenAsync(DbSession s, string tokenHash, string userId, string deviceId, long now, long? expiresTs, string? predecessorHash) =>
        s.ExecuteAsync("""
            INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, expires_ts, predecessor_hash)
            VALUES (@tokenHash, @userId, @deviceId, @now, @expiresTs, @predecessorHash)
            """, new { tokenHash, userId, deviceId, now, expiresTs, predecessorHash });

    public Task<RefreshTokenRow?> GetRefreshTokenAsync(DbSession s, string tokenHash) =>
        s.QuerySingleOrDefaultAsync<RefreshTokenRow>("SELECT * FROM refresh_tokens WHERE token_hash = @tokenHash", new { tokenHash });

    /// <summary>Revokes the refresh token <paramref name="tokenHash"/> replaced, now that its successor has been used.</summary>
    public async Task RevokePredecessorAsync(DbSession s, string tokenHash)
    {
        var predecessor = await s.QuerySingleOrDefaultAsync<string?>(
            "SELECT predecessor_hash FROM refresh_tokens WHERE token_hash = @tokenHash", new { tokenHash });
        if (predecessor is null)
            return;
        await DeleteRefreshTokenAsync(s, predecessor);
        await s.ExecuteAsync("UPDATE refresh_tokens SET predecessor_hash = NULL WHERE token_hash = @tokenHash", new { tokenHash });
    }

    public Task DeleteAccessTokensIssuedWithAsync(DbSession s, string refreshTokenHash) =>
        WriteAsync(s, "DELETE FROM access_tokens WHERE refresh_token_hash = @refreshTokenHash", new { refreshTokenHash });

    /// <summary>Deletes a refresh token with the access tokens issued alongside it.</summary>
    public async Task DeleteRefreshTokenAsync(DbSession s, string tokenHash)
    {
        await DeleteAccessTokensIssuedWithAsync(s, tokenHash);
        await s.ExecuteAsync("DELETE FROM refresh_tokens WHERE token_hash = @tokenHash", new { tokenHash });
    }

    public Task DeleteExpiredLoginTokensAsync(DbSession s, long now) =>
        s.ExecuteAsync("DELETE FROM login_tokens WHERE expires_ts <= @now", new { now });

    public async Task<IEnumerable<string>> SuccessorsOfAsync(DbSession s, string tokenHash) =>
        await s.QueryAsync<string>("SELECT token_hash FROM refresh_tokens WHERE predecessor_hash = @tokenHash", new { tokenHash });

    public async Task DeleteForDeviceAsync(DbSession s, string userId, string deviceId)
    {
        await WriteAsync(s, "DELETE FROM access_tokens WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });
        await s.ExecuteAsync("DELETE FROM refresh_tokens WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId });
    }

    public async Task DeleteForUserAsync(DbSession s, string userId)
    {
        await WriteAsync(s, "DELETE FROM access_tokens WHERE user_id = @userId OR puppeted_by = @userId", new { userId });
        await s.ExecuteAsync("DELETE FROM refresh_tokens WHERE user_id = @userId", new { userId });
        await s.ExecuteAsync("DELETE FROM login_tokens WHERE user_id = @userId", new { userId });
    }

    public Task InsertLoginTokenAsync(DbSession s, string tokenHash, string userId, long expiresTs) =>
        s.ExecuteAsync("INSERT INTO login_tokens (token_hash, user_id, expires_ts) VALUES (@tokenHash, @userId, @expiresTs)",
            new { tokenHash, userId, expiresTs });

    /// <summary>Consumes a login token: returns its user if it existed and had not expired; it can never be used again.</summary>
    public async Task<string?> TakeLoginTokenAsync(DbSession s, string tokenHash, long now)
    {
        var row = await s.QuerySingleOrDefaultAsync<LoginTokenRow>(
            "SELECT user_id, expires_ts FROM login_tokens WHERE token_hash = @tokenHash", new { tokenHash });
        if (row is null)
            return null;
        await s.ExecuteAsync("DELETE FROM login_tokens WHERE token_hash = @tokenHash", new { tokenHash });
        return row.ExpiresTs > now ? row.UserId : null;
    }

    /// <summary>A write to the access tokens: the cached lookups are stale from here on.</summary>
    private Task<int> WriteAsync(DbSession s, string sql, object args)
    {
        cache.Invalidate(s);
        return s.ExecuteAsync(sql, args);
    }
}
