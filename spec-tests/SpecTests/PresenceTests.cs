using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;
using static Matrix.SpecTests.SyncTests;

namespace Matrix.SpecTests;

/// <summary>Spec: "Presence" — status endpoints, presence in /sync for users sharing a room, and switching it off.</summary>
public abstract class PresenceTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [Fact]
    public async Task Presence_is_set_read_and_synced_to_room_members_only()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var stranger = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var since = (await SyncAsync(C, bob))["next_batch"]!.GetValue<string>();

        Assert.Equal(200, (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "unavailable", status_msg = "lunch" }, alice.AccessToken)).Status);
        var status = await C.GetAsync($"{V3}/presence/{alice.UserId}/status", bob.AccessToken);
        Assert.Equal("unavailable", status.Str("presence"));
        Assert.Equal("lunch", status.Str("status_msg"));
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/presence/{alice.UserId}/status", stranger.AccessToken)).Errcode);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "online" }, bob.AccessToken)).Errcode);
        Assert.Equal(400, (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "asleep" }, alice.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/presence/@nobody{Guid.NewGuid():N}:{C.ServerName}/status", alice.AccessToken)).Status);

        var sync = await SyncAsync(C, bob, since);
        var update = sync["presence"]!["events"]!.AsArray().Last(e => e!["sender"]!.GetValue<string>() == alice.UserId)!;
        Assert.Equal("m.presence", update["type"]!.GetValue<string>());
        Assert.Equal("lunch", update["content"]!["status_msg"]!.GetValue<string>());
        var strangersView = await SyncAsync(C, stranger);
        Assert.DoesNotContain(strangersView["presence"]!["events"]!.AsArray(), e => e!["sender"]!.GetValue<string>() == alice.UserId);

        // Syncing marks the user online again and keeps the status message.
        await SyncAsync(C, alice);
        var online = await C.GetAsync($"{V3}/presence/{alice.UserId}/status", bob.AccessToken);
        Assert.Equal("online", online.Str("presence"));
        Assert.Equal("lunch", online.Str("status_msg"));
        Assert.True(online.Body!["currently_active"]!.GetValue<bool>());
    }

    /// <summary>
    /// A sync whose window holds more presence changes than the user has room-mates (a crowd came online) is answered
    /// by looking at the room-mates: theirs come, the crowd's do not.
    /// </summary>
    [Fact]
    public async Task After_a_crowd_changed_presence_a_sync_shows_only_its_room_mates_changes()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var since = (await SyncAsync(C, bob))["next_batch"]!.GetValue<string>();

        Assert.Equal(200, (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "unavailable", status_msg = "first" }, alice.AccessToken)).Status);
        var crowd = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            var stranger = await C.RegisterAsync();
            crowd.Add(stranger.UserId);
            Assert.Equal(200, (await C.PutAsync($"{V3}/presence/{stranger.UserId}/status", new { presence = "unavailable" }, stranger.AccessToken)).Status);
        }
        Assert.Equal(200, (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "unavailable", status_msg = "second" }, alice.AccessToken)).Status);

        var events = (await SyncAsync(C, bob, since))["presence"]!["events"]!.AsArray();
        var alices = Assert.Single(events, e => e!["sender"]!.GetValue<string>() == alice.UserId)!;
        Assert.Equal("second", alices["content"]!["status_msg"]!.GetValue<string>());
        Assert.DoesNotContain(events, e => crowd.Contains(e!["sender"]!.GetValue<string>()));
    }
}

public sealed class PresenceTestsSqlite(SqliteServer f) : PresenceTests(f), IClassFixture<SqliteServer>;
public sealed class PresenceTestsPostgres(PostgresServer f) : PresenceTests(f), IClassFixture<PostgresServer>;

/// <summary>With <c>presence.enabled: false</c> updates are accepted, ignored, and everyone reads as offline.</summary>
public sealed class PresenceDisabledTests() : ServerFixture("sqlite", "presence:\n  enabled: false\n")
{
    [Fact]
    public async Task Switched_off_presence_is_accepted_and_ignored()
    {
        var c = Client;
        var alice = await c.RegisterAsync();
        Assert.Equal(200, (await c.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new { presence = "online", status_msg = "hi" }, alice.AccessToken)).Status);
        await SyncAsync(c, alice);
        var status = await c.GetAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", alice.AccessToken);
        Assert.Equal("offline", status.Str("presence"));
        Assert.Empty((await SyncAsync(c, alice))["presence"]!["events"]!.AsArray());
    }
}
