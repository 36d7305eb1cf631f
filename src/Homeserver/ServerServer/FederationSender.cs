using System.Collections.Concurrent;
using Matrix.Homeserver.Hosting;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Sends this server's events to the other servers in each room. Every event is queued per destination in the
/// database, in the event's own transaction, so a restart loses nothing; one worker per destination sends
/// transactions of at most 50 PDUs and 100 EDUs in order, backing off exponentially (capped) while a destination is
/// down (<see cref="RetryingQueues"/>). Memory per dead destination is a few fields; the queue stays in the database.
/// In a deployment with federation senders (<c>worker.federation_sender_instances</c>) the main process only queues,
/// and each destination's sender, chosen by a hash of its name, is woken over Redis.
/// </summary>
public sealed class FederationSender(Database db, FederationClient client, StreamPositions streams, HomeserverConfig config,
    TimeProvider clock, Replication.ReplicationBus replication, ILogger<FederationSender> logger) : IEventListener, IHostedService
{
    public const int MaxPdusPerTransaction = 50;
    public const int MaxEdusPerTransaction = 100;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromHours(1);

    private sealed record OutboxRow(long Id, string Kind, string Json);

    private readonly CancellationTokenSource _stopping = new();
    private RetryingQueues? _queues;
    private RetryingQueues Queues =>
        LazyInitializer.EnsureInitialized(ref _queues, () => new RetryingQueues(PassAsync, FirstBackoff, MaxBackoff, clock, _stopping.Token));
    /// <summary>Destinations queued inside a transaction, woken once it commits.</summary>
    private readonly ConcurrentDictionary<string, List<string>> _lastDestinations = new(StringComparer.Ordinal);

    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        if (!config.Federation.Enabled || EventSigning.SendingServer(pdu) != config.ServerName)
            return;
        // A room of this server's users alone (the usual case) is told so without listing its members' servers.
        if (OnlyLocalMembers(roomAfter) && (roomBefore is null || OnlyLocalMembers(roomBefore)) && TargetServer(pdu) is null)
            return;
        var destinations = roomAfter.JoinedServers.Concat(roomBefore?.JoinedServers ?? [])
            .Append(TargetServer(pdu)).OfType<string>().Where(s => s != config.ServerName).Distinct().ToList();
        if (destinations.Count == 0)
            return;
        var json = pdu.CanonicalText();
        // Entries of transactions that rolled back are never collected; bound them (their rows never existed).
        if (_lastDestinations.Count > 10_000)
            _lastDestinations.Clear();
        _lastDestinations[pdu.EventId] = destinations;
        foreach (var destination in destinations)
            await session.DeferAsync("INSERT INTO federation_outbox (id, destination, kind, json) VALUES (@id, @destination, 'pdu', @json)",
                new { id = await streams.NextAsync(session, "federation_outbox"), destination, json });
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
        if (_lastDestinations.TryRemove(pdu.EventId, out var destinations))
            foreach (var server in destinations)
                Wake(server);
    }

    /// <summary>
    /// Queues an EDU (typing, receipt, presence) of a local user for the given servers (those sharing the room or rooms)
    /// and wakes them; ephemeral, but queued like PDUs so a slow destination still gets it in order.
    /// </summary>
    public async Task SendEduAsync(IEnumerable<string> servers, string eduType, JsonObject content, CancellationToken ct)
    {
        if (!config.Federation.Enabled)
            return;
        var destinations = servers.Where(s => s != config.ServerName).Distinct().ToList();
        if (destinations.Count == 0)
            return;
        var json = new JsonObject { ["edu_type"] = eduType, ["content"] = content }.ToJsonString();
        await db.WriteAsync(async s =>
        {
            foreach (var destination in destinations)
                await s.ExecuteAsync("INSERT INTO federation_outbox (id, destination, kind, json) VALUES (@id, @destination, 'edu', @json)",
                    new { id = await streams.NextAsync(s, "federation_outbox"), destination, json });
        }, ct);
        foreach (var destination in destinations)
            Wake(destination);
    }

    /// <summary>A request from a destination shows it is back (or an admin resets its connection): retry it now.</summary>
    public void DestinationIsUp(string server)
    {
        if (SendsTo(server))
            Queues.ResetBackoff(server);
        else
            replication.Publish(new Replication.ReplicationMessage.FederationWake(server, BackUp: true));
    }

    /// <summary>Another process queued for the destination (or heard from it): sends if it is this process's to send.</summary>
    public void OnWake(string server, bool backUp)
    {
        if (!SendsTo(server))
            return;
        if (backUp)
            Queues.ResetBackoff(server);
        else
            Queues.Wake(server);
    }

    /// <summary>Whether this process sends to the destination: its federation sender, or the main process when there is none.</summary>
    private bool SendsTo(string server) => config.Worker.Handles(config.Worker.FederationSenderInstances, server);

    /// <summary>How sending to a destination fares, or null when nothing was sent to it since start-up.</summary>
    public QueueHealth? HealthOf(string server) => Queues.HealthOf(server);

    /// <summary>
    /// The server of a membership change's target, told even when none of its users is joined (a rescinded invite, a
    /// ban); an invite itself reached it through <c>/invite</c>, and a server not in the room cannot take it in a transaction.
    /// </summary>
    private bool OnlyLocalMembers(RoomSnapshot room)
    {
        foreach (var user in room.JoinedMembers)
            if (!EventSigning.IsOf(user, config.ServerName))
                return false;
        return true;
    }

    private static string? TargetServer(Pdu pdu) =>
        pdu.Type == "m.room.member" && pdu.Membership != "invite" && UserId.TryParse(pdu.StateKey, out var target) ? target.Server.Value : null;

    private void Wake(string server)
    {
        if (SendsTo(server))
            Queues.Wake(server);
        else
            replication.Publish(new Replication.ReplicationMessage.FederationWake(server, BackUp: false));
    }

    /// <summary>Sends the oldest queued PDUs and EDUs of one destination as one transaction.</summary>
    private async Task<QueuePass> PassAsync(string server, CancellationToken ct)
    {
        var rows = (await db.ReadAsync(s => s.QueryAsync<OutboxRow>(
            "SELECT id, kind, json FROM federation_outbox WHERE destination = @server ORDER BY id LIMIT @limit",
            new { server, limit = (long)(MaxPdusPerTransaction + MaxEdusPerTransaction) }), ct)).ToList();
        var pdus = rows.Where(r => r.Kind == "pdu").Take(MaxPdusPerTransaction).ToList();
        var edus = rows.Where(r => r.Kind == "edu").Take(MaxEdusPerTransaction).ToList();
        if (pdus.Count + edus.Count == 0)
            return QueuePass.Empty;
        if (!await TrySendAsync(server, pdus, edus))
            return QueuePass.Failed;
        var sent = pdus.Concat(edus).Select(r => r.Id).ToList();
        await db.WriteAsync(s =>
        {
            var args = new SqlArgs();
            return s.ExecuteAsync($"DELETE FROM federation_outbox WHERE id IN {SqlList.In(args, "id", sent)}", args);
        }, ct);
        return QueuePass.Sent;
    }

    private async Task<bool> TrySendAsync(string server, List<OutboxRow> pdus, List<OutboxRow> edus)
    {
        var txnId = $"{clock.GetUtcNow().ToUnixTimeMilliseconds()}-{(pdus.Count > 0 ? pdus[0].Id : edus[0].Id)}";
        var body = new JsonObject
        {
            ["origin"] = config.ServerName,
            ["origin_server_ts"] = clock.GetUtcNow().ToUnixTimeMilliseconds(),
            ["pdus"] = new JsonArray(pdus.Select(r => JsonNode.Parse(r.Json)).ToArray()),
            ["edus"] = new JsonArray(edus.Select(r => JsonNode.Parse(r.Json)).ToArray()),
        };
        try
        {
            await client.SendAsync(HttpMethod.Put, server, $"/_matrix/federation/v1/send/{Uri.EscapeDataString(txnId)}", body, _stopping.Token);
            return true;
        }
        catch (FederationException e)
        {
            logger.LogInformation("Sending to {Server} failed: {Reason}", server, e.Message);
            return false;
        }
    }

    /// <summary>How many PDUs and EDUs each destination has queued (destinations with none are left out).</summary>
    public async Task<List<(string Destination, long Count)>> PendingCountsAsync(DbSession s) =>
        (await s.QueryAsync<(string, long)>("SELECT destination, COUNT(*) FROM federation_outbox GROUP BY destination")).ToList();

    public async Task StartAsync(CancellationToken ct)
    {
        if (!config.Federation.Enabled)
            return;
        var pending = await db.ReadAsync(s => s.QueryAsync<string>("SELECT DISTINCT destination FROM federation_outbox"), ct);
        foreach (var server in pending.Where(SendsTo))
            Queues.Wake(server);
    }

    public Task StopAsync(CancellationToken ct)
    {
        _stopping.Cancel();
        return Task.CompletedTask;
    }
}
