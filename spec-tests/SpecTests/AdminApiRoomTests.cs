using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's admin API for rooms (<c>/_synapse/admin/v1/rooms</c>): the list, a room's details, members, state and messages.</summary>
public abstract class AdminApiRoomTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string Rooms = "/_synapse/admin/v1/rooms";

    [Fact]
    public async Task Room_endpoints_refuse_non_admins()
    {
        var user = await C.RegisterAsync();
        var roomId = RoomTests.R(await RoomTests.CreateRoomAsync(C, user));
        foreach (var path in new[] { Rooms, $"{Rooms}/{roomId}", $"{Rooms}/{roomId}/members", $"{Rooms}/{roomId}/state",
                     $"{Rooms}/{roomId}/forward_extremities", $"{Rooms}/{roomId}/timestamp_to_event?ts=0", $"{Rooms}/{roomId}/messages" })
        {
            var refused = await C.GetAsync(path, user.AccessToken);
            Assert.True(refused is { Status: 403, Errcode: "M_FORBIDDEN" }, $"{path}: {refused}");
            Assert.Equal(401, (await C.GetAsync(path)).Status);
        }
    }

    [Fact]
    public async Task The_room_list_searches_sorts_and_pages_with_next_and_prev_batch()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var owner = await C.RegisterAsync();
        var guest = await C.RegisterAsync();
        var tag = MatrixClient.UniqueName("Team");
        var alpha = await RoomTests.CreateRoomAsync(C, owner, new { name = $"{tag} alpha", preset = "public_chat", room_alias_name = tag.ToLowerInvariant() });
        var beta = await RoomTests.CreateRoomAsync(C, owner, new { name = $"{tag} beta", visibility = "public" });
        var gamma = await RoomTests.CreateRoomAsync(C, owner, new { name = $"{tag} gamma", preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(gamma)}/join", new { }, guest.AccessToken)).Status);

        var first = await C.GetAsync($"{Rooms}?search_term={tag.ToUpperInvariant()}&limit=2", admin);
        Assert.Equal(200, first.Status);
        Assert.Equal(3, first.Body!["total_rooms"]!.GetValue<int>());
        Assert.Equal(0, first.Body["offset"]!.GetValue<int>());
        Assert.Equal(2, first.Body["next_batch"]!.GetValue<int>());
        Assert.Null(first.Body["prev_batch"]);
        Assert.Equal([alpha, beta], Ids(first));
        var room = first.Body["rooms"]![0]!;
        Assert.Equal($"{tag} alpha", room["name"]!.GetValue<string>());
        Assert.Equal($"#{tag.ToLowerInvariant()}:{C.ServerName}", room["canonical_alias"]!.GetValue<string>());
        Assert.Equal(owner.UserId, room["creator"]!.GetValue<string>());
        Assert.Equal(1, room["joined_members"]!.GetValue<int>());
        Assert.Equal(1, room["joined_local_members"]!.GetValue<int>());
        Assert.Equal("public", room["join_rules"]!.GetValue<string>());
        Assert.True(room["federatable"]!.GetValue<bool>());
        Assert.True(room["state_events"]!.GetValue<int>() >= 5);

        var second = await C.GetAsync($"{Rooms}?search_term={tag}&limit=2&from=2", admin);
        Assert.Equal([gamma], Ids(second));
        Assert.Equal(0, second.Body!["prev_batch"]!.GetValue<int>());
        Assert.Null(second.Body["next_batch"]);

        Assert.Equal([gamma, beta, alpha], Ids(await C.GetAsync($"{Rooms}?search_term={tag}&dir=b", admin)));
        Assert.Equal(gamma, Ids(await C.GetAsync($"{Rooms}?search_term={tag}&order_by=joined_members", admin))[0]);
        Assert.Equal([beta], Ids(await C.GetAsync($"{Rooms}?search_term={tag}&public_rooms=true", admin)));
        Assert.Equal([alpha], Ids(await C.GetAsync($"{Rooms}?search_term={RoomTests.R(alpha)}", admin)));

        foreach (var bad in new[] { "order_by=bogus", "search_term=", "limit=x", "from=-5", "dir=up", "public_rooms=1" })
        {
            var refused = await C.GetAsync($"{Rooms}?{bad}", admin);
            Assert.True(refused is { Status: 400, Errcode: "M_INVALID_PARAM" }, $"{bad}: {refused}");
        }
        foreach (var order in new[] { "name", "canonical_alias", "joined_local_members", "version", "creator", "encryption", "federatable", "public",
                     "join_rules", "guest_access", "history_visibility", "state_events" })
            Assert.Equal(3, (await C.GetAsync($"{Rooms}?search_term={tag}&order_by={order}", admin)).Body!["total_rooms"]!.GetValue<int>());
    }

    private static List<string> Ids(MatrixResponse response) =>
        response.Body!["rooms"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>()).ToList();

    [Fact]
    public async Task Details_members_and_state_of_a_room()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var owner = await C.RegisterAsync();
        var member = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new
        {
            name = "Details", topic = "What we discuss", preset = "public_chat",
            initial_state = new[] { new { type = "m.room.encryption", state_key = "", content = new { algorithm = "m.megolm.v1.aes-sha2" } } },
        });
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, member.AccessToken)).Status);

        var details = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}", admin);
        Assert.Equal(200, details.Status);
        Assert.Equal("Details", details.Str("name"));
        Assert.Equal("What we discuss", details.Str("topic"));
        Assert.Equal("m.megolm.v1.aes-sha2", details.Str("encryption"));
        Assert.Equal(2, details.Body!["joined_members"]!.GetValue<int>());
        Assert.Equal(2, details.Body["joined_local_devices"]!.GetValue<int>());
        Assert.False(details.Body["forgotten"]!.GetValue<bool>());
        Assert.False(details.Body["tombstoned"]!.GetValue<bool>());
        Assert.Null(details.Body["room_type"]);

        var members = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/members", admin);
        Assert.Equal(new[] { owner.UserId, member.UserId }.Order(StringComparer.Ordinal),
            members.Body!["members"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(2, members.Body["total"]!.GetValue<int>());

        var state = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/state", admin);
        Assert.Contains(state.Body!["state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.create" && e["event_id"] is not null);
        var memberEvents = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/state?type=m.room.member", admin);
        Assert.Equal(2, memberEvents.Body!["state"]!.AsArray().Count);

        var extremities = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/forward_extremities", admin);
        Assert.Equal(1, extremities.Body!["count"]!.GetValue<int>());
        Assert.StartsWith("$", extremities.Body["results"]![0]!["event_id"]!.GetValue<string>());
        var join = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/timestamp_to_event?ts={DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeMilliseconds()}&dir=b", admin);
        Assert.Equal(member.UserId, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{RoomTests.R(join.Str("event_id"))}", member.AccessToken)).Str("state_key"));
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/timestamp_to_event?ts=1&dir=b", admin)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/timestamp_to_event", admin)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/timestamp_to_event?ts=1&dir=up", admin)).Errcode);

        // A server admin outside the room may list its aliases (client API, as in Synapse).
        Assert.Equal(200, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/aliases", admin)).Status);

        var unknown = RoomTests.R($"!nosuchroom:{C.ServerName}");
        foreach (var path in new[] { $"{Rooms}/{unknown}", $"{Rooms}/{unknown}/members", $"{Rooms}/{unknown}/state",
                     $"{Rooms}/{unknown}/forward_extremities", $"{Rooms}/{RoomTests.R("#nosuchalias:" + C.ServerName)}/forward_extremities" })
        {
            var missing = await C.GetAsync(path, admin);
            Assert.True(missing is { Status: 404, Errcode: "M_NOT_FOUND" }, $"{path}: {missing}");
        }
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{Rooms}/not-a-room", admin)).Errcode);
    }

    [Fact]
    public async Task An_admin_reads_every_message_of_a_room_they_are_not_in_page_by_page()
    {
        var adminToken = await RegistrationTests.CreateAdminAsync(C);
        var owner = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "private_chat",
            initial_state = new[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = "joined" } } } });
        for (var i = 1; i <= 5; i++)
            await RoomTests.SendAsync(C, owner, roomId, $"message {i}");
        var path = $"{Rooms}/{RoomTests.R(roomId)}/messages";

        var newest = await C.GetAsync($"{path}?limit=3&filter={Uri.EscapeDataString("{\"types\":[\"m.room.message\"]}")}", adminToken);
        Assert.Equal(200, newest.Status);
        Assert.Equal(["message 5", "message 4", "message 3"], Bodies(newest));
        var older = await C.GetAsync($"{path}?limit=3&from={newest.Str("end")}&filter={Uri.EscapeDataString("{\"types\":[\"m.room.message\"]}")}", adminToken);
        Assert.Equal(["message 2", "message 1"], Bodies(older));
        var forwards = await C.GetAsync($"{path}?dir=f&limit=100", adminToken);
        Assert.Equal("m.room.create", forwards.Body!["chunk"]![0]!["type"]!.GetValue<string>());
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{path}?dir=sideways", adminToken)).Errcode);
        Assert.Equal(404, (await C.GetAsync($"{Rooms}/{RoomTests.R($"!unknown{Guid.NewGuid():N}:{C.ServerName}")}/messages", adminToken)).Status);
        // The owner's own view is unchanged by the admin's reading; a non-member is still refused.
        Assert.Equal(403, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages", adminToken)).Status);

        static List<string> Bodies(MatrixResponse page) =>
            page.Body!["chunk"]!.AsArray().Select(e => e!["content"]!["body"]!.GetValue<string>()).ToList();
    }

    [Fact]
    public async Task An_admin_joins_a_local_user_to_a_public_room_or_through_an_invite()
    {
        var adminToken = await RegistrationTests.CreateAdminAsync(C);
        var admin = new LoggedInUser((await C.GetAsync("/_matrix/client/v3/account/whoami", adminToken)).Str("user_id"), adminToken, "", "", "");
        var owner = await C.RegisterAsync();
        var user = await C.RegisterAsync();
        var alias = MatrixClient.UniqueName("join");
        var publicRoom = await RoomTests.CreateRoomAsync(C, owner, new { preset = "public_chat", room_alias_name = alias });
        const string Join = "/_synapse/admin/v1/join";

        var joined = await C.PostAsync($"{Join}/{RoomTests.R($"#{alias}:{C.ServerName}")}", new { user_id = user.UserId }, adminToken);
        Assert.Equal(publicRoom, joined.Str("room_id"));
        Assert.Contains(user.UserId, (await C.GetAsync($"{Rooms}/{RoomTests.R(publicRoom)}/members", adminToken)).Body!["members"]!.AsArray()
            .Select(m => m!.GetValue<string>()));

        var othersPrivateRoom = await RoomTests.CreateRoomAsync(C, owner, new { preset = "private_chat" });
        Assert.Equal(403, (await C.PostAsync($"{Join}/{RoomTests.R(othersPrivateRoom)}", new { user_id = user.UserId }, adminToken)).Status);
        var adminsPrivateRoom = await RoomTests.CreateRoomAsync(C, admin, new { preset = "private_chat" });
        Assert.Equal(200, (await C.PostAsync($"{Join}/{RoomTests.R(adminsPrivateRoom)}", new { user_id = user.UserId }, adminToken)).Status);
        Assert.Equal(2, (await C.GetAsync($"{Rooms}/{RoomTests.R(adminsPrivateRoom)}/members", adminToken)).Body!["total"]!.GetValue<int>());

        var path = $"{Join}/{RoomTests.R(publicRoom)}";
        Assert.Equal(403, (await C.PostAsync(path, new { user_id = owner.UserId }, user.AccessToken)).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync(path, new { }, adminToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync(path, new { user_id = "@someone:elsewhere.example" }, adminToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync(path, new { user_id = $"@nobody{Guid.NewGuid():N}:{C.ServerName}" }, adminToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"{Join}/not-a-room", new { user_id = user.UserId }, adminToken)).Errcode);
    }

    [Fact]
    public async Task An_admin_reads_the_context_of_an_event_in_a_room_they_are_not_in()
    {
        var adminToken = await RegistrationTests.CreateAdminAsync(C);
        var owner = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "private_chat" });
        await RoomTests.SendAsync(C, owner, roomId, "before");
        var middle = await RoomTests.SendAsync(C, owner, roomId, "middle");
        await RoomTests.SendAsync(C, owner, roomId, "after");

        var context = await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/context/{Uri.EscapeDataString(middle)}?limit=2", adminToken);
        Assert.Equal(200, context.Status);
        Assert.Equal("middle", context.Body!["event"]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal("before", context.Body["events_before"]![0]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal("after", context.Body["events_after"]![0]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal(404, (await C.GetAsync($"{Rooms}/{RoomTests.R(roomId)}/context/$nothing", adminToken)).Status);
        Assert.Equal(403, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/context/{Uri.EscapeDataString(middle)}", adminToken)).Status);
    }
}

public sealed class AdminApiRoomTestsSqlite(SqliteServer f) : AdminApiRoomTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiRoomTestsPostgres(PostgresServer f) : AdminApiRoomTests(f), IClassFixture<PostgresServer>;
