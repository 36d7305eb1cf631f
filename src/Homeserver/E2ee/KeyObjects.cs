using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Json;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.E2ee;

/// <summary>Checks on the signed key objects clients upload (device keys, cross-signing keys): shape, key IDs, signatures.</summary>
public static class KeyObjects
{
    public static JsonObject ToObject(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object
            ? JsonNode.Parse(element.GetRawText())!.AsObject()
            : throw MatrixException.BadJson($"'{name}' must be an object.");

    /// <summary>The public key stored under <c>keys[keyId]</c>, decoded; null when absent or not base64.</summary>
    public static byte[]? PublicKey(JsonObject keyObject, string keyId) =>
        keyObject["keys"]?[keyId]?.AsString() is { } encoded && UnpaddedBase64.TryDecode(encoded, out var bytes) && bytes.Length == 32 ? bytes : null;

    /// <summary>True when <paramref name="signer"/>'s signature under <paramref name="keyId"/> verifies with the (unpadded base64) public key.</summary>
    public static bool IsSignedBy(JsonObject obj, string signer, string keyId, string publicKey)
    {
        try
        {
            return UnpaddedBase64.TryDecode(publicKey, out var key) && key.Length == 32 && JsonSigning.Verify(obj, signer, keyId, key);
        }
        catch (CanonicalJsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// A cross-signing key's public key: its <c>keys</c> must hold exactly one entry, <c>ed25519:&lt;public key&gt;</c>,
    /// whose value is that public key; its <c>user_id</c> and <c>usage</c> must be the expected ones.
    /// </summary>
    public static string CrossSigningPublicKey(JsonObject key, string userId, string usage, string name)
    {
        if (key["user_id"]?.AsString() != userId)
            throw MatrixException.InvalidParam($"{name}.user_id must be {userId}.");
        if (key["usage"] is not JsonArray usages || !usages.Any(u => u?.AsString() == usage))
            throw MatrixException.InvalidParam($"{name}.usage must contain \"{usage}\".");
        if (key["keys"] is not JsonObject keys || keys.Count != 1)
            throw MatrixException.InvalidParam($"{name}.keys must hold exactly one key.");
        var (keyId, value) = keys.First();
        var publicKey = value?.AsString();
        if (publicKey is null || keyId != "ed25519:" + publicKey || !UnpaddedBase64.TryDecode(publicKey, out var bytes) || bytes.Length != 32)
            throw MatrixException.InvalidParam($"{name}.keys must be {{\"ed25519:<public key>\": \"<public key>\"}}.");
        return publicKey;
    }

    /// <summary>The object without <c>signatures</c> and <c>unsigned</c>: what a signature covers, for comparing two copies of a key.</summary>
    public static string SignedPart(JsonObject obj)
    {
        try
        {
            return Convert.ToBase64String(JsonSigning.SigningBytes(obj));
        }
        catch (CanonicalJsonException e)
        {
            throw MatrixException.BadJson(e.Message);
        }
    }

    /// <summary>Adds stored signatures to a key object's <c>signatures</c>.</summary>
    public static void MergeSignatures(JsonObject obj, IEnumerable<KeySignatureRow> signatures)
    {
        foreach (var signature in signatures)
        {
            if (obj["signatures"] is not JsonObject all)
                obj["signatures"] = all = new JsonObject();
            if (all[signature.SignerUserId] is not JsonObject bySigner)
                all[signature.SignerUserId] = bySigner = new JsonObject();
            bySigner[signature.SignerKeyId] = signature.Signature;
        }
    }
}
