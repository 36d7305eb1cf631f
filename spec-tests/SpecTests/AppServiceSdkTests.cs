using System.Text.Json.Nodes;
using Matrix.AppServices.Registration;
using Matrix.AppServices.Sdk;
using Matrix.SpecTests.Harness;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Matrix.SpecTests;

/// <summary>
/// An echo bridge built on our AS SDK (src/AppServices/Sdk), hosted in the test on loopback, against a real homeserver:
/// its ghost user is registered and joins a room; a user's message reaches the bridge and the ghost's echo reaches the
/// user; a transaction the homeserver repeats is processed once.
/// </summary>
public sealed class AppServiceSdkTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-sdk-").FullName;
    private readonly int _port = FakeRemoteServer.FreePort();
    private TestDatabase? _database;
    private HomeserverProcess _server = null!;
    private WebApplication _bridgeHost = null!;
    private AppService _bridge = null!;
    private readonly List<string> _handled = [];

    private string RegistrationYaml => $"""
        id: echo
        url: http://127.0.0.1:{_port}
        as_token: echo-as-{Guid.NewGuid():N}
        hs_token: echo-hs-{Guid.NewGuid():N}
        sender_localpart: echobot
        rate_limited: false
        namespaces:
          users:
            - exclusive: true
              regex: '@echo_.*'
        """;

    public async Task InitializeAsync()
    {
        var yaml = RegistrationYaml;
        var path = Path.Combine(_dir, "echo.yaml");
        await File.WriteAllTextAsync(path, yaml);
        _database = await TestDatabase.CreateAsync("sqlite");
        _server = new HomeserverProcess(_database.Yaml, $"app_service_config_files:\n  - {path}\n");
        await _server.StartAsync();

        _bridge = new AppService(RegistrationFile.Parse(yaml, _server.ServerName), _server.BaseUrl, new TransactionLog(Path.Combine(_dir, "txns.log")));
        var ghost = _bridge.Intent($"@echo_ghost:{_server.ServerName}");
        _bridge.OnEvent = async (e, ct) =>
        {
            lock (_handled)
                _handled.Add(e["event_id"]!.GetValue<string>());
            if (e["type"]?.GetValue<string>() == "m.room.message" && e["sender"]?.GetValue<string>() is { } sender && !_bridge.Registration.IsInterestedInUser(sender))
                await ghost.SendTextAsync(e["room_id"]!.GetValue<string>(), "echo: " + e["content"]!["body"]!.GetValue<string>(), ct);
        };
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{_port}");
        _bridgeHost = builder.Build();
        _bridge.Map(_bridgeHost);
        await _bridgeHost.StartAsync();
    }

    [Fact]
    public async Task An_echo_bridge_on_the_sdk_joins_a_room_and_messages_flow_both_ways()
    {
        var c = new MatrixClient(_server.BaseUrl, _server.ServerName);
        var alice = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, alice, new { preset = "public_chat" });
        var ghost = _bridge.Intent($"@echo_ghost:{_server.ServerName}");
        await ghost.SetDisplayNameAsync("Echo");
        await ghost.EnsureJoinedAsync(roomId);

        await RoomTests.SendAsync(c, alice, roomId, "hello bridge");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var messages = await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=50", alice.AccessToken);
            var echo = messages.Body!["chunk"]!.AsArray().FirstOrDefault(e => e!["content"]?["body"]?.GetValue<string>() == "echo: hello bridge");
            if (echo is not null)
            {
                Assert.Equal(ghost.UserId, echo["sender"]!.GetValue<string>());
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the echo never came back");
            await Task.Delay(100);
        }
        var member = await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{Uri.EscapeDataString(ghost.UserId)}", alice.AccessToken);
        Assert.Equal("join", member.Str("membership"));

        // The homeserver repeating a transaction (a lost answer) does not make the bridge handle it twice; a wrong
        // hs_token is refused.
        using var http = new HttpClient();
        var replay = new HttpRequestMessage(HttpMethod.Put, $"http://127.0.0.1:{_port}/_matrix/app/v1/transactions/replayed")
        {
            Content = new StringContent(new JsonObject { ["events"] = new JsonArray(new JsonObject { ["event_id"] = "$replayed", ["type"] = "m.test", ["room_id"] = roomId }) }.ToJsonString()),
        };
        replay.Headers.Authorization = new("Bearer", _bridge.Registration.HsToken);
        Assert.True((await http.SendAsync(replay)).IsSuccessStatusCode);
        var again = new HttpRequestMessage(HttpMethod.Put, replay.RequestUri) { Content = new StringContent(await replay.Content!.ReadAsStringAsync()) };
        again.Headers.Authorization = new("Bearer", _bridge.Registration.HsToken);
        Assert.True((await http.SendAsync(again)).IsSuccessStatusCode);
        lock (_handled)
            Assert.Single(_handled, id => id == "$replayed");
        var forged = new HttpRequestMessage(HttpMethod.Put, $"http://127.0.0.1:{_port}/_matrix/app/v1/transactions/forged") { Content = new StringContent("{\"events\":[]}") };
        forged.Headers.Authorization = new("Bearer", "wrong");
        Assert.Equal(403, (int)(await http.SendAsync(forged)).StatusCode);
    }

    public async Task DisposeAsync()
    {
        await _bridgeHost.StopAsync();
        await _bridgeHost.DisposeAsync();
        _bridge.Dispose();
        await _server.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
