using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A server with federation on (plain HTTP between test servers), for requests signed by a fake remote server.</summary>
public sealed class SqliteFederatingServer() : ServerFixture("sqlite", FederationFixture.FederationYaml);

public sealed class PostgresFederatingServer() : ServerFixture("postgres", FederationFixture.FederationYaml);

/// <summary>
/// Spec (server-server) on bad input: every federation and key endpoint the server serves gets requests correctly signed
/// by a server joined to a room, whose bodies carry fields of the wrong type and malformed PDUs and EDUs, and hostile
/// path parameters. Each answer must be below 500 and, when an error, the spec's <c>{errcode, error}</c> JSON; the room
/// they were aimed at is unchanged and the server still federates.
/// </summary>
public abstract partial class FederationHostileInputTests(ServerFixture fixture)
{
    /// <summary>Field names the server-server API reads, each sent with a value of the wrong type.</summary>
    private static readonly string[] Fields =
    [
        "pdus", "edus", "origin", "origin_server_ts", "event", "room_version", "invite_room_state", "filter", "limit", "since",
        "include_all_networks", "third_party_instance_id", "earliest_events", "latest_events", "min_depth", "device_keys",
        "one_time_keys", "server_keys", "mxid", "invites", "medium", "address", "signed", "type", "room_id", "sender",
        "state_key", "content", "auth_events", "prev_events", "depth", "hashes", "signatures", "unsigned",
    ];

    private static readonly JsonNode?[] WrongValues =
        [JsonValue.Create(12345678901), JsonValue.Create("not-what-you-expect"), new JsonArray(1, "two"), new JsonObject { ["x"] = 1 }, JsonValue.Create(true), null];

    private static readonly string[] HostileSegments = ["%00", "%FF%FE", new string('a', 3000), "!notaroom", "@:", "$", "%25"];

    [GeneratedRegex(@"\{\*?(\w+)\}")]
    private static partial Regex RouteParameter();

    /// <summary>PDUs and EDUs that are objects of the wrong shape, for <c>/send</c>.</summary>
    private static IEnumerable<JsonObject> HostileTransactions(string roomId, string origin)
    {
        JsonObject Transaction(JsonArray pdus, JsonArray edus) => new()
        {
            ["origin"] = origin, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ["pdus"] = pdus, ["edus"] = edus,
        };
        foreach (var value in WrongValues)
        {
            var pdu = new JsonObject { ["room_id"] = roomId, ["type"] = "m.room.message", ["sender"] = $"@fake:{origin}" };
            foreach (var field in new[] { "content", "prev_events", "auth_events", "depth", "hashes", "signatures", "origin_server_ts", "type", "sender" })
                pdu[field] = value?.DeepClone();
            yield return Transaction(new JsonArray(pdu, value?.DeepClone()), new JsonArray());
            foreach (var eduType in new[] { "m.typing", "m.receipt", "m.presence", "m.device_list_update", "m.signing_key_update", "m.direct_to_device" })
                yield return Transaction(new JsonArray(), new JsonArray(new JsonObject { ["edu_type"] = eduType, ["content"] = value?.DeepClone() },
                    new JsonObject { ["edu_type"] = eduType, ["content"] = new JsonObject { ["room_id"] = value?.DeepClone(), ["user_id"] = value?.DeepClone(),
                        ["push"] = value?.DeepClone(), ["messages"] = value?.DeepClone(), [roomId] = value?.DeepClone() } }));
        }
    }

    [Fact]
    public async Task Every_federation_endpoint_answers_hostile_signed_requests_with_a_spec_error()
    {
        var server = fixture.Server;
        var routes = (await server.RoutesAsync())
            .Where(route => route.Template.StartsWith("/_matrix/federation/") || route.Template.StartsWith("/_matrix/key/")).ToList();
        Assert.True(routes.Count > 30, $"only {routes.Count} federation routes listed");

        await using var remote = new FakeRemoteServer();
        var c = fixture.Client;
        var user = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, user, new { preset = "public_chat", name = "Target" });
        var eventId = await RoomTests.SendAsync(c, user, roomId, "x");
        var fakeUser = await remote.JoinAsync(server, roomId, "fake");
        async Task<List<string>> StateIdsAsync() => (await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", user.AccessToken))
            .Body!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()).Order().ToList();
        var stateBefore = await StateIdsAsync();

        var problems = new List<string>();
        async Task CheckAsync(string method, string path, JsonNode? body)
        {
            var answer = await remote.SendAsync(server, new HttpMethod(method), path, body);
            var text = answer.Body?.ToJsonString() ?? "";
            if (answer.Status >= 500 && !(answer.Status == 502 && HostileInputTests.IsSpecError(text)))
                problems.Add($"{method} {path[..Math.Min(path.Length, 120)]} [{body?.ToJsonString()[..Math.Min(body.ToJsonString().Length, 80)]}] -> {answer.Status} {text}");
            else if (answer.Status >= 400 && !HostileInputTests.IsSpecError(text))
                problems.Add($"{method} {path[..Math.Min(path.Length, 120)]} -> {answer.Status} without {{errcode, error}}: {text}");
        }

        var wrongTypes = WrongValues.Select(value => (JsonNode)new JsonObject(Fields.Select(f => KeyValuePair.Create(f, value?.DeepClone())))).ToList();
        foreach (var (method, template) in routes)
        {
            var valid = RouteParameter().Replace(template, m => Uri.EscapeDataString(m.Groups[1].Value switch
            {
                "roomId" => roomId,
                "userId" => template.Contains("/make_") ? fakeUser : user.UserId,
                "eventId" => eventId,
                "serverName" => remote.ServerName,
                "txnId" => Guid.NewGuid().ToString("N"),
                _ => "x",
            }));
            var withQuery = valid + "?event_id=" + Uri.EscapeDataString(eventId) + "&user_id=" + Uri.EscapeDataString(user.UserId) + "&v=" + Uri.EscapeDataString(eventId);
            var takesBody = method is "POST" or "PUT";
            IEnumerable<JsonNode?> bodies = takesBody ? wrongTypes.Concat(template.EndsWith("/send/{txnId}") ? HostileTransactions(roomId, remote.ServerName) : []) : [null];
            foreach (var body in bodies)
                await CheckAsync(method, template.Contains("{txnId}") ? RouteParameter().Replace(template, _ => Guid.NewGuid().ToString("N")) : withQuery, body);
            if (RouteParameter().IsMatch(template))
                foreach (var segment in HostileSegments)
                    await CheckAsync(method, RouteParameter().Replace(template, segment), takesBody ? new JsonObject() : null);
            await CheckAsync(method, valid + "?limit=-1&since=%00&event_id=%00&ver=&v=&ts=abc&dir=sideways&field=%00&room_alias=%00&user_id=%00",
                takesBody ? new JsonObject() : null);
        }
        Assert.True(problems.Count == 0, $"{problems.Count} bad answers:\n" + string.Join('\n', problems.Take(200)));

        Assert.Equal(stateBefore, await StateIdsAsync());
        var stillServed = await remote.SendAsync(server, HttpMethod.Get, $"/_matrix/federation/v1/state_ids/{RoomTests.R(roomId)}?event_id={Uri.EscapeDataString(eventId)}");
        Assert.Equal(200, stillServed.Status);
    }
}

public sealed class FederationHostileInputTestsSqlite(SqliteFederatingServer fixture)
    : FederationHostileInputTests(fixture), IClassFixture<SqliteFederatingServer>;

public sealed class FederationHostileInputTestsPostgres(PostgresFederatingServer fixture)
    : FederationHostileInputTests(fixture), IClassFixture<PostgresFederatingServer>;
