using System.Diagnostics;
using Matrix.Homeserver.ApplicationServices;
using Matrix.Homeserver.ServerServer;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Observability;

/// <summary>
/// Reads, when scraped, the series nobody updates as they go: the runtime's garbage collector, the process's CPU and
/// memory, and the depths of the federation and application-service queues (kept in the database, so restarts keep
/// them; two grouped counts per scrape).
/// </summary>
public sealed class ScrapeTimeMetrics(ServerMetrics metrics, Database db, FederationSender federation, AppServiceOutbox appServices,
    ILogger<ScrapeTimeMetrics> logger)
{
    private readonly SemaphoreSlim _oneScrapeAtATime = new(1, 1);

    /// <summary>The exposition text, with every scrape-time series read now.</summary>
    public async Task<string> ScrapeAsync(CancellationToken ct)
    {
        await _oneScrapeAtATime.WaitAsync(ct);
        try
        {
            ReadRuntime();
            await ReadQueuesAsync(ct);
            return PrometheusTextWriter.Write(metrics.All);
        }
        finally
        {
            _oneScrapeAtATime.Release();
        }
    }

    private void ReadRuntime()
    {
        for (var generation = 0; generation <= GC.MaxGeneration; generation++)
            metrics.GcCollections.SetTotal(GC.CollectionCount(generation), generation.ToString(System.Globalization.CultureInfo.InvariantCulture));
        metrics.GcPauseSeconds.SetTotal(GC.GetTotalPauseDuration().TotalSeconds);
        metrics.GcHeapBytes.Set(GC.GetGCMemoryInfo().HeapSizeBytes);
        metrics.GcAllocatedBytes.SetTotal(GC.GetTotalAllocatedBytes());
        using var process = Process.GetCurrentProcess();
        metrics.ProcessCpuSeconds.SetTotal(process.TotalProcessorTime.TotalSeconds);
        metrics.ProcessResidentBytes.Set(process.WorkingSet64);
        metrics.ProcessStartTime.Set(new DateTimeOffset(process.StartTime).ToUnixTimeMilliseconds() / 1000.0);
    }

    private async Task ReadQueuesAsync(CancellationToken ct)
    {
        try
        {
            var (destinations, services) = await db.ReadAsync(async s => (await federation.PendingCountsAsync(s), await appServices.PendingCountsAsync(s)), ct);
            metrics.FederationQueuePending.Clear();
            foreach (var (destination, count) in destinations)
                metrics.FederationQueuePending.Set(count, destination);
            metrics.AppServiceQueuePending.Clear();
            foreach (var (service, count) in services)
                metrics.AppServiceQueuePending.Set(count, service);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The rest of the metrics still says something while the database is down (as /health does).
            logger.LogWarning("Metrics: queue depths unavailable, the database does not answer ({Error})", e.Message);
        }
    }
}
