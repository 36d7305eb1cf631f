using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A server whose user-chosen URLs may reach 127.0.0.2, where the tests' push gateway stand-in listens, and that
/// federates over plain HTTP with a fake remote server.
/// </summary>
public class PushServer(string engine)
    : ServerFixture(engine, FederationFixture.FederationYaml + "outbound_http:\n  ip_range_allowlist: [\"127.0.0.2/32\"]\n");

public sealed class SqlitePushServer() : PushServer("sqlite");
public sealed class PostgresPushServer() : PushServer("postgres");

/// <summary>
/// Spec: "Push notifications": pushers (<c>/pushers</c>, <c>/pushers/set</c>), delivery to a push gateway
/// (<c>/_matrix/push/v1/notify</c>, full and <c>event_id_only</c> formats, retries, rejected pushkeys) against a
/// gateway played by the test, and <c>GET /notifications</c>.
/// </summary>
public abstract class PushGatewayTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    /// <summary>A push gateway on 127.0.0.2 that records notifications and answers as <see cref="Answer"/> says.</summary>
    private sealed class Gateway : IAsyncDisposable
    {
        private readonly LoopbackListener _listener;
        public ConcurrentQueue<JsonObject> Received { get; } = new();
        public Func<JsonObject, (int Status, string[] Rejected)> Answer { get; set; } = _ => (200, []);
        public string Url => $"{_listener.BaseUrl}/_matrix/push/v1/notify";

        public Gateway() => _listener = new LoopbackListener(async context =>
        {
            var body = JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync())!.AsObject();
            var (status, rejected) = Answer(body);
            if (status == 200)
                Received.Enqueue(body);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(new JsonObject { ["rejected"] = new JsonArray(rejected.Select(r => (JsonNode)r!).ToArray()) }.ToJsonString()));
            context.Response.Close();
        }, address: "127.0.0.2");

        public async Task<JsonObject> NextAsync(Func<JsonObject, bool>? where = null)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                var match = Received.FirstOrDefault(n => where?.Invoke(n) ?? true);
                if (match is not null)
                    return match;
                await Task.Delay(50);
            }
            throw new TimeoutException("no notification reached the gateway");
        }

        public ValueTask DisposeAsync() => _listener.DisposeAsync();
    }

    private static object Pusher(string url, string pushkey, string? format = null, bool append = false) => new
    {
        kind = "http", app_id = "com.example.app", pushkey, app_display_name = "Example", device_display_name = "Phone", lang = "en",
        data = format is null ? (object)new { url, custom = "kept" } : new { url, format }, append,
    };

    private async Task<(string RoomId, LoggedInUser Alice, LoggedInUser Bob)> RoomOfTwoAsync()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId }, name = "Plans" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);
        return (roomId, alice, bob);
    }

    [Fact]
    public async Task Pushers_are_set_listed_replaced_and_deleted()
    {
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        const string url = "https://push.example.com/_matrix/push/v1/notify";
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(url, "key-1"), bob.AccessToken)).Status);
        var listed = (await C.GetAsync($"{V3}/pushers", bob.AccessToken)).Body!["pushers"]!.AsArray();
        var pusher = Assert.Single(listed)!;
        Assert.Equal("key-1", pusher["pushkey"]!.GetValue<string>());
        Assert.Equal("kept", pusher["data"]!["custom"]!.GetValue<string>());
        Assert.Equal("Phone", pusher["device_display_name"]!.GetValue<string>());

        // The same pushkey taken by another user without append: it moves to them.
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(url, "key-1"), carol.AccessToken)).Status);
        Assert.Empty((await C.GetAsync($"{V3}/pushers", bob.AccessToken)).Body!["pushers"]!.AsArray());
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(url, "key-1", append: true), bob.AccessToken)).Status);
        Assert.Single((await C.GetAsync($"{V3}/pushers", carol.AccessToken)).Body!["pushers"]!.AsArray());

        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", new { kind = (string?)null, app_id = "com.example.app", pushkey = "key-1" }, bob.AccessToken)).Status);
        Assert.Empty((await C.GetAsync($"{V3}/pushers", bob.AccessToken)).Body!["pushers"]!.AsArray());

        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/pushers/set", new { kind = "http", app_id = "a", pushkey = "k" }, bob.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/pushers/set", new { app_id = "a", pushkey = "k" }, bob.AccessToken)).Errcode);
        Assert.Equal(400, (await C.PostAsync($"{V3}/pushers/set", Pusher("https://push.example.com/other", "k"), bob.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/pushers/set", new
        {
            kind = "email", app_id = "m.email", pushkey = "bob@example.com", app_display_name = "Mail", device_display_name = "Mail", lang = "en", data = new { },
        }, bob.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/pushers/set", Pusher(url, new string('k', 513)), bob.AccessToken)).Status);
        Assert.Equal(401, (await C.GetAsync($"{V3}/pushers")).Status);

        // A format other than event_id_only is kept, as Synapse keeps it (such a pusher gets the full format).
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(url, "key-3", "id_event_only"), bob.AccessToken)).Status);
        var odd = Assert.Single((await C.GetAsync($"{V3}/pushers", bob.AccessToken)).Body!["pushers"]!.AsArray())!;
        Assert.Equal("id_event_only", odd["data"]!["format"]!.GetValue<string>());

        // Logging out removes the device's pushers.
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(url, "key-2"), bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/logout", new { }, bob.AccessToken)).Status);
        var again = await C.LoginAsync(bob.UserId, bob.Password);
        Assert.Empty((await C.GetAsync($"{V3}/pushers", again.Str("access_token"))).Body!["pushers"]!.AsArray());
    }

    [Fact]
    public async Task A_message_reaches_the_gateway_in_full_and_event_id_only_formats()
    {
        await using var gateway = new Gateway();
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(gateway.Url, "full-key"), bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(gateway.Url, "small-key", "event_id_only"), bob.AccessToken)).Status);
        var eventId = await RoomTests.SendAsync(C, alice, roomId, "lunch at noon?");

        var full = (await gateway.NextAsync(n => n["notification"]!["devices"]![0]!["pushkey"]!.GetValue<string>() == "full-key"))["notification"]!;
        Assert.Equal(eventId, full["event_id"]!.GetValue<string>());
        Assert.Equal(roomId, full["room_id"]!.GetValue<string>());
        Assert.Equal("m.room.message", full["type"]!.GetValue<string>());
        Assert.Equal(alice.UserId, full["sender"]!.GetValue<string>());
        Assert.Equal("lunch at noon?", full["content"]!["body"]!.GetValue<string>());
        Assert.Equal("Plans", full["room_name"]!.GetValue<string>());
        Assert.Equal(1, full["counts"]!["unread"]!.GetValue<long>());
        Assert.Equal("high", full["prio"]!.GetValue<string>());
        var device = full["devices"]![0]!;
        Assert.Equal("com.example.app", device["app_id"]!.GetValue<string>());
        Assert.Equal("kept", device["data"]!["custom"]!.GetValue<string>());
        Assert.Null(device["data"]!["url"]);
        Assert.Equal("default", device["tweaks"]!["sound"]!.GetValue<string>());

        var small = (await gateway.NextAsync(n => n["notification"]!["devices"]![0]!["pushkey"]!.GetValue<string>() == "small-key"))["notification"]!;
        Assert.Equal(eventId, small["event_id"]!.GetValue<string>());
        Assert.Null(small["content"]);
        Assert.Null(small["sender"]);
        Assert.Equal("event_id_only", small["devices"]![0]!["data"]!["format"]!.GetValue<string>());

        // The sender's own pushers get nothing for their own message.
        Assert.DoesNotContain(gateway.Received, n => n["notification"]!["devices"]![0]!["pushkey"]!.GetValue<string>() == "alice-key");
    }

    [Fact]
    public async Task A_read_receipt_sends_the_gateway_the_new_badge_count()
    {
        await using var gateway = new Gateway();
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        // A receipt from before the pusher existed sends it nothing.
        var earlier = await RoomTests.SendAsync(C, alice, roomId, "before the pusher");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(earlier)}", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(gateway.Url, "badge-key"), bob.AccessToken)).Status);
        var eventId = await RoomTests.SendAsync(C, alice, roomId, "read me");
        var pushed = (await gateway.NextAsync(n => n["notification"]!["event_id"]?.GetValue<string>() == eventId))["notification"]!;
        Assert.Equal(1, pushed["counts"]!["unread"]!.GetValue<long>());

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(eventId)}", new { }, bob.AccessToken)).Status);
        var badge = (await gateway.NextAsync(n => n["notification"]!["event_id"] is null))["notification"]!;
        Assert.Equal(0, badge["counts"]!["unread"]!.GetValue<long>());
        Assert.Equal("badge-key", badge["devices"]![0]!["pushkey"]!.GetValue<string>());
        Assert.Null(badge["devices"]![0]!["data"]!["url"]);
        Assert.Single(gateway.Received, n => n["notification"]!["event_id"] is null);
    }

    [Fact]
    public async Task An_invite_reaches_the_invitees_gateway_with_the_room_named_by_its_canonical_alias()
    {
        await using var gateway = new Gateway();
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(gateway.Url, "invite-key"), bob.AccessToken)).Status);
        var alias = MatrixClient.UniqueName("push");
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { room_alias_name = alias });
        var invited = await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken);
        Assert.Equal(200, invited.Status);

        var invite = (await gateway.NextAsync(n => n["notification"]!["room_id"]?.GetValue<string>() == roomId))["notification"]!;
        Assert.Equal("m.room.member", invite["type"]!.GetValue<string>());
        Assert.Equal("invite", invite["membership"]!.GetValue<string>());
        Assert.True(invite["user_is_target"]!.GetValue<bool>());
        Assert.Equal(alice.UserId, invite["sender"]!.GetValue<string>());
        Assert.Equal($"#{alias}:{C.ServerName}", invite["room_name"]!.GetValue<string>());
        // The deprecated "id" Synapse still sends (and SyTest checks) is the event ID.
        Assert.Equal(invite["event_id"]!.GetValue<string>(), invite["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_invite_over_federation_reaches_the_invitees_gateway_named_from_its_stripped_state()
    {
        await using var gateway = new Gateway();
        await using var remote = new FakeRemoteServer();
        var bob = await C.RegisterAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(gateway.Url, "remote-invite-key"), bob.AccessToken)).Status);
        var version = RoomVersions.Find("10")!;
        var roomId = $"!{Guid.NewGuid():N}:{remote.ServerName}";
        var charlie = $"@charlie:{remote.ServerName}";
        var invite = new JsonObject
        {
            ["type"] = "m.room.member", ["state_key"] = bob.UserId, ["sender"] = charlie, ["room_id"] = roomId,
            ["content"] = new JsonObject { ["membership"] = "invite" }, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            ["depth"] = 5, ["auth_events"] = new JsonArray(), ["prev_events"] = new JsonArray(),
        };
        EventSigning.HashAndSign(invite, version, remote.ServerName, remote.Key);
        var eventId = Pdu.Parse(invite, version).EventId;
        var answer = await remote.SendAsync(fixture.Server, HttpMethod.Put,
            $"/_matrix/federation/v2/invite/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(eventId)}", new JsonObject
            {
                ["room_version"] = version.Id, ["event"] = invite,
                ["invite_room_state"] = new JsonArray(new JsonObject
                {
                    ["type"] = "m.room.name", ["state_key"] = "", ["sender"] = charlie, ["content"] = new JsonObject { ["name"] = "Remote plans" },
                }),
            });
        Assert.True(answer.Status == 200, answer.ToString());

        var pushed = (await gateway.NextAsync(n => n["notification"]!["room_id"]?.GetValue<string>() == roomId))["notification"]!;
        Assert.Equal(eventId, pushed["event_id"]!.GetValue<string>());
        Assert.Equal("invite", pushed["membership"]!.GetValue<string>());
        Assert.True(pushed["user_is_target"]!.GetValue<bool>());
        Assert.Equal(charlie, pushed["sender"]!.GetValue<string>());
        Assert.Equal("Remote plans", pushed["room_name"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_failing_gateway_gets_every_notification_once_in_order_and_a_rejected_pushkey_loses_its_pusher()
    {
        await using var gateway = new Gateway();
        var failures = 2;
        gateway.Answer = _ => Interlocked.Decrement(ref failures) >= 0 ? (503, []) : (200, []);
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/pushers/set", Pusher(gateway.Url, "retry-key", "event_id_only"), bob.AccessToken)).Status);
        var sent = new List<string>();
        for (var i = 0; i < 3; i++)
            sent.Add(await RoomTests.SendAsync(C, alice, roomId, $"message {i}"));
        await gateway.NextAsync(n => n["notification"]!["event_id"]!.GetValue<string>() == sent[^1]);
        await Task.Delay(500);
        Assert.Equal(sent, gateway.Received.Select(n => n["notification"]!["event_id"]!.GetValue<string>()).ToList());

        gateway.Answer = body => (200, ["retry-key"]);
        await RoomTests.SendAsync(C, alice, roomId, "are you there?");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await C.GetAsync($"{V3}/pushers", bob.AccessToken)).Body!["pushers"]!.AsArray().Count > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Empty((await C.GetAsync($"{V3}/pushers", bob.AccessToken)).Body!["pushers"]!.AsArray());
    }

    [Fact]
    public async Task Notifications_list_what_notified_with_read_state_highlights_and_pages()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        var first = await RoomTests.SendAsync(C, alice, roomId, "one");
        var mention = (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}", new JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = "two", ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray(bob.UserId) },
        }, alice.AccessToken)).Str("event_id");
        var third = await RoomTests.SendAsync(C, alice, roomId, "three");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(first)}", new { }, bob.AccessToken)).Status);

        var all = (await C.GetAsync($"{V3}/notifications", bob.AccessToken)).Body!["notifications"]!.AsArray();
        // Bob's invite notified him too (.m.rule.invite_for_me), before he joined.
        var invite = all[^1]!["event"]!;
        Assert.Equal(["m.room.member", "invite", bob.UserId],
            [invite["type"]!.GetValue<string>(), invite["content"]!["membership"]!.GetValue<string>(), invite["state_key"]!.GetValue<string>()]);
        Assert.Equal([third, mention, first], all.SkipLast(1).Select(n => n!["event"]!["event_id"]!.GetValue<string>()).ToArray());
        Assert.Equal([false, false, true, true], all.Select(n => n!["read"]!.GetValue<bool>()).ToArray());
        Assert.Equal(roomId, all[0]!["room_id"]!.GetValue<string>());
        // Rules have no profile tags since device-specific rules went: null, as Synapse serves it.
        Assert.True(all[0]!.AsObject().TryGetPropertyValue("profile_tag", out var profileTag));
        Assert.Null(profileTag);
        Assert.Contains(all[0]!["actions"]!.AsArray(), a => a!.GetValueKind() == System.Text.Json.JsonValueKind.String && a.GetValue<string>() == "notify");

        var highlights = (await C.GetAsync($"{V3}/notifications?only=highlight", bob.AccessToken)).Body!["notifications"]!.AsArray();
        Assert.Equal(mention, Assert.Single(highlights)!["event"]!["event_id"]!.GetValue<string>());

        var page = (await C.GetAsync($"{V3}/notifications?limit=2", bob.AccessToken)).Body!;
        Assert.Equal(2, page["notifications"]!.AsArray().Count);
        var rest = (await C.GetAsync($"{V3}/notifications?limit=2&from={page["next_token"]!.GetValue<string>()}", bob.AccessToken)).Body!;
        Assert.Equal([first, invite["event_id"]!.GetValue<string>()],
            rest["notifications"]!.AsArray().Select(n => n!["event"]!["event_id"]!.GetValue<string>()).ToArray());
        Assert.Empty((await C.GetAsync($"{V3}/notifications", alice.AccessToken)).Body!["notifications"]!.AsArray());
        Assert.Equal(400, (await C.GetAsync($"{V3}/notifications?from=garbage", bob.AccessToken)).Status);
    }
}

public sealed class PushGatewayTestsSqlite(SqlitePushServer f) : PushGatewayTests(f), IClassFixture<SqlitePushServer>;
public sealed class PushGatewayTestsPostgres(PostgresPushServer f) : PushGatewayTests(f), IClassFixture<PostgresPushServer>;
