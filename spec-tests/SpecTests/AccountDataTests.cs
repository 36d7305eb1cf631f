using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "Client config" (account data).</summary>
public abstract class AccountDataTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task Global_account_data_round_trips_and_is_replaced()
    {
        var user = await C.RegisterAsync();
        var path = $"/_matrix/client/v3/user/{user.UserId}/account_data/m.direct";
        Assert.Equal(404, (await C.GetAsync(path, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync(path, new Dictionary<string, string[]> { ["@bob:spec.test"] = ["!room:spec.test"] }, user.AccessToken)).Status);
        Assert.Equal("!room:spec.test", (await C.GetAsync(path, user.AccessToken)).Body!["@bob:spec.test"]![0]!.GetValue<string>());
        Assert.Equal(200, (await C.PutAsync(path, new { }, user.AccessToken)).Status);
        Assert.Null((await C.GetAsync(path, user.AccessToken)).Body!["@bob:spec.test"]);
    }

    [Fact]
    public async Task Room_account_data_is_separate_from_global()
    {
        var user = await C.RegisterAsync();
        var room = $"/_matrix/client/v3/user/{user.UserId}/rooms/!abc:spec.test/account_data/org.example.colour";
        Assert.Equal(200, (await C.PutAsync(room, new { colour = "green" }, user.AccessToken)).Status);
        Assert.Equal("green", (await C.GetAsync(room, user.AccessToken)).Str("colour"));
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.colour", user.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v3/user/{user.UserId}/rooms/!other:spec.test/account_data/org.example.colour", user.AccessToken)).Status);
    }

    [Fact]
    public async Task Other_users_account_data_is_forbidden()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var path = $"/_matrix/client/v3/user/{alice.UserId}/account_data/org.example.secret";
        await C.PutAsync(path, new { secret = 1 }, alice.AccessToken);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync(path, bob.AccessToken)).Errcode);
        Assert.Equal(403, (await C.PutAsync(path, new { secret = 2 }, bob.AccessToken)).Status);
        Assert.Equal(1, (await C.GetAsync(path, alice.AccessToken)).Body!["secret"]!.GetValue<int>());
        Assert.Equal(401, (await C.GetAsync(path)).Status);
    }

    [Fact]
    public async Task Server_managed_types_and_bad_input_are_rejected()
    {
        var user = await C.RegisterAsync();
        var fullyRead = await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/m.fully_read", new { event_id = "$x" }, user.AccessToken);
        Assert.Equal(405, fullyRead.Status);
        Assert.Equal("M_BAD_JSON", fullyRead.Errcode);
        var pushRules = await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/rooms/!a:spec.test/account_data/m.push_rules", new { }, user.AccessToken);
        Assert.Equal(405, pushRules.Status);
        var badRoom = await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/rooms/not-a-room/account_data/org.example.x", new { }, user.AccessToken);
        Assert.Equal("M_INVALID_PARAM", badRoom.Errcode);
        Assert.Equal("M_NOT_JSON", (await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.x", "nope", user.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.x", "[1]", user.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Room_tags_are_set_listed_deleted_and_synced()
    {
        var user = await C.RegisterAsync();
        var other = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, user);
        var tags = $"/_matrix/client/v3/user/{user.UserId}/rooms/{RoomTests.R(roomId)}/tags";
        var since = (await SyncTests.SyncAsync(C, user))["next_batch"]!.GetValue<string>();
        Assert.Equal(200, (await C.PutAsync($"{tags}/m.favourite", new { order = 0.25 }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{tags}/u.work", new { }, user.AccessToken)).Status);
        var listed = (await C.GetAsync(tags, user.AccessToken)).Body!["tags"]!;
        Assert.Equal(0.25, listed["m.favourite"]!["order"]!.GetValue<double>());
        Assert.NotNull(listed["u.work"]);
        Assert.Equal(200, (await C.DeleteAsync($"{tags}/u.work", null, user.AccessToken)).Status);
        Assert.Null((await C.GetAsync(tags, user.AccessToken)).Body!["tags"]!["u.work"]);
        Assert.Equal(400, (await C.PutAsync($"{tags}/bad", new { order = 2 }, user.AccessToken)).Status);
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync(tags, other.AccessToken)).Errcode);

        var sync = await SyncTests.SyncAsync(C, user, since);
        var tagEvent = sync["rooms"]!["join"]![roomId]!["account_data"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.tag")!;
        Assert.NotNull(tagEvent["content"]!["tags"]!["m.favourite"]);
    }
}

public sealed class AccountDataTestsSqlite(SqliteServer f) : AccountDataTests(f), IClassFixture<SqliteServer>;
public sealed class AccountDataTestsPostgres(PostgresServer f) : AccountDataTests(f), IClassFixture<PostgresServer>;
