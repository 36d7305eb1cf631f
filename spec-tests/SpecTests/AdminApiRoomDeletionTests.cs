using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's admin API for taking rooms away: delete (v1 and v2 with status), block, and make_room_admin.</summary>
public abstract class AdminApiRoomDeletionTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V1 = "/_synapse/admin/v1/rooms";
    private const string V2 = "/_synapse/admin/v2/rooms";
    private const string Client = "/_matrix/client/v3";

    [Fact]
    public async Task A_v2_delete_moves_the_members_and_aliases_to_a_notice_room_blocks_and_purges_the_room()
    {
        var (admin, adminToken) = await AdminAsync();
        var owner = await C.RegisterAsync();
        var member = await C.RegisterAsync();
        var invitee = await C.RegisterAsync();
        var alias = MatrixClient.UniqueName("doomed").ToLowerInvariant();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "public_chat", visibility = "public", room_alias_name = alias });
        Assert.Equal(200, (await C.PostAsync($"{Client}/rooms/{RoomTests.R(roomId)}/join", new { }, member.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{Client}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = invitee.UserId }, owner.AccessToken)).Status);
        var eventId = await RoomTests.SendAsync(C, member, roomId, "something unlawful");

        var started = await C.DeleteAsync($"{V2}/{RoomTests.R(roomId)}",
            new { new_room_user_id = admin, room_name = "Gone", message = "This room was closed.", block = true }, adminToken);
        Assert.Equal(200, started.Status);
        var deleteId = started.Str("delete_id");
        var status = await CompletedAsync($"{V2}/delete_status/{deleteId}", adminToken);
        var shutdown = status["shutdown_room"]!;
        Assert.Equal(new[] { member.UserId, owner.UserId }.Order(StringComparer.Ordinal), Strings(shutdown["kicked_users"]).Order(StringComparer.Ordinal));
        Assert.Empty(Strings(shutdown["failed_to_kick_users"]));
        Assert.Equal([$"#{alias}:{C.ServerName}"], Strings(shutdown["local_aliases"]));
        var newRoomId = shutdown["new_room_id"]!.GetValue<string>();
        var byRoom = await C.GetAsync($"{V2}/{RoomTests.R(roomId)}/delete_status", adminToken);
        Assert.Equal(deleteId, byRoom.Body!["results"]![0]!["delete_id"]!.GetValue<string>());
        Assert.Equal("complete", byRoom.Body["results"]![0]!["status"]!.GetValue<string>());
        var task = Assert.Single((await C.GetAsync($"/_synapse/admin/v1/scheduled_tasks?resource_id={RoomTests.R(roomId)}", adminToken))
            .Body!["scheduled_tasks"]!.AsArray())!;
        Assert.Equal(("shutdown_and_purge_room", "complete", deleteId), (task["action"]!.GetValue<string>(), task["status"]!.GetValue<string>(),
            task["id"]!.GetValue<string>()));

        // The alias names the notice room; the members are in it, may read the message and may not speak.
        Assert.Equal(newRoomId, (await C.GetAsync($"{Client}/directory/room/{Uri.EscapeDataString($"#{alias}:{C.ServerName}")}")).Str("room_id"));
        var joined = Strings((await C.GetAsync($"{Client}/joined_rooms", member.AccessToken)).Body!["joined_rooms"]);
        Assert.Contains(newRoomId, joined);
        Assert.DoesNotContain(roomId, joined);
        var messages = await C.GetAsync($"{Client}/rooms/{RoomTests.R(newRoomId)}/messages?dir=b&limit=20", member.AccessToken);
        Assert.Contains(messages.Body!["chunk"]!.AsArray(), e => e!["content"]?["body"]?.GetValue<string>() == "This room was closed.");
        var speaking = await C.PutAsync($"{Client}/rooms/{RoomTests.R(newRoomId)}/send/m.room.message/t1", new { msgtype = "m.text", body = "hi" }, member.AccessToken);
        Assert.Equal(403, speaking.Status);

        // Purged and blocked: nothing of it is left to read, and nobody here may enter it again.
        Assert.Equal(404, (await C.GetAsync($"{V1}/{RoomTests.R(roomId)}", adminToken)).Status);
        Assert.True((await C.GetAsync($"{Client}/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(eventId)}", member.AccessToken)).Status is 403 or 404);
        Assert.DoesNotContain((await C.GetAsync($"{Client}/publicRooms")).Body!["chunk"]!.AsArray(), r => r!["room_id"]!.GetValue<string>() == roomId);
        var rejoin = await C.PostAsync($"{Client}/join/{RoomTests.R(roomId)}", new { }, owner.AccessToken);
        Assert.True(rejoin is { Status: 403, Errcode: "M_FORBIDDEN" }, rejoin.ToString());
        var block = await C.GetAsync($"{V1}/{RoomTests.R(roomId)}/block", adminToken);
        Assert.True(block.Body!["block"]!.GetValue<bool>());
        Assert.Equal(admin, block.Str("user_id"));
        var sync = await C.GetAsync($"{Client}/sync", invitee.AccessToken);
        Assert.Null(sync.Body!["rooms"]?["invite"]?[roomId]);
        Assert.Null(sync.Body!["rooms"]?["join"]?[roomId]);
    }

    [Fact]
    public async Task A_v1_delete_without_purge_empties_the_room_and_keeps_its_history()
    {
        var (_, adminToken) = await AdminAsync();
        var owner = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "private_chat" });
        await RoomTests.SendAsync(C, owner, roomId, "kept");

        var deleted = await C.DeleteAsync($"{V1}/{RoomTests.R(roomId)}", new { purge = false }, adminToken);
        Assert.Equal(200, deleted.Status);
        Assert.Equal([owner.UserId], Strings(deleted.Body!["kicked_users"]));
        Assert.Null(deleted.Body["new_room_id"]);
        var details = await C.GetAsync($"{V1}/{RoomTests.R(roomId)}", adminToken);
        Assert.Equal(0, details.Body!["joined_members"]!.GetValue<int>());
        Assert.True(details.Body["forgotten"]!.GetValue<bool>());
        Assert.DoesNotContain(roomId, Strings((await C.GetAsync($"{Client}/joined_rooms", owner.AccessToken)).Body!["joined_rooms"]));
        Assert.False((await C.GetAsync($"{V1}/{RoomTests.R(roomId)}/block", adminToken)).Body!["block"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Blocking_is_set_and_lifted_by_admins_only_and_bad_requests_change_nothing()
    {
        var (_, adminToken) = await AdminAsync();
        var user = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, user, new { preset = "public_chat" });
        var other = await C.RegisterAsync();

        foreach (var (method, path) in new[] { (HttpMethod.Delete, $"{V2}/{RoomTests.R(roomId)}"), (HttpMethod.Delete, $"{V1}/{RoomTests.R(roomId)}"),
                     (HttpMethod.Get, $"{V1}/{RoomTests.R(roomId)}/block"), (HttpMethod.Put, $"{V1}/{RoomTests.R(roomId)}/block"),
                     (HttpMethod.Get, $"{V2}/{RoomTests.R(roomId)}/delete_status"), (HttpMethod.Post, $"{V1}/{RoomTests.R(roomId)}/make_room_admin") })
        {
            var refused = await C.SendAsync(method, path, new { block = true }, user.AccessToken);
            Assert.True(refused is { Status: 403, Errcode: "M_FORBIDDEN" }, $"{method} {path}: {refused}");
        }
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{V1}/{RoomTests.R(roomId)}/block", new { block = "yes" }, adminToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{V1}/{RoomTests.R(roomId)}/block", new { }, adminToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.DeleteAsync($"{V2}/{RoomTests.R(roomId)}", new { purge = "no" }, adminToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.DeleteAsync($"{V2}/{RoomTests.R(roomId)}", new { new_room_user_id = "@x:elsewhere.example" }, adminToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.DeleteAsync($"{V2}/{RoomTests.R($"!unknown{Guid.NewGuid():N}:{C.ServerName}")}", new { }, adminToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V2}/delete_status/nonsense", adminToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V2}/{RoomTests.R(roomId)}/delete_status", adminToken)).Errcode);
        Assert.Equal(200, (await C.PostAsync($"{Client}/join/{RoomTests.R(roomId)}", new { }, other.AccessToken)).Status);

        Assert.True((await C.PutAsync($"{V1}/{RoomTests.R(roomId)}/block", new { block = true }, adminToken)).Body!["block"]!.GetValue<bool>());
        var third = await C.RegisterAsync();
        Assert.Equal(403, (await C.PostAsync($"{Client}/join/{RoomTests.R(roomId)}", new { }, third.AccessToken)).Status);
        Assert.Equal(403, (await C.PostAsync($"{Client}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = third.UserId }, user.AccessToken)).Status);
        Assert.False((await C.PutAsync($"{V1}/{RoomTests.R(roomId)}/block", new { block = false }, adminToken)).Body!["block"]!.GetValue<bool>());
        Assert.Equal(200, (await C.PostAsync($"{Client}/join/{RoomTests.R(roomId)}", new { }, third.AccessToken)).Status);

        // A room this server never knew may be blocked ahead of time.
        var unknown = $"!never{Guid.NewGuid():N}:elsewhere.example";
        var blocked = await C.DeleteAsync($"{V2}/{RoomTests.R(unknown)}", new { block = true }, adminToken);
        Assert.Equal("complete", (await CompletedAsync($"{V2}/delete_status/{blocked.Str("delete_id")}", adminToken))["status"]!.GetValue<string>());
        Assert.True((await C.GetAsync($"{V1}/{RoomTests.R(unknown)}/block", adminToken)).Body!["block"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Make_room_admin_gives_a_local_user_the_power_of_the_rooms_strongest_local_member()
    {
        var (admin, adminToken) = await AdminAsync();
        var owner = await C.RegisterAsync();
        var deputy = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { preset = "private_chat", room_version = "10" });

        Assert.Equal(200, (await C.PostAsync($"{V1}/{RoomTests.R(roomId)}/make_room_admin", new { }, adminToken)).Status);
        var levels = await PowerLevelsAsync(roomId, adminToken);
        Assert.Equal(100, levels["users"]![admin]!.GetValue<int>());
        var invite = await C.GetAsync($"{Client}/sync", adminToken);
        Assert.NotNull(invite.Body!["rooms"]?["invite"]?[roomId]);
        Assert.Equal(200, (await C.PostAsync($"{Client}/join/{RoomTests.R(roomId)}", new { }, adminToken)).Status);

        Assert.Equal(200, (await C.PostAsync($"{V1}/{RoomTests.R(roomId)}/make_room_admin", new { user_id = deputy.UserId }, adminToken)).Status);
        Assert.Equal(100, (await PowerLevelsAsync(roomId, adminToken))["users"]![deputy.UserId]!.GetValue<int>());

        var nobodyHere = await RoomTests.CreateRoomAsync(C, owner, new { preset = "private_chat" });
        Assert.Equal(200, (await C.PostAsync($"{Client}/rooms/{RoomTests.R(nobodyHere)}/leave", new { }, owner.AccessToken)).Status);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"{V1}/{RoomTests.R(nobodyHere)}/make_room_admin", new { }, adminToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM",
            (await C.PostAsync($"{V1}/{RoomTests.R(roomId)}/make_room_admin", new { user_id = "@x:elsewhere.example" }, adminToken)).Errcode);
    }

    private async Task<JsonNode> PowerLevelsAsync(string roomId, string adminToken) =>
        (await C.GetAsync($"{V1}/{RoomTests.R(roomId)}/state?type=m.room.power_levels", adminToken)).Body!["state"]![0]!["content"]!;

    private async Task<(string UserId, string Token)> AdminAsync()
    {
        var token = await RegistrationTests.CreateAdminAsync(C);
        return ((await C.GetAsync($"{Client}/account/whoami", token)).Str("user_id"), token);
    }

    /// <summary>The status of a v2 deletion once it has ended (it runs in the background).</summary>
    private async Task<JsonNode> CompletedAsync(string path, string adminToken)
    {
        MatrixResponse status = null!;
        await Eventually.HoldsAsync(async () => (status = await C.GetAsync(path, adminToken)).Body?["status"]?.GetValue<string>() is "complete" or "failed",
            () => $"the deletion to end: {status}");
        Assert.Equal("complete", status.Str("status"));
        return status.Body!;
    }

    private static List<string> Strings(JsonNode? array) => array!.AsArray().Select(n => n!.GetValue<string>()).ToList();
}

public sealed class AdminApiRoomDeletionTestsSqlite(SqliteServer f) : AdminApiRoomDeletionTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiRoomDeletionTestsPostgres(PostgresServer f) : AdminApiRoomDeletionTests(f), IClassFixture<PostgresServer>;
