using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// OpenID Connect ID tokens (JWS, RS256) for clients that ask for <c>openid</c>; matrix-js-sdk checks their issuer,
/// audience, nonce and expiry. The RSA key is made once and kept in the database, so every process signs with it;
/// its public half is the JWKS.
/// </summary>
public sealed class IdTokens(Database db, OAuthSigningKeyStore store, HomeserverConfig config, TimeProvider clock)
{
    public const string Algorithm = "RS256";
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);
    private readonly SemaphoreSlim _loading = new(1, 1);
    private (string KeyId, RSA Key)? _key;

    public async Task<string> IssueAsync(string userId, string clientId, string? nonce, long authTimeMs, CancellationToken ct)
    {
        var (keyId, key) = await KeyAsync(ct);
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        var claims = new JsonObject
        {
            ["iss"] = config.EffectivePublicBaseurl,
            ["sub"] = userId,
            ["aud"] = clientId,
            ["iat"] = now,
            ["exp"] = now + (long)Lifetime.TotalSeconds,
            ["auth_time"] = authTimeMs / 1000,
        };
        if (nonce is not null)
            claims["nonce"] = nonce;
        var header = new JsonObject { ["alg"] = Algorithm, ["typ"] = "JWT", ["kid"] = keyId };
        var signingInput = $"{Base64Url(header.ToJsonString())}.{Base64Url(claims.ToJsonString())}";
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{signingInput}.{UnpaddedBase64.EncodeUrlSafe(signature)}";
    }

    public async Task<JsonObject> JwksAsync(CancellationToken ct)
    {
        var (keyId, key) = await KeyAsync(ct);
        var parameters = key.ExportParameters(includePrivateParameters: false);
        return new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "RSA", ["use"] = "sig", ["alg"] = Algorithm, ["kid"] = keyId,
                ["n"] = UnpaddedBase64.EncodeUrlSafe(parameters.Modulus!), ["e"] = UnpaddedBase64.EncodeUrlSafe(parameters.Exponent!),
            }),
        };
    }

    private async Task<(string KeyId, RSA Key)> KeyAsync(CancellationToken ct)
    {
        if (_key is { } loaded)
            return loaded;
        await _loading.WaitAsync(ct);
        try
        {
            return _key ??= await LoadOrCreateAsync(ct);
        }
        finally
        {
            _loading.Release();
        }
    }

    private async Task<(string, RSA)> LoadOrCreateAsync(CancellationToken ct)
    {
        var stored = await db.ReadAsync(store.OldestAsync, ct);
        if (stored is null)
        {
            using var created = RSA.Create(2048);
            var keyId = UnpaddedBase64.EncodeUrlSafe(SHA256.HashData(created.ExportParameters(false).Modulus!))[..16];
            var pkcs8 = Convert.ToBase64String(created.ExportPkcs8PrivateKey());
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            stored = await db.WriteAsync(async s =>
            {
                await store.InsertAsync(s, keyId, pkcs8, now);
                return await store.OldestAsync(s);
            }, ct);
        }
        var key = RSA.Create();
        key.ImportPkcs8PrivateKey(Convert.FromBase64String(stored!.Pkcs8), out _);
        return (stored.KeyId, key);
    }

    private static string Base64Url(string json) => UnpaddedBase64.EncodeUrlSafe(Encoding.UTF8.GetBytes(json));
}
