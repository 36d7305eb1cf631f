using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// spec-tests/python/federation_interop.py, the scenario that was run against Synapse (README: Federation), between two
/// of our servers: it drives both through their client APIs only, so it checks us the way it checked Synapse, and
/// stays runnable for the next check against another server.
/// </summary>
public sealed class FederationInteropScriptTests(TwoServersSqlitePostgres fixture) : IClassFixture<TwoServersSqlitePostgres>
{
    [Theory]
    [InlineData("10")]
    [InlineData("11")]
    public async Task The_interop_scenario_passes_between_two_of_our_servers(string roomVersion)
    {
        var (a, b) = (fixture.Servers[0], fixture.Servers[1]);
        var stdout = await PythonScript.RunAsync("federation_interop.py",
            [a.BaseUrl, a.ServerName, b.BaseUrl, b.ServerName, "--room-version", roomVersion], TimeSpan.FromMinutes(5));
        Assert.EndsWith(" passed, 0 failed", stdout.TrimEnd());
    }
}
