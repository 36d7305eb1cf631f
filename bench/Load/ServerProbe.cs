using System.Diagnostics;
using Matrix.SpecTests.Harness;

namespace Matrix.Bench.Load;

/// <summary>
/// Watches the processes of a server under test (ours, or another server's given by PID: Synapse with workers is several
/// processes) for their CPU time and resident memory, summed; for ours also its allocations and collection pauses
/// (from its metrics listener).
/// </summary>
public sealed class ServerProbe(IReadOnlyList<int> processIds, HomeserverProcess? ours = null, IReadOnlyDictionary<string, int>? named = null)
{
    /// <summary>Each named process's CPU time so far (a deployment of several: what each role costs), empty when unnamed.</summary>
    public Dictionary<string, TimeSpan> CpuTimeByProcess() => (named ?? new Dictionary<string, int>()).ToDictionary(p => p.Key, p =>
    {
        using var process = Process.GetProcessById(p.Value);
        return process.TotalProcessorTime;
    });

    /// <summary>Bytes the managed heap has allocated and seconds collections paused the server so far; null for another server.</summary>
    public async Task<(double AllocatedBytes, double GcPauseSeconds)?> RuntimeAsync()
    {
        if (ours is null)
            return null;
        var families = await ours.ScrapeMetricsAsync("/metrics");
        return (families.Value("dotnet_gc_allocated_bytes_total", "dotnet_gc_allocated_bytes_total"),
            families.Value("dotnet_gc_pause_seconds_total", "dotnet_gc_pause_seconds_total"));
    }

    public TimeSpan CpuTime()
    {
        var total = TimeSpan.Zero;
        foreach (var pid in processIds)
        {
            using var process = Process.GetProcessById(pid);
            total += process.TotalProcessorTime;
        }
        return total;
    }

    public long ResidentBytes()
    {
        long total = 0;
        foreach (var pid in processIds)
        {
            var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            total += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        return total;
    }
}
