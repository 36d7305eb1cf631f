using System.Diagnostics;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// spec-tests/python/federation_interop.py, the scenario that was run against Synapse (README: Federation), between two
/// of our servers: it drives both through their client APIs only, so it checks us the way it checked Synapse, and
/// stays runnable for the next check against another server.
/// </summary>
public sealed class FederationInteropScriptTests(TwoServersSqlitePostgres fixture) : IClassFixture<TwoServersSqlitePostgres>
{
    /// <summary>Debian's interpreter, which has python3-nacl; a python3 earlier on the PATH may not.</summary>
    private const string Python = "/usr/bin/python3";

    [Theory]
    [InlineData("10")]
    [InlineData("11")]
    public async Task The_interop_scenario_passes_between_two_of_our_servers(string roomVersion)
    {
        var script = Path.Combine(NodeScenario.Directory(), "..", "python", "federation_interop.py");
        var (a, b) = (fixture.Servers[0], fixture.Servers[1]);
        var info = new ProcessStartInfo(Python, [script, a.BaseUrl, a.ServerName, b.BaseUrl, b.ServerName, "--room-version", roomVersion])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"federation interop failed (exit {process.ExitCode}):\n{stdout}\n{await stderr}");
        Assert.EndsWith(" passed, 0 failed", stdout.TrimEnd());
    }
}
