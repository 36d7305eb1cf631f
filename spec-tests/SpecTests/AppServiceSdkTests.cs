using System.Text.Json.Nodes;
using Matrix.AppServices.Sdk;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// An echo bridge built on our AS SDK (src/AppServices/Sdk) the way our bridges are: a bridge config file, the
/// registration generated from it, a <see cref="BridgeRuntime"/> on loopback, against a real homeserver. Its ghost is
/// registered and joins a room; the bridge builds a space; a user's message reaches the bridge as a typed message and the ghost's echo reaches the
/// user; a ghost invited by the user is joined by the bridge; a transaction the homeserver repeats is processed once;
/// the bridge's memory of registrations and joins survives a restart of the bridge.
/// </summary>
public sealed class AppServiceSdkTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-sdk-").FullName;
    private readonly int _port = FreePorts.Next();
    private TestDatabase? _database;
    private HomeserverProcess _server = null!;
    private BridgeRuntime _bridge = null!;
    private BridgeConfig _config = null!;
    private readonly List<string> _handled = [];

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync("sqlite");
        _server = new HomeserverProcess(_database.Yaml, $"app_service_config_files:\n  - {Path.Combine(_dir, "echo-registration.yaml")}\n");
        var configPath = Path.Combine(_dir, "echo.yaml");
        await File.WriteAllTextAsync(configPath, $"""
            homeserver:
              url: {_server.BaseUrl}
              server_name: {_server.ServerName}
            appservice:
              id: echo
              port: {_port}
              registration: echo-registration.yaml
              data_dir: ./echo-data
              sender_localpart: echobot
              user_prefix: echo_
            """);
        _config = BridgeConfig.Load<BridgeConfig>(configPath);
        BridgeRuntime.WriteRegistration(_config);
        await _server.StartAsync();
        await StartBridgeAsync();
    }

    private async Task StartBridgeAsync()
    {
        _bridge = BridgeRuntime.Create(_config);
        var service = _bridge.AppService;
        service.OnEvent = (e, _) =>
        {
            lock (_handled)
                _handled.Add(e.EventId);
            return Task.CompletedTask;
        };
        service.OnMessage = (e, message, ct) => service.Intent(_config.UserId("ghost")).SendTextAsync(e.RoomId, "echo: " + message.Body, ct);
        service.OnInvite = (e, ct) => service.Intent(e.StateKey!).EnsureJoinedAsync(e.RoomId, ct);
        await _bridge.StartAsync();
    }

    [Fact]
    public async Task An_echo_bridge_on_the_sdk_joins_a_room_and_messages_flow_both_ways()
    {
        var c = new MatrixClient(_server.BaseUrl, _server.ServerName);
        var alice = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, alice, new { preset = "public_chat" });
        var ghost = _bridge.AppService.Intent(_config.UserId("ghost"));
        Assert.Equal($"@echo_ghost:{_server.ServerName}", ghost.UserId);
        await ghost.SetDisplayNameAsync("Echo");
        await ghost.EnsureJoinedAsync(roomId);

        await RoomTests.SendAsync(c, alice, roomId, "hello bridge");
        await WaitForAsync(async () => (await MessagesAsync(c, alice, roomId)).Any(e => e["content"]?["body"]?.GetValue<string>() == "echo: hello bridge"
            && e["sender"]!.GetValue<string>() == ghost.UserId), "the echo");
        var member = await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{Uri.EscapeDataString(ghost.UserId)}", alice.AccessToken);
        Assert.Equal("join", member.Str("membership"));
        Assert.Equal("Echo", member.Str("displayname"));

        // An invited ghost is joined by the bridge (registered on the way); the state store learns of it from the transaction.
        var invited = _config.UserId("invited");
        Assert.Equal(200, (await c.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = invited }, alice.AccessToken)).Status);
        await WaitForAsync(async () => (await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/joined_members", alice.AccessToken))
            .Body!["joined"]![invited] is not null, "the invited ghost to join");
        await WaitForAsync(() => Task.FromResult(_bridge.AppService.State.IsJoined(roomId, invited)), "the state store to record the join");

        // The bridge's own user builds a space with a room in it, which the user can browse.
        var bot = _bridge.AppService.Bot;
        var space = await bot.CreateSpaceAsync("Echo space", isPublic: true);
        var bridged = await bot.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = "bridged" });
        await bot.AddToSpaceAsync(space, bridged);
        var hierarchy = await c.GetAsync($"/_matrix/client/v1/rooms/{RoomTests.R(space)}/hierarchy", alice.AccessToken);
        Assert.True(hierarchy.Status == 200, hierarchy.ToString());
        var rooms = hierarchy.Body!["rooms"]!.AsArray();
        Assert.Equal("m.space", rooms.Single(r => r!["room_id"]!.GetValue<string>() == space)!["room_type"]!.GetValue<string>());
        Assert.Equal("bridged", rooms.Single(r => r!["room_id"]!.GetValue<string>() == bridged)!["name"]!.GetValue<string>());

        // The homeserver repeating a transaction (a lost answer) does not make the bridge handle it twice; a wrong
        // hs_token is refused.
        using var http = new HttpClient();
        var hsToken = _bridge.AppService.Registration.HsToken;
        var replay = new JsonObject { ["events"] = new JsonArray(new JsonObject
        {
            ["event_id"] = "$replayed", ["type"] = "m.test", ["room_id"] = roomId, ["sender"] = alice.UserId, ["content"] = new JsonObject(),
        }) }.ToJsonString();
        for (var i = 0; i < 2; i++)
            Assert.True((await PutTransactionAsync(http, "replayed", replay, hsToken)).IsSuccessStatusCode);
        lock (_handled)
            Assert.Single(_handled, id => id == "$replayed");
        Assert.Equal(403, (int)(await PutTransactionAsync(http, "forged", "{\"events\":[]}", "wrong")).StatusCode);

        // After a restart the bridge still knows its joins and its processed transactions.
        await _bridge.DisposeAsync();
        await StartBridgeAsync();
        Assert.True(_bridge.AppService.State.IsJoined(roomId, ghost.UserId));
        Assert.True(_bridge.AppService.State.IsRegistered(ghost.UserId));
        Assert.True((await PutTransactionAsync(http, "replayed", replay, hsToken)).IsSuccessStatusCode);
        lock (_handled)
            Assert.Single(_handled, id => id == "$replayed");
    }

    private Task<HttpResponseMessage> PutTransactionAsync(HttpClient http, string txnId, string body, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"http://127.0.0.1:{_port}/_matrix/app/v1/transactions/{txnId}") { Content = new StringContent(body) };
        request.Headers.Authorization = new("Bearer", token);
        return http.SendAsync(request);
    }

    private static async Task<List<JsonNode>> MessagesAsync(MatrixClient c, LoggedInUser user, string roomId) =>
        (await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=50", user.AccessToken)).Body!["chunk"]!.AsArray()
            .OfType<JsonNode>().ToList();

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    public async Task DisposeAsync()
    {
        await _bridge.DisposeAsync();
        await _server.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
