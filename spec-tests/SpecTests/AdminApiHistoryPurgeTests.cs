using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's history purge: a room's timeline before an event or a time goes; its state and latest event stay.</summary>
public abstract class AdminApiHistoryPurgeTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string Purge = "/_synapse/admin/v1/purge_history";

    [Fact]
    public async Task History_before_an_event_or_a_time_is_purged_keeping_state_and_the_latest_event()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var owner = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner, new { name = "Archive" });
        var ids = new List<string>();
        foreach (var text in new[] { "one", "two", "three" })
            ids.Add(await RoomTests.SendAsync(C, owner, roomId, text));

        // Local users' events stay unless asked for.
        await CompletedAsync((await C.PostAsync($"{Purge}/{RoomTests.R(roomId)}/{Uri.EscapeDataString(ids[2])}", new { }, admin)).Str("purge_id"), admin);
        Assert.Equal(["three", "two", "one"], await BodiesAsync(roomId, owner));

        await CompletedAsync((await C.PostAsync($"{Purge}/{RoomTests.R(roomId)}",
            new { purge_up_to_event_id = ids[2], delete_local_events = true }, admin)).Str("purge_id"), admin);
        Assert.Equal(["three"], await BodiesAsync(roomId, owner));
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(ids[0])}", owner.AccessToken)).Status);
        Assert.Equal("Archive", (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.name", owner.AccessToken)).Str("name"));

        await RoomTests.SendAsync(C, owner, roomId, "four");
        var latest = await RoomTests.SendAsync(C, owner, roomId, "five");
        var now = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeMilliseconds();
        await CompletedAsync((await C.PostAsync($"{Purge}/{RoomTests.R(roomId)}", new { purge_up_to_ts = now, delete_local_events = true }, admin))
            .Str("purge_id"), admin);
        Assert.Equal(["five"], await BodiesAsync(roomId, owner));
        Assert.Equal(200, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(latest)}", owner.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/send/m.room.message/after", new { msgtype = "m.text", body = "six" },
            owner.AccessToken)).Status);
        Assert.Equal(["six", "five"], await BodiesAsync(roomId, owner));
    }

    [Fact]
    public async Task Purges_are_for_admins_and_need_a_point_in_the_room()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var owner = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, owner);
        var otherRoom = await RoomTests.CreateRoomAsync(C, owner);
        var elsewhere = await RoomTests.SendAsync(C, owner, otherRoom, "elsewhere");
        var path = $"{Purge}/{RoomTests.R(roomId)}";

        Assert.Equal(403, (await C.PostAsync(path, new { purge_up_to_ts = 1 }, owner.AccessToken)).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync(path, new { }, admin)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync(path, new { purge_up_to_event_id = elsewhere }, admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync(path, new { purge_up_to_event_id = "$nothing" }, admin)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync(path, new { purge_up_to_ts = "yesterday" }, admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PostAsync($"{Purge}/{RoomTests.R($"!unknown{Guid.NewGuid():N}:{C.ServerName}")}", new { purge_up_to_ts = 1 }, admin)).Errcode);
        Assert.Equal(404, (await C.GetAsync("/_synapse/admin/v1/purge_history_status/nothing", admin)).Status);
        Assert.Equal(403, (await C.GetAsync("/_synapse/admin/v1/purge_history_status/nothing", owner.AccessToken)).Status);
    }

    private async Task<List<string>> BodiesAsync(string roomId, LoggedInUser user)
    {
        var page = await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=100", user.AccessToken);
        return page.Body!["chunk"]!.AsArray().Where(e => e!["type"]!.GetValue<string>() == "m.room.message")
            .Select(e => e!["content"]!["body"]!.GetValue<string>()).ToList();
    }

    private async Task CompletedAsync(string purgeId, string adminToken)
    {
        MatrixResponse status = null!;
        await Eventually.HoldsAsync(async () => (status = await C.GetAsync($"/_synapse/admin/v1/purge_history_status/{purgeId}", adminToken))
            .Body?["status"]?.GetValue<string>() is "complete" or "failed", () => $"the purge to end: {status}");
        Assert.Equal("complete", status.Str("status"));
    }
}

public sealed class AdminApiHistoryPurgeTestsSqlite(SqliteServer f) : AdminApiHistoryPurgeTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiHistoryPurgeTestsPostgres(PostgresServer f) : AdminApiHistoryPurgeTests(f), IClassFixture<PostgresServer>;
