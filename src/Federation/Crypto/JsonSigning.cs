using System.Text.Json.Nodes;
using Matrix.Federation.Json;

namespace Matrix.Federation.Crypto;

/// <summary>Signing and checking JSON objects (appendix "Signing JSON"): the signature covers the canonical JSON without <c>signatures</c> and <c>unsigned</c>.</summary>
public static class JsonSigning
{
    public static byte[] SigningBytes(JsonObject obj) => CanonicalJson.EncodeWithout(obj, "signatures", "unsigned");

    /// <summary>Adds <c>signatures[entity][keyId]</c> to the object, keeping any signatures already present.</summary>
    public static void Sign(JsonObject obj, string entity, Ed25519KeyPair key) => AddSignature(obj, entity, key, SigningBytes(obj));

    /// <summary>Adds the entity's signature of <paramref name="signingBytes"/> (the object's, or those of its redacted form) under <c>signatures</c>.</summary>
    public static void AddSignature(JsonObject obj, string entity, Ed25519KeyPair key, ReadOnlySpan<byte> signingBytes)
    {
        var signature = UnpaddedBase64.Encode(key.Sign(signingBytes));
        if (obj["signatures"] is not JsonObject signatures)
            obj["signatures"] = signatures = new JsonObject();
        if (signatures[entity] is not JsonObject entitySignatures)
            signatures[entity] = entitySignatures = new JsonObject();
        entitySignatures[key.KeyId] = signature;
    }

    /// <summary>The ed25519 key IDs under which <paramref name="entity"/> signed the object (other algorithms are ignored).</summary>
    public static IReadOnlyList<string> SigningKeyIds(JsonObject obj, string entity)
    {
        if (obj["signatures"] is not JsonObject signatures || signatures[entity] is not JsonObject entitySignatures)
            return [];
        return entitySignatures.Where(p => p.Key.StartsWith("ed25519:", StringComparison.Ordinal) && p.Value is JsonValue)
            .Select(p => p.Key).ToList();
    }

    /// <summary>True when <paramref name="entity"/>'s signature under <paramref name="keyId"/> verifies with the public key.</summary>
    public static bool Verify(JsonObject obj, string entity, string keyId, ReadOnlySpan<byte> publicKey) =>
        Verify(obj, SigningBytes(obj), entity, keyId, publicKey);

    /// <summary>As <see cref="Verify(JsonObject,string,string,ReadOnlySpan{byte})"/> with the signing bytes already computed (several keys, one encoding).</summary>
    public static bool Verify(JsonObject obj, ReadOnlySpan<byte> signingBytes, string entity, string keyId, ReadOnlySpan<byte> publicKey)
    {
        if (obj["signatures"] is not JsonObject signatures || signatures[entity] is not JsonObject entitySignatures
            || entitySignatures[keyId] is not JsonValue value || !value.TryGetValue<string>(out var encoded)
            || !UnpaddedBase64.TryDecode(encoded, out var signature))
            return false;
        return Ed25519KeyPair.Verify(publicKey, signingBytes, signature);
    }
}
