using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The main process of a deployment of several: announces that it started (workers drop what they held), then every
/// second records where its streams stand and tells the workers when that moved without a wake-up.
/// </summary>
public sealed class MainReplication(ReplicationBus bus, ReplicationInbox inbox, Database db, StreamPositions streams,
    ReplicationPositionStore positions, PositionAnnouncer announcer, ILogger<MainReplication> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private Dictionary<string, long> _recorded = [];

    public override async Task StartAsync(CancellationToken ct)
    {
        await db.ReadAsync(async s => { await streams.LoadAllAsync(s); return true; }, ct);
        await RecordAsync(ct);
        await bus.StartAsync(inbox.HandleAsync);
        bus.Publish(new ReplicationMessage.MainStarted());
        await base.StartAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Interval);
        while (await timer.WaitForNextTickAsync(ct))
            try
            {
                await RecordAsync(ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Recording the stream positions for the workers failed");
            }
    }

    public override async Task StopAsync(CancellationToken ct)
    {
        await base.StopAsync(ct);
        await RecordAsync(ct);
    }

    private async Task RecordAsync(CancellationToken ct)
    {
        var now = streams.VisiblePositions();
        if (now.Count == _recorded.Count && now.All(p => _recorded.GetValueOrDefault(p.Key) == p.Value))
            return;
        await positions.RecordAsync(now, ct);
        announcer.Announce([]);
        _recorded = now;
    }
}
