using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Invite permission" (v1.18): a user who blocks invites gets none, by any route, until they unblock.</summary>
public abstract class InvitePermissionTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [Fact]
    public async Task Blocked_invites_are_refused_everywhere_and_pending_ones_are_not_served()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var pending = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        var config = $"{V3}/user/{Uri.EscapeDataString(bob.UserId)}/account_data/m.invite_permission_config";
        Assert.Equal(200, (await C.PutAsync(config, new { default_action = "block" }, bob.AccessToken)).Status);

        var roomId = await RoomTests.CreateRoomAsync(C, alice);
        var invite = await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken);
        Assert.Equal(403, invite.Status);
        Assert.Equal("M_INVITE_BLOCKED", invite.Errcode);
        var viaState = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/state/m.room.member/{Uri.EscapeDataString(bob.UserId)}",
            new { membership = "invite" }, alice.AccessToken);
        Assert.Equal("M_INVITE_BLOCKED", viaState.Errcode);
        // createRoom succeeds; only the blocked invite is left out.
        var created = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        var members = (await C.GetAsync($"{V3}/rooms/{RoomTests.R(created)}/members", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.DoesNotContain(members, m => m!["state_key"]!.GetValue<string>() == bob.UserId);

        var sync = (await C.GetAsync($"{V3}/sync", bob.AccessToken)).Body!;
        Assert.Null(sync["rooms"]?["invite"]?[pending]);

        // Unblocked: the pending invite is served again, and new ones go through.
        Assert.Equal(200, (await C.PutAsync(config, new { }, bob.AccessToken)).Status);
        Assert.NotNull((await C.GetAsync($"{V3}/sync", bob.AccessToken)).Body!["rooms"]!["invite"]![pending]);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
    }
}

public sealed class InvitePermissionTestsSqlite(SqliteServer f) : InvitePermissionTests(f), IClassFixture<SqliteServer>;
public sealed class InvitePermissionTestsPostgres(PostgresServer f) : InvitePermissionTests(f), IClassFixture<PostgresServer>;
