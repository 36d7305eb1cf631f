using System.Net;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Two federating servers and an identity server stand-in both use (over plain HTTP on loopback).</summary>
public sealed class TwoServersWithIdentityServer : IAsyncLifetime
{
    public FederationFixture Federation { get; } = new(["sqlite", "postgres"],
        extraYaml: "identity_servers:\n  plain_http: true\noutbound_http:\n  ip_range_allowlist: [127.0.0.0/8]\n");
    public TestIdentityServer Identity { get; } = new();

    public Task InitializeAsync() => Federation.InitializeAsync();

    public async Task DisposeAsync()
    {
        await Federation.DisposeAsync();
        await Identity.DisposeAsync();
    }
}

/// <summary>
/// Spec (server-server API, "Third-party invites"): when a 3PID with a pending invite is bound, "if the invited
/// homeserver is in the room the invite came from, it can auth the event and send it", signed by itself in the
/// inviter's stead ("the server which actually sends the event may be a different server").
/// </summary>
public sealed class FederationThirdPartyInviteTests(TwoServersWithIdentityServer fixture) : IClassFixture<TwoServersWithIdentityServer>
{
    private MatrixClient A => fixture.Federation.ClientOf(0);
    private MatrixClient B => fixture.Federation.ClientOf(1);

    [Fact]
    public async Task The_invited_server_in_the_room_makes_the_invite_itself_even_while_the_inviters_server_is_down()
    {
        var inviter = await A.RegisterAsync();
        var joiner = await B.RegisterAsync();
        var invitee = await B.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(A, inviter, new { preset = "private_chat" });
        Assert.Equal(200, (await A.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = joiner.UserId }, inviter.AccessToken)).Status);
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(A.ServerName)}", new { }, joiner.AccessToken)).Status);
        var address = $"{MatrixClient.UniqueName("mail")}@example.org";
        var invite = await A.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new
        {
            id_server = fixture.Identity.Name, id_access_token = TestIdentityServer.AccessToken, medium = "email", address,
        }, inviter.AccessToken);
        Assert.Equal(200, invite.Status);
        await Eventually.HoldsAsync(async () => (await B.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", joiner.AccessToken)).Body!
            .AsArray().Any(e => e!["type"]!.GetValue<string>() == "m.room.third_party_invite"), "the third-party invite reaching B");

        // The inviter's server cannot be asked: B, in the room, builds the invite from the identity server's token.
        await fixture.Federation.Servers[0].KillAsync();
        var onbind = await fixture.Identity.BindAndNotifyAsync(fixture.Federation.Servers[1].BaseUrl, "email", address, invitee.UserId);
        Assert.Equal(HttpStatusCode.OK, onbind.StatusCode);
        var state = (await B.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", joiner.AccessToken)).Body!.AsArray();
        var member = Assert.Single(state, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == invitee.UserId)!;
        Assert.Equal("invite", member["content"]!["membership"]!.GetValue<string>());
        Assert.Equal(inviter.UserId, member["sender"]!.GetValue<string>());

        // Back up, the inviter's server takes the invite B sent on its user's behalf, signed by B alone.
        await fixture.Federation.Servers[0].StartAsync();
        await Eventually.HoldsAsync(async () => (await A.GetAsync(
                $"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{RoomTests.R(invitee.UserId)}", inviter.AccessToken))
            .Body?["membership"]?.GetValue<string>() == "invite", "the invite reaching the inviter's server");
        Assert.Equal(200, (await B.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, invitee.AccessToken)).Status);
    }
}
