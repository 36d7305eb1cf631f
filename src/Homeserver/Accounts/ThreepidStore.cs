using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public sealed class ThreepidSessionRow
{
    public string SessionId { get; init; } = "";
    public string Medium { get; init; } = "";
    public string Address { get; init; } = "";
    public string ClientSecret { get; init; } = "";
    public string Purpose { get; init; } = "";
    public string TokenHash { get; init; } = "";
    public long SendAttempt { get; init; }
    public string? NextLink { get; init; }
    public long CreatedTs { get; init; }
    public long ExpiresTs { get; init; }
    public long? ValidatedTs { get; init; }
}

public sealed class UserThreepidRow
{
    public string Medium { get; init; } = "";
    public string Address { get; init; } = "";
    public string UserId { get; init; } = "";
    public long ValidatedTs { get; init; }
    public long AddedTs { get; init; }
}

/// <summary>Validation sessions of third-party identifiers, the identifiers on accounts, and where each account bound them.</summary>
public sealed class ThreepidStore
{
    public Task InsertSessionAsync(DbSession s, ThreepidSessionRow row) =>
        s.ExecuteAsync("""
            INSERT INTO threepid_validation_sessions
                (session_id, medium, address, client_secret, purpose, token_hash, send_attempt, next_link, created_ts, expires_ts, validated_ts)
            VALUES (@SessionId, @Medium, @Address, @ClientSecret, @Purpose, @TokenHash, @SendAttempt, @NextLink, @CreatedTs, @ExpiresTs, NULL)
            """, row);

    /// <summary>The live session a client secret started for an address and purpose, if any.</summary>
    public Task<ThreepidSessionRow?> FindSessionAsync(DbSession s, string clientSecret, string medium, string address, string purpose, long now) =>
        s.QuerySingleOrDefaultAsync<ThreepidSessionRow>("""
            SELECT * FROM threepid_validation_sessions
            WHERE client_secret = @clientSecret AND medium = @medium AND address = @address AND purpose = @purpose AND expires_ts > @now
            ORDER BY created_ts DESC LIMIT 1
            """, new { clientSecret, medium, address, purpose, now });

    public Task<ThreepidSessionRow?> GetSessionAsync(DbSession s, string sessionId) =>
        s.QuerySingleOrDefaultAsync<ThreepidSessionRow>("SELECT * FROM threepid_validation_sessions WHERE session_id = @sessionId", new { sessionId });

    /// <summary>A new token for a session (a later send attempt), which replaces the one mailed before.</summary>
    public Task RenewSessionAsync(DbSession s, string sessionId, string tokenHash, long sendAttempt, string? nextLink, long expiresTs) =>
        s.ExecuteAsync("""
            UPDATE threepid_validation_sessions
            SET token_hash = @tokenHash, send_attempt = @sendAttempt, next_link = @nextLink, expires_ts = @expiresTs
            WHERE session_id = @sessionId
            """, new { sessionId, tokenHash, sendAttempt, nextLink, expiresTs });

    public Task MarkValidatedAsync(DbSession s, string sessionId, long now) =>
        s.ExecuteAsync("UPDATE threepid_validation_sessions SET validated_ts = @now WHERE session_id = @sessionId AND validated_ts IS NULL",
            new { sessionId, now });

    public Task DeleteSessionAsync(DbSession s, string sessionId) =>
        s.ExecuteAsync("DELETE FROM threepid_validation_sessions WHERE session_id = @sessionId", new { sessionId });

    public Task<int> DeleteExpiredSessionsAsync(DbSession s, long now) =>
        s.ExecuteAsync("DELETE FROM threepid_validation_sessions WHERE expires_ts <= @now", new { now });

    public Task<string?> OwnerOfAsync(DbSession s, string medium, string address) =>
        s.QuerySingleOrDefaultAsync<string>("SELECT user_id FROM user_threepids WHERE medium = @medium AND address = @address", new { medium, address });

    public Task<IEnumerable<UserThreepidRow>> ListForUserAsync(DbSession s, string userId) =>
        s.QueryAsync<UserThreepidRow>("SELECT * FROM user_threepids WHERE user_id = @userId ORDER BY added_ts, address", new { userId });

    /// <summary>Attaches an identifier to an account; false when another account holds it.</summary>
    public async Task<bool> AddAsync(DbSession s, string userId, string medium, string address, long validatedTs, long now)
    {
        await s.ExecuteAsync("""
            INSERT INTO user_threepids (medium, address, user_id, validated_ts, added_ts) VALUES (@medium, @address, @userId, @validatedTs, @now)
            ON CONFLICT (medium, address) DO NOTHING
            """, new { medium, address, userId, validatedTs, now });
        return await OwnerOfAsync(s, medium, address) == userId;
    }

    public Task RemoveAsync(DbSession s, string userId, string medium, string address) =>
        s.ExecuteAsync("DELETE FROM user_threepids WHERE user_id = @userId AND medium = @medium AND address = @address", new { userId, medium, address });

    public Task RemoveAllAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM user_threepids WHERE user_id = @userId", new { userId });

    public Task AddBindingAsync(DbSession s, string userId, string medium, string address, string idServer) =>
        s.ExecuteAsync("""
            INSERT INTO user_threepid_id_servers (user_id, medium, address, id_server) VALUES (@userId, @medium, @address, @idServer)
            ON CONFLICT (user_id, medium, address, id_server) DO NOTHING
            """, new { userId, medium, address, idServer });

    public Task RemoveBindingAsync(DbSession s, string userId, string medium, string address, string idServer) =>
        s.ExecuteAsync("DELETE FROM user_threepid_id_servers WHERE user_id = @userId AND medium = @medium AND address = @address AND id_server = @idServer",
            new { userId, medium, address, idServer });

    public async Task<IReadOnlyList<string>> BindingServersAsync(DbSession s, string userId, string medium, string address) =>
        (await s.QueryAsync<string>("SELECT id_server FROM user_threepid_id_servers WHERE user_id = @userId AND medium = @medium AND address = @address",
            new { userId, medium, address })).ToList();

    public async Task<IReadOnlyList<(string Medium, string Address, string IdServer)>> AllBindingsAsync(DbSession s, string userId) =>
        (await s.QueryAsync<(string, string, string)>("SELECT medium, address, id_server FROM user_threepid_id_servers WHERE user_id = @userId",
            new { userId })).ToList();
}
