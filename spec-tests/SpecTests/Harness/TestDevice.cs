using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A logged-in device with real Ed25519 keys, as a crypto client would hold them: device keys signed by the device,
/// signed one-time and fallback keys, and (when set up) the user's cross-signing keys.
/// </summary>
public sealed class TestDevice(LoggedInUser user)
{
    private int _nextKey;

    public LoggedInUser User { get; } = user;
    public Ed25519KeyPair DeviceKey { get; } = Ed25519KeyPair.Generate(user.DeviceId);
    /// <summary>Stands in for the device's Curve25519 identity key: the server only stores it.</summary>
    private readonly string _identityKey = UnpaddedBase64.Encode(Ed25519KeyPair.Generate("x").PublicKey);
    public Ed25519KeyPair? Master { get; private set; }
    public Ed25519KeyPair? SelfSigning { get; private set; }
    public Ed25519KeyPair? UserSigning { get; private set; }

    public JsonObject DeviceKeys()
    {
        var keys = new JsonObject
        {
            ["user_id"] = User.UserId,
            ["device_id"] = User.DeviceId,
            ["algorithms"] = new JsonArray("m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"),
            ["keys"] = new JsonObject
            {
                ["curve25519:" + User.DeviceId] = _identityKey,
                ["ed25519:" + User.DeviceId] = DeviceKey.PublicKeyBase64,
            },
        };
        JsonSigning.Sign(keys, User.UserId, DeviceKey);
        return keys;
    }

    /// <summary><paramref name="count"/> signed one-time keys named <c>signed_curve25519:&lt;id&gt;</c>.</summary>
    public JsonObject OneTimeKeys(int count)
    {
        var keys = new JsonObject();
        for (var i = 0; i < count; i++)
            keys[$"signed_curve25519:{User.DeviceId}{_nextKey++:D5}"] = SignedKey();
        return keys;
    }

    public JsonObject SignedKey(bool fallback = false)
    {
        var key = new JsonObject { ["key"] = UnpaddedBase64.Encode(Ed25519KeyPair.Generate("x").PublicKey) };
        if (fallback)
            key["fallback"] = true;
        JsonSigning.Sign(key, User.UserId, DeviceKey);
        return key;
    }

    public Task<MatrixResponse> UploadAsync(MatrixClient c, int oneTimeKeys = 0, bool fallbackKey = false)
    {
        var body = new JsonObject { ["device_keys"] = DeviceKeys() };
        if (oneTimeKeys > 0)
            body["one_time_keys"] = OneTimeKeys(oneTimeKeys);
        if (fallbackKey)
            body["fallback_keys"] = new JsonObject { [$"signed_curve25519:fb{_nextKey++}"] = SignedKey(fallback: true) };
        return c.PostAsync("/_matrix/client/v3/keys/upload", body.ToJsonString(), User.AccessToken);
    }

    /// <summary>New cross-signing keys: the master key, and self-signing and user-signing keys signed by it.</summary>
    public JsonObject CreateCrossSigningKeys()
    {
        Master = Ed25519KeyPair.Generate("m");
        SelfSigning = Ed25519KeyPair.Generate("s");
        UserSigning = Ed25519KeyPair.Generate("u");
        return new JsonObject
        {
            ["master_key"] = CrossSigningKey(Master, "master", signer: null),
            ["self_signing_key"] = CrossSigningKey(SelfSigning, "self_signing", Master),
            ["user_signing_key"] = CrossSigningKey(UserSigning, "user_signing", Master),
        };
    }

    public JsonObject CrossSigningKey(Ed25519KeyPair key, string usage, Ed25519KeyPair? signer)
    {
        var json = new JsonObject
        {
            ["user_id"] = User.UserId,
            ["usage"] = new JsonArray(usage),
            ["keys"] = new JsonObject { ["ed25519:" + key.PublicKeyBase64] = key.PublicKeyBase64 },
        };
        if (signer is not null)
            SignAs(json, signer);
        return json;
    }

    /// <summary>Signs with a cross-signing key, whose key ID is its public key.</summary>
    public void SignAs(JsonObject json, Ed25519KeyPair key) => SignAs(json, User.UserId, key);

    public static void SignAs(JsonObject json, string userId, Ed25519KeyPair key)
    {
        var signature = UnpaddedBase64.Encode(key.Sign(JsonSigning.SigningBytes(json)));
        if (json["signatures"] is not JsonObject signatures)
            json["signatures"] = signatures = new JsonObject();
        if (signatures[userId] is not JsonObject mine)
            signatures[userId] = mine = new JsonObject();
        mine["ed25519:" + key.PublicKeyBase64] = signature;
    }
}
