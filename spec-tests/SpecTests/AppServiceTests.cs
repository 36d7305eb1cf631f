using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A homeserver with two application services (played by the test) registered in its config; the second one only
/// provides the same third-party protocol as the first.
/// </summary>
public class AppServiceFixture(string engine) : IAsyncLifetime
{
    private TestDatabase? _database;
    private string? _registrationDir;

    public FakeAppService AppService { get; } = new();
    public FakeAppService OtherAppService { get; } = new();
    public HomeserverProcess Server { get; private set; } = null!;
    public MatrixClient Client => new(Server.BaseUrl, Server.ServerName);

    public async Task InitializeAsync()
    {
        _registrationDir = Directory.CreateTempSubdirectory("hs-as-").FullName;
        var path = Path.Combine(_registrationDir, "registration.yaml");
        await File.WriteAllTextAsync(path, AppService.RegistrationYaml("@bridge_.*", "#bridge_.*", receiveEphemeral: true, deviceData: true));
        var otherPath = Path.Combine(_registrationDir, "other.yaml");
        await File.WriteAllTextAsync(otherPath, OtherAppService.RegistrationYaml("@other_.*", "#other_.*"));
        _database = await TestDatabase.CreateAsync(engine);
        Server = new HomeserverProcess(_database.Yaml, $"app_service_config_files:\n  - {path}\n  - {otherPath}\n");
        await Server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await AppService.DisposeAsync();
        await OtherAppService.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
        if (_registrationDir is not null)
            Directory.Delete(_registrationDir, recursive: true);
    }
}

public sealed class AppServiceSqlite() : AppServiceFixture("sqlite");
public sealed class AppServicePostgres() : AppServiceFixture("postgres");

/// <summary>
/// Spec: the application-service API on the homeserver side: registration and login of namespace users, exclusive
/// namespaces, identity assertion, transactions (content, order, retries after an outage), ping, user and alias queries.
/// </summary>
public abstract class AppServiceTests(AppServiceFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private FakeAppService AS => fixture.AppService;
    private const string V3 = "/_matrix/client/v3";

    private Task<MatrixResponse> AsRegisterAsync(string localpart, string? token = null) =>
        C.PostAsync($"{V3}/register", new { type = "m.login.application_service", username = localpart }, token ?? AS.AsToken);

    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task The_service_registers_and_logs_in_its_users_and_nobody_else_can_take_its_namespace()
    {
        var localpart = Unique("bridge_");
        var registered = await AsRegisterAsync(localpart);
        Assert.True(registered.Status == 200, registered.ToString());
        var userId = registered.Str("user_id");
        Assert.Equal($"@{localpart}:{C.ServerName}", userId);

        Assert.Equal("M_EXCLUSIVE", (await AsRegisterAsync(Unique("other"))).Errcode);
        Assert.Equal("M_USER_IN_USE", (await AsRegisterAsync(localpart)).Errcode);
        Assert.Equal(403, (await AsRegisterAsync(Unique("bridge_"), token: (await C.RegisterAsync()).AccessToken)).Status);
        Assert.Equal(401, (await C.PostAsync($"{V3}/register", new { type = "m.login.application_service", username = Unique("bridge_") })).Status);

        // Ordinary clients cannot register or check names in the exclusive namespace.
        var ordinary = await C.PostAsync($"{V3}/register", new { username = Unique("bridge_"), password = "pw pw pw pw", auth = new { type = "m.login.dummy" } });
        Assert.Equal("M_EXCLUSIVE", ordinary.Errcode);
        Assert.Equal("M_EXCLUSIVE", (await C.GetAsync($"{V3}/register/available?username={Unique("bridge_")}")).Errcode);

        var login = await C.PostAsync($"{V3}/login", new
        {
            type = "m.login.application_service", identifier = new { type = "m.id.user", user = userId },
        }, AS.AsToken);
        Assert.True(login.Status == 200, login.ToString());
        Assert.Equal(userId, (await C.GetAsync($"{V3}/account/whoami", login.Str("access_token"))).Str("user_id"));
        Assert.Equal(403, (await C.PostAsync($"{V3}/login", new
        {
            type = "m.login.application_service", identifier = new { type = "m.id.user", user = (await C.RegisterAsync()).UserId },
        }, AS.AsToken)).Status);
    }

    [Fact]
    public async Task The_service_acts_as_its_users_and_devices_and_only_as_them()
    {
        var userId = (await AsRegisterAsync(Unique("bridge_"))).Str("user_id");
        var whoami = await C.GetAsync($"{V3}/account/whoami?user_id={Uri.EscapeDataString(userId)}", AS.AsToken);
        Assert.Equal(userId, whoami.Str("user_id"));
        Assert.Equal($"@{AS.Id}bot:{C.ServerName}", (await C.GetAsync($"{V3}/account/whoami", AS.AsToken)).Str("user_id"));

        var outsider = await C.RegisterAsync();
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/account/whoami?user_id={Uri.EscapeDataString(outsider.UserId)}", AS.AsToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/account/whoami?user_id={Uri.EscapeDataString($"@bridge_nobody:{C.ServerName}")}", AS.AsToken)).Errcode);
        Assert.Equal("M_UNKNOWN_DEVICE", (await C.GetAsync($"{V3}/account/whoami?user_id={Uri.EscapeDataString(userId)}&device_id=NOPE", AS.AsToken)).Errcode);
        Assert.Equal("M_UNKNOWN_TOKEN", (await C.GetAsync($"{V3}/account/whoami", AS.HsToken)).Errcode);
        // Without a device, what needs one is refused.
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/keys/upload?user_id={Uri.EscapeDataString(userId)}",
            new { one_time_keys = new Dictionary<string, string> { ["curve25519:A"] = "key" } }, AS.AsToken)).Errcode);

        // Aliases in the exclusive namespace: the service may create them, others may not.
        var roomId = await RoomTests.CreateRoomAsync(C, outsider);
        var alias = $"#{Unique("bridge_")}:{C.ServerName}";
        Assert.Equal("M_EXCLUSIVE", (await C.PutAsync($"{V3}/directory/room/{Uri.EscapeDataString(alias)}", new { room_id = roomId }, outsider.AccessToken)).Errcode);
        Assert.Equal("M_EXCLUSIVE", (await C.PostAsync($"{V3}/createRoom", new { room_alias_name = alias[1..alias.IndexOf(':')] }, outsider.AccessToken)).Errcode);
        Assert.Equal(200, (await C.PostAsync($"{V3}/createRoom?user_id={Uri.EscapeDataString(userId)}", new { room_alias_name = alias[1..alias.IndexOf(':')] }, AS.AsToken)).Status);

        // As Synapse: the service gives aliases of its namespace to rooms it is not in, and no other aliases.
        var given = $"#{Unique("bridge_")}:{C.ServerName}";
        Assert.Equal(200, (await C.PutAsync($"{V3}/directory/room/{Uri.EscapeDataString(given)}", new { room_id = roomId }, AS.AsToken)).Status);
        Assert.Equal(roomId, (await C.GetAsync($"{V3}/directory/room/{Uri.EscapeDataString(given)}", outsider.AccessToken)).Str("room_id"));
        Assert.Equal("M_EXCLUSIVE", (await C.PutAsync($"{V3}/directory/room/{Uri.EscapeDataString($"#{Unique("free_")}:{C.ServerName}")}",
            new { room_id = roomId }, AS.AsToken)).Errcode);
    }

    [Fact]
    public async Task The_service_publishes_rooms_in_lists_of_its_networks_apart_from_the_main_directory()
    {
        var owner = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "public_chat" });
        async Task<bool> ListedAsync(object query) => (await C.PostAsync($"{V3}/publicRooms", query, owner.AccessToken)).Body!["chunk"]!.AsArray()
            .Any(room => room!["room_id"]!.GetValue<string>() == roomId);

        var listPath = $"{V3}/directory/list/appservice/irc/{RoomTests.R(roomId)}";
        Assert.Equal(403, (await C.PutAsync(listPath, new { visibility = "public" }, owner.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync(listPath, new { visibility = "public" }, AS.AsToken)).Status);
        Assert.True(await ListedAsync(new { third_party_instance_id = $"{AS.Id}|irc" }));
        Assert.False(await ListedAsync(new { third_party_instance_id = $"{AS.Id}|slack" }));
        Assert.False(await ListedAsync(new { }));
        Assert.Equal("private", (await C.GetAsync($"{V3}/directory/list/room/{RoomTests.R(roomId)}")).Str("visibility"));
        Assert.True(await ListedAsync(new { include_all_networks = true }));
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"{V3}/publicRooms",
            new { include_all_networks = true, third_party_instance_id = $"{AS.Id}|irc" }, owner.AccessToken)).Errcode);

        // Leaving the network's list (DELETE, as Synapse offers) does not take the room off the main directory.
        Assert.Equal(200, (await C.PutAsync($"{V3}/directory/list/room/{RoomTests.R(roomId)}", new { visibility = "public" }, owner.AccessToken)).Status);
        Assert.Equal(200, (await C.DeleteAsync(listPath, null, AS.AsToken)).Status);
        Assert.False(await ListedAsync(new { third_party_instance_id = $"{AS.Id}|irc" }));
        Assert.True(await ListedAsync(new { }));
        Assert.True(await ListedAsync(new { include_all_networks = true }));
    }

    [Fact]
    public async Task Inviting_an_unknown_user_of_the_namespace_asks_the_service_before_it_hears_of_the_invite()
    {
        var ghost = $"@{Unique("bridge_")}:{C.ServerName}";
        var inviter = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, inviter);
        AS.Handler = async request =>
        {
            if (request.Path == $"/_matrix/app/v1/users/{ghost}")
                await AsRegisterAsync(ghost[1..ghost.IndexOf(':')]);
            return (200, new JsonObject());
        };
        bool IsTheInvite(JsonNode? e) => e?["state_key"]?.GetValue<string>() == ghost;

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = ghost }, inviter.AccessToken)).Status);
        await WaitUntilAsync(() => AS.Requests.Any(r => r.Path.StartsWith("/_matrix/app/v1/transactions/") && r.Body!["events"]!.AsArray().Any(IsTheInvite)),
            "the invite to reach the service");
        var requests = AS.Requests;
        var asked = requests.FindIndex(r => r.Path == $"/_matrix/app/v1/users/{ghost}");
        Assert.True(asked >= 0, "the service was not asked about the invited user");
        Assert.True(asked < requests.FindIndex(r => r.Path.StartsWith("/_matrix/app/v1/transactions/") && r.Body!["events"]!.AsArray().Any(IsTheInvite)));
        Assert.Equal(200, (await C.GetAsync($"{V3}/account/whoami?user_id={Uri.EscapeDataString(ghost)}", AS.AsToken)).Status);

        // A service that does not answer the query holds its events back only briefly.
        var unanswered = $"@{Unique("bridge_")}:{C.ServerName}";
        var answer = new TaskCompletionSource();
        AS.Handler = async request =>
        {
            if (request.Path == $"/_matrix/app/v1/users/{unanswered}")
                await answer.Task;
            return (200, new JsonObject());
        };
        var invited = DateTime.UtcNow;
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = unanswered }, inviter.AccessToken)).Status);
        await WaitUntilAsync(() => AS.Requests.Any(r => r.Path.StartsWith("/_matrix/app/v1/transactions/")
            && r.Body!["events"]!.AsArray().Any(e => e?["state_key"]?.GetValue<string>() == unanswered)), "the invite despite the unanswered query");
        Assert.True(DateTime.UtcNow - invited < TimeSpan.FromSeconds(15), "the unanswered query held the invite back too long");
        answer.SetResult();
        AS.Handler = _ => Task.FromResult<(int, JsonNode?)>((200, new JsonObject()));
    }

    [Fact]
    public async Task Events_of_rooms_with_the_services_users_arrive_in_order_once_each_even_across_an_outage()
    {
        var bridged = (await AsRegisterAsync(Unique("bridge_"))).Str("user_id");
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var unrelated = await RoomTests.CreateRoomAsync(C, alice);
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}?user_id={Uri.EscapeDataString(bridged)}", new { }, AS.AsToken)).Status);

        var sent = new List<string>();
        for (var i = 0; i < 5; i++)
            sent.Add(await RoomTests.SendAsync(C, alice, roomId, $"before {i}"));
        await RoomTests.SendAsync(C, alice, unrelated, "not for the bridge");

        // The service goes down: the homeserver keeps retrying the same transaction.
        var down = true;
        AS.Handler = request => Task.FromResult<(int, JsonNode?)>(down && request.Path.StartsWith("/_matrix/app/v1/transactions/")
            ? (503, new JsonObject { ["errcode"] = "M_UNKNOWN" })
            : (200, new JsonObject()));
        for (var i = 0; i < 5; i++)
            sent.Add(await RoomTests.SendAsync(C, alice, roomId, $"during {i}"));
        await WaitUntilAsync(() => AS.Requests.Count(r => r.Path.StartsWith("/_matrix/app/v1/transactions/")) >= 2, "retries during the outage");
        down = false;
        // Sent by the bridged user through the service.
        var own = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}?user_id={Uri.EscapeDataString(bridged)}",
            new { msgtype = "m.text", body = "from the bridge" }, AS.AsToken);
        sent.Add(own.Str("event_id"));

        await WaitUntilAsync(() => sent.All(id => AcceptedIds().Contains(id)), "every message reaching the service");
        var messages = AcceptedIds().Where(sent.Contains).ToList();
        Assert.Equal(sent, messages);
        Assert.DoesNotContain(AS.AcceptedEvents, e => e["room_id"]!.GetValue<string>() == unrelated);
        Assert.All(AS.Requests.Where(r => r.Path.StartsWith("/_matrix/app/v1/transactions/")), r => Assert.Equal($"Bearer {AS.HsToken}", r.Authorization));
        // A retried transaction carries exactly what it first carried.
        foreach (var retried in AS.Requests.Where(r => r.Path.StartsWith("/_matrix/app/v1/transactions/")).GroupBy(r => r.Path))
            Assert.Single(retried.Select(r => r.Body!["events"]!.ToJsonString()).Distinct());
    }

    [Fact]
    public async Task The_service_dates_its_events_and_receives_typing_receipts_and_presence_of_its_users()
    {
        var bridged = (await AsRegisterAsync(Unique("bridge_"))).Str("user_id");
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}?user_id={Uri.EscapeDataString(bridged)}", new { }, AS.AsToken)).Status);

        var dated = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}?user_id={Uri.EscapeDataString(bridged)}&ts=1234567",
            new { msgtype = "m.text", body = "from the past" }, AS.AsToken);
        var stored = await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/event/{RoomTests.R(dated.Str("event_id"))}", alice.AccessToken);
        Assert.Equal(1234567, stored.Body!["origin_server_ts"]!.GetValue<long>());
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}?ts=yesterday",
            new { msgtype = "m.text", body = "x" }, AS.AsToken)).Errcode);
        // Anyone else's ts is ignored.
        var undated = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}?ts=1", new { msgtype = "m.text", body = "now" }, alice.AccessToken);
        var now = await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/event/{RoomTests.R(undated.Str("event_id"))}", alice.AccessToken);
        Assert.True(now.Body!["origin_server_ts"]!.GetValue<long>() > 1_000_000_000_000);

        await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/typing/{Uri.EscapeDataString(alice.UserId)}", new { typing = true, timeout = 10000 }, alice.AccessToken);
        await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(undated.Str("event_id"))}", new { }, alice.AccessToken);
        await WaitUntilAsync(() => Ephemeral().Any(e => e["type"]!.GetValue<string>() == "m.typing" && e["room_id"]!.GetValue<string>() == roomId
            && e["content"]!["user_ids"]!.AsArray().Any(u => u!.GetValue<string>() == alice.UserId)), "the typing notification");
        await WaitUntilAsync(() => Ephemeral().Any(e => e["type"]!.GetValue<string>() == "m.receipt"
            && e["content"]?[undated.Str("event_id")]?["m.read"]?[alice.UserId] is not null), "the read receipt");
        await C.PutAsync($"{V3}/presence/{Uri.EscapeDataString(alice.UserId)}/status", new { presence = "unavailable", status_msg = "away" }, alice.AccessToken);
        await WaitUntilAsync(() => Ephemeral().Any(e => e["type"]!.GetValue<string>() == "m.presence" && e["sender"]!.GetValue<string>() == alice.UserId
            && e["content"]!["status_msg"]?.GetValue<string>() == "away"), "the presence update");
    }

    [Fact]
    public async Task Third_party_lookups_are_answered_by_the_services_providing_the_protocol()
    {
        var user = await C.RegisterAsync();
        JsonObject Metadata(params JsonObject[] instances) => new()
        {
            ["user_fields"] = new JsonArray("nick"), ["location_fields"] = new JsonArray("channel"), ["icon"] = "mxc://example.org/icon",
            ["field_types"] = new JsonObject(), ["instances"] = new JsonArray(instances),
        };
        AS.Handler = request => Task.FromResult<(int, JsonNode?)>(request.Path switch
        {
            "/_matrix/app/v1/thirdparty/protocol/chatnet" => (200, Metadata(new JsonObject { ["desc"] = "Chatnet", ["network_id"] = "main" })),
            "/_matrix/app/v1/thirdparty/location/chatnet" => (200, new JsonArray(new JsonObject
            {
                ["alias"] = "#bridge_chan:example.org", ["protocol"] = "chatnet", ["fields"] = new JsonObject { ["channel"] = "#chan" },
            })),
            "/_matrix/app/v1/thirdparty/user" => (200, new JsonArray(new JsonObject
            {
                ["userid"] = "@bridge_nick:example.org", ["protocol"] = "chatnet", ["fields"] = new JsonObject { ["nick"] = "nick" },
            })),
            _ => (200, new JsonObject()),
        });
        // A second provider of the protocol: its instances join the first's; its invalid results are left out.
        fixture.OtherAppService.Handler = request => Task.FromResult<(int, JsonNode?)>(request.Path switch
        {
            "/_matrix/app/v1/thirdparty/protocol/chatnet" => (200, Metadata(new JsonObject { ["desc"] = "Chatnet mirror" })),
            "/_matrix/app/v1/thirdparty/location/chatnet" => (200, new JsonArray(
                new JsonObject { ["alias"] = "#other_chan:example.org", ["protocol"] = "chatnet", ["fields"] = new JsonObject() },
                new JsonObject { ["protocol"] = "chatnet", ["fields"] = new JsonObject() })),
            _ => (200, new JsonObject()),
        });

        var protocols = await C.GetAsync($"{V3}/thirdparty/protocols", user.AccessToken);
        Assert.Equal("mxc://example.org/icon", protocols.Body!["chatnet"]!["icon"]!.GetValue<string>());
        var instances = protocols.Body!["chatnet"]!["instances"]!.AsArray();
        Assert.Equal(["Chatnet", "Chatnet mirror"], instances.Select(i => i!["desc"]!.GetValue<string>()));
        Assert.Equal($"{AS.Id}|main", instances[0]!["instance_id"]!.GetValue<string>());
        var one = await C.GetAsync($"{V3}/thirdparty/protocol/chatnet", user.AccessToken);
        Assert.Equal("nick", one.Body!["user_fields"]![0]!.GetValue<string>());
        Assert.Equal(2, one.Body!["instances"]!.AsArray().Count);
        // Each provider's metadata is kept for a while, as Synapse keeps it.
        Assert.Single(AS.Requests, r => r.Path == "/_matrix/app/v1/thirdparty/protocol/chatnet");
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/thirdparty/protocol/othernet", user.AccessToken)).Errcode);

        var locations = await C.GetAsync($"{V3}/thirdparty/location/chatnet?channel=%23chan&access_token={Uri.EscapeDataString(user.AccessToken)}");
        Assert.Equal(["#bridge_chan:example.org", "#other_chan:example.org"], locations.Body!.AsArray().Select(l => l!["alias"]!.GetValue<string>()).Order());
        var asked = AS.Requests.Last(r => r.Path == "/_matrix/app/v1/thirdparty/location/chatnet");
        Assert.Equal("?channel=%23chan", asked.Query);
        var users = await C.GetAsync($"{V3}/thirdparty/user?userid={Uri.EscapeDataString("@bridge_nick:example.org")}", user.AccessToken);
        Assert.Equal("nick", users.Body![0]!["fields"]!["nick"]!.GetValue<string>());
        Assert.Equal("M_MISSING_PARAM", (await C.GetAsync($"{V3}/thirdparty/location", user.AccessToken)).Errcode);
        Assert.Equal(401, (await C.GetAsync($"{V3}/thirdparty/protocols")).Status);
        AS.Handler = _ => Task.FromResult<(int, JsonNode?)>((200, new JsonObject()));
        fixture.OtherAppService.Handler = AS.Handler;
    }

    [Fact]
    public async Task The_service_creates_and_deletes_devices_of_its_users_without_interactive_auth()
    {
        var userId = (await AsRegisterAsync(Unique("bridge_"))).Str("user_id");
        var asUser = $"user_id={Uri.EscapeDataString(userId)}";
        var created = await C.PutAsync($"{V3}/devices/BRIDGEDEV?{asUser}", new { display_name = "Bridge device" }, AS.AsToken);
        Assert.Equal(201, created.Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/devices/BRIDGEDEV?{asUser}", new { }, AS.AsToken)).Status);
        Assert.Equal("Bridge device", (await C.GetAsync($"{V3}/devices/BRIDGEDEV?{asUser}", AS.AsToken)).Str("display_name"));
        var whoami = await C.GetAsync($"{V3}/account/whoami?{asUser}&device_id=BRIDGEDEV", AS.AsToken);
        Assert.Equal("BRIDGEDEV", whoami.Str("device_id"));

        Assert.Equal(200, (await C.DeleteAsync($"{V3}/devices/BRIDGEDEV?{asUser}", new { }, AS.AsToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/devices/BRIDGEDEV?{asUser}", AS.AsToken)).Status);
        Assert.Equal("M_UNKNOWN_DEVICE", (await C.GetAsync($"{V3}/account/whoami?{asUser}&device_id=BRIDGEDEV", AS.AsToken)).Errcode);

        // Ordinary users can neither create devices nor delete them without authenticating again.
        var user = await C.RegisterAsync();
        Assert.Equal(404, (await C.PutAsync($"{V3}/devices/NEWDEV", new { display_name = "x" }, user.AccessToken)).Status);
        Assert.Equal(401, (await C.DeleteAsync($"{V3}/devices/{user.DeviceId}", new { }, user.AccessToken)).Status);
    }

    [Fact]
    public async Task A_service_taking_device_data_receives_to_device_messages_device_list_changes_and_key_counts()
    {
        var registered = await AsRegisterAsync(Unique("bridge_"));
        var bridge = new TestDevice(new LoggedInUser(registered.Str("user_id"), registered.Str("access_token"), registered.Str("device_id"), "", ""));
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{Uri.EscapeDataString(roomId)}", new { }, bridge.User.AccessToken)).Status);
        // The bridge user joining makes alice's device list interesting to the service.
        await WaitUntilAsync(() => DeviceListsChanged().Contains(alice.UserId), "alice in device_lists.changed after the bridge user joined");

        // To-device messages for the bridge's devices come in transactions, with their addressee.
        var sent = await C.PutAsync($"{V3}/sendToDevice/m.room_key_request/{Unique("t")}", new
        {
            messages = new Dictionary<string, object> { [bridge.User.UserId] = new Dictionary<string, object> { ["*"] = new { action = "cancellation", request_id = "r1" } } },
        }, alice.AccessToken);
        Assert.Equal(200, sent.Status);
        await WaitUntilAsync(() => Transactions().Any(t => t["de.sorunome.msc2409.to_device"] is JsonArray { Count: > 0 }), "the to-device message");
        var message = Transactions().SelectMany(t => t["de.sorunome.msc2409.to_device"]?.AsArray() ?? []).Single(m => m!["sender"]!.GetValue<string>() == alice.UserId)!;
        Assert.Equal("m.room_key_request", message["type"]!.GetValue<string>());
        Assert.Equal(bridge.User.UserId, message["to_user_id"]!.GetValue<string>());
        Assert.Equal(bridge.User.DeviceId, message["to_device_id"]!.GetValue<string>());
        Assert.Equal("r1", message["content"]!["request_id"]!.GetValue<string>());

        // Key counts of the bridge's device after an upload, and after alice claims one.
        Assert.Equal(200, (await bridge.UploadAsync(C, oneTimeKeys: 2, fallbackKey: true)).Status);
        await WaitUntilAsync(() => KeyCount(bridge) == 2, "a one-time key count of 2");
        Assert.Contains(Transactions(), t => t["org.matrix.msc3202.device_unused_fallback_key_types"]?[bridge.User.UserId]?[bridge.User.DeviceId]?[0]?.GetValue<string>() == "signed_curve25519");
        var claim = await C.PostAsync($"{V3}/keys/claim", new
        {
            one_time_keys = new Dictionary<string, object> { [bridge.User.UserId] = new Dictionary<string, string> { [bridge.User.DeviceId] = "signed_curve25519" } },
        }, alice.AccessToken);
        Assert.Equal(200, claim.Status);
        await WaitUntilAsync(() => KeyCount(bridge) == 1, "a one-time key count of 1 after a claim");

        // Alice's new device keys are a change; alice leaving the only room she shared with the bridge is a departure.
        var before = Transactions().Count;
        Assert.Equal(200, (await new TestDevice(alice).UploadAsync(C)).Status);
        await WaitUntilAsync(() => DeviceListsChanged(skip: before).Contains(alice.UserId), "alice's key upload in device_lists.changed");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{Uri.EscapeDataString(roomId)}/leave", new { }, alice.AccessToken)).Status);
        await WaitUntilAsync(() => Transactions().Any(t => t["org.matrix.msc3202.device_lists"]?["left"]?.AsArray().Any(u => u!.GetValue<string>() == alice.UserId) == true),
            "alice in device_lists.left");
    }

    private List<JsonObject> Transactions() =>
        AS.Requests.Where(r => r.Path.StartsWith("/_matrix/app/v1/transactions/")).Select(r => r.Body!.AsObject()).ToList();

    private List<string> DeviceListsChanged(int skip = 0) => Transactions().Skip(skip)
        .SelectMany(t => t["org.matrix.msc3202.device_lists"]?["changed"]?.AsArray() ?? []).Select(u => u!.GetValue<string>()).ToList();

    private long? KeyCount(TestDevice device) =>
        Transactions().LastOrDefault(t => t["org.matrix.msc3202.device_one_time_keys_count"]?[device.User.UserId]?[device.User.DeviceId] is not null)
            ?["org.matrix.msc3202.device_one_time_keys_count"]![device.User.UserId]![device.User.DeviceId]!["signed_curve25519"]!.GetValue<long>();

    private List<JsonObject> Ephemeral() => AS.Requests.Where(r => r.Path.StartsWith("/_matrix/app/v1/transactions/") && r.Body?["ephemeral"] is JsonArray)
        .SelectMany(r => r.Body!["ephemeral"]!.AsArray().Select(e => e!.AsObject())).ToList();

    private List<string> AcceptedIds()
    {
        lock (AS.AcceptedEvents)
            return AS.AcceptedEvents.Select(e => e["event_id"]!.GetValue<string>()).ToList();
    }

    [Fact]
    public async Task Ping_reaches_the_service_and_reports_its_failures()
    {
        AS.Handler = request => Task.FromResult<(int, JsonNode?)>((200, new JsonObject()));
        var ping = await C.PostAsync($"/_matrix/client/v1/appservice/{AS.Id}/ping", new { transaction_id = "ping-1" }, AS.AsToken);
        Assert.True(ping.Status == 200, ping.ToString());
        Assert.True(ping.Body!["duration_ms"]!.GetValue<long>() >= 0);
        var received = AS.Requests.Last(r => r.Path == "/_matrix/app/v1/ping");
        Assert.Equal("ping-1", received.Body!["transaction_id"]!.GetValue<string>());
        Assert.Equal($"Bearer {AS.HsToken}", received.Authorization);

        AS.Handler = request => Task.FromResult<(int, JsonNode?)>(request.Path == "/_matrix/app/v1/ping" ? (403, new JsonObject { ["errcode"] = "M_FORBIDDEN" }) : (200, new JsonObject()));
        var failed = await C.PostAsync($"/_matrix/client/v1/appservice/{AS.Id}/ping", new { }, AS.AsToken);
        Assert.Equal(502, failed.Status);
        Assert.Equal("M_BAD_STATUS", failed.Errcode);
        Assert.Equal(403, failed.Body!["status"]!.GetValue<int>());
        AS.Handler = _ => Task.FromResult<(int, JsonNode?)>((200, new JsonObject()));

        Assert.Equal("M_FORBIDDEN", (await C.PostAsync("/_matrix/client/v1/appservice/someone-else/ping", new { }, AS.AsToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"/_matrix/client/v1/appservice/{AS.Id}/ping", new { }, (await C.RegisterAsync()).AccessToken)).Errcode);
    }

    [Fact]
    public async Task Unknown_users_and_aliases_of_the_namespaces_are_asked_of_the_service()
    {
        var wantedUser = $"@{Unique("bridge_")}:{C.ServerName}";
        var wantedAlias = $"#{Unique("bridge_")}:{C.ServerName}";
        var asker = await C.RegisterAsync();
        AS.Handler = async request =>
        {
            if (request.Path == $"/_matrix/app/v1/users/{wantedUser}")
            {
                await AsRegisterAsync(wantedUser[1..wantedUser.IndexOf(':')]);
                return (200, new JsonObject());
            }
            if (request.Path == $"/_matrix/app/v1/rooms/{wantedAlias}")
            {
                var created = await C.PostAsync($"{V3}/createRoom", new { room_alias_name = wantedAlias[1..wantedAlias.IndexOf(':')] }, AS.AsToken);
                return created.Status == 200 ? (200, new JsonObject()) : (500, null);
            }
            return request.Path.StartsWith("/_matrix/app/v1/transactions/") ? (200, new JsonObject()) : (404, new JsonObject { ["errcode"] = "M_NOT_FOUND" });
        };

        var profile = await C.GetAsync($"{V3}/profile/{Uri.EscapeDataString(wantedUser)}", asker.AccessToken);
        Assert.True(profile.Status == 200, profile.ToString());
        var resolved = await C.GetAsync($"{V3}/directory/room/{Uri.EscapeDataString(wantedAlias)}", asker.AccessToken);
        Assert.True(resolved.Status == 200, resolved.ToString());
        Assert.Contains(AS.Requests, r => r.Path == $"/_matrix/app/v1/users/{wantedUser}" && r.Authorization == $"Bearer {AS.HsToken}");
        Assert.Equal(404, (await C.GetAsync($"{V3}/directory/room/{Uri.EscapeDataString($"#{Unique("bridge_")}:{C.ServerName}")}", asker.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/profile/{Uri.EscapeDataString($"@{Unique("bridge_")}:{C.ServerName}")}", asker.AccessToken)).Status);
        AS.Handler = _ => Task.FromResult<(int, JsonNode?)>((200, new JsonObject()));
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }
}

public sealed class AppServiceTestsSqlite(AppServiceSqlite f) : AppServiceTests(f), IClassFixture<AppServiceSqlite>;
public sealed class AppServiceTestsPostgres(AppServicePostgres f) : AppServiceTests(f), IClassFixture<AppServicePostgres>;
