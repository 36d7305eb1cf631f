using System.Text.Json.Nodes;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

/// <summary>The published keys of local users as clients and other servers see them.</summary>
public sealed record PublishedKeys(JsonObject DeviceKeys, JsonObject MasterKeys, JsonObject SelfSigningKeys, JsonObject UserSigningKeys);

/// <summary>
/// Reads this server's users' device and cross-signing keys with the signatures uploaded for them merged in. A
/// signature by another user's user-signing key is shown only to that user (it is their private trust decision).
/// </summary>
public sealed class LocalKeyReader(DeviceKeyStore keys, CrossSigningStore crossSigning)
{
    /// <param name="wanted">Per user, the device IDs asked for; an empty list means all devices.</param>
    /// <param name="viewer">The user asking (their own user-signing key is included), or null for another server.</param>
    public async Task<PublishedKeys> ReadAsync(DbSession s, IReadOnlyDictionary<string, List<string>> wanted, string? viewer)
    {
        var users = wanted.Keys.ToList();
        var signatures = (await crossSigning.SignaturesForUsersAsync(s, users)).ToLookup(r => (r.UserId, r.TargetKeyId));
        var deviceKeys = new JsonObject();
        foreach (var user in users)
            deviceKeys[user] = new JsonObject();
        foreach (var row in await keys.ForUsersAsync(s, users))
        {
            if (wanted[row.UserId] is { Count: > 0 } devices && !devices.Contains(row.DeviceId))
                continue;
            deviceKeys[row.UserId]![row.DeviceId] = DeviceJson(row, signatures[(row.UserId, row.DeviceId)]);
        }

        JsonObject master = new(), selfSigning = new(), userSigning = new();
        foreach (var row in await crossSigning.ForUsersAsync(s, users))
        {
            var key = JsonNode.Parse(row.KeyJson)!.AsObject();
            KeyObjects.MergeSignatures(key, signatures[(row.UserId, row.PublicKey)]
                .Where(sig => sig.SignerUserId == row.UserId || sig.SignerUserId == viewer));
            switch (row.KeyType)
            {
                case CrossSigningStore.Master: master[row.UserId] = key; break;
                case CrossSigningStore.SelfSigning: selfSigning[row.UserId] = key; break;
                case CrossSigningStore.UserSigning when row.UserId == viewer: userSigning[row.UserId] = key; break;
            }
        }
        return new PublishedKeys(deviceKeys, master, selfSigning, userSigning);
    }

    /// <summary>One device's keys with their signatures and <c>unsigned.device_display_name</c>.</summary>
    public static JsonObject DeviceJson(DeviceKeysRow row, IEnumerable<KeySignatureRow> signatures)
    {
        var json = JsonNode.Parse(row.KeyJson)!.AsObject();
        KeyObjects.MergeSignatures(json, signatures);
        // unsigned is always there (Synapse's shape, which SyTest checks), its display name only when the device has one.
        var unsigned = new JsonObject();
        if (row.DisplayName is not null)
            unsigned["device_display_name"] = row.DisplayName;
        json["unsigned"] = unsigned;
        return json;
    }

    /// <summary>One local device's published keys, or null when it has none.</summary>
    public async Task<JsonObject?> DeviceAsync(DbSession s, string userId, string deviceId)
    {
        var published = await ReadAsync(s, new Dictionary<string, List<string>> { [userId] = [deviceId] }, viewer: null);
        return published.DeviceKeys[userId]?[deviceId]?.DeepClone().AsObject();
    }
}
