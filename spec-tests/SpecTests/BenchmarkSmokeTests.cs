using System.Diagnostics;

namespace Matrix.SpecTests;

/// <summary>
/// The benchmarks' smoke modes, so they cannot rot: each runs a few seconds against the real parts and must finish
/// cleanly. Their figures are not asserted (benchmarks print figures; CI does not time anything).
/// </summary>
public sealed class BenchmarkSmokeTests
{
    [Fact]
    public async Task The_directory_sync_benchmark_runs_in_smoke_mode()
    {
        var output = await RunAsync("LdapSync", "--smoke");
        Assert.Contains("second sync (no directory change)", output);
    }

    [Fact]
    public async Task The_media_benchmark_runs_in_smoke_mode()
    {
        var output = await RunAsync("Media", "--smoke");
        Assert.Contains("upload initiation, ms", output);
        Assert.Contains("800x600 scale", output);
    }

    [Fact]
    public async Task The_search_benchmark_runs_in_smoke_mode()
    {
        var output = await RunAsync("Search", "--smoke");
        Assert.Contains("rank", output);
        Assert.Contains("p99 ms", output);
    }

    [Fact]
    public async Task The_load_driver_runs_in_smoke_mode()
    {
        var output = await RunAsync("Load", "--smoke");
        Assert.Contains("message throughput", output);
        Assert.Contains("send-to-sync latency", output);
        Assert.Contains("fan-out: every user long-polling", output);
        Assert.Contains("initial /sync", output);
        Assert.Contains("sliding sync (MSC4186)", output);
    }

    [Fact]
    public async Task The_federation_benchmark_runs_in_smoke_mode()
    {
        var output = await RunAsync("ServerToServer", "--smoke");
        Assert.Contains("events from A to B", output);
        Assert.Contains("B now lists 52 joined members", output);
    }

    private static async Task<string> RunAsync(string benchmark, params string[] args)
    {
        var dir = Harness.RepositoryRoot.Find();
        Assert.NotNull(dir);
        var dll = new[] { "Release", "Debug" }
            .Select(c => Path.Combine(dir.FullName, "bench", benchmark, "bin", c, "net10.0", $"{benchmark}.dll"))
            .Where(File.Exists).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
        Assert.True(dll is not null, $"build bench/{benchmark} first (the test command builds the whole solution)");
        var info = new ProcessStartInfo("dotnet", [dll, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        // A guard against a hung benchmark, not a speed check: the smoke modes take a minute or two on a loaded CI machine.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"bench/{benchmark} failed:\n{output}");
        return output;
    }
}
