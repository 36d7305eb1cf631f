using Dapper;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

public sealed record CrossSigningKeyRow(string UserId, string KeyType, string PublicKey, string KeyJson);

/// <summary>A signature stored apart from the key it signs, merged in when the key is served.</summary>
public sealed record KeySignatureRow(string UserId, string TargetKeyId, string SignerUserId, string SignerKeyId, string Signature);

/// <summary>
/// Cross-signing keys (master, self-signing, user-signing) of local users and the remote users this server tracks,
/// and the signatures uploaded later for device keys and master keys.
/// </summary>
public sealed class CrossSigningStore
{
    public const string Master = "master";
    public const string SelfSigning = "self_signing";
    public const string UserSigning = "user_signing";

    public async Task<List<CrossSigningKeyRow>> ForUsersAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        if (userIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<CrossSigningKeyRow>(
            $"SELECT user_id, key_type, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id IN {SqlList.In(args, "u", userIds)}", args)).ToList();
    }

    public Task<CrossSigningKeyRow?> GetAsync(DbSession s, string userId, string keyType) =>
        s.QuerySingleOrDefaultAsync<CrossSigningKeyRow>(
            "SELECT user_id, key_type, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id = @userId AND key_type = @keyType",
            new { userId, keyType });

    public Task SetAsync(DbSession s, string userId, string keyType, string publicKey, string keyJson) =>
        s.ExecuteAsync("""
            INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json) VALUES (@userId, @keyType, @publicKey, @keyJson)
            ON CONFLICT (user_id, key_type) DO UPDATE SET public_key = excluded.public_key, key_json = excluded.key_json
            """, new { userId, keyType, publicKey, keyJson });

    public Task DeleteAsync(DbSession s, string userId, string keyType) =>
        s.ExecuteAsync("DELETE FROM e2e_cross_signing_keys WHERE user_id = @userId AND key_type = @keyType", new { userId, keyType });

    public Task AddSignatureAsync(DbSession s, KeySignatureRow row) =>
        s.ExecuteAsync("""
            INSERT INTO e2e_key_signatures (user_id, target_key_id, signer_user_id, signer_key_id, signature)
            VALUES (@UserId, @TargetKeyId, @SignerUserId, @SignerKeyId, @Signature)
            ON CONFLICT (user_id, target_key_id, signer_user_id, signer_key_id) DO UPDATE SET signature = excluded.signature
            """, row);

    public async Task<List<KeySignatureRow>> SignaturesForUsersAsync(DbSession s, IReadOnlyCollection<string> userIds)
    {
        if (userIds.Count == 0)
            return [];
        var args = new SqlArgs();
        return (await s.QueryAsync<KeySignatureRow>(
            $"SELECT user_id, target_key_id, signer_user_id, signer_key_id, signature FROM e2e_key_signatures WHERE user_id IN {SqlList.In(args, "u", userIds)}",
            args)).ToList();
    }

    /// <summary>Signatures made with a replaced key mean nothing any more.</summary>
    public Task DeleteSignaturesByAsync(DbSession s, string signerUserId, string signerKeyId) =>
        s.ExecuteAsync("DELETE FROM e2e_key_signatures WHERE signer_user_id = @signerUserId AND signer_key_id = @signerKeyId",
            new { signerUserId, signerKeyId });
}
