using System.Diagnostics;

namespace Matrix.Bench.Load;

/// <summary>
/// Watches the processes of a server under test (ours, or another server's given by PID: Synapse with workers is several
/// processes) for their CPU time and resident memory, summed.
/// </summary>
public sealed class ServerProbe(IReadOnlyList<int> processIds)
{
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
