using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// Drops the cache entries nobody has used for <c>caches.expire_after_ms</c>, checking a tenth of that often (at most
/// once a minute), and lets the <see cref="IdleMemoryTrimmer"/> give what they held back to the system once the server
/// is quiet: the caches are bounded, but full they hold the working set of the server's busiest hour.
/// </summary>
public sealed partial class CacheExpiry(IEnumerable<IExpiringCache> caches, IdleMemoryTrimmer trimmer, Config.HomeserverConfig config,
    TimeProvider clock, ILogger<CacheExpiry> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (config.Caches.ExpireAfterMs is not { } expireAfter)
            return;
        var interval = TimeSpan.FromMilliseconds(Math.Clamp(expireAfter / 10, 1_000, 60_000));
        using var timer = new PeriodicTimer(interval, clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var expired = ExpireUnusedSince(Environment.TickCount64 - expireAfter);
            LogSwept(logger, expired);
            if (expired > 0)
                trimmer.MemoryReleased();
        }
    }

    internal int ExpireUnusedSince(long cutoff) => caches.Sum(cache => cache.ExpireUnusedSince(cutoff));

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Caches swept: {Expired} entries unused for caches.expire_after_ms dropped")]
    private static partial void LogSwept(ILogger logger, int expired);
}
