using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec (server-server): the read endpoints as another server calls them — here a fake remote server played by the
/// test, which signs its requests and joins rooms over make_join/send_join.
/// </summary>
public abstract class FederationReadTests(string engine) : ServerFixture(engine, FederationFixture.FederationYaml)
{
    [Fact]
    public async Task A_joined_server_reads_events_state_and_auth_chains_and_a_stranger_cannot()
    {
        await using var remote = new FakeRemoteServer();
        await using var stranger = new FakeRemoteServer();
        var c = Client;
        var alice = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, alice, new { preset = "public_chat", name = "Readable" });
        var message = await RoomTests.SendAsync(c, alice, roomId, "hello remote");
        await remote.JoinAsync(Server, roomId, "fake");
        var r = Uri.EscapeDataString(roomId);
        var e = Uri.EscapeDataString(message);

        var evt = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/event/{e}");
        Assert.Equal("hello remote", Assert.Single(evt.Body!["pdus"]!.AsArray())!["content"]!["body"]!.GetValue<string>());

        var stateIds = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/state_ids/{r}?event_id={e}");
        Assert.True(stateIds.Status == 200, stateIds.ToString());
        Assert.NotEmpty(stateIds.Body!["pdu_ids"]!.AsArray());
        Assert.NotEmpty(stateIds.Body!["auth_chain_ids"]!.AsArray());
        var state = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/state/{r}?event_id={e}");
        Assert.Contains(state.Body!["pdus"]!.AsArray(), p => p!["type"]!.GetValue<string>() == "m.room.name");
        var authChain = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/event_auth/{r}/{e}");
        // Room v12 events never cite the create event (the room ID names it), so the chain holds power levels and members.
        Assert.Contains(authChain.Body!["auth_chain"]!.AsArray(), p => p!["type"]!.GetValue<string>() == "m.room.power_levels");
        var ts = (await c.GetAsync($"/_matrix/client/v3/rooms/{r}/event/{e}", alice.AccessToken)).Body!["origin_server_ts"]!.GetValue<long>();
        var near = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/timestamp_to_event/{r}?ts={ts}&dir=b");
        Assert.Equal(message, near.Str("event_id"));
        var missing = await remote.SendAsync(Server, HttpMethod.Post, $"/_matrix/federation/v1/get_missing_events/{r}",
            new JsonObject { ["earliest_events"] = new JsonArray(), ["latest_events"] = new JsonArray(message), ["limit"] = 5 });
        Assert.NotEmpty(missing.Body!["events"]!.AsArray());

        // A server with nobody in the room reads nothing.
        Assert.Equal(403, (await stranger.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/state_ids/{r}?event_id={e}")).Status);
        Assert.Equal(404, (await stranger.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/event/{e}")).Status);
        Assert.Equal(403, (await stranger.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/backfill/{r}?v={e}&limit=5")).Status);
    }

    [Fact]
    public async Task Events_of_an_erased_user_reach_other_servers_redacted()
    {
        await using var remote = new FakeRemoteServer();
        var c = Client;
        var alice = await c.RegisterAsync();
        var bob = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, alice, new { preset = "public_chat" });
        await c.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/join", new { }, bob.AccessToken);
        var message = await RoomTests.SendAsync(c, bob, roomId, "bob's words");
        var latest = await RoomTests.SendAsync(c, alice, roomId, "alice's words");
        await remote.JoinAsync(Server, roomId, "fake");
        var r = Uri.EscapeDataString(roomId);
        var e = Uri.EscapeDataString(message);
        var before = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/event/{e}");
        Assert.Equal("bob's words", before.Body!["pdus"]![0]!["content"]!["body"]!.GetValue<string>());

        var erased = await c.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/deactivate", new JsonObject { ["erase"] = true }, bob);
        Assert.True(erased.Status == 200, erased.ToString());

        var after = (await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/event/{e}")).Body!["pdus"]![0]!.AsObject();
        Assert.Empty(after["content"]!.AsObject());
        Assert.NotNull(after["signatures"]);
        Assert.NotNull(after["hashes"]);
        var backfilled = (await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/backfill/{r}?v={Uri.EscapeDataString(latest)}&limit=10"))
            .Body!["pdus"]!.AsArray();
        Assert.Empty(backfilled.Single(p => p!["event_id"]?.GetValue<string>() == message || p!["content"]!["body"] is null && p["type"]!.GetValue<string>() == "m.room.message")!["content"]!.AsObject());
        Assert.Contains(backfilled, p => p!["content"]!["body"]?.GetValue<string>() == "alice's words");
        var missing = (await remote.SendAsync(Server, HttpMethod.Post, $"/_matrix/federation/v1/get_missing_events/{r}",
            new JsonObject { ["earliest_events"] = new JsonArray(), ["latest_events"] = new JsonArray(latest), ["limit"] = 10 })).Body!["events"]!.AsArray();
        Assert.DoesNotContain(missing, p => p!["content"]!["body"]?.GetValue<string>() == "bob's words");
    }

    /// <summary>A message by the fake server's user, citing the room's latest event, signed (or not) as the caller decides.</summary>
    private async Task<JsonObject> RemoteMessageAsync(FakeRemoteServer remote, string roomId, string sender, string body)
    {
        var made = await remote.SendAsync(Server, HttpMethod.Get,
            $"/_matrix/federation/v1/make_join/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(sender)}?ver=12");
        var message = (JsonObject)made.Body!["event"]!.DeepClone();
        message["type"] = "m.room.message";
        message.Remove("state_key");
        message["content"] = new JsonObject { ["body"] = body };
        // The template cites the sender's join and the room's power levels; a message needs exactly those (no join rules).
        var authEvents = message["auth_events"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        var state = await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state", (await AdminAsync()).AccessToken);
        var joinRules = state.Body!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.room.join_rules")!["event_id"]!.GetValue<string>();
        message["auth_events"] = new JsonArray(authEvents.Where(a => a != joinRules).Select(a => (JsonNode)a).ToArray());
        return message;
    }

    /// <summary>A redaction of <paramref name="target"/> by the fake server's user, hashed and signed by that server.</summary>
    private async Task<JsonObject> SignedRedactionAsync(FakeRemoteServer remote, string roomId, string sender, string target)
    {
        var redaction = await RemoteMessageAsync(remote, roomId, sender, "");
        redaction["type"] = "m.room.redaction";
        redaction["content"] = new JsonObject { ["redacts"] = target };
        Matrix.Federation.Events.EventSigning.HashAndSign(redaction, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        return redaction;
    }

    private LoggedInUser? _admin;
    private async Task<LoggedInUser> AdminAsync() => _admin ??= await Client.RegisterAsync();

    private static JsonObject Transaction(FakeRemoteServer remote, params JsonObject[] pdus) => new()
    {
        ["origin"] = remote.ServerName, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        ["pdus"] = new JsonArray(pdus.Select(p => (JsonNode)p).ToArray()),
    };

    [Fact]
    public async Task Forged_signatures_are_dropped_and_wrong_hashes_redacted()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");

        var genuine = await RemoteMessageAsync(remote, roomId, fakeUser, "genuine");
        Matrix.Federation.Events.EventSigning.HashAndSign(genuine, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        var forged = await RemoteMessageAsync(remote, roomId, fakeUser, "forged");
        Matrix.Federation.Events.EventSigning.HashAndSign(forged, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName,
            Matrix.Federation.Crypto.Ed25519KeyPair.Generate("fake"));
        var tampered = await RemoteMessageAsync(remote, roomId, fakeUser, "original");
        Matrix.Federation.Events.EventSigning.HashAndSign(tampered, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        tampered["content"] = new JsonObject { ["body"] = "altered after signing" };

        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, genuine, forged, tampered));
        Assert.True(sent.Status == 200, sent.ToString());
        var results = sent.Body!["pdus"]!.AsObject();
        Assert.Equal(3, results.Count);
        Assert.Single(results, r => r.Value!["error"] is not null);

        var messages = (await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=20", admin.AccessToken))
            .Body!["chunk"]!.AsArray().Where(m => m!["type"]!.GetValue<string>() == "m.room.message").ToList();
        Assert.Contains(messages, m => m!["content"]!["body"]?.GetValue<string>() == "genuine");
        Assert.DoesNotContain(messages, m => m!["content"]!["body"]?.GetValue<string>() is "forged" or "altered after signing" or "original");
        // The tampered event is kept, but only in its redacted form.
        Assert.Contains(messages, m => m!["content"]!.AsObject().Count == 0);
    }

    /// <summary>
    /// Messages by the fake server's user after its join that this server never heard of, each stored at the fake
    /// server with the room state as of the join (for its <c>event</c> and <c>state_ids</c> answers).
    /// </summary>
    private static async Task<List<JsonObject>> UnheardMessagesAsync(HomeserverProcess server, FakeRemoteServer remote, string roomId, string fakeUser, int count)
    {
        var join = remote.LastJoinEventId!;
        var before = await remote.SendAsync(server, HttpMethod.Get, $"/_matrix/federation/v1/state_ids/{Uri.EscapeDataString(roomId)}?event_id={Uri.EscapeDataString(join)}");
        var stateIds = before.Body!["pdu_ids"]!.AsArray().Select(n => n!.GetValue<string>()).Append(join).ToList();
        var authChainIds = before.Body!["auth_chain_ids"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        var template = (JsonObject)remote.Events[join].DeepClone();
        var powerLevels = template["auth_events"]!.AsArray().Select(a => a!.GetValue<string>()).First(id => id != join && stateIds.Contains(id));
        var prev = join;
        var depth = template["depth"]!.GetValue<long>();
        var messages = new List<JsonObject>();
        for (var i = 0; i < count; i++)
        {
            var message = new JsonObject
            {
                ["type"] = "m.room.message", ["sender"] = fakeUser, ["room_id"] = roomId, ["content"] = new JsonObject { ["body"] = $"remote {i}" },
                ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + i, ["depth"] = ++depth,
                ["prev_events"] = new JsonArray(prev), ["auth_events"] = new JsonArray(powerLevels, join),
            };
            Matrix.Federation.Events.EventSigning.HashAndSign(message, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
            var id = Matrix.Federation.Events.Pdu.Parse(message, Matrix.Federation.Rooms.RoomVersions.V12).EventId;
            remote.Events[id] = message;
            remote.StateIds[id] = new JsonObject
            {
                ["pdu_ids"] = new JsonArray(stateIds.Select(s => (JsonNode)s).ToArray()),
                ["auth_chain_ids"] = new JsonArray(authChainIds.Select(s => (JsonNode)s).ToArray()),
            };
            prev = id;
            messages.Add(message);
        }
        return messages;
    }

    [Fact]
    public async Task A_gap_too_long_for_get_missing_events_is_bridged_with_state_ids()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        var r = Uri.EscapeDataString(roomId);
        // Thirty messages this server never hears of, then one that cites the last of them; get_missing_events brings
        // only the twenty before it, the first of which is placed on the state_ids of its missing prev event.
        var messages = await UnheardMessagesAsync(Server, remote, roomId, fakeUser, 31);
        var last = messages[^1];
        remote.MissingEventsAnswer.AddRange(messages[^21..^1]);

        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, last));
        var result = Assert.Single(sent.Body!["pdus"]!.AsObject());
        Assert.Null(result.Value!["error"]);
        var timeline = await Client.GetAsync($"/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=5", admin.AccessToken);
        Assert.Equal("remote 30", timeline.Body!["chunk"]![0]!["content"]!["body"]!.GetValue<string>());
        // The bridged prev event is an outlier: this server does not serve a state it only took from another.
        var outlier = messages[^21]["prev_events"]![0]!.GetValue<string>();
        var outlierState = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/state_ids/{r}?event_id={Uri.EscapeDataString(outlier)}");
        Assert.Equal((404, "M_NOT_FOUND"), (outlierState.Status, outlierState.Errcode));
    }

    [Fact]
    public async Task Joins_for_others_or_unsigned_are_403_a_left_room_cannot_be_joined_and_redactions_stay_in_their_room()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var fakeUser = $"@fake:{remote.ServerName}";
        var roomA = await RoomTests.CreateRoomAsync(Client, admin, new
        {
            preset = "public_chat", room_version = "12",
            power_level_content_override = new { users = new Dictionary<string, int> { [fakeUser] = 100 } },
        });
        var r = Uri.EscapeDataString(roomA);
        var made = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/make_join/{r}/{Uri.EscapeDataString(fakeUser)}?ver=12");
        var unsigned = (JsonObject)made.Body!["event"]!.DeepClone();
        unsigned["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var unsignedId = $"${Guid.NewGuid():N}";
        Assert.Equal(403, (await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v2/send_join/{r}/{Uri.EscapeDataString(unsignedId)}", unsigned)).Status);
        var forOther = (JsonObject)unsigned.DeepClone();
        forOther["sender"] = "@someone:other.example";
        forOther["state_key"] = "@someone:other.example";
        Matrix.Federation.Events.EventSigning.HashAndSign(forOther, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        var otherId = Matrix.Federation.Events.Pdu.Parse(forOther, Matrix.Federation.Rooms.RoomVersions.V12).EventId;
        Assert.Equal(403, (await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v2/send_join/{r}/{Uri.EscapeDataString(otherId)}", forOther)).Status);

        // A redaction in room A naming an event of room B redacts nothing.
        await remote.JoinAsync(Server, roomA, "fake");
        var roomB = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var target = await RoomTests.SendAsync(Client, admin, roomB, "stays");
        var redaction = await SignedRedactionAsync(remote, roomA, fakeUser, target);
        await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, redaction));
        var kept = await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomB)}/event/{Uri.EscapeDataString(target)}", admin.AccessToken);
        Assert.Equal("stays", kept.Body!["content"]!["body"]!.GetValue<string>());
        // Nor is it an event of room A: it is rejected, never shown.
        var timelineA = await Client.GetAsync($"/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=20", admin.AccessToken);
        Assert.DoesNotContain(timelineA.Body!["chunk"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.redaction");

        // Once nobody of this server is in a room, it lets nobody in.
        var left = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        Assert.Equal(200, (await Client.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(left)}/leave", new { }, admin.AccessToken)).Status);
        var refused = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/make_join/{Uri.EscapeDataString(left)}/{Uri.EscapeDataString(fakeUser)}?ver=12");
        Assert.Equal((404, "M_NOT_FOUND"), (refused.Status, refused.Errcode));
    }

    [Fact]
    public async Task A_redaction_from_another_server_without_the_power_to_redact_leaves_the_event_alone()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        var target = await RoomTests.SendAsync(Client, admin, roomId, "not yours to redact");
        var redaction = await SignedRedactionAsync(remote, roomId, fakeUser, target);
        await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, redaction));
        var kept = await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/event/{Uri.EscapeDataString(target)}", admin.AccessToken);
        Assert.Equal("not yours to redact", kept.Body!["content"]!["body"]!.GetValue<string>());
        Assert.Null(kept.Body!["unsigned"]?["redacted_because"]);

        // Its own events it may redact.
        var own = await RemoteMessageAsync(remote, roomId, fakeUser, "mine");
        Matrix.Federation.Events.EventSigning.HashAndSign(own, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        var ownId = Matrix.Federation.Events.Pdu.Parse(own, Matrix.Federation.Rooms.RoomVersions.V12).EventId;
        await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, own));
        var retraction = await SignedRedactionAsync(remote, roomId, fakeUser, ownId);
        await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, retraction));
        var gone = await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/event/{Uri.EscapeDataString(ownId)}", admin.AccessToken);
        Assert.Empty(gone.Body!["content"]!.AsObject());
    }

    [Fact]
    public async Task An_event_whose_prev_events_its_sender_will_not_divulge_is_refused()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        var messages = await UnheardMessagesAsync(Server, remote, roomId, fakeUser, 2);
        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, messages[1]));
        Assert.NotNull(Assert.Single(sent.Body!["pdus"]!.AsObject()).Value!["error"]);
        var bodies = (await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=10", admin.AccessToken))
            .Body!["chunk"]!.AsArray().Select(e => e!["content"]?["body"]?.GetValue<string>());
        Assert.DoesNotContain("remote 1", bodies);
    }

    [Fact]
    public async Task What_get_missing_events_brings_but_cannot_place_is_placed_on_the_state_before_its_own_gap()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        // Q, R, S: S is sent, get_missing_events brings R only, so R's prev event Q is bridged with state_ids.
        var messages = await UnheardMessagesAsync(Server, remote, roomId, fakeUser, 3);
        remote.MissingEventsAnswer.Add(messages[1]);

        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, messages[2]));
        Assert.Equal("{}", Assert.Single(sent.Body!["pdus"]!.AsObject()).Value!.ToJsonString());
        var bodies = (await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=10", admin.AccessToken))
            .Body!["chunk"]!.AsArray().Select(e => e!["content"]?["body"]?.GetValue<string>()).ToList();
        Assert.Equal(["remote 2", "remote 1"], bodies.Take(2));
    }

    [Fact]
    public async Task Paging_back_over_a_gap_in_the_middle_of_the_timeline_backfills_it()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        var r = Uri.EscapeDataString(roomId);
        // Q, R, S: S is sent, get_missing_events brings R only, so Q is held as an outlier: a gap between R and the join.
        var messages = await UnheardMessagesAsync(Server, remote, roomId, fakeUser, 3);
        remote.MissingEventsAnswer.Add(messages[1]);
        remote.BackfillAnswer.Add(messages[0]);
        await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, messages[2]));

        var latest = await Client.GetAsync($"/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=2", admin.AccessToken);
        Assert.Equal(["remote 2", "remote 1"], latest.Body!["chunk"]!.AsArray().Select(e => e!["content"]?["body"]?.GetValue<string>()));
        Assert.Empty(remote.BackfillRequests);
        // The next page starts just below R, whose prev event is missing here: it is asked for first.
        var older = await Client.GetAsync($"/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=20&from={latest.Str("end")}", admin.AccessToken);
        var q = Matrix.Federation.Events.Pdu.Parse(messages[0], Matrix.Federation.Rooms.RoomVersions.V12).EventId;
        Assert.Equal([q], Assert.Single(remote.BackfillRequests));
        Assert.Contains("remote 0", older.Body!["chunk"]!.AsArray().Select(e => e!["content"]?["body"]?.GetValue<string>()));
    }

    [Fact]
    public async Task A_rejected_event_is_handled_without_error_and_its_state_is_not_served()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        // Sent by a user of the fake server who never joined: the auth rules reject it.
        var rejected = await RemoteMessageAsync(remote, roomId, fakeUser, "not a member");
        rejected["sender"] = $"@outsider:{remote.ServerName}";
        Matrix.Federation.Events.EventSigning.HashAndSign(rejected, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        var eventId = Matrix.Federation.Events.Pdu.Parse(rejected, Matrix.Federation.Rooms.RoomVersions.V12).EventId;

        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, rejected));
        Assert.Equal("{}", Assert.Single(sent.Body!["pdus"]!.AsObject()).Value!.ToJsonString());
        foreach (var endpoint in new[] { "state", "state_ids" })
        {
            var state = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/{endpoint}/{Uri.EscapeDataString(roomId)}?event_id={Uri.EscapeDataString(eventId)}");
            Assert.Equal((404, "M_NOT_FOUND"), (state.Status, state.Errcode));
        }
        // An event citing the rejected one as its prev event sees the state from before it, unchanged, and is accepted.
        var next = await RemoteMessageAsync(remote, roomId, fakeUser, "after the rejected one");
        next["prev_events"] = new JsonArray(eventId);
        next["depth"] = rejected["depth"]!.GetValue<long>() + 1;
        Matrix.Federation.Events.EventSigning.HashAndSign(next, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        var nextSent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", Transaction(remote, next));
        Assert.Equal("{}", Assert.Single(nextSent.Body!["pdus"]!.AsObject()).Value!.ToJsonString());
        var messages = await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=20", admin.AccessToken);
        Assert.DoesNotContain(messages.Body!["chunk"]!.AsArray(), m => m!["content"]?["body"]?.GetValue<string>() == "not a member");
        Assert.Contains(messages.Body!["chunk"]!.AsArray(), m => m!["content"]?["body"]?.GetValue<string>() == "after the rejected one");
    }

    [Fact]
    public async Task Other_servers_get_one_level_of_a_public_space()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var space = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", creation_content = new { type = "m.space" } });
        var open = await RoomTests.CreateRoomAsync(Client, admin, new { preset = "public_chat", name = "Open" });
        var secret = await RoomTests.CreateRoomAsync(Client, admin, new { name = "Secret" });
        foreach (var child in new[] { open, secret })
            await Client.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(space)}/state/m.space.child/{child}", new { via = new[] { Server.ServerName } }, admin.AccessToken);
        var hierarchy = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/hierarchy/{Uri.EscapeDataString(space)}");
        Assert.True(hierarchy.Status == 200, hierarchy.ToString());
        Assert.Equal(space, hierarchy.Body!["room"]!["room_id"]!.GetValue<string>());
        Assert.Equal([open], hierarchy.Body!["children"]!.AsArray().Select(c => c!["room_id"]!.GetValue<string>()));
        Assert.Equal([secret], hierarchy.Body!["inaccessible_children"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Equal(404, (await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/hierarchy/{Uri.EscapeDataString(secret)}")).Status);
    }

    [Fact]
    public async Task A_remote_knock_gets_the_stripped_state_under_the_spec_name_and_the_one_older_Synapse_reads()
    {
        await using var remote = new FakeRemoteServer();
        var admin = await AdminAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, admin, new
        {
            name = "Knock here", room_version = "10",
            initial_state = new object[] { new { type = "m.room.join_rules", state_key = "", content = new { join_rule = "knock" } } },
        });
        var (knocker, sent) = await remote.SendMembershipAsync(Server, roomId, "knocker", "knock");
        var state = sent.Body!["knock_room_state"]!.AsArray();
        Assert.Contains(state, e => e!["type"]!.GetValue<string>() == "m.room.name" && e["content"]!["name"]!.GetValue<string>() == "Knock here");
        Assert.True(JsonNode.DeepEquals(state, sent.Body!["knock_state_events"]), sent.ToString());
        var member = await Client.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/m.room.member/{Uri.EscapeDataString(knocker)}", admin.AccessToken);
        Assert.Equal("knock", member.Str("membership"));
    }

    [Fact]
    public async Task Pdus_whose_sender_is_not_on_the_origin_are_refused()
    {
        await using var remote = new FakeRemoteServer();
        var c = Client;
        var alice = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, alice, new { preset = "public_chat", room_version = "12" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "fake");
        var made = await remote.SendAsync(Server, HttpMethod.Get,
            $"/_matrix/federation/v1/make_join/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(fakeUser)}?ver=12");
        var impostor = (JsonObject)made.Body!["event"]!.DeepClone();
        impostor["type"] = "m.room.message";
        impostor.Remove("state_key");
        impostor["sender"] = alice.UserId;
        impostor["content"] = new JsonObject { ["body"] = "I am alice" };
        Matrix.Federation.Events.EventSigning.HashAndSign(impostor, Matrix.Federation.Rooms.RoomVersions.V12, remote.ServerName, remote.Key);
        var transaction = new JsonObject
        {
            ["origin"] = remote.ServerName, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            ["pdus"] = new JsonArray(impostor),
        };
        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", transaction);
        Assert.Equal(200, sent.Status);
        var result = Assert.Single(sent.Body!["pdus"]!.AsObject()).Value!;
        Assert.Contains("origin", result["error"]!.GetValue<string>());
        var messages = await c.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=20", alice.AccessToken);
        Assert.DoesNotContain(messages.Body!["chunk"]!.AsArray(), m => m!["content"]?["body"]?.GetValue<string>() == "I am alice");
    }
}

public sealed class FederationReadTestsSqlite() : FederationReadTests("sqlite");
public sealed class FederationReadTestsPostgres() : FederationReadTests("postgres");
