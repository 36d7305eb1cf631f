using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// Debian's synadm (the Synapse admin CLI operators use) pointed at a test server with an admin's token, in batch mode
/// (no prompts) with JSON output.
/// </summary>
public sealed class SynadmCli : IDisposable
{
    private const string Executable = "/usr/bin/synadm";
    private readonly string _configPath = Path.Combine(Path.GetTempPath(), $"synadm-{Guid.NewGuid():N}.yaml");

    public SynadmCli(string baseUrl, string serverName, string adminUserId, string adminToken) =>
        File.WriteAllText(_configPath, $"""
            user: "{adminUserId}"
            token: "{adminToken}"
            base_url: "{baseUrl}"
            admin_path: /_synapse/admin
            matrix_path: /_matrix
            timeout: 30
            server_discovery: well-known
            homeserver: "{serverName}"
            format: json
            ssl_verify: true
            """);

    public static bool IsInstalled => File.Exists(Executable);

    /// <summary>
    /// Runs a command; the last JSON object it printed (synadm prints what it is about to change before the result,
    /// and exits 0 even when the server refused).
    /// </summary>
    public async Task<JsonObject> RunAsync(params string[] arguments) => (await RunForLastAsync('{', arguments)).AsObject();

    /// <summary>Runs a command that answers a list (one answer per request it made); the last JSON array it printed.</summary>
    public async Task<JsonArray> RunListAsync(params string[] arguments) => (await RunForLastAsync('[', arguments)).AsArray();

    private async Task<JsonNode> RunForLastAsync(char opening, string[] arguments)
    {
        var info = new ProcessStartInfo(Executable, ["-c", _configPath, "--batch", "-o", "json", .. arguments])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync();
        var last = stdout.Split('\n').LastOrDefault(line => line.StartsWith(opening));
        Assert.True(process.ExitCode == 0 && last is not null,
            $"synadm {string.Join(' ', arguments)} (exit {process.ExitCode}):\n{stdout}\n{await stderr}");
        return JsonNode.Parse(last!)!;
    }

    public void Dispose() => File.Delete(_configPath);
}
