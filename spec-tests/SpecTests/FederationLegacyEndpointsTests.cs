using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec (server-server): the deprecated v1 <c>send_join</c>, <c>send_leave</c> and <c>invite</c> (answers
/// <c>[200, body]</c>) older servers still call, the notary's key-ID path, server ACLs on every way in, and a remote
/// server's refusal of a join passed on to the client.
/// </summary>
public sealed class FederationLegacyEndpointsTests() : ServerFixture("sqlite", FederationFixture.FederationYaml)
{
    [Fact]
    public async Task V1_send_join_and_send_leave_answer_in_the_old_array_form()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await Client.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, alice, new { preset = "public_chat", room_version = "10" });

        var (userId, joined) = await remote.SendMembershipAsync(Server, roomId, "legacy", "join", api: "v1");
        var answer = joined.Body!.AsArray();
        Assert.Equal(200, answer[0]!.GetValue<int>());
        Assert.Contains(answer[1]!["state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.create");
        Assert.NotEmpty(answer[1]!["auth_chain"]!.AsArray());
        Assert.Equal("join", (await Client.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{userId}", alice.AccessToken)).Str("membership"));

        var (_, left) = await remote.SendMembershipAsync(Server, roomId, "legacy", "leave", api: "v1");
        Assert.Equal("[200,{}]", left.Body!.ToJsonString());
        Assert.Equal("leave", (await Client.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{userId}", alice.AccessToken)).Str("membership"));
    }

    /// <summary>An invite by the fake server's user to <paramref name="invitee"/>, into a version 1 room of the fake server.</summary>
    private static JsonObject V1Invite(FakeRemoteServer remote, string invitee)
    {
        var invite = new JsonObject
        {
            ["event_id"] = $"${Guid.NewGuid():N}:{remote.ServerName}", ["room_id"] = $"!{Guid.NewGuid():N}:{remote.ServerName}",
            ["type"] = "m.room.member", ["state_key"] = invitee, ["sender"] = $"@inviter:{remote.ServerName}", ["origin"] = remote.ServerName,
            ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ["depth"] = 5,
            ["content"] = new JsonObject { ["membership"] = "invite" }, ["prev_events"] = new JsonArray(), ["auth_events"] = new JsonArray(),
            ["unsigned"] = new JsonObject
            {
                ["invite_room_state"] = new JsonArray(new JsonObject
                {
                    ["type"] = "m.room.name", ["state_key"] = "", ["sender"] = $"@inviter:{remote.ServerName}", ["content"] = new JsonObject { ["name"] = "Old times" },
                }),
            },
        };
        EventSigning.HashAndSign(invite, RoomVersions.Find("1")!, remote.ServerName, remote.Key);
        return invite;
    }

    [Fact]
    public async Task A_v1_invite_is_countersigned_and_reaches_the_invitee_even_before_they_register()
    {
        await using var remote = new FakeRemoteServer();
        var bob = await Client.RegisterAsync();
        var invite = V1Invite(remote, bob.UserId);
        var path = $"/_matrix/federation/v1/invite/{Uri.EscapeDataString(invite["room_id"]!.GetValue<string>())}/{Uri.EscapeDataString(invite["event_id"]!.GetValue<string>())}";
        var answer = await remote.SendAsync(Server, HttpMethod.Put, path, invite);
        Assert.True(answer.Status == 200, answer.ToString());
        Assert.Equal(200, answer.Body![0]!.GetValue<int>());
        Assert.NotNull(answer.Body![1]!["event"]!["signatures"]![Server.ServerName]);
        var sync = await SyncTests.SyncAsync(Client, bob);
        var state = sync["rooms"]!["invite"]![invite["room_id"]!.GetValue<string>()]!["invite_state"]!["events"]!.AsArray();
        Assert.Contains(state, e => e!["type"]!.GetValue<string>() == "m.room.name" && e["content"]!["name"]!.GetValue<string>() == "Old times");

        // Not registered yet: the invite is kept for them (as Synapse does); a user of another server is refused.
        var later = V1Invite(remote, $"@{MatrixClient.UniqueName("later")}:{Server.ServerName}");
        Assert.Equal(200, (await remote.SendAsync(Server, HttpMethod.Put,
            $"/_matrix/federation/v1/invite/{Uri.EscapeDataString(later["room_id"]!.GetValue<string>())}/{Uri.EscapeDataString(later["event_id"]!.GetValue<string>())}", later)).Status);
        var elsewhere = V1Invite(remote, "@someone:elsewhere.example");
        Assert.Equal(400, (await remote.SendAsync(Server, HttpMethod.Put,
            $"/_matrix/federation/v1/invite/{Uri.EscapeDataString(elsewhere["room_id"]!.GetValue<string>())}/{Uri.EscapeDataString(elsewhere["event_id"]!.GetValue<string>())}", elsewhere)).Status);
    }

    [Fact]
    public async Task Invites_to_a_server_without_the_v2_api_go_through_v1_in_a_version_1_room()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await Client.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, alice, new { room_version = "1", name = "Vintage" });
        var invitee = $"@old:{remote.ServerName}";
        var invited = await Client.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = invitee }, alice.AccessToken);
        Assert.True(invited.Status == 200, invited.ToString());
        var received = Assert.Single(remote.V1InvitesReceived);
        Assert.Equal(invitee, received["state_key"]!.GetValue<string>());
        Assert.Contains(received["unsigned"]!["invite_room_state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name");
        Assert.Equal("invite", (await Client.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{invitee}", alice.AccessToken)).Str("membership"));
        // The invite reached the server through /invite; not being in the room, it gets no transaction of it.
        await Task.Delay(1000);
        Assert.DoesNotContain(remote.PdusReceived, p => p["state_key"]?.GetValue<string>() == invitee);

        // A room of a later version cannot be offered through v1: the invite fails and nothing is sent.
        var modern = await RoomTests.CreateRoomAsync(Client, alice, new { room_version = "10" });
        var refused = await Client.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(modern)}/invite", new { user_id = invitee }, alice.AccessToken);
        Assert.Equal(403, refused.Status);
        Assert.Single(remote.V1InvitesReceived);
    }

    [Fact]
    public async Task A_countersigned_invite_that_is_no_valid_event_is_bad_json()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await Client.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, alice, new { room_version = "6" });
        remote.V2InviteAnswer = signed =>
        {
            signed["bad_val"] = 1.1;
            return signed;
        };
        var invitee = $"@float:{remote.ServerName}";
        var invited = await Client.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/invite", new { user_id = invitee }, alice.AccessToken);
        Assert.Equal((400, "M_BAD_JSON"), (invited.Status, invited.Errcode));
        Assert.Equal(404, (await Client.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.member/{invitee}", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task A_third_party_invite_is_countersigned_on_the_strength_of_its_senders_signature()
    {
        // The room's server made the invite from a token the identity server signed for our user; the invitee's server
        // (this one) is the signer a third-party invite requires, so it checks the sender's signature and adds its own.
        await using var remote = new FakeRemoteServer();
        var bob = await Client.RegisterAsync();
        var invite = V1Invite(remote, bob.UserId);
        invite.Remove("signatures");
        invite.Remove("hashes");
        invite["content"] = new JsonObject
        {
            ["membership"] = "invite",
            ["third_party_invite"] = new JsonObject
            {
                ["display_name"] = "b***@example.org",
                ["signed"] = new JsonObject
                {
                    ["mxid"] = bob.UserId, ["token"] = "sometoken",
                    ["signatures"] = new JsonObject { ["id.example.org"] = new JsonObject { ["ed25519:0"] = "c2lnbmF0dXJl" } },
                },
            },
        };
        EventSigning.HashAndSign(invite, RoomVersions.Find("1")!, remote.ServerName, remote.Key);
        var path = $"/_matrix/federation/v2/invite/{Uri.EscapeDataString(invite["room_id"]!.GetValue<string>())}/{Uri.EscapeDataString(invite["event_id"]!.GetValue<string>())}";
        var answer = await remote.SendAsync(Server, HttpMethod.Put, path, new JsonObject { ["room_version"] = "1", ["event"] = invite, ["invite_room_state"] = new JsonArray() });
        Assert.True(answer.Status == 200, answer.ToString());
        Assert.NotNull(answer.Body!["event"]!["signatures"]![Server.ServerName]);

        // Unsigned by its sender's server, it is refused.
        var forged = (JsonObject)invite.DeepClone();
        forged["signatures"] = new JsonObject();
        var refused = await remote.SendAsync(Server, HttpMethod.Put, path, new JsonObject { ["room_version"] = "1", ["event"] = forged, ["invite_room_state"] = new JsonArray() });
        Assert.Equal(403, refused.Status);
    }

    [Fact]
    public async Task A_server_the_acl_bans_gets_an_error_for_its_pdus_and_cannot_join_or_invite()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await Client.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(Client, alice, new { preset = "public_chat", room_version = "10" });
        var fakeUser = await remote.JoinAsync(Server, roomId, "soon-banned");
        // The fake server lives on 127.0.0.1: denying that host bans it.
        Assert.Equal(200, (await Client.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.server_acl",
            new { allow = new[] { "*" }, deny = new[] { "127.0.0.1" }, allow_ip_literals = true }, alice.AccessToken)).Status);

        var made = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/federation/v1/make_join/{RoomTests.R(roomId)}/{Uri.EscapeDataString(fakeUser)}?ver=10");
        Assert.Equal(403, made.Status);
        var message = new JsonObject
        {
            ["room_id"] = roomId, ["type"] = "m.room.message", ["sender"] = fakeUser, ["origin"] = remote.ServerName,
            ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ["depth"] = 100, ["content"] = new JsonObject { ["body"] = "banned" },
            ["prev_events"] = new JsonArray(remote.LastJoinEventId), ["auth_events"] = new JsonArray(remote.LastJoinEventId),
        };
        EventSigning.HashAndSign(message, RoomVersions.Find("10")!, remote.ServerName, remote.Key);
        var sent = await remote.SendAsync(Server, HttpMethod.Put, $"/_matrix/federation/v1/send/{Guid.NewGuid():N}", new JsonObject
        {
            ["origin"] = remote.ServerName, ["origin_server_ts"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ["pdus"] = new JsonArray(message),
        });
        Assert.Contains("ACL", Assert.Single(sent.Body!["pdus"]!.AsObject()).Value!["error"]!.GetValue<string>());

        var invite = V1Invite(remote, alice.UserId);
        invite["room_id"] = roomId;
        invite.Remove("signatures");
        invite.Remove("hashes");
        invite["event_id"] = $"${Guid.NewGuid():N}:{remote.ServerName}";
        EventSigning.HashAndSign(invite, RoomVersions.Find("1")!, remote.ServerName, remote.Key);
        var refused = await remote.SendAsync(Server, HttpMethod.Put,
            $"/_matrix/federation/v1/invite/{RoomTests.R(roomId)}/{Uri.EscapeDataString(invite["event_id"]!.GetValue<string>())}", invite);
        Assert.Equal(403, refused.Status);
    }

    [Fact]
    public async Task The_notary_answers_the_key_id_path_and_a_refused_make_join_reaches_the_client_as_it_was()
    {
        await using var remote = new FakeRemoteServer();
        var byKeyId = await remote.SendAsync(Server, HttpMethod.Get, $"/_matrix/key/v2/query/{remote.ServerName}/{remote.Key.KeyId}");
        Assert.True(byKeyId.Status == 200, byKeyId.ToString());
        Assert.NotNull(Assert.Single(byKeyId.Body!["server_keys"]!.AsArray())!["verify_keys"]![remote.Key.KeyId]);

        remote.MakeJoinRefusal = (400, new JsonObject { ["errcode"] = "M_CUSTOM_REFUSAL", ["error"] = "not today" });
        var alice = await Client.RegisterAsync();
        var join = await Client.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString($"!elsewhere:{remote.ServerName}")}?server_name={Uri.EscapeDataString(remote.ServerName)}",
            new { }, alice.AccessToken);
        Assert.Equal((400, "M_CUSTOM_REFUSAL"), (join.Status, join.Errcode));
        Assert.Contains("not today", join.Str("error"));

        // What the refusal says beside its errcode comes along (the room version a server cannot join, say).
        remote.MakeJoinRefusal = (400, new JsonObject { ["errcode"] = "M_INCOMPATIBLE_ROOM_VERSION", ["error"] = "too new", ["room_version"] = "future-1" });
        var incompatible = await Client.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString($"!future:{remote.ServerName}")}?server_name={Uri.EscapeDataString(remote.ServerName)}",
            new { }, alice.AccessToken);
        Assert.Equal(("M_INCOMPATIBLE_ROOM_VERSION", "future-1"), (incompatible.Errcode, incompatible.Str("room_version")));
    }
}
