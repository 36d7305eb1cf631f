using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// A worker process: listens to the main process before reading where its streams stand (so nothing committed in
/// between is missed), and waits at start-up until the main process has recorded them. While Redis is away it reads
/// the recorded positions every second, trusts nothing it cached and wakes every long-poll to look for itself; when
/// Redis is back it does that once more, then follows the messages again.
/// </summary>
public sealed class WorkerReplication(ReplicationBus bus, ReplicationInbox inbox, StreamPositions streams, SyncNotifier notifier,
    ReplicationPositionStore positions, ILogger<WorkerReplication> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    public override async Task StartAsync(CancellationToken ct)
    {
        bus.ConnectionChanged += connected =>
        {
            if (connected)
                _ = CatchUpAsync(CancellationToken.None);
        };
        await bus.StartAsync(inbox.HandleAsync);
        var waited = TimeSpan.Zero;
        while (true)
        {
            var recorded = await positions.ReadAsync(ct);
            if (recorded.Count > 0)
            {
                streams.Follow(recorded);
                break;
            }
            if (waited == TimeSpan.Zero)
                logger.LogWarning("Waiting for the main process to record its stream positions (is it running on this database?)");
            await Task.Delay(Interval, ct);
            waited += Interval;
        }
        await base.StartAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Interval);
        while (await timer.WaitForNextTickAsync(ct))
            if (!bus.Connected)
                await CatchUpAsync(ct);
    }

    private async Task CatchUpAsync(CancellationToken ct)
    {
        try
        {
            streams.Follow(await positions.ReadAsync(ct));
            inbox.ForgetEverything();
            notifier.NotifyEveryone();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Reading the main process's stream positions failed");
        }
    }
}
