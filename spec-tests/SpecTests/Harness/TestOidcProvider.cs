using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// An upstream OpenID Connect provider on loopback: npm oidc-provider (a certified implementation) run by
/// spec-tests/js/oidc-upstream.mjs with the clients and accounts a test gives it, and its development sign-in pages
/// (any password is accepted for a known account).
/// </summary>
public sealed class TestOidcProvider : IAsyncDisposable
{
    private readonly Process _process;
    public string Issuer { get; }

    private TestOidcProvider(Process process, string issuer)
    {
        _process = process;
        Issuer = issuer;
    }

    public static async Task<TestOidcProvider> StartAsync(JsonArray clients, JsonObject accounts)
    {
        var port = FreePorts.Next();
        var options = new JsonObject { ["port"] = port, ["clients"] = clients, ["accounts"] = accounts };
        var process = await ServiceProcess.StartAsync("node",
            [Path.Combine(NodeScenario.Directory(), "oidc-upstream.mjs"), options.ToJsonString()], port, "oidc-provider");
        return new TestOidcProvider(process, $"http://127.0.0.1:{port}");
    }

    /// <summary>Makes the provider's next ID tokens wrong in one way (see oidc-upstream.mjs), or honest again with "none".</summary>
    public async Task TamperAsync(string mode)
    {
        using var http = new HttpClient();
        (await http.PostAsync($"{Issuer}/test/tamper?mode={mode}", null)).EnsureSuccessStatusCode();
    }

    public ValueTask DisposeAsync() => new(ServiceProcess.StopAsync(_process));
}
