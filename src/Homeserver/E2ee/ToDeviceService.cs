using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.ServerServer;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Send-to-device messaging: messages for local devices are stored until the device's next sync token acknowledges
/// them; messages for remote users go to their servers as <c>m.direct_to_device</c> EDUs through the persistent queue.
/// </summary>
public sealed class ToDeviceService(
    Database db, ToDeviceStore store, DeviceStore devices, SyncNotifier notifier, FederationSender federation,
    ApplicationServices.AppServiceDeviceData appServices, HomeserverConfig config, TimeProvider clock)
{
    public const int MaxMessagesPerRequest = 10_000;
    public const int MaxMessagesPerSync = 100;

    /// <summary><c>PUT /sendToDevice/{type}/{txnId}</c>: processed once per device and transaction ID.</summary>
    public async Task SendAsync(Requester requester, string type, string txnId, JsonElement body, CancellationToken ct)
    {
        var messages = body.OptionalObject("messages") ?? throw MatrixException.MissingParam("messages");
        var sender = requester.UserId.Value;
        var local = new List<(string UserId, string? DeviceId, JsonNode Content)>();
        var remote = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        var count = 0;
        foreach (var forUser in messages.EnumerateObject())
        {
            if (!UserId.TryParse(forUser.Name, out var target))
                throw MatrixException.InvalidParam($"{forUser.Name} is not a valid user ID.");
            if (forUser.Value.ValueKind != JsonValueKind.Object)
                throw MatrixException.BadJson($"messages.{forUser.Name} must map device IDs to message contents.");
            foreach (var forDevice in forUser.Value.EnumerateObject())
            {
                if (forDevice.Value.ValueKind != JsonValueKind.Object)
                    throw MatrixException.BadJson($"messages.{forUser.Name}.{forDevice.Name} must be an object.");
                if (++count > MaxMessagesPerRequest)
                    throw MatrixException.InvalidParam($"At most {MaxMessagesPerRequest} messages may be sent at once.");
                var content = JsonNode.Parse(forDevice.Value.GetRawText())!;
                if (target.Server.Value == config.ServerName)
                    local.Add((target.Value, forDevice.Name == "*" ? null : JsonFields.WithoutNul(forDevice.Name, "device_id"), content));
                else
                {
                    var server = target.Server.Value;
                    if (!remote.TryGetValue(server, out var forServer))
                        remote[server] = forServer = new JsonObject();
                    if (forServer[target.Value] is not JsonObject byDevice)
                        forServer[target.Value] = byDevice = new JsonObject();
                    byDevice[forDevice.Name] = content;
                }
            }
        }

        var toServices = await db.WriteAsync(async s =>
            await store.TryAddTxnAsync(s, sender, requester.DeviceId, txnId, clock.GetUtcNow().ToUnixTimeMilliseconds())
                ? await DeliverLocallyAsync(s, sender, type, local)
                : null, ct);
        if (toServices is null)
            return;
        appServices.Wake(toServices);
        notifier.Notify(local.Select(m => m.UserId).Distinct());
        foreach (var (server, forServer) in remote)
            await federation.SendEduAsync([server], "m.direct_to_device", new JsonObject
            {
                ["sender"] = sender, ["type"] = type, ["message_id"] = $"{requester.DeviceId}-{txnId}", ["messages"] = forServer,
            }, ct);
    }

    /// <summary>An <c>m.direct_to_device</c> EDU: messages from one of the origin's users for local devices.</summary>
    public async Task ReceiveAsync(string origin, JsonObject content, CancellationToken ct)
    {
        if (content["sender"]?.AsString() is not { } sender || !UserId.TryParse(sender, out var senderId) || senderId.Server.Value != origin
            || content["type"]?.AsString() is not { } type || content["messages"] is not JsonObject messages)
            return;
        var local = new List<(string UserId, string? DeviceId, JsonNode Content)>();
        foreach (var (userId, byDevice) in messages)
            if (UserId.TryParse(userId, out var target) && target.Server.Value == config.ServerName && byDevice is JsonObject devicesMap)
                foreach (var (deviceId, message) in devicesMap.Take(MaxMessagesPerRequest))
                    if (message is JsonObject)
                        local.Add((userId, deviceId == "*" ? null : deviceId, message.DeepClone()));
        if (local.Count == 0)
            return;
        appServices.Wake(await db.WriteAsync(s => DeliverLocallyAsync(s, sender, type, local), ct));
        notifier.Notify(local.Select(m => m.UserId).Distinct());
    }

    /// <summary>
    /// Stores each message for its device, or for every device of the user when the device is <c>*</c>; unknown devices
    /// get nothing. Devices of an application service's users go to the service when it takes device data (MSC4203);
    /// those services are returned, to wake after the commit.
    /// </summary>
    private async Task<List<string>> DeliverLocallyAsync(DbSession s, string sender, string type, List<(string UserId, string? DeviceId, JsonNode Content)> messages)
    {
        var services = new List<string>();
        foreach (var (userId, deviceId, content) in messages)
        {
            var json = new JsonObject { ["sender"] = sender, ["type"] = type, ["content"] = content.DeepClone() }.ToJsonString();
            var targets = deviceId is null
                ? (await devices.ListAsync(s, userId)).Select(d => d.DeviceId).ToList()
                : await devices.GetAsync(s, userId, deviceId) is null ? [] : [deviceId];
            var service = appServices.ServiceFor(userId);
            foreach (var target in targets)
                if (service is null)
                    await store.AddAsync(s, userId, target, json);
                else
                {
                    await appServices.AddToDeviceAsync(s, service, userId, target, sender, type, content);
                    services.Add(service.Id);
                }
        }
        return services;
    }

    /// <summary>What a sync reads from the device's inbox (in its batch of reads) before <see cref="ForSyncAsync"/>.</summary>
    public sealed record SyncReads(SqlRead<ToDeviceRow, List<ToDeviceRow>>? Pending, SqlRead<long, bool>? Acknowledged)
    {
        public ReadBatch AddTo(ReadBatch batch) => batch.Add(Pending).Add(Acknowledged);
    }

    /// <summary>No pending read when the stream has not moved since the token (nothing can be new).</summary>
    public SyncReads ReadsForSync(string userId, string deviceId, long? since, long upTo) =>
        new(since >= upTo ? null : store.Pending(userId, deviceId, since ?? 0, upTo, MaxMessagesPerSync),
            since is > 0 ? store.AnyUpTo(userId, deviceId, since.Value) : null);

    /// <summary>
    /// The device's messages for a sync: those up to <paramref name="since"/> were acknowledged and are deleted; at most
    /// <see cref="MaxMessagesPerSync"/> newer ones are returned with the position the next token must carry.
    /// </summary>
    public async ValueTask<(JsonArray Events, long Position)> ForSyncAsync(string userId, string deviceId, long? since, long upTo, SyncReads read,
        CancellationToken ct)
    {
        if (read.Acknowledged?.Result == true)
            await db.WriteAsync(s => store.DeleteDeliveredAsync(s, userId, deviceId, since!.Value), ct);
        if (read.Pending?.Result is not { Count: > 0 } rows)
            return ([], upTo);
        var events = new JsonArray(rows.Select(r => JsonNode.Parse(r.MessageJson)).ToArray());
        return (events, rows.Count == MaxMessagesPerSync ? rows[^1].StreamId : upTo);
    }
}
