using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

public sealed class SigningKeyRow
{
    public string KeyId { get; init; } = "";
    public string Pkcs8 { get; init; } = "";
}

public sealed class OAuthSigningKeyStore
{
    /// <summary>The oldest stored key: processes starting together may each store one, and all then pick the same.</summary>
    public Task<SigningKeyRow?> OldestAsync(DbSession s) =>
        s.QuerySingleOrDefaultAsync<SigningKeyRow>("SELECT key_id, pkcs8 FROM oauth_signing_keys ORDER BY created_ts, key_id LIMIT 1");

    public Task InsertAsync(DbSession s, string keyId, string pkcs8, long now) =>
        s.ExecuteAsync("INSERT INTO oauth_signing_keys (key_id, pkcs8, created_ts) VALUES (@keyId, @pkcs8, @now)", new { keyId, pkcs8, now });
}
