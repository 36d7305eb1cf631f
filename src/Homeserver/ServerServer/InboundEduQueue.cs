using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Replication;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// With event writers (README "Scaling out"), other servers' transactions are received by the event writers, but their
/// EDUs write streams only the main process writes (typing, receipts, presence, device lists, to-device messages). A
/// writer queues them in the transaction's stead, committed before the transaction is answered, and tells the main
/// process over Redis; the main process applies them (and at start-up what is left) in the order they came (each writer numbers its own), when told and every second (Redis away only
/// delays them). An EDU applied but not yet taken off the queue when the main process dies is applied again when it
/// is back: the EDUs are idempotent but for a to-device message, which its device then gets twice.
/// </summary>
public sealed class InboundEduQueue(HomeserverConfig config, Database db, StreamPositions streams, InboundEdus edus, ReplicationBus replication, TimeProvider clock,
    ILogger<InboundEduQueue> logger) : BackgroundService
{
    private const int Batch = 100;
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _queued = new(0, 1);

    private sealed record QueuedEdu(long Id, string Origin, string Json);

    public async Task EnqueueAsync(string origin, IReadOnlyList<JsonObject> queued, CancellationToken ct)
    {
        if (queued.Count == 0)
            return;
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(async s =>
        {
            foreach (var edu in queued)
                await s.ExecuteAsync("INSERT INTO federation_inbound_edus (id, origin, edu_json, received_ts) VALUES (@id, @origin, @json, @now)",
                    new { id = await streams.NextAsync(s, "federation_inbound_edus"), origin, json = edu.ToJsonString(), now });
        }, ct);
        replication.Publish(new ReplicationMessage.InboundEdusQueued());
    }

    /// <summary>A writer queued EDUs (the main process's inbox calls this).</summary>
    public void Wake()
    {
        if (_queued.CurrentCount == 0)
            try
            {
                _queued.Release();
            }
            catch (SemaphoreFullException)
            {
            }
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        // Without event writers (any more), what they left queued is applied once.
        for (var once = !config.Worker.SharesEvents; !ct.IsCancellationRequested; )
        {
            try
            {
                while (await ApplyBatchAsync(ct) == Batch)
                {
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Reading the queue of other servers' EDUs failed");
            }
            if (once)
                return;
            await _queued.WaitAsync(Poll, ct);
        }
    }

    private async Task<int> ApplyBatchAsync(CancellationToken ct)
    {
        var batch = (await db.ReadAsync(s => s.QueryAsync<QueuedEdu>(
            "SELECT id, origin, edu_json AS json FROM federation_inbound_edus ORDER BY received_ts, id LIMIT @limit", new { limit = (long)Batch }), ct)).ToList();
        foreach (var queued in batch)
        {
            try
            {
                if (JsonNode.Parse(queued.Json) is JsonObject edu)
                    await edus.ApplyAsync(queued.Origin, edu, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One EDU that cannot be applied must not hold up those after it.
                logger.LogWarning(e, "Dropped an EDU from {Origin} that could not be applied", queued.Origin);
            }
            await db.WriteAsync(s => s.ExecuteAsync("DELETE FROM federation_inbound_edus WHERE id = @id", new { id = queued.Id }), ct);
        }
        return batch.Count;
    }
}
