using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A bridge on a real npm framework: spec-tests/js/botsdk-bridge.mjs runs matrix-bot-sdk's Appservice against this
/// homeserver: ghosts are registered and join (directly and on invitation), a user's messages reach the bridge in
/// order and the ghost's echoes reach the room. matrix-bot-sdk 0.5 reads the pre-v1.4 <c>access_token</c> query
/// parameter, so the server runs with <c>app_service_legacy_authorization</c>.
/// </summary>
public sealed class BotSdkBridgeTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-botsdk-").FullName;
    private readonly int _port = FreePorts.Next();
    private readonly string _asToken = $"botsdk-as-{Guid.NewGuid():N}";
    private readonly string _hsToken = $"botsdk-hs-{Guid.NewGuid():N}";
    private TestDatabase? _database;
    private HomeserverProcess _server = null!;

    public async Task InitializeAsync()
    {
        var path = Path.Combine(_dir, "botsdk.yaml");
        await File.WriteAllTextAsync(path, $"""
            id: botsdk
            url: http://127.0.0.1:{_port}
            as_token: {_asToken}
            hs_token: {_hsToken}
            sender_localpart: botsdkbot
            namespaces:
              users:
                - exclusive: true
                  regex: '@botsdk_.*'
            """);
        _database = await TestDatabase.CreateAsync("sqlite");
        _server = new HomeserverProcess(_database.Yaml, $"app_service_config_files:\n  - {path}\napp_service_legacy_authorization: true\n");
        await _server.StartAsync();
    }

    [Fact]
    public async Task A_matrix_bot_sdk_bridge_registers_ghosts_that_join_and_messages_flow_both_ways() =>
        await NodeScenario.RunAsync("botsdk-bridge.mjs", [_server.BaseUrl, _server.ServerName, _port.ToString(), _asToken, _hsToken],
            TimeSpan.FromMinutes(2));

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
