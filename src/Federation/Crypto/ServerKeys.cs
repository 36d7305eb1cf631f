using System.Text.Json.Nodes;
using Matrix.Federation.Json;

namespace Matrix.Federation.Crypto;

/// <summary>One public key of a server: current keys carry the response's <c>valid_until_ts</c>, old keys their <c>expired_ts</c>.</summary>
public sealed record VerifyKey(string KeyId, byte[] PublicKey, long? ValidUntilTs, long? ExpiredTs)
{
    /// <summary>The longest a fetched key is trusted, whatever <c>valid_until_ts</c> it claims.</summary>
    public static readonly long MaxTrustMs = (long)TimeSpan.FromDays(7).TotalMilliseconds;

    /// <summary>
    /// Whether this key may verify a signature on an event sent at <paramref name="originServerTs"/>. Old keys only
    /// cover events before they expired. Current keys cover events up to the lesser of <c>valid_until_ts</c> and seven
    /// days after the key was fetched, when the room version enforces key validity (v5 and later).
    /// </summary>
    public bool IsValidAt(long originServerTs, long fetchedAtTs, bool enforceValidUntil)
    {
        if (ExpiredTs is { } expired)
            return originServerTs < expired;
        if (!enforceValidUntil)
            return true;
        var validUntil = Math.Min(ValidUntilTs ?? 0, fetchedAtTs + MaxTrustMs);
        return originServerTs <= validUntil;
    }
}

/// <summary>A server's published keys (<c>GET /_matrix/key/v2/server</c> or one entry of a notary response).</summary>
public sealed class ServerKeys
{
    public required string ServerName { get; init; }
    public required long ValidUntilTs { get; init; }
    public required IReadOnlyDictionary<string, VerifyKey> Keys { get; init; }
    public required JsonObject Json { get; init; }

    /// <summary>Parses and checks a key response: well-formed keys, and a valid self-signature by every current key.</summary>
    public static bool TryParse(JsonObject json, out ServerKeys keys, out string error)
    {
        keys = null!;
        error = "";
        if (json["server_name"] is not JsonValue nameValue || !nameValue.TryGetValue<string>(out var serverName))
            return Fail("server_name is missing", out error);
        if (!json["valid_until_ts"].TryGetInteger(out var validUntil))
            return Fail("valid_until_ts is missing", out error);
        var parsed = new Dictionary<string, VerifyKey>(StringComparer.Ordinal);
        if (json["verify_keys"] is not JsonObject current || current.Count == 0)
            return Fail("verify_keys is missing or empty", out error);
        foreach (var (keyId, entry) in current)
        {
            if (!IsEd25519(keyId))
                continue;
            if (!TryReadKey(keyId, entry, out var publicKey))
                return Fail($"verify key {keyId} is malformed", out error);
            parsed[keyId] = new VerifyKey(keyId, publicKey, validUntil, null);
        }
        if (parsed.Count == 0)
            return Fail("verify_keys has no ed25519 key", out error);
        if (json["old_verify_keys"] is JsonObject old)
            foreach (var (keyId, entry) in old)
            {
                if (!IsEd25519(keyId))
                    continue;
                if (!TryReadKey(keyId, entry, out var publicKey) || !entry!["expired_ts"].TryGetInteger(out var expired))
                    return Fail($"old verify key {keyId} is malformed", out error);
                parsed.TryAdd(keyId, new VerifyKey(keyId, publicKey, null, expired));
            }
        else if (json["old_verify_keys"] is not null)
            return Fail("old_verify_keys must be an object", out error);

        var signingBytes = JsonSigning.SigningBytes(json);
        foreach (var key in parsed.Values.Where(k => k.ExpiredTs is null))
            if (!JsonSigning.Verify(json, signingBytes, serverName, key.KeyId, key.PublicKey))
                return Fail($"response is not signed by {serverName}'s key {key.KeyId}", out error);

        keys = new ServerKeys { ServerName = serverName, ValidUntilTs = validUntil, Keys = parsed, Json = json };
        return true;
    }

    private static bool TryReadKey(string keyId, JsonNode? entry, out byte[] publicKey)
    {
        publicKey = [];
        return keyId.Length > 8 && entry is JsonObject obj && obj["key"] is JsonValue value && value.TryGetValue<string>(out var encoded)
            && UnpaddedBase64.TryDecode(encoded, out publicKey) && publicKey.Length == LibSodium.SignPublicKeyBytes;
    }

    private static bool IsEd25519(string keyId) => keyId.StartsWith("ed25519:", StringComparison.Ordinal);

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
