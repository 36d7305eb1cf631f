using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// The remote device lists that updates asked to resync (a first update, or one after a gap), each user queued once
/// until a resync starts. The resync runs in the background, as Synapse's does, so the transaction that brought the
/// update is answered at once rather than after the origin's <c>user/devices</c> (or its timeout, when it is down).
/// </summary>
public sealed class DeviceListResyncQueue
{
    private readonly Channel<(string Server, string UserId)> _queue = Channel.CreateUnbounded<(string, string)>();
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);

    public ChannelReader<(string Server, string UserId)> Reader => _queue.Reader;

    public void Enqueue(string server, string userId)
    {
        if (_queued.TryAdd(userId, 0))
            _queue.Writer.TryWrite((server, userId));
    }

    /// <summary>The resync of the user starts: an update arriving from now on queues another.</summary>
    public void Starting(string userId) => _queued.TryRemove(userId, out _);
}

/// <summary>Runs the queued resyncs, a few at a time so that one server that does not answer holds up no other.</summary>
public sealed class DeviceListResyncer(DeviceListResyncQueue queue, DeviceListService deviceLists, ILogger<DeviceListResyncer> logger) : BackgroundService
{
    public const int Workers = 4;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => WorkAsync(stoppingToken)));

    private async Task WorkAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var (server, userId) in queue.Reader.ReadAllAsync(ct))
            {
                queue.Starting(userId);
                try
                {
                    await deviceLists.ResyncAsync(server, userId, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Resyncing the device list of {User} failed", userId);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }
}
