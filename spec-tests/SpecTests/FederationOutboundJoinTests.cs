using System.Text.Json.Nodes;
using Matrix.Federation.Rooms;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec (server-server, "Joining Rooms"): a local user joins a room another server hosts (played by the test).</summary>
public abstract class FederationOutboundJoinTests(ServerFixture fixture)
{
    private MatrixClient Client => fixture.Client;

    private async Task<MatrixResponse> JoinAsync(LoggedInUser user, FakeRemoteServer remote, string roomId) =>
        await Client.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}?server_name={Uri.EscapeDataString(remote.ServerName)}", new { }, user.AccessToken);

    [Fact]
    public async Task A_room_whose_create_event_states_another_version_than_make_join_is_not_joined()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await Client.RegisterAsync();
        var honest = remote.HostRoom(RoomVersions.Find("10")!);
        var joined = await JoinAsync(alice, remote, honest.RoomId);
        Assert.True(joined.Status == 200, joined.ToString());

        // Version 9 is one this server knows (an unknown one the auth rules refuse), so only the comparison stops the join.
        var lying = remote.HostRoom(RoomVersions.Find("10")!, statedVersion: "9");
        var refused = await JoinAsync(alice, remote, lying.RoomId);
        Assert.True(refused.Status >= 400, refused.ToString());
        var rooms = await Client.GetAsync("/_matrix/client/v3/joined_rooms", alice.AccessToken);
        Assert.DoesNotContain(lying.RoomId, rooms.Body!["joined_rooms"]!.AsArray().Select(r => r!.GetValue<string>()));
    }
}

public sealed class FederationOutboundJoinTestsSqlite(SqliteFederatingServer f) : FederationOutboundJoinTests(f), IClassFixture<SqliteFederatingServer>;
public sealed class FederationOutboundJoinTestsPostgres(PostgresFederatingServer f) : FederationOutboundJoinTests(f), IClassFixture<PostgresFederatingServer>;
