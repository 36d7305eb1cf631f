using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API "Rooms" and "Room membership": creation, joining, membership changes, state.</summary>
public abstract class RoomTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    internal static async Task<string> CreateRoomAsync(MatrixClient c, LoggedInUser user, object? body = null)
    {
        var response = await c.PostAsync($"{V3}/createRoom", body ?? new { }, user.AccessToken);
        Assert.True(response.Status == 200, response.ToString());
        return response.Str("room_id");
    }

    internal static async Task<string> SendAsync(MatrixClient c, LoggedInUser user, string roomId, string body, string? txnId = null)
    {
        var response = await c.PutAsync($"{V3}/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/{txnId ?? Guid.NewGuid().ToString("N")}",
            new { msgtype = "m.text", body }, user.AccessToken);
        Assert.True(response.Status == 200, response.ToString());
        return response.Str("event_id");
    }

    internal static string R(string roomId) => Uri.EscapeDataString(roomId);

    [Fact]
    public async Task Rooms_created_at_once_by_one_user_get_distinct_ids()
    {
        // Version 12 room IDs hash the create event: identical requests in one millisecond must still differ.
        var alice = await C.RegisterAsync();
        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => C.PostAsync($"{V3}/createRoom", new { preset = "public_chat", room_version = "12" }, alice.AccessToken)));
        Assert.All(responses, r => Assert.True(r.Status == 200, r.ToString()));
        Assert.Equal(12, responses.Select(r => r.Str("room_id")).Distinct().Count());
    }

    [Fact]
    public async Task Create_room_applies_name_topic_preset_initial_state_and_power_level_override()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new
        {
            name = "Design", topic = "Weekly design review", preset = "public_chat", invite = new[] { bob.UserId },
            initial_state = new object[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = "joined" } } },
            power_level_content_override = new { events_default = 10 },
            creation_content = new { type = "m.space" },
        });
        Assert.Matches("^![A-Za-z0-9]+:", roomId);
        var state = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/state", alice.AccessToken)).Body!.AsArray();
        string? Content(string type, string field) => state.FirstOrDefault(e => e!["type"]!.GetValue<string>() == type)?["content"]?[field]?.ToJsonString().Trim('"');
        Assert.Equal("Design", Content("m.room.name", "name"));
        Assert.Equal("Weekly design review", Content("m.room.topic", "topic"));
        Assert.Equal("public", Content("m.room.join_rules", "join_rule"));
        Assert.Equal("joined", Content("m.room.history_visibility", "history_visibility"));
        Assert.Equal("10", Content("m.room.power_levels", "events_default"));
        Assert.Equal("11", Content("m.room.create", "room_version"));
        Assert.Equal("m.space", Content("m.room.create", "type"));
        var bobMember = await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{bob.UserId}", alice.AccessToken);
        Assert.Equal("invite", bobMember.Str("membership"));
        var name = await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.name?format=event", alice.AccessToken);
        Assert.Equal("m.room.name", name.Str("type"));
    }

    [Fact]
    public async Task Membership_requests_behave_as_Synapse_where_the_auth_rules_are_silent()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", room_alias_name = MatrixClient.UniqueName("custom") });

        // A join's other fields go into the member event; joining again alike makes no new event.
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{R(roomId)}", new { foo = "bar", reason = "hi" }, bob.AccessToken)).Status);
        var member = await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{bob.UserId}?format=event", alice.AccessToken);
        Assert.Equal("bar", member.Body!["content"]!["foo"]!.GetValue<string>());
        Assert.Equal("hi", member.Body!["content"]!["reason"]!.GetValue<string>());
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{R(roomId)}", new { foo = "bar", reason = "hi" }, bob.AccessToken)).Status);
        Assert.Equal(member.Str("event_id"),
            (await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{bob.UserId}?format=event", alice.AccessToken)).Str("event_id"));

        // Kicks need a target in the room: not someone never there, gone, or banned (a kick would unban them).
        Assert.Equal(403, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/kick", new { user_id = carol.UserId }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/ban", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal(403, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/kick", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal("ban", (await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{bob.UserId}", alice.AccessToken)).Str("membership"));
        Assert.Equal(403, (await C.PostAsync($"{V3}/join/{R(roomId)}", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/unban", new { user_id = bob.UserId }, alice.AccessToken)).Status);

        // A redaction names an event of its own room (400 otherwise); context is for members (403 for others).
        var otherRoom = await CreateRoomAsync(C, alice);
        var elsewhere = await SendAsync(C, alice, otherRoom, "elsewhere");
        Assert.Equal(400, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/redact/{R(elsewhere)}/t1", new { }, alice.AccessToken)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V3}/rooms/{R(otherRoom)}/context/{R(elsewhere)}", carol.AccessToken)).Status);
    }

    [Fact]
    public async Task Presets_set_the_invite_level_as_Synapse_does()
    {
        var alice = await C.RegisterAsync();
        async Task<JsonNode> LevelsAsync(string preset) => (await C.GetAsync(
            $"{V3}/rooms/{R(await CreateRoomAsync(C, alice, new { preset }))}/state/m.room.power_levels/", alice.AccessToken)).Body!;
        Assert.Equal(0, (await LevelsAsync("private_chat"))["invite"]!.GetValue<int>());
        Assert.Equal(0, (await LevelsAsync("trusted_private_chat"))["invite"]!.GetValue<int>());
        var publicLevels = await LevelsAsync("public_chat");
        Assert.Equal(50, publicLevels["invite"]!.GetValue<int>());
        Assert.Equal(50, publicLevels["events"]!["m.call.invite"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_power_level_override_leaving_out_the_creator_is_refused_before_any_room_is_made()
    {
        var alice = await C.RegisterAsync();
        var refused = await C.PostAsync($"{V3}/createRoom", new
        {
            room_version = "11", power_level_content_override = new { users = new Dictionary<string, int> { ["@someone:example.org"] = 50 } },
        }, alice.AccessToken);
        Assert.Equal(400, refused.Status);
        Assert.Equal("M_INVALID_PARAM", refused.Errcode);
        Assert.Empty((await C.GetAsync($"{V3}/joined_rooms", alice.AccessToken)).Body!["joined_rooms"]!.AsArray());
        // Version 12 creators hold power without an entry in users.
        await CreateRoomAsync(C, alice, new
        {
            room_version = "12", power_level_content_override = new { users = new Dictionary<string, int> { ["@someone:example.org"] = 50 } },
        });
    }

    [Fact]
    public async Task Every_room_version_can_be_created_and_used()
    {
        var alice = await C.RegisterAsync();
        for (var version = 1; version <= 12; version++)
        {
            var roomId = await CreateRoomAsync(C, alice, new { room_version = version.ToString(), name = $"v{version}" });
            var eventId = await SendAsync(C, alice, roomId, $"hello v{version}");
            var fetched = await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/{Uri.EscapeDataString(eventId)}", alice.AccessToken);
            Assert.Equal($"hello v{version}", fetched.Body!["content"]!["body"]!.GetValue<string>());
            var create = await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.create", alice.AccessToken);
            Assert.Equal(version.ToString(), create.Str("room_version"));
        }
        var unsupported = await C.PostAsync($"{V3}/createRoom", new { room_version = "99" }, alice.AccessToken);
        Assert.Equal("M_UNSUPPORTED_ROOM_VERSION", unsupported.Errcode);
    }

    [Fact]
    public async Task Create_room_rejects_bad_input_before_creating_anything()
    {
        var alice = await C.RegisterAsync();
        Assert.Equal(400, (await C.PostAsync($"{V3}/createRoom", new { invite = new[] { "not-a-user" } }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/createRoom", new { preset = "party" }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/createRoom", "{\"creation_content\": {\"x\": 1.5}}", alice.AccessToken)).Status);
        Assert.Equal(401, (await C.PostAsync($"{V3}/createRoom", new { })).Status);
        var joined = await C.GetAsync($"{V3}/joined_rooms", alice.AccessToken);
        Assert.Empty(joined.Body!["joined_rooms"]!.AsArray());
    }

    [Fact]
    public async Task Aliases_are_created_with_the_room_and_can_be_joined()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var localpart = MatrixClient.UniqueName("room");
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", room_alias_name = localpart });
        var taken = await C.PostAsync($"{V3}/createRoom", new { room_alias_name = localpart }, alice.AccessToken);
        Assert.Equal("M_ROOM_IN_USE", taken.Errcode);
        var join = await C.PostAsync($"{V3}/join/{Uri.EscapeDataString($"#{localpart}:{C.ServerName}")}", new { }, bob.AccessToken);
        Assert.Equal(roomId, join.Str("room_id"));
        var canonical = await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.canonical_alias", bob.AccessToken);
        Assert.Equal($"#{localpart}:{C.ServerName}", canonical.Str("alias"));
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync($"{V3}/join/{Uri.EscapeDataString($"#nothing{localpart}:{C.ServerName}")}", new { }, bob.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Invite_join_leave_kick_ban_unban_and_forget()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        // A private room where inviting needs power 50 (private_chat's own default lets anyone in it invite).
        var roomId = await CreateRoomAsync(C, alice, new { power_level_content_override = new { invite = 50 } });
        var r = R(roomId);

        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"{V3}/rooms/{r}/join", new { }, bob.AccessToken)).Errcode);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/join", new { }, bob.AccessToken)).Status);
        Assert.Contains(roomId, (await C.GetAsync($"{V3}/joined_rooms", bob.AccessToken)).Body!["joined_rooms"]!.AsArray().Select(n => n!.GetValue<string>()));

        // Bob (power 0) may neither kick nor invite with the invite level 50.
        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"{V3}/rooms/{r}/kick", new { user_id = alice.UserId }, bob.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"{V3}/rooms/{r}/invite", new { user_id = carol.UserId }, bob.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"{V3}/rooms/{r}/invite", new { user_id = carol.UserId }, carol.AccessToken)).Errcode);

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/kick", new { user_id = bob.UserId, reason = "spam" }, alice.AccessToken)).Status);
        var kicked = await C.GetAsync($"{V3}/rooms/{r}/state/m.room.member/{bob.UserId}", alice.AccessToken);
        Assert.Equal("leave", kicked.Str("membership"));
        Assert.Equal("spam", kicked.Str("reason"));

        // Kicked, Bob still reads the state as it was when he left; banned, nothing (as Synapse).
        Assert.Equal(200, (await C.GetAsync($"{V3}/rooms/{r}/state/m.room.member/{bob.UserId}", bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/ban", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V3}/rooms/{r}/state/m.room.member/{bob.UserId}", bob.AccessToken)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V3}/rooms/{r}/state", bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/invite", new { user_id = carol.UserId }, alice.AccessToken)).Status);
        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"{V3}/rooms/{r}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PostAsync($"{V3}/rooms/{r}/unban", new { user_id = carol.UserId }, alice.AccessToken)).Errcode);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/unban", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal("leave", (await C.GetAsync($"{V3}/rooms/{r}/state/m.room.member/{bob.UserId}", alice.AccessToken)).Str("membership"));

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/leave", new { }, carol.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{r}/forget", new { }, carol.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/rooms/{r}/forget", new { }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/rooms/{r}/invite", new { user_id = "bob" }, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Acting_in_a_room_you_are_not_in_is_forbidden()
    {
        var alice = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var eventId = await SendAsync(C, alice, roomId, "secret");
        var r = R(roomId);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{r}/send/m.room.message/t1", new { body = "x" }, mallory.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{r}/state/m.room.name", new { name = "x" }, mallory.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/rooms/{r}/state", mallory.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/rooms/{r}/members", mallory.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/rooms/{r}/joined_members", mallory.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/rooms/{r}/messages", mallory.AccessToken)).Errcode);
        Assert.Equal(404, (await C.GetAsync($"{V3}/rooms/{r}/event/{Uri.EscapeDataString(eventId)}", mallory.AccessToken)).Status);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R("!unknown:spec.test")}/send/m.room.message/t1", new { body = "x" }, mallory.AccessToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync($"{V3}/join/{R("!unknown:spec.test")}", new { }, mallory.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Bad_room_and_event_ids_are_400()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        Assert.Equal(400, (await C.PutAsync($"{V3}/rooms/not-a-room/send/m.room.message/t1", new { body = "x" }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.GetAsync($"{V3}/rooms/not-a-room/state", alice.AccessToken)).Status);
        Assert.Equal(400, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/not-an-event", alice.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/{R("$missing")}", alice.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.topic", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Sending_is_idempotent_per_transaction_and_bounded_in_size()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var first = await SendAsync(C, alice, roomId, "once", "txn-1");
        Assert.Equal(first, await SendAsync(C, alice, roomId, "once again", "txn-1"));
        Assert.NotEqual(first, await SendAsync(C, alice, roomId, "twice", "txn-2"));
        var messages = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=b&limit=50", alice.AccessToken);
        var bodies = messages.Body!["chunk"]!.AsArray().Select(e => e!["content"]?["body"]?.GetValue<string>()).ToList();
        Assert.Single(bodies, b => b == "once");
        Assert.DoesNotContain("once again", bodies);

        // A retry after the sender has left, which the auth rules would refuse as a new event, still gets its event.
        var bob = await C.RegisterAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken)).Status);
        var bobs = await SendAsync(C, bob, roomId, "hello", "txn-1");
        Assert.NotEqual(first, bobs);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, bob.AccessToken)).Status);
        Assert.Equal(bobs, await SendAsync(C, bob, roomId, "hello", "txn-1"));
        Assert.Equal(403, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/send/m.room.message/txn-2", new { msgtype = "m.text", body = "new" }, bob.AccessToken)).Status);

        var huge = await C.PutAsync($"{V3}/rooms/{R(roomId)}/send/m.room.message/big", new { body = new string('x', 65_600) }, alice.AccessToken);
        Assert.Equal("M_TOO_LARGE", huge.Errcode);
        Assert.Equal(413, huge.Status);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/send/m.room.message/f", "{\"n\": 1.5}", alice.AccessToken)).Errcode);
        Assert.Equal("M_NOT_JSON", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/send/m.room.message/j", "{nope", alice.AccessToken)).Errcode);
    }

    [Fact]
    public async Task State_changes_the_auth_rules_forbid_are_403()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.name", new { name = "mine" }, bob.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.power_levels", new { users = new Dictionary<string, int> { [bob.UserId] = 100 } }, bob.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/org.example/{bob.UserId}", new { }, alice.AccessToken)).Errcode);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/org.example/{alice.UserId}", new { }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.name", new { name = "ok" }, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Setting_state_to_what_the_same_sender_set_makes_no_new_event()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", power_level_content_override = new { state_default = 0 } });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var first = await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.topic", new { topic = "same" }, alice.AccessToken);
        var again = await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.topic", new { topic = "same" }, alice.AccessToken);
        Assert.Equal(first.Str("event_id"), again.Str("event_id"));
        var byOther = await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.topic", new { topic = "same" }, bob.AccessToken);
        Assert.NotEqual(first.Str("event_id"), byOther.Str("event_id"));
        var changed = await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.topic", new { topic = "other" }, bob.AccessToken);
        Assert.NotEqual(byOther.Str("event_id"), changed.Str("event_id"));
    }

    [Fact]
    public async Task Profile_changes_reach_the_rooms_and_per_room_names_use_the_state_endpoint()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        await C.PutAsync($"{V3}/profile/{alice.UserId}/displayname", new { displayname = "Alice Global" }, alice.AccessToken);
        var member = await C.GetAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{alice.UserId}", bob.AccessToken);
        Assert.Equal("Alice Global", member.Str("displayname"));
        Assert.Equal("join", member.Str("membership"));

        var perRoom = await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{alice.UserId}",
            new { membership = "join", displayname = "Alice Here" }, alice.AccessToken);
        Assert.Equal(200, perRoom.Status);
        Assert.Equal("Alice Here", (await C.GetAsync($"{V3}/rooms/{R(roomId)}/joined_members", bob.AccessToken)).Body!["joined"]![alice.UserId]!["display_name"]!.GetValue<string>());
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{bob.UserId}",
            new { membership = "join", displayname = "Not Bob" }, alice.AccessToken)).Errcode);
    }

    internal static object RestrictedTo(string allowedRoom) => new
    {
        room_version = "10",
        initial_state = new object[]
        {
            new { type = "m.room.join_rules", state_key = "", content = new { join_rule = "restricted", allow = new[] { new { type = "m.room_membership", room_id = allowedRoom } } } },
        },
    };

    [Fact]
    public async Task Restricted_rooms_admit_members_of_the_allowed_rooms()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var space = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(space)}/join", new { }, bob.AccessToken);
        var restricted = await CreateRoomAsync(C, alice, RestrictedTo(space));

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(restricted)}/join", new { }, bob.AccessToken)).Status);
        var member = await C.GetAsync($"{V3}/rooms/{R(restricted)}/state/m.room.member/{bob.UserId}", alice.AccessToken);
        Assert.Equal(alice.UserId, member.Str("join_authorised_via_users_server"));
        var refused = await C.PostAsync($"{V3}/rooms/{R(restricted)}/join", new { }, carol.AccessToken);
        Assert.Equal((403, "M_FORBIDDEN"), (refused.Status, refused.Errcode));
    }

    [Fact]
    public async Task Members_and_joined_members_filter_by_membership()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId, carol.UserId } });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var all = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/members", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Equal(3, all.Count);
        var invited = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/members?membership=invite", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Equal(carol.UserId, Assert.Single(invited)!["state_key"]!.GetValue<string>());
        var notJoined = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/members?not_membership=join", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Single(notJoined);
        var joined = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/joined_members", bob.AccessToken)).Body!["joined"]!.AsObject();
        Assert.Equal(new[] { alice.UserId, bob.UserId }.Order(), joined.Select(p => p.Key).Order());
        Assert.Equal(alice.Localpart, joined[alice.UserId]!["display_name"]!.GetValue<string>());
        // An unset avatar is there as null, as Synapse answers.
        Assert.True(joined[alice.UserId]!.AsObject().TryGetPropertyValue("avatar_url", out var avatar) && avatar is null);
    }

    [Fact]
    public async Task Redaction_strips_content_and_needs_the_redact_level_for_others_events()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var alices = await SendAsync(C, alice, roomId, "alice's");
        var bobs = await SendAsync(C, bob, roomId, "bob's");
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/redact/{R(alices)}/t1", new { }, bob.AccessToken)).Errcode);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/redact/{R(bobs)}/t2", new { reason = "oops" }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/redact/{R(alices)}/t3", new { }, alice.AccessToken)).Status);
        var redacted = await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/{R(bobs)}", alice.AccessToken);
        Assert.Empty(redacted.Body!["content"]!.AsObject());
        Assert.Equal("oops", redacted.Body!["unsigned"]!["redacted_because"]!["content"]!["reason"]!.GetValue<string>());
    }
}

public sealed class RoomTestsSqlite(SqliteServer f) : RoomTests(f), IClassFixture<SqliteServer>;
public sealed class RoomTestsPostgres(PostgresServer f) : RoomTests(f), IClassFixture<PostgresServer>;
