using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec (server-server): keys, the notary, X-Matrix request authentication and the profile and directory queries,
/// between two of our servers (one on SQLite, one on PostgreSQL).
/// </summary>
public sealed class FederationTests(TwoServersSqlitePostgres fixture) : IClassFixture<TwoServersSqlitePostgres>
{
    private MatrixClient A => fixture.ClientOf(0);
    private MatrixClient B => fixture.ClientOf(1);
    private string NameA => fixture.Servers[0].ServerName;
    private string NameB => fixture.Servers[1].ServerName;

    [Fact]
    public async Task Servers_publish_signed_keys_and_notarise_each_other()
    {
        var own = await A.GetAsync("/_matrix/key/v2/server");
        Assert.Equal(NameA, own.Str("server_name"));
        var keyId = Assert.Single(own.Body!["verify_keys"]!.AsObject()).Key;
        Assert.StartsWith("ed25519:", keyId);
        Assert.NotNull(own.Body!["signatures"]![NameA]![keyId]);
        Assert.True(own.Body!["valid_until_ts"]!.GetValue<long>() > DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

        var notarised = await B.GetAsync($"/_matrix/key/v2/query/{NameA}");
        var entry = Assert.Single(notarised.Body!["server_keys"]!.AsArray())!;
        Assert.Equal(NameA, entry["server_name"]!.GetValue<string>());
        Assert.NotNull(entry["signatures"]![NameA]);
        Assert.NotNull(entry["signatures"]![NameB]);

        var posted = await B.PostAsync("/_matrix/key/v2/query", new { server_keys = new Dictionary<string, object> { [NameA] = new { } } });
        Assert.Equal(NameA, Assert.Single(posted.Body!["server_keys"]!.AsArray())!["server_name"]!.GetValue<string>());
        var version = await A.GetAsync("/_matrix/federation/v1/version");
        Assert.NotNull(version.Body!["server"]!["name"]);
    }

    [Fact]
    public async Task Profiles_and_aliases_of_the_other_server_are_resolved_over_federation()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        await A.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new { displayname = "Alice on A" }, alice.AccessToken);
        var profile = await B.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(alice.UserId)}", bob.AccessToken);
        Assert.True(profile.Status == 200, profile.ToString());
        Assert.Equal("Alice on A", profile.Str("displayname"));
        Assert.Equal("Alice on A", (await B.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(alice.UserId)}/displayname", bob.AccessToken)).Str("displayname"));
        Assert.Equal(404, (await B.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString($"@nobody:{NameA}")}", bob.AccessToken)).Status);

        var localpart = MatrixClient.UniqueName("fed");
        var roomId = (await A.PostAsync("/_matrix/client/v3/createRoom", new { room_alias_name = localpart, preset = "public_chat" }, alice.AccessToken)).Str("room_id");
        var resolved = await B.GetAsync($"/_matrix/client/v3/directory/room/{Uri.EscapeDataString($"#{localpart}:{NameA}")}");
        Assert.Equal(roomId, resolved.Str("room_id"));
        Assert.Contains(NameA, resolved.Body!["servers"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(404, (await B.GetAsync($"/_matrix/client/v3/directory/room/{Uri.EscapeDataString($"#missing{localpart}:{NameA}")}")).Status);

        // The other server's public room directory, through the client API's server parameter.
        var published = await RoomTests.CreateRoomAsync(A, alice, new { visibility = "public", preset = "public_chat", name = localpart });
        var remote = await B.PostAsync($"/_matrix/client/v3/publicRooms?server={Uri.EscapeDataString(NameA)}",
            new { filter = new { generic_search_term = localpart } }, bob.AccessToken);
        Assert.True(remote.Status == 200, remote.ToString());
        Assert.Contains(published, remote.Body!["chunk"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task OpenId_tokens_identify_their_user_to_third_parties()
    {
        var alice = await A.RegisterAsync();
        var token = await A.PostAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(alice.UserId)}/openid/request_token", new { }, alice.AccessToken);
        Assert.Equal(NameA, token.Str("matrix_server_name"));
        Assert.Equal("Bearer", token.Str("token_type"));
        var info = await A.GetAsync($"/_matrix/federation/v1/openid/userinfo?access_token={Uri.EscapeDataString(token.Str("access_token"))}");
        Assert.Equal(alice.UserId, info.Str("sub"));
        Assert.Equal("M_UNKNOWN_TOKEN", (await A.GetAsync("/_matrix/federation/v1/openid/userinfo?access_token=forged")).Errcode);
        var bob = await B.RegisterAsync();
        Assert.Equal("M_FORBIDDEN", (await A.PostAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(bob.UserId)}/openid/request_token", new { }, alice.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Unsigned_forged_and_misaddressed_federation_requests_are_401()
    {
        var alice = await A.RegisterAsync();
        var path = $"/_matrix/federation/v1/query/profile?user_id={Uri.EscapeDataString(alice.UserId)}";
        Assert.Equal("M_UNAUTHORIZED", (await A.GetAsync(path)).Errcode);

        var keys = await B.GetAsync("/_matrix/key/v2/server");
        var keyId = keys.Body!["verify_keys"]!.AsObject().Single().Key;
        async Task<MatrixResponse> WithHeader(string header)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, fixture.Servers[0].BaseUrl + path);
            request.Headers.TryAddWithoutValidation("Authorization", header);
            using var http = new HttpClient();
            var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            return new MatrixResponse((int)response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null, response);
        }
        var forgedSig = new string('A', 86);
        var forged = await WithHeader($"X-Matrix origin=\"{NameB}\",destination=\"{NameA}\",key=\"{keyId}\",sig=\"{forgedSig}\"");
        Assert.Equal(401, forged.Status);
        Assert.Equal("M_UNAUTHORIZED", forged.Errcode);
        var misaddressed = await WithHeader($"X-Matrix origin=\"{NameB}\",destination=\"elsewhere.test\",key=\"{keyId}\",sig=\"{forgedSig}\"");
        Assert.Equal("M_UNAUTHORIZED", misaddressed.Errcode);
        var unknownKey = await WithHeader($"X-Matrix origin=\"{NameB}\",destination=\"{NameA}\",key=\"ed25519:nope\",sig=\"{forgedSig}\"");
        Assert.Equal("M_UNAUTHORIZED", unknownKey.Errcode);
        Assert.Equal("M_UNAUTHORIZED", (await WithHeader("Bearer something")).Errcode);
        // An origin that is no server name (a port that is not a number) is a bad request.
        var malformedOrigin = await WithHeader($"X-Matrix origin=\"localhost:http\",destination=\"{NameA}\",key=\"{keyId}\",sig=\"{forgedSig}\"");
        Assert.Equal((400, "M_UNAUTHORIZED"), (malformedOrigin.Status, malformedOrigin.Errcode));
    }

    private static async Task<List<string>> MessageBodiesAsync(MatrixClient c, LoggedInUser user, string roomId, int expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(45);
        List<string> bodies;
        do
        {
            var messages = await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=f&limit=1000", user.AccessToken);
            bodies = messages.Body?["chunk"]?.AsArray().Where(e => e!["type"]!.GetValue<string>() == "m.room.message")
                .Select(e => e!["content"]!["body"]!.GetValue<string>()).ToList() ?? [];
            if (bodies.Count >= expected)
                return bodies;
            await Task.Delay(200);
        } while (DateTime.UtcNow < deadline);
        return bodies;
    }

    [Fact]
    public async Task A_space_hierarchy_includes_child_rooms_only_the_other_server_is_in()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var space = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat", name = "Company", creation_content = new { type = "m.space" } });
        var child = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat", name = "General" });
        var grandchild = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat", name = "Deep" });
        Assert.Equal(200, (await A.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(space)}/state/m.space.child/{RoomTests.R(child)}",
            new { via = new[] { NameA } }, alice.AccessToken)).Status);
        Assert.Equal(200, (await A.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(child)}/state/m.space.child/{RoomTests.R(grandchild)}",
            new { via = new[] { NameA } }, alice.AccessToken)).Status);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(space)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);

        // B is in the space only: the child and its own child come from A.
        var hierarchy = await B.GetAsync($"/_matrix/client/v1/rooms/{RoomTests.R(space)}/hierarchy", bob.AccessToken);
        Assert.True(hierarchy.Status == 200, hierarchy.ToString());
        var rooms = hierarchy.Body!["rooms"]!.AsArray();
        Assert.Equal([space, child, grandchild], rooms.Select(r => r!["room_id"]!.GetValue<string>()).ToArray());
        Assert.Equal("General", rooms[1]!["name"]!.GetValue<string>());
        var shallow = await B.GetAsync($"/_matrix/client/v1/rooms/{RoomTests.R(space)}/hierarchy?max_depth=1", bob.AccessToken);
        Assert.Equal(2, shallow.Body!["rooms"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_user_joins_a_room_on_the_other_server_and_messages_flow_both_ways_in_order()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat", name = "Across servers" });

        var join = await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?server_name={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
        Assert.Equal("Across servers", (await B.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.name", bob.AccessToken)).Str("name"));

        // Alice's server learns of Bob's join.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/joined_members", alice.AccessToken)).Body!["joined"]![bob.UserId] is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "A never saw B's join");
            await Task.Delay(100);
        }

        // A's user directory finds Bob through the room they share; while the room is public anyone finds him (as in
        // Synapse), once it is invite-only a user of A who shares no room with him does not.
        var bobLocalpart = bob.UserId[1..bob.UserId.IndexOf(':')];
        var found = await A.PostAsync("/_matrix/client/v3/user_directory/search", new { search_term = bobLocalpart }, alice.AccessToken);
        Assert.Contains(found.Body!["results"]!.AsArray(), u => u!["user_id"]!.GetValue<string>() == bob.UserId);
        var stranger = await A.RegisterAsync();
        Assert.Single((await A.PostAsync("/_matrix/client/v3/user_directory/search", new { search_term = bobLocalpart }, stranger.AccessToken)).Body!["results"]!.AsArray());
        Assert.Equal(200, (await A.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.join_rules", new { join_rule = "invite" }, alice.AccessToken)).Status);
        Assert.Empty((await A.PostAsync("/_matrix/client/v3/user_directory/search", new { search_term = bobLocalpart }, stranger.AccessToken)).Body!["results"]!.AsArray());
        Assert.Equal(200, (await A.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.join_rules", new { join_rule = "public" }, alice.AccessToken)).Status);

        var sent = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var (client, user) = i % 2 == 0 ? (A, alice) : (B, bob);
            sent.Add($"m{i}");
            await RoomTests.SendAsync(client, user, roomId, $"m{i}");
            await MessageBodiesAsync(A, alice, roomId, i + 1);
            await MessageBodiesAsync(B, bob, roomId, i + 1);
        }
        Assert.Equal(sent, await MessageBodiesAsync(A, alice, roomId, 10));
        Assert.Equal(sent, await MessageBodiesAsync(B, bob, roomId, 10));

        var stateA = (await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", alice.AccessToken)).Body!.AsArray()
            .Select(e => e!["event_id"]!.GetValue<string>()).Order().ToList();
        var stateB = (await B.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", bob.AccessToken)).Body!.AsArray()
            .Select(e => e!["event_id"]!.GetValue<string>()).Order().ToList();
        Assert.Equal(stateA, stateB);

        // Typing, receipts and presence cross too.
        await B.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/typing/{bob.UserId}", new { typing = true, timeout = 30000 }, bob.AccessToken);
        await WaitForSyncAsync(A, alice, sync => sync["rooms"]?["join"]?[roomId]?["ephemeral"]?["events"]?.AsArray()
            .Any(e => e!["type"]!.GetValue<string>() == "m.typing" && e["content"]!["user_ids"]!.AsArray().Any(u => u!.GetValue<string>() == bob.UserId)) == true);
        var lastEvent = (await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=1", alice.AccessToken)).Body!["chunk"]![0]!["event_id"]!.GetValue<string>();
        await A.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(lastEvent)}", new { }, alice.AccessToken);
        await WaitForSyncAsync(B, bob, sync => sync["rooms"]?["join"]?[roomId]?["ephemeral"]?["events"]?.AsArray()
            .Any(e => e!["type"]!.GetValue<string>() == "m.receipt" && e["content"]?[lastEvent]?["m.read"]?[alice.UserId] is not null) == true);
        await A.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new { presence = "unavailable", status_msg = "in a meeting" }, alice.AccessToken);
        await WaitForSyncAsync(B, bob, sync => sync["presence"]?["events"]?.AsArray()
            .Any(e => e!["sender"]!.GetValue<string>() == alice.UserId && e["content"]?["status_msg"]?.GetValue<string>() == "in a meeting") == true);
        var remoteStatus = await B.GetAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", bob.AccessToken);
        Assert.True(remoteStatus.Status == 200, remoteStatus.ToString());
        Assert.Equal(("unavailable", "in a meeting"), (remoteStatus.Str("presence"), remoteStatus.Str("status_msg")));
    }

    [Fact]
    public async Task Invites_cross_servers_and_can_be_accepted_or_rejected()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var carol = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { name = "Private across", invite = new[] { bob.UserId, carol.UserId } });

        var bobSync = await SyncTests.SyncAsync(B, bob);
        var inviteState = bobSync["rooms"]!["invite"]![roomId]!["invite_state"]!["events"]!.AsArray();
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.name" && e["content"]!["name"]!.GetValue<string>() == "Private across");
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == bob.UserId);
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == alice.UserId);

        var join = await B.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
        Assert.Equal("Private across", (await B.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.name", bob.AccessToken)).Str("name"));
        var after = await SyncTests.SyncAsync(B, bob, bobSync["next_batch"]!.GetValue<string>());
        Assert.NotNull(after["rooms"]!["join"]![roomId]);

        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/leave", new { }, carol.AccessToken)).Status);
        Assert.Null((await SyncTests.SyncAsync(B, carol))["rooms"]!["invite"]![roomId]);
        // The rejection reaches the inviting server (as B's own event: B knows the room since Bob joined).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{carol.UserId}", alice.AccessToken)).Str("membership") != "leave")
        {
            Assert.True(DateTime.UtcNow < deadline, "A never saw Carol's rejection");
            await Task.Delay(100);
        }

        // Dave's server does not know the room: his rejection goes through make_leave/send_leave on A.
        var dave = await B.RegisterAsync();
        var otherRoom = await RoomTests.CreateRoomAsync(A, alice, new { invite = new[] { dave.UserId } });
        var daveSync = await SyncTests.SyncAsync(B, dave);
        Assert.NotNull(daveSync["rooms"]!["invite"]![otherRoom]);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(otherRoom)}/leave", new { }, dave.AccessToken)).Status);
        Assert.Equal("leave", (await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(otherRoom)}/state/m.room.member/{dave.UserId}", alice.AccessToken)).Str("membership"));
        Assert.Null((await SyncTests.SyncAsync(B, dave))["rooms"]!["invite"]![otherRoom]);
        // His incremental sync lists the room as left, with his leave (the one A accepted) as its timeline, once.
        var declined = await SyncTests.SyncAsync(B, dave, daveSync["next_batch"]!.GetValue<string>());
        var leaveEvent = Assert.Single(declined["rooms"]!["leave"]![otherRoom]!["timeline"]!["events"]!.AsArray())!;
        Assert.Equal("leave", leaveEvent["content"]!["membership"]!.GetValue<string>());
        Assert.Equal(dave.UserId, leaveEvent["state_key"]!.GetValue<string>());
        Assert.Equal(leaveEvent["event_id"]!.GetValue<string>(),
            (await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(otherRoom)}/state/m.room.member/{dave.UserId}?format=event", alice.AccessToken)).Str("event_id"));
        Assert.Null((await SyncTests.SyncAsync(B, dave, declined["next_batch"]!.GetValue<string>()))["rooms"]!["leave"]![otherRoom]);

        // An invite B refuses (its user blocks invites) fails; one for a name nobody on B has registered yet is kept there
        // for them (as Synapse does).
        var mallory = (await B.RegisterAsync()).UserId;
        var blocker = await B.LoginAsync(mallory, "correct horse battery");
        Assert.Equal(200, (await B.PutAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(mallory)}/account_data/m.invite_permission_config",
            new { default_action = "block" }, blocker.Str("access_token"))).Status);
        Assert.Equal("M_FORBIDDEN", (await A.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = mallory }, alice.AccessToken)).Errcode);
        var unregistered = $"@later{Guid.NewGuid():N}:{NameB}";
        Assert.Equal(200, (await A.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = unregistered }, alice.AccessToken)).Status);

        // In createRoom, an invite the other server refuses (or a server that cannot be reached) leaves the room and
        // the other invites standing.
        var erin = await B.RegisterAsync();
        var created = await A.PostAsync("/_matrix/client/v3/createRoom", new { invite = new[] { mallory, "@nobody:127.0.0.1:9", erin.UserId } }, alice.AccessToken);
        Assert.True(created.Status == 200, created.ToString());
        var withRefusals = created.Str("room_id");
        Assert.NotNull((await SyncTests.SyncAsync(B, erin))["rooms"]!["invite"]![withRefusals]);
        Assert.Equal(404, (await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(withRefusals)}/state/m.room.member/{mallory}", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task A_server_banned_by_the_rooms_acl_is_ignored_and_cannot_join()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var carol = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        await RoomTests.SendAsync(B, bob, roomId, "allowed");
        Assert.Single(await MessageBodiesAsync(A, alice, roomId, 1));

        // Both test servers live on 127.0.0.1, so denying that host bans B (A's own users are not subject to its ACL).
        Assert.Equal(200, (await A.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.server_acl",
            new { allow = new[] { "*" }, deny = new[] { "127.0.0.1" }, allow_ip_literals = true }, alice.AccessToken)).Status);
        await RoomTests.SendAsync(B, bob, roomId, "banned");
        await Task.Delay(2000);
        Assert.Equal(["allowed"], await MessageBodiesAsync(A, alice, roomId, 1));
        // B already knows the room, so Carol's join is B's own event; A drops it like any other PDU from B.
        await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, carol.AccessToken);
        await Task.Delay(1500);
        var joined = (await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/joined_members", alice.AccessToken)).Body!["joined"]!.AsObject();
        Assert.False(joined.ContainsKey(carol.UserId));
    }

    [Fact]
    public async Task Restricted_rooms_admit_remote_members_of_the_allowed_room_through_an_authorising_server()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var space = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat" });
        var restricted = await RoomTests.CreateRoomAsync(A, alice, RoomTests.RestrictedTo(space));
        Assert.Equal("M_FORBIDDEN", (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(restricted)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Errcode);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(space)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        var join = await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(restricted)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
        var member = await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(restricted)}/state/m.room.member/{bob.UserId}", alice.AccessToken);
        Assert.Equal("join", member.Str("membership"));
        Assert.Equal(alice.UserId, member.Str("join_authorised_via_users_server"));
    }

    [Fact]
    public async Task History_from_before_joining_is_backfilled_from_the_other_server()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat" });
        var history = Enumerable.Range(0, 5).Select(i => $"history {i}").ToList();
        foreach (var body in history)
            await RoomTests.SendAsync(A, alice, roomId, body);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);

        var messages = await B.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=30", bob.AccessToken);
        var chunk = messages.Body!["chunk"]!.AsArray();
        var bodies = chunk.Where(e => e!["type"]!.GetValue<string>() == "m.room.message").Select(e => e!["content"]!["body"]!.GetValue<string>()).Reverse().ToList();
        Assert.Equal(history, bodies);
        Assert.Contains(chunk, e => e!["type"]!.GetValue<string>() == "m.room.create");
        Assert.Equal(chunk.Count, chunk.Select(e => e!["event_id"]!.GetValue<string>()).Distinct().Count());
    }

    [Fact]
    public async Task A_server_that_left_a_room_rejoins_through_the_other_and_sees_what_changed_meanwhile()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat", name = "Before" });
        var r = RoomTests.R(roomId);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{r}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{r}/leave", new { }, bob.AccessToken)).Status);
        await WaitForMembershipAsync(A, alice, roomId, bob.UserId, "leave");

        // B is out of the room: A sends it nothing of what follows.
        await A.PutAsync($"/_matrix/client/v3/rooms/{r}/state/m.room.name", new { name = "After" }, alice.AccessToken);
        // More than one page of get_missing_events (20 events).
        var away = Enumerable.Range(0, 30).Select(i => $"while bob was away {i}").ToList();
        foreach (var body in away)
            await RoomTests.SendAsync(A, alice, roomId, body);

        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{r}", new { }, bob.AccessToken)).Status);
        Assert.Equal("After", (await B.GetAsync($"/_matrix/client/v3/rooms/{r}/state/m.room.name", bob.AccessToken)).Str("name"));
        await WaitForMembershipAsync(A, alice, roomId, bob.UserId, "join");
        await RoomTests.SendAsync(A, alice, roomId, "after bob rejoined");
        await WaitForSyncAsync(B, bob, sync => sync["rooms"]?["join"]?[roomId]?["timeline"]?["events"]?.AsArray()
            .Any(e => e!["content"]?["body"]?.GetValue<string>() == "after bob rejoined") == true);
        // The history has no hole where B was away.
        var history = (await B.GetAsync($"/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=50", bob.AccessToken)).Body!["chunk"]!.AsArray()
            .Where(e => e!["type"]!.GetValue<string>() == "m.room.message").Select(e => e!["content"]!["body"]!.GetValue<string>()).Reverse();
        Assert.Equal(away.Append("after bob rejoined"), history);
    }

    [Fact]
    public async Task An_upgrade_elsewhere_moves_this_servers_aliases_and_listing_and_rooms_it_left_stop_feeding_its_directory()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new
        {
            room_version = "10", preset = "public_chat",
            power_level_content_override = new { users = new Dictionary<string, int> { [alice.UserId] = 100, [bob.UserId] = 100 } },
        });
        var r = RoomTests.R(roomId);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{r}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        var alias = $"#{MatrixClient.UniqueName("moved")}:{NameB}";
        Assert.Equal(200, (await B.PutAsync($"/_matrix/client/v3/directory/room/{Uri.EscapeDataString(alias)}", new { room_id = roomId }, bob.AccessToken)).Status);
        Assert.Equal(200, (await B.PutAsync($"/_matrix/client/v3/directory/list/room/{r}", new { visibility = "public" }, bob.AccessToken)).Status);

        // B's users find Alice through the public room while B is in it.
        var aliceLocalpart = alice.UserId[1..alice.UserId.IndexOf(':')];
        var stranger = await B.RegisterAsync();
        Assert.Single((await B.PostAsync("/_matrix/client/v3/user_directory/search", new { search_term = aliceLocalpart }, stranger.AccessToken)).Body!["results"]!.AsArray());

        var replacement = (await A.PostAsync($"/_matrix/client/v3/rooms/{r}/upgrade", new { new_version = "11" }, alice.AccessToken)).Str("replacement_room");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await B.GetAsync($"/_matrix/client/v3/rooms/{r}/state/m.room.tombstone", bob.AccessToken)).Status != 200)
        {
            Assert.True(DateTime.UtcNow < deadline, "B never saw the tombstone");
            await Task.Delay(100);
        }
        // The alias and the listing stay until one of B's users follows the room to its replacement.
        Assert.Equal(roomId, (await B.GetAsync($"/_matrix/client/v3/directory/room/{Uri.EscapeDataString(alias)}")).Str("room_id"));
        var rr = RoomTests.R(replacement);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{rr}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        Assert.Equal(replacement, (await B.GetAsync($"/_matrix/client/v3/directory/room/{Uri.EscapeDataString(alias)}")).Str("room_id"));
        Assert.Equal("public", (await B.GetAsync($"/_matrix/client/v3/directory/list/room/{rr}")).Str("visibility"));
        Assert.Equal("private", (await B.GetAsync($"/_matrix/client/v3/directory/list/room/{r}")).Str("visibility"));

        // Once B has left both rooms, what it knows of them no longer puts Alice in its directory.
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{r}/leave", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{rr}/leave", new { }, bob.AccessToken)).Status);
        Assert.Empty((await B.PostAsync("/_matrix/client/v3/user_directory/search", new { search_term = aliceLocalpart }, stranger.AccessToken)).Body!["results"]!.AsArray());
    }

    [Fact]
    public async Task An_invite_to_a_room_the_invitees_server_has_left_is_seen_and_can_be_taken_or_declined()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { invite = new[] { bob.UserId } });
        var r = RoomTests.R(roomId);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{r}/join", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{r}/leave", new { }, bob.AccessToken)).Status);
        await WaitForMembershipAsync(A, alice, roomId, bob.UserId, "leave");

        // B knows the room but is no longer in it: the invite reaches it only through /invite, and still shows.
        Assert.Equal(200, (await A.PostAsync($"/_matrix/client/v3/rooms/{r}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        await WaitForSyncAsync(B, bob, sync => sync["rooms"]?["invite"]?[roomId] is not null);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{r}/leave", new { }, bob.AccessToken)).Status);
        await WaitForMembershipAsync(A, alice, roomId, bob.UserId, "leave");

        Assert.Equal(200, (await A.PostAsync($"/_matrix/client/v3/rooms/{r}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        await WaitForSyncAsync(B, bob, sync => sync["rooms"]?["invite"]?[roomId] is not null);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{r}/join", new { }, bob.AccessToken)).Status);
        await WaitForMembershipAsync(A, alice, roomId, bob.UserId, "join");
    }

    [Fact]
    public async Task Both_sides_of_a_new_federated_join_see_each_others_presence_at_once()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        await A.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new { presence = "online", status_msg = "at my desk" }, alice.AccessToken);
        await B.PutAsync($"/_matrix/client/v3/presence/{bob.UserId}/status", new { presence = "unavailable", status_msg = "travelling" }, bob.AccessToken);
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { invite = new[] { bob.UserId } });
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);

        // Neither changes their presence: each server sends its users' to the other because of the join.
        await WaitForSyncAsync(B, bob, sync => sync["presence"]?["events"]?.AsArray()
            .Any(e => e!["sender"]!.GetValue<string>() == alice.UserId && e["content"]?["status_msg"]?.GetValue<string>() == "at my desk") == true);
        await WaitForSyncAsync(A, alice, sync => sync["presence"]?["events"]?.AsArray()
            .Any(e => e!["sender"]!.GetValue<string>() == bob.UserId && e["content"]?["status_msg"]?.GetValue<string>() == "travelling") == true);
    }

    [Fact]
    public async Task Users_who_only_polled_the_event_stream_see_each_others_presence_after_a_federated_join()
    {
        // SyTest's SYN-115: each user polls GET /events once (which marks them online), never sets presence, and
        // syncs with set_presence=offline; after the join both see both users' presence.
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        Assert.Equal(200, (await A.GetAsync("/_matrix/client/v3/events?timeout=0", alice.AccessToken)).Status);
        Assert.Equal(200, (await B.GetAsync("/_matrix/client/v3/events?timeout=0", bob.AccessToken)).Status);
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "private_chat", invite = new[] { bob.UserId } });
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);

        foreach (var (c, user) in new[] { (A, alice), (B, bob) })
            await WaitUntilAsync(async () =>
            {
                var sync = await c.GetAsync("/_matrix/client/v3/sync?timeout=0&set_presence=offline", user.AccessToken);
                var online = sync.Body?["presence"]?["events"]?.AsArray()
                    .Where(e => e!["content"]?["presence"]?.GetValue<string>() == "online").Select(e => e!["sender"]!.GetValue<string>()).ToHashSet() ?? [];
                return online.SetEquals([alice.UserId, bob.UserId]);
            }, $"{user.UserId} seeing both users online in an initial sync");
    }

    private static async Task WaitForMembershipAsync(MatrixClient c, LoggedInUser viewer, string roomId, string userId, string membership)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{userId}", viewer.AccessToken)).Body?["membership"]?.GetValue<string>() != membership)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{userId} never became '{membership}'");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Knocks_cross_servers_and_the_knocker_sees_the_room_state()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new
        {
            name = "Knock knock", room_version = "10",
            initial_state = new object[] { new { type = "m.room.join_rules", state_key = "", content = new { join_rule = "knock" } } },
        });
        var knock = await B.PostAsync($"/_matrix/client/v3/knock/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(NameA)}", new { reason = "let me in" }, bob.AccessToken);
        Assert.True(knock.Status == 200, knock.ToString());
        var member = await A.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{bob.UserId}", alice.AccessToken);
        Assert.Equal("knock", member.Str("membership"));
        var knockState = (await SyncTests.SyncAsync(B, bob))["rooms"]!["knock"]![roomId]!["knock_state"]!["events"]!.AsArray();
        Assert.Contains(knockState, e => e!["type"]!.GetValue<string>() == "m.room.name");

        // Alice lets Bob in: an invite, which Bob accepts.
        Assert.Equal(200, (await A.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        var join = await B.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
    }

    [Fact]
    public async Task A_server_that_was_down_catches_up_with_nothing_lost()
    {
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        await RoomTests.SendAsync(A, alice, roomId, "before");
        Assert.Single(await MessageBodiesAsync(B, bob, roomId, 1));

        await fixture.Servers[1].KillAsync();
        var sent = new List<string> { "before" };
        for (var i = 0; i < 5; i++)
        {
            sent.Add($"while down {i}");
            await RoomTests.SendAsync(A, alice, roomId, $"while down {i}");
        }
        await Task.Delay(1500);
        await fixture.Servers[1].StartAsync();
        Assert.Equal(sent, await MessageBodiesAsync(B, bob, roomId, sent.Count));
    }

    [Fact]
    public async Task The_admin_api_lists_federation_destinations_their_rooms_and_failures_and_resets_a_failing_one()
    {
        var admin = await RegistrationTests.CreateAdminAsync(A);
        var alice = await A.RegisterAsync();
        var bob = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(NameA)}", new { }, bob.AccessToken)).Status);
        const string Destinations = "/_synapse/admin/v1/federation/destinations";
        var destination = $"{Destinations}/{Uri.EscapeDataString(NameB)}";

        var list = await A.GetAsync(Destinations, admin);
        Assert.Contains(list.Body!["destinations"]!.AsArray(), d => d!["destination"]!.GetValue<string>() == NameB);
        Assert.Equal(list.Body["total"]!.GetValue<int>(), list.Body["destinations"]!.AsArray().Count);
        Assert.Contains((await A.GetAsync($"{destination}/rooms", admin)).Body!["rooms"]!.AsArray(), r => r!["room_id"]!.GetValue<string>() == roomId);
        Assert.Equal(0, (await A.GetAsync(destination, admin)).Body!["retry_last_ts"]!.GetValue<long>());
        Assert.Equal(400, (await A.PostAsync($"{destination}/reset_connection", new { }, admin)).Status);
        Assert.Equal(404, (await A.GetAsync($"{Destinations}/nowhere.example", admin)).Status);
        Assert.Equal(403, (await A.GetAsync(Destinations, alice.AccessToken)).Status);

        await fixture.Servers[1].KillAsync();
        await RoomTests.SendAsync(A, alice, roomId, "while B is down");
        JsonNode failing = null!;
        await Eventually.HoldsAsync(async () => (failing = (await A.GetAsync(destination, admin)).Body!)["retry_last_ts"]!.GetValue<long>() > 0,
            "a failed sending to the stopped server");
        Assert.True(failing["retry_interval"]!.GetValue<long>() > 0);
        Assert.NotNull(failing["failure_ts"]);
        await fixture.Servers[1].StartAsync();
        Assert.Equal(200, (await A.PostAsync($"{destination}/reset_connection", new { }, admin)).Status);
        Assert.Contains("while B is down", await MessageBodiesAsync(B, bob, roomId, 1));
        await Eventually.HoldsAsync(async () => (await A.GetAsync(destination, admin)).Body!["retry_last_ts"]!.GetValue<long>() == 0,
            "the destination healthy again");
    }

    [Fact]
    public async Task End_to_end_keys_device_lists_and_to_device_messages_cross_servers()
    {
        var alice = new TestDevice(await A.RegisterAsync());
        var bob = new TestDevice(await B.RegisterAsync());
        Assert.Equal(200, (await alice.UploadAsync(A, oneTimeKeys: 3)).Status);
        Assert.Equal(200, (await A.PostAsync("/_matrix/client/v3/keys/device_signing/upload", alice.CreateCrossSigningKeys().ToJsonString(), alice.User.AccessToken)).Status);
        Assert.Equal(200, (await bob.UploadAsync(B)).Status);
        var roomId = await RoomTests.CreateRoomAsync(A, alice.User, new { preset = "public_chat" });
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?server_name={Uri.EscapeDataString(NameA)}", new { }, bob.User.AccessToken)).Status);

        // A room joined over federation syncs with its state: Bob's client learns who else is in it.
        var initial = await SyncTests.SyncAsync(B, bob.User);
        Assert.Contains(initial["rooms"]!["join"]![roomId]!["state"]!["events"]!.AsArray(),
            e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == alice.User.UserId);

        Task<MatrixResponse> QueryAlice() => B.PostAsync("/_matrix/client/v3/keys/query",
            new { device_keys = new Dictionary<string, string[]> { [alice.User.UserId] = [] } }, bob.User.AccessToken);
        var query = await QueryAlice();
        Assert.True(query.Status == 200, query.ToString());
        Assert.NotNull(query.Body!["device_keys"]![alice.User.UserId]![alice.User.DeviceId]);
        Assert.Equal(alice.Master!.PublicKeyBase64, query.Body!["master_keys"]![alice.User.UserId]!["keys"]!.AsObject().Single().Value!.GetValue<string>());
        Assert.Null(query.Body!["user_signing_keys"]![alice.User.UserId]);

        var claimBody = new JsonObject { ["one_time_keys"] = new JsonObject { [alice.User.UserId] = new JsonObject { [alice.User.DeviceId] = "signed_curve25519" } } }.ToJsonString();
        var first = (await B.PostAsync("/_matrix/client/v3/keys/claim", claimBody, bob.User.AccessToken)).Body!["one_time_keys"]![alice.User.UserId]![alice.User.DeviceId]!.AsObject().Single().Key;
        var second = (await B.PostAsync("/_matrix/client/v3/keys/claim", claimBody, bob.User.AccessToken)).Body!["one_time_keys"]![alice.User.UserId]![alice.User.DeviceId]!.AsObject().Single().Key;
        Assert.NotEqual(first, second);

        // To-device messages travel as m.direct_to_device.
        await B.PutAsync($"/_matrix/client/v3/sendToDevice/m.test/{Guid.NewGuid():N}", new
        {
            messages = new Dictionary<string, object> { [alice.User.UserId] = new Dictionary<string, object> { [alice.User.DeviceId] = new { hello = "from B" } } },
        }, bob.User.AccessToken);
        await WaitForSyncAsync(A, alice.User, sync => sync["to_device"]!["events"]!.AsArray()
            .Any(e => e!["sender"]!.GetValue<string>() == bob.User.UserId && e["content"]!["hello"]?.GetValue<string>() == "from B"));

        // A new device of Alice's reaches Bob as a device-list change, and his server's copy of her list follows.
        var bobSince = (await SyncTests.SyncAsync(B, bob.User))["next_batch"]!.GetValue<string>();
        var login = await A.LoginAsync(alice.User.UserId, alice.User.Password);
        var laptop = new TestDevice(alice.User with { AccessToken = login.Str("access_token"), DeviceId = login.Str("device_id") });
        Assert.Equal(200, (await laptop.UploadAsync(A)).Status);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var sync = await SyncTests.SyncAsync(B, bob.User, bobSince, timeout: 2000);
            if (sync["device_lists"]!["changed"]!.AsArray().Any(u => u!.GetValue<string>() == alice.User.UserId)
                && (await QueryAlice()).Body!["device_keys"]![alice.User.UserId]!.AsObject().Count == 2)
                break;
            Assert.True(DateTime.UtcNow < deadline, "Bob never saw Alice's new device");
            bobSince = sync["next_batch"]!.GetValue<string>();
        }
        var removed = await A.WithPasswordAuthAsync(HttpMethod.Delete, $"/_matrix/client/v3/devices/{laptop.User.DeviceId}", new JsonObject(), alice.User);
        Assert.Equal(200, removed.Status);
        await WaitUntilAsync(async () => (await QueryAlice()).Body!["device_keys"]![alice.User.UserId]!.AsObject().Count == 1, "Bob's server dropping the deleted device");

        // New cross-signing keys travel as m.signing_key_update.
        var replaced = await A.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/keys/device_signing/upload", alice.CreateCrossSigningKeys(), alice.User);
        Assert.Equal(200, replaced.Status);
        await WaitUntilAsync(async () => (await QueryAlice()).Body!["master_keys"]![alice.User.UserId]!["keys"]!.AsObject().Single().Value!.GetValue<string>()
            == alice.Master.PublicKeyBase64, "Bob's server learning Alice's new master key");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    /// <summary>Syncs from the start until a sync satisfies the condition (incremental syncs carry each change once).</summary>
    private static async Task WaitForSyncAsync(MatrixClient c, LoggedInUser user, Func<JsonNode, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? since = null;
        while (DateTime.UtcNow < deadline)
        {
            var sync = await SyncTests.SyncAsync(c, user, since, timeout: since is null ? 0 : 2000);
            if (condition(sync))
                return;
            since = sync["next_batch"]!.GetValue<string>();
        }
        Assert.Fail("the change never arrived in sync");
    }
}
