using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public sealed class RegistrationTokenRow
{
    public string Token { get; init; } = "";
    public long? UsesAllowed { get; init; }
    public long Pending { get; init; }
    public long Completed { get; init; }
    public long? ExpiryTime { get; init; }

    public bool IsUsable(long now) =>
        (ExpiryTime is null || ExpiryTime > now) && (UsesAllowed is null || Pending + Completed < UsesAllowed);
}

public sealed class RegistrationTokenStore
{
    public async Task<bool> InsertAsync(DbSession s, string token, long? usesAllowed, long? expiryTime) =>
        await s.ExecuteAsync("""
            INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time)
            VALUES (@token, @usesAllowed, 0, 0, @expiryTime) ON CONFLICT (token) DO NOTHING
            """, new { token, usesAllowed, expiryTime }) == 1;

    public Task<RegistrationTokenRow?> GetAsync(DbSession s, string token) =>
        s.QuerySingleOrDefaultAsync<RegistrationTokenRow>("SELECT * FROM registration_tokens WHERE token = @token", new { token });

    public Task<IEnumerable<RegistrationTokenRow>> ListAsync(DbSession s) =>
        s.QueryAsync<RegistrationTokenRow>("SELECT * FROM registration_tokens ORDER BY token");

    public async Task<bool> UpdateAsync(DbSession s, string token, long? usesAllowed, long? expiryTime) =>
        await s.ExecuteAsync("UPDATE registration_tokens SET uses_allowed = @usesAllowed, expiry_time = @expiryTime WHERE token = @token",
            new { token, usesAllowed, expiryTime }) == 1;

    public async Task<bool> DeleteAsync(DbSession s, string token) =>
        await s.ExecuteAsync("DELETE FROM registration_tokens WHERE token = @token", new { token }) == 1;

    /// <summary>Reserves one use of a token for a registration in progress; false when none is left.</summary>
    public async Task<bool> ReserveAsync(DbSession s, string token, long now) =>
        await s.ExecuteAsync("""
            UPDATE registration_tokens SET pending = pending + 1
            WHERE token = @token AND (expiry_time IS NULL OR expiry_time > @now)
              AND (uses_allowed IS NULL OR pending + completed < uses_allowed)
            """, new { token, now }) == 1;

    public Task CompleteAsync(DbSession s, string token) =>
        s.ExecuteAsync("UPDATE registration_tokens SET pending = pending - 1, completed = completed + 1 WHERE token = @token", new { token });

    public Task ReleaseAsync(DbSession s, string token) =>
        s.ExecuteAsync("UPDATE registration_tokens SET pending = pending - 1 WHERE token = @token AND pending > 0", new { token });
}
