using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Device keys, one-time keys and fallback keys: upload for the requester's own device, query and claim for local users
/// (from the database) and remote users (from the cached device list, or over federation; a server that does not answer
/// is listed in <c>failures</c>).
/// </summary>
public sealed class KeyService(
    Database db, DeviceKeyStore keys, DeviceListStore deviceLists, CrossSigningStore crossSigning, LocalKeyReader localKeys,
    DeviceListService deviceListService, ApplicationServices.AppServiceDeviceData appServices, FederationClient federation, HomeserverConfig config,
    ILogger<KeyService> logger)
{
    public const int MaxUsersPerRequest = 1000;
    public const int MaxOneTimeKeysPerUpload = 1000;
    public const int DefaultRemoteTimeoutMs = 10_000;

    private bool IsLocal(string userId) => ServerOf(userId) == config.ServerName;

    private static string? ServerOf(string userId) => UserId.TryParse(userId, out var user) ? user.Server.Value : null;

    /// <summary><c>keys/upload</c>: stores the device's keys and returns its one-time key counts.</summary>
    public async Task<JsonObject> UploadAsync(Requester requester, JsonElement body, CancellationToken ct)
    {
        var userId = requester.UserId.Value;
        var deviceId = requester.DeviceId;
        if (deviceId.Length == 0)
            throw new MatrixException(400, "M_MISSING_PARAM", "Uploading keys needs a device: an application service passes device_id.");
        var deviceKeys = body.OptionalObject("device_keys") is { } dk ? KeyObjects.ToObject(dk, "device_keys") : null;
        if (deviceKeys is not null)
            ValidateDeviceKeys(deviceKeys, userId, deviceId);
        var oneTimeKeys = ParseKeyMap(body, "one_time_keys");
        if (oneTimeKeys.Count > MaxOneTimeKeysPerUpload)
            throw MatrixException.InvalidParam($"At most {MaxOneTimeKeysPerUpload} one-time keys may be uploaded at once.");
        var fallbackKeys = ParseKeyMap(body, "fallback_keys");

        var (counts, changeId) = await db.WriteAsync(async s =>
        {
            long? change = null;
            if (deviceKeys is not null)
            {
                deviceKeys.Remove("unsigned");
                var stored = await keys.GetDeviceKeysAsync(s, userId, deviceId);
                if (stored != deviceKeys.ToJsonString())
                {
                    await keys.SetDeviceKeysAsync(s, userId, deviceId, deviceKeys.ToJsonString());
                    change = await deviceLists.AddChangeAsync(s, userId);
                }
            }
            foreach (var (keyId, algorithm, json) in oneTimeKeys)
            {
                var existing = await keys.GetOneTimeKeyAsync(s, userId, deviceId, keyId);
                if (existing is null)
                    await keys.AddOneTimeKeyAsync(s, userId, deviceId, keyId, algorithm, json);
                else if (existing != json)
                    throw MatrixException.InvalidParam($"One-time key {keyId} already exists with different content.");
            }
            foreach (var (keyId, algorithm, json) in fallbackKeys)
                await keys.SetFallbackKeyAsync(s, userId, deviceId, algorithm, keyId, json);
            return (await keys.CountOneTimeKeysAsync(s, userId, deviceId), change);
        }, ct);
        if (changeId is { } id)
            await deviceListService.PublishDeviceChangesAsync(userId, [(deviceId, id)], ct);
        if (oneTimeKeys.Count + fallbackKeys.Count > 0)
            await appServices.KeyCountsChangedAsync(userId, deviceId, ct);
        return new JsonObject { ["one_time_key_counts"] = CountsJson(counts) };
    }

    /// <summary>One-time key counts as sync and upload report them; <c>signed_curve25519</c> is always present, as clients expect.</summary>
    public static JsonObject CountsJson(Dictionary<string, long> counts) =>
        new(CountsFields(counts).Select(field => KeyValuePair.Create(field.Algorithm, field.Count)));

    /// <summary>The fields of <see cref="CountsJson"/> (a /sync response writes them straight out).</summary>
    public static (string Algorithm, JsonNode? Count)[] CountsFields(Dictionary<string, long> counts)
    {
        var withDefault = counts.ContainsKey(SignedCurve25519) ? 0 : 1;
        var fields = new (string, JsonNode?)[counts.Count + withDefault];
        if (withDefault == 1)
            fields[0] = (SignedCurve25519, 0);
        foreach (var (algorithm, count) in counts)
            fields[withDefault++] = (algorithm, count);
        return fields;
    }

    private const string SignedCurve25519 = "signed_curve25519";

    private static void ValidateDeviceKeys(JsonObject deviceKeys, string userId, string deviceId)
    {
        if (deviceKeys["user_id"]?.AsString() != userId)
            throw MatrixException.InvalidParam($"device_keys.user_id must be {userId}.");
        if (deviceKeys["device_id"]?.AsString() != deviceId)
            throw MatrixException.InvalidParam($"device_keys.device_id must be the requesting device, {deviceId}.");
        if (deviceKeys["algorithms"] is not JsonArray algorithms || algorithms.Any(a => a?.AsString() is null))
            throw MatrixException.BadJson("device_keys.algorithms must be an array of strings.");
        if (deviceKeys["keys"] is not JsonObject keyMap || keyMap.Any(k => !k.Key.Contains(':') || k.Value?.AsString() is null))
            throw MatrixException.BadJson("device_keys.keys must map <algorithm>:<device_id> to keys.");
        // The self-signature is the clients' to verify (they do, against the key they trust); the spec does not ask the
        // server to, and Synapse stores such keys as they come.
    }

    /// <summary>A map of <c>&lt;algorithm&gt;:&lt;key_id&gt;</c> to a key (a signed object, or a bare string for unsigned algorithms).</summary>
    private static List<(string KeyId, string Algorithm, string Json)> ParseKeyMap(JsonElement body, string name)
    {
        if (body.OptionalObject(name) is not { } map)
            return [];
        var parsed = new List<(string, string, string)>();
        foreach (var property in map.EnumerateObject())
        {
            var colon = property.Name.IndexOf(':');
            if (colon <= 0 || colon == property.Name.Length - 1)
                throw MatrixException.BadJson($"{name} keys must be named <algorithm>:<key_id>.");
            var value = property.Value;
            if (value.ValueKind == JsonValueKind.Object ? !value.TryGetProperty("key", out var key) || key.ValueKind != JsonValueKind.String
                    : value.ValueKind != JsonValueKind.String)
                throw MatrixException.BadJson($"{name}.{property.Name} must be a key string or an object with a 'key' string.");
            var json = JsonNode.Parse(value.GetRawText())!;
            parsed.Add((JsonFields.WithoutNul(property.Name, name), property.Name[..colon], CanonicalJson.EncodeToString(json)));
        }
        return parsed;
    }

    /// <summary><c>keys/query</c> for a local client: local users from the database, remote users cached or over federation.</summary>
    public async Task<JsonObject> QueryAsync(string requester, Dictionary<string, List<string>> wanted, int timeoutMs, CancellationToken ct)
    {
        if (wanted.Count > MaxUsersPerRequest)
            throw MatrixException.InvalidParam($"At most {MaxUsersPerRequest} users may be queried at once.");
        var local = wanted.Where(p => IsLocal(p.Key)).ToDictionary(p => p.Key, p => p.Value);
        var remote = wanted.Where(p => !IsLocal(p.Key) && UserId.TryParse(p.Key, out _)).ToDictionary(p => p.Key, p => p.Value);
        var published = await db.ReadAsync(s => localKeys.ReadAsync(s, local, requester), ct);
        var response = new JsonObject
        {
            ["device_keys"] = published.DeviceKeys, ["master_keys"] = published.MasterKeys,
            ["self_signing_keys"] = published.SelfSigningKeys, ["user_signing_keys"] = published.UserSigningKeys,
            ["failures"] = new JsonObject(),
        };

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(timeoutMs);
        var tracked = await deviceListService.CurrentlyTrackedAsync(remote.Keys.ToList(), ct);
        // Asked for all of an untracked user's devices, the server starts tracking them (as Synapse does) when a room is
        // shared: later queries read the cache, which the user's server keeps current.
        tracked.UnionWith(await deviceListService.StartTrackingAsync(
            remote.Where(p => p.Value.Count == 0 && !tracked.Contains(p.Key)).Select(p => p.Key).ToList(), timeout.Token));
        await AddCachedRemoteKeysAsync(response, remote.Where(p => tracked.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value), ct);
        var byServer = remote.Where(p => !tracked.Contains(p.Key)).GroupBy(p => ServerOf(p.Key)!);
        var answers = await Task.WhenAll(byServer.Select(async group =>
        {
            var request = new JsonObject { ["device_keys"] = new JsonObject(group.Select(p =>
                KeyValuePair.Create(p.Key, (JsonNode?)new JsonArray(p.Value.Select(d => (JsonNode)d).ToArray())))) };
            return (Server: group.Key, Answer: await AskAsync(group.Key, "/_matrix/federation/v1/user/keys/query", request, timeout.Token));
        }));
        foreach (var (server, answer) in answers)
        {
            if (answer is null)
            {
                response["failures"]![server] = new JsonObject { ["errcode"] = "M_UNREACHABLE", ["error"] = "The server did not answer." };
                continue;
            }
            foreach (var section in new[] { "device_keys", "master_keys", "self_signing_keys" })
                foreach (var (userId, value) in answer[section] as JsonObject ?? [])
                    if (remote.ContainsKey(userId) && ServerOf(userId) == server && value is JsonObject)
                        response[section]![userId] = value.DeepClone();
        }
        return response;
    }

    private async Task AddCachedRemoteKeysAsync(JsonObject response, Dictionary<string, List<string>> users, CancellationToken ct)
    {
        if (users.Count == 0)
            return;
        var (devices, crossSigningKeys) = await db.ReadAsync(async s =>
            (await deviceLists.RemoteDevicesAsync(s, users.Keys.ToList()), await crossSigning.ForUsersAsync(s, users.Keys.ToList())), ct);
        foreach (var userId in users.Keys)
            response["device_keys"]![userId] = new JsonObject();
        foreach (var device in devices.Where(d => d.KeyJson is not null && (users[d.UserId].Count == 0 || users[d.UserId].Contains(d.DeviceId))))
        {
            var json = JsonNode.Parse(device.KeyJson!)!.AsObject();
            if (device.DisplayName is not null)
                json["unsigned"] = new JsonObject { ["device_display_name"] = device.DisplayName };
            response["device_keys"]![device.UserId]![device.DeviceId] = json;
        }
        foreach (var key in crossSigningKeys)
            if (key.KeyType is CrossSigningStore.Master or CrossSigningStore.SelfSigning)
                response[key.KeyType == CrossSigningStore.Master ? "master_keys" : "self_signing_keys"]![key.UserId] = JsonNode.Parse(key.KeyJson);
    }

    /// <summary><c>keys/claim</c>: one key per requested device, local users' from the database, remote users' over federation.</summary>
    public async Task<JsonObject> ClaimAsync(Dictionary<string, Dictionary<string, string>> wanted, int timeoutMs, CancellationToken ct)
    {
        if (wanted.Sum(p => p.Value.Count) > MaxUsersPerRequest)
            throw MatrixException.InvalidParam($"At most {MaxUsersPerRequest} devices may be claimed at once.");
        var claimed = await ClaimLocalAsync(wanted.Where(p => IsLocal(p.Key)).ToDictionary(p => p.Key, p => p.Value), ct);
        var failures = new JsonObject();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(timeoutMs);
        var byServer = wanted.Where(p => !IsLocal(p.Key) && UserId.TryParse(p.Key, out _)).GroupBy(p => ServerOf(p.Key)!);
        var answers = await Task.WhenAll(byServer.Select(async group =>
        {
            var request = new JsonObject { ["one_time_keys"] = new JsonObject(group.Select(p => KeyValuePair.Create(p.Key,
                (JsonNode?)new JsonObject(p.Value.Select(d => KeyValuePair.Create(d.Key, (JsonNode?)d.Value)))))) };
            return (Server: group.Key, Answer: await AskAsync(group.Key, "/_matrix/federation/v1/user/keys/claim", request, timeout.Token));
        }));
        foreach (var (server, answer) in answers)
        {
            if (answer is null)
            {
                failures[server] = new JsonObject { ["errcode"] = "M_UNREACHABLE", ["error"] = "The server did not answer." };
                continue;
            }
            foreach (var (userId, devices) in answer["one_time_keys"] as JsonObject ?? [])
                if (wanted.ContainsKey(userId) && ServerOf(userId) == server && devices is JsonObject)
                    claimed[userId] = devices.DeepClone();
        }
        return new JsonObject { ["one_time_keys"] = claimed, ["failures"] = failures };
    }

    /// <summary>
    /// Claims local keys: a one-time key when one is left (each handed out once, whoever else is claiming), else the
    /// fallback key. Unknown users and devices are simply absent from the answer.
    /// </summary>
    public async Task<JsonObject> ClaimLocalAsync(Dictionary<string, Dictionary<string, string>> wanted, CancellationToken ct)
    {
        if (wanted.Count == 0)
            return new JsonObject();
        var claimed = await db.WriteAsync(async s =>
        {
            var result = new JsonObject();
            foreach (var (userId, devices) in wanted)
            {
                var claimed = new JsonObject();
                foreach (var (deviceId, algorithm) in devices)
                {
                    var key = await keys.TakeOneTimeKeyAsync(s, userId, deviceId, algorithm) ?? await keys.UseFallbackKeyAsync(s, userId, deviceId, algorithm);
                    if (key is not null)
                        claimed[deviceId] = new JsonObject { [key.KeyId] = JsonNode.Parse(key.KeyJson) };
                }
                if (claimed.Count > 0)
                    result[userId] = claimed;
            }
            return result;
        }, ct);
        foreach (var (userId, devices) in claimed)
            foreach (var (deviceId, _) in (JsonObject)devices!)
                await appServices.KeyCountsChangedAsync(userId, deviceId, ct);
        return claimed;
    }

    private async Task<JsonObject?> AskAsync(string server, string path, JsonObject request, CancellationToken ct)
    {
        try
        {
            return await federation.SendAsync(HttpMethod.Post, server, path, request, ct) as JsonObject;
        }
        catch (Exception e) when (e is FederationException or OperationCanceledException)
        {
            logger.LogInformation("{Path} on {Server} failed: {Reason}", path, server, e.Message);
            return null;
        }
    }
}
