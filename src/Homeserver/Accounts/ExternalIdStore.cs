using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Accounts linked to an outside identity: a directory entry's DN (auth provider "ldap", at first login) or a
/// single sign-on user (provider "cas").
/// </summary>
public sealed class ExternalIdStore
{
    public const string Ldap = "ldap";
    public const string Cas = "cas";

    public Task AddAsync(DbSession s, string provider, string externalId, string userId) =>
        s.ExecuteAsync("""
            INSERT INTO user_external_ids (auth_provider, external_id, user_id) VALUES (@provider, @externalId, @userId)
            ON CONFLICT (auth_provider, external_id) DO UPDATE SET user_id = excluded.user_id
            """, new { provider, externalId, userId });

    public Task<string?> FindUserAsync(DbSession s, string provider, string externalId) =>
        s.QuerySingleOrDefaultAsync<string>("SELECT user_id FROM user_external_ids WHERE auth_provider = @provider AND external_id = @externalId",
            new { provider, externalId });

    public async Task<IReadOnlyList<(string AuthProvider, string ExternalId)>> ListForUserAsync(DbSession s, string userId) =>
        (await s.QueryAsync<(string, string)>(
            "SELECT auth_provider, external_id FROM user_external_ids WHERE user_id = @userId ORDER BY auth_provider, external_id", new { userId })).ToList();

    public Task RemoveAllForUserAsync(DbSession s, string userId) =>
        s.ExecuteAsync("DELETE FROM user_external_ids WHERE user_id = @userId", new { userId });

    public async Task<bool> IsLinkedAsync(DbSession s, string provider, string userId) =>
        await s.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM user_external_ids WHERE auth_provider = @provider AND user_id = @userId",
            new { provider, userId }) > 0;
}
