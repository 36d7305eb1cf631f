using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Ignoring users": an ignored user's messages, invites and notifications do not reach the ignoring user.</summary>
public abstract class IgnoredUsersTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [Fact]
    public async Task Ignored_users_messages_invites_and_notifications_are_held_back()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        foreach (var user in new[] { bob, carol })
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(bob.UserId)}/account_data/m.ignored_user_list",
            new JsonObject { ["ignored_users"] = new JsonObject { [carol.UserId] = new JsonObject() } }.ToJsonString(), bob.AccessToken)).Status);

        var fromCarol = await RoomTests.SendAsync(C, carol, roomId, "you can't see me");
        var fromAlice = await RoomTests.SendAsync(C, alice, roomId, "hello everyone");
        var invite = await RoomTests.CreateRoomAsync(C, carol, new { invite = new[] { bob.UserId } });

        var sync = (await C.GetAsync($"{V3}/sync", bob.AccessToken)).Body!;
        var timeline = sync["rooms"]!["join"]![roomId]!["timeline"]!["events"]!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()).ToList();
        Assert.Contains(fromAlice, timeline);
        Assert.DoesNotContain(fromCarol, timeline);
        Assert.Equal(1, sync["rooms"]!["join"]![roomId]!["unread_notifications"]!["notification_count"]!.GetValue<long>());
        Assert.Null(sync["rooms"]?["invite"]?[invite]);
        // Carol's membership (state) is still there: the room's state does not depend on whom bob ignores.
        Assert.Contains(sync["rooms"]!["join"]![roomId]!["state"]!["events"]!.AsArray().Concat(sync["rooms"]!["join"]![roomId]!["timeline"]!["events"]!.AsArray()),
            e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == carol.UserId);

        // A new message of carol's alone is no update of the room for bob.
        await RoomTests.SendAsync(C, carol, roomId, "still hidden");
        var incremental = await SyncTests.SyncAsync(C, bob, sync["next_batch"]!.GetValue<string>());
        Assert.Null(incremental["rooms"]!["join"]![roomId]);

        var messages = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=50", bob.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.DoesNotContain(messages, e => e!["event_id"]!.GetValue<string>() == fromCarol);
        // Alice ignores nobody.
        var alicesMessages = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=50", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Contains(alicesMessages, e => e!["event_id"]!.GetValue<string>() == fromCarol);

        // Unignored: carol's new messages arrive again.
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(bob.UserId)}/account_data/m.ignored_user_list",
            new { ignored_users = new { } }, bob.AccessToken)).Status);
        var again = await RoomTests.SendAsync(C, carol, roomId, "back");
        var later = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=5", bob.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Contains(later, e => e!["event_id"]!.GetValue<string>() == again);
    }
}

public sealed class IgnoredUsersTestsSqlite(SqliteServer f) : IgnoredUsersTests(f), IClassFixture<SqliteServer>;
public sealed class IgnoredUsersTestsPostgres(PostgresServer f) : IgnoredUsersTests(f), IClassFixture<PostgresServer>;
