using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Hosting;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ApplicationServices;

/// <summary>
/// Pushes to each application service the events it is interested in (spec: application-service API,
/// "Pushing events"): queued in the event's own database transaction, so a restart or an outage of the service loses
/// nothing, and sent in order as <c>PUT /_matrix/app/v1/transactions/{txnId}</c> with the <c>hs_token</c>; a failed
/// transaction is retried unchanged, with exponential backoff. In a deployment with application-service senders
/// (<c>worker.app_service_sender_instances</c>) the main process only queues, and each service's sender, chosen by a hash
/// of its ID, is woken over Redis.
/// </summary>
public sealed class AppServiceSender(
    AppServiceRegistry registry, Database db, AppServiceOutbox outbox, RoomStore rooms, UserStore users, E2ee.DeviceKeyStore deviceKeys,
    AppServiceClient client, AppServiceQueries queries, TimeProvider clock, Config.HomeserverConfig config, Replication.ReplicationBus replication,
    ILogger<AppServiceSender> logger) : IEventListener, IHostedService
{
    public const int MaxEventsPerTransaction = 100;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(5);

    private readonly CancellationTokenSource _stopping = new();
    /// <summary>Services queued inside a transaction, woken once it commits.</summary>
    private readonly ConcurrentDictionary<string, List<string>> _queuedFor = new(StringComparer.Ordinal);
    private RetryingQueues? _queues;

    private RetryingQueues Queues =>
        LazyInitializer.EnsureInitialized(ref _queues, () => new RetryingQueues(PassAsync, FirstBackoff, MaxBackoff, clock, _stopping.Token));

    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        foreach (var service in registry.All.Where(r => r.Url is not null))
            if (await IsInterestedAsync(session, service, pdu, roomAfter, roomBefore))
            {
                await outbox.AddAsync(session, service.Id, AppServiceOutbox.Event,
                    ClientEventFormat.ToClient(pdu, clock.GetUtcNow().ToUnixTimeMilliseconds()).ToJsonString());
                WakeAfterCommit(pdu.EventId, service.Id);
            }
    }

    /// <summary>Wakes the service once the transaction persisting the event commits (rows queued in it are then visible).</summary>
    public void WakeAfterCommit(string eventId, string serviceId)
    {
        // Entries of transactions that rolled back are never collected; bound them (their rows never existed).
        if (_queuedFor.Count > 10_000)
            _queuedFor.Clear();
        var services = _queuedFor.GetOrAdd(eventId, _ => []);
        lock (services)
            services.Add(serviceId);
    }

    public void Wake(string serviceId)
    {
        if (SendsFor(serviceId))
            Queues.Wake(serviceId);
        else
            replication.Publish(new Replication.ReplicationMessage.AppServiceWake(serviceId));
    }

    /// <summary>Another process queued for the service: sends if it is this process's to send.</summary>
    public void OnWake(string serviceId)
    {
        if (SendsFor(serviceId))
            Queues.Wake(serviceId);
    }

    /// <summary>Whether this process sends to the service: its application-service sender, or the main process when there is none.</summary>
    private bool SendsFor(string serviceId) => config.Worker.Handles(config.Worker.AppServiceSenderInstances, serviceId);

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
        if (_queuedFor.TryRemove(pdu.EventId, out var services))
            foreach (var id in services.Distinct())
                Wake(id);
    }

    /// <summary>
    /// Queues an ephemeral event of a room (<c>m.typing</c>, <c>m.receipt</c>) for the services that asked for
    /// ephemeral events (MSC2409) and have users in the room (or claim the room).
    /// </summary>
    public Task QueueEphemeralAsync(RoomSnapshot room, JsonObject ephemeralEvent, CancellationToken ct)
    {
        ephemeralEvent["room_id"] = room.RoomId;
        return QueueEphemeralAsync(r => r.IsInterestedInRoom(room.RoomId) || room.MemberUserIds.Any(r.IsInterestedInUser), ephemeralEvent, ct);
    }

    /// <summary>Queues a user's <c>m.presence</c> for the services with users among those sharing a room with them.</summary>
    public Task QueuePresenceAsync(IReadOnlyCollection<string> sharingUsers, JsonObject presenceEvent, CancellationToken ct) =>
        QueueEphemeralAsync(r => sharingUsers.Any(r.IsInterestedInUser), presenceEvent, ct);

    private async Task QueueEphemeralAsync(Func<AppServiceRegistration, bool> isInterested, JsonObject ephemeralEvent, CancellationToken ct)
    {
        var interested = registry.All.Where(r => r.Url is not null && r.ReceiveEphemeral && isInterested(r)).ToList();
        if (interested.Count == 0)
            return;
        var json = ephemeralEvent.ToJsonString();
        await db.WriteAsync(async s =>
        {
            foreach (var service in interested)
                await outbox.AddAsync(s, service.Id, AppServiceOutbox.Ephemeral, json);
        }, ct);
        foreach (var service in interested)
            Wake(service.Id);
    }

    /// <summary>
    /// Whether the service wants the event: its sender or (for member events) its subject is one of the service's
    /// users, the room is in its rooms namespace, one of the room's members (before or after the event) is one of its
    /// users, or one of the room's aliases is in its aliases namespace.
    /// </summary>
    private async Task<bool> IsInterestedAsync(DbSession session, AppServiceRegistration service, Pdu pdu, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        if (service.IsInterestedInUser(pdu.Sender) || service.IsInterestedInRoom(pdu.RoomId)
            || (pdu.Type == "m.room.member" && pdu.StateKey is { } target && service.IsInterestedInUser(target)))
            return true;
        if (roomAfter.MemberUserIds.Concat(roomBefore?.MemberUserIds ?? []).Any(service.IsInterestedInUser))
            return true;
        return service.Namespaces.Aliases.Count > 0 && (await rooms.AliasesOfAsync(session, pdu.RoomId)).Any(service.IsInterestedInAlias);
    }

    /// <summary>Sends the transaction in flight, or starts the next one from the queue.</summary>
    private async Task<QueuePass> PassAsync(string serviceId, CancellationToken ct)
    {
        if (registry.ById(serviceId) is not { Url: not null } service)
            return QueuePass.Empty;
        var (transaction, rows, started) = await db.WriteAsync(async s =>
        {
            var inFlight = await outbox.InFlightAsync(s, serviceId);
            var batch = await outbox.RowsAsync(s, serviceId, inFlight?.LastRowId, MaxEventsPerTransaction);
            if (inFlight is not null || batch.Count == 0)
                return (inFlight, batch, false);
            inFlight = new InFlightTransaction(batch[0].Id, batch[^1].Id);
            await outbox.StartAsync(s, serviceId, inFlight);
            return (inFlight, batch, true);
        }, ct);
        if (transaction is null)
            return QueuePass.Empty;

        var events = Of(rows, AppServiceOutbox.Event);
        if (started)
            await queries.AskForUnknownUsersAsync(events.SelectMany(UsersNamed), ct);
        var body = new JsonObject { ["events"] = events };
        if (service.ReceiveEphemeral)
        {
            body["ephemeral"] = Of(rows, AppServiceOutbox.Ephemeral);
            body["de.sorunome.msc2409.ephemeral"] = Of(rows, AppServiceOutbox.Ephemeral);
        }
        if (service.DeviceData)
            await AddDeviceDataAsync(body, rows, ct);
        if (!await PutTransactionAsync(service, transaction.TxnId, body, ct))
            return QueuePass.Failed;
        await db.WriteAsync(s => outbox.CompleteAsync(s, serviceId, transaction), ct);
        return QueuePass.Sent;
    }

    /// <summary>The sender of a client-format event, and the subject of a member event.</summary>
    private static IEnumerable<string> UsersNamed(JsonNode? clientEvent)
    {
        if (clientEvent?["sender"] is JsonValue sender && sender.TryGetValue<string>(out var senderId))
            yield return senderId;
        if (clientEvent?["type"] is JsonValue type && type.TryGetValue<string>(out var typeName) && typeName == "m.room.member"
            && clientEvent["state_key"] is JsonValue stateKey && stateKey.TryGetValue<string>(out var subject))
            yield return subject;
    }

    private static JsonArray Of(List<OutboxRow> rows, string kind) =>
        new(rows.Where(r => r.Kind == kind).Select(r => JsonNode.Parse(r.Json)).ToArray());

    /// <summary>
    /// The MSC3202/MSC4203 fields, under the unstable names bridges read: to-device messages, device-list changes
    /// (the latest row per user decides between changed and left) and the current key counts of devices whose keys
    /// changed.
    /// </summary>
    private async Task AddDeviceDataAsync(JsonObject body, List<OutboxRow> rows, CancellationToken ct)
    {
        body["de.sorunome.msc2409.to_device"] = Of(rows, AppServiceOutbox.ToDevice);
        var lists = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var row in Of(rows, AppServiceOutbox.DeviceList))
            lists[row!["user_id"]!.GetValue<string>()] = row["left"]!.GetValue<bool>();
        body["org.matrix.msc3202.device_lists"] = new JsonObject
        {
            ["changed"] = new JsonArray(lists.Where(p => !p.Value).Select(p => (JsonNode?)p.Key).ToArray()),
            ["left"] = new JsonArray(lists.Where(p => p.Value).Select(p => (JsonNode?)p.Key).ToArray()),
        };
        var devices = Of(rows, AppServiceOutbox.KeyCounts).Select(r => (User: r!["user_id"]!.GetValue<string>(), Device: r["device_id"]!.GetValue<string>()))
            .Distinct().ToList();
        if (devices.Count == 0)
            return;
        var counts = new JsonObject();
        var fallbackTypes = new JsonObject();
        await db.ReadAsync(async s =>
        {
            foreach (var (user, device) in devices)
            {
                ((counts[user] ??= new JsonObject()) as JsonObject)![device] = E2ee.KeyService.CountsJson(await deviceKeys.CountOneTimeKeysAsync(s, user, device));
                ((fallbackTypes[user] ??= new JsonObject()) as JsonObject)![device] =
                    new JsonArray((await deviceKeys.UnusedFallbackAlgorithmsAsync(s, user, device)).Select(a => (JsonNode?)a).ToArray());
            }
            return 0;
        }, ct);
        body["org.matrix.msc3202.device_one_time_keys_count"] = counts;
        body["org.matrix.msc3202.device_one_time_key_counts"] = counts.DeepClone();
        body["org.matrix.msc3202.device_unused_fallback_key_types"] = fallbackTypes;
    }

    private async Task<bool> PutTransactionAsync(AppServiceRegistration service, long txnId, JsonObject body, CancellationToken ct)
    {
        var answer = await client.SendAsync(service, HttpMethod.Put, $"/_matrix/app/v1/transactions/{txnId}", body, ct);
        if (!answer.Ok)
            logger.LogInformation("Transaction {TxnId} to application service {Id} failed: {Reason}", txnId, service.Id,
                answer.Failure ?? $"status {answer.Status}");
        return answer.Ok;
    }

    /// <summary>A request from the service shows it is up: retry its queue now.</summary>
    public void ServiceIsUp(string serviceId) => Queues.ResetBackoff(serviceId);

    public async Task StartAsync(CancellationToken ct)
    {
        if (config.Worker.IsMain)
            await CreateOwnUsersAsync(ct);
        foreach (var id in (await db.ReadAsync(s => outbox.PendingServicesAsync(s), ct)).Where(SendsFor))
            Queues.Wake(id);
    }

    /// <summary>Each service's own user exists from the start (and from the reload that adds the service), so it can act as itself.</summary>
    public async Task CreateOwnUsersAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(async s =>
        {
            foreach (var service in registry.All)
                await users.InsertAsync(s, service.SenderUserId, passwordHash: null, isAdmin: false, now);
        }, ct);
    }

    public Task StopAsync(CancellationToken ct)
    {
        _stopping.Cancel();
        return Task.CompletedTask;
    }
}
