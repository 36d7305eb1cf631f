using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>Membership changes of local users: join, invite, leave, kick, ban, unban, knock, forget.</summary>
public sealed class MembershipService(
    EventSpine spine, Database db, RoomStore rooms, ProfileStore profiles, ServerServer.RemoteMembership remoteMembership, ServerServer.FederationInvites federationInvites,
    RemoteInviteStore remoteInvites, Sync.SyncNotifier notifier, Config.HomeserverConfig config, RestrictedJoins restrictedJoins,
    Storage.StreamPositions streams, AccountData.InvitePermissions invitePermissions, RoomSuccession succession, Admin.BlockedRoomStore blockedRooms)
{
    public async Task<PersistedEvent> ChangeAsync(string roomId, string sender, string target, string membership, string? reason,
        JsonObject? extraContent, CancellationToken ct)
    {
        if (membership is "join" or "invite" or "knock")
            await blockedRooms.RefuseIfBlockedAsync(db, roomId, ct);
        if (membership == "invite")
            await invitePermissions.CheckAsync(target, ct);
        var room = await spine.GetRoomAsync(roomId, ct);
        if (membership is "join" or "knock" && room is null)
            throw MatrixException.NotFound("This server does not know the room.");
        if ((room is null || !room.JoinedServers.Contains(config.ServerName)) && membership == "leave" && sender == target
            && await db.ReadAsync(s => remoteInvites.GetAsync(s, roomId, target), ct) is { Membership: "invite" or "knock" } pendingInvite)
            return await RejectRemoteInviteAsync(pendingInvite, ct);
        var content = extraContent ?? new JsonObject();
        content["membership"] = membership;
        if (reason is not null)
            content["reason"] = reason;
        if (membership is "join" or "invite" or "knock")
            await AddProfileAsync(content, target, ct);
        var current = room is null ? null : await spine.GetStateEventAsync(room, StateKey.Member(target), ct);
        // Joining again with the same content changes nothing: the current join is the answer (as Synapse does).
        if (membership == "join" && sender == target && current is { Membership: "join" } && JsonNode.DeepEquals(current.Content, content))
            return new PersistedEvent(current, 0);
        if (membership == "join" && sender == target && await restrictedJoins.AuthoriserForAsync(room!, target, ct) is { } authoriser)
            content["join_authorised_via_users_server"] = authoriser;
        var remoteInvitee = membership == "invite" && EventSigning.ServerOf(target) is { } targetServer && targetServer != config.ServerName;
        var result = await spine.SendAsync(roomId, new NewEvent("m.room.member", target, sender, content)
        {
            BeforePersist = remoteInvitee ? (pdu, token) => federationInvites.CountersignAsync(room!, pdu, token) : null,
        }, ct);
        if (membership == "join" && target == sender)
        {
            await db.WriteAsync(s => rooms.UnforgetAsync(s, sender, roomId), ct);
            await succession.OnLocalJoinAsync(roomId, sender, ct);
        }
        return result;
    }

    /// <summary>
    /// Joins a room: through the spine when this server is in it, else over federation through <paramref name="servers"/>
    /// (the <c>via</c>/<c>server_name</c> hints, the alias's servers, the room ID's server). A room this server has left
    /// is joined over federation too (as Synapse does): its state here stopped at the leave, so the join is built by a
    /// server still in the room, through the servers that were in it then. Only a room no other server was in when
    /// this one left is joined here.
    /// </summary>
    /// <remarks>
    /// Spec (Guest Access): a guest joins only a room whose <c>m.room.guest_access</c> is <c>can_join</c>, judged by the
    /// state this server has, or for a room it does not know by the stripped state of the guest's invite (Synapse
    /// refuses guests any room it does not know).
    /// </remarks>
    public async Task JoinAsync(string roomId, string userId, string? reason, JsonObject extraContent, IEnumerable<string> servers, bool asGuest,
        CancellationToken ct)
    {
        await blockedRooms.RefuseIfBlockedAsync(db, roomId, ct);
        var known = await spine.GetRoomAsync(roomId, ct);
        var invite = known is null ? await db.ReadAsync(s => remoteInvites.GetAsync(s, roomId, userId), ct) : null;
        if (asGuest && !(known is not null ? await GuestsMayJoinAsync(known, ct) : invite is { Membership: "invite" } && InviteAllowsGuests(invite)))
            throw Accounts.GuestAccess.Forbidden("Guests may not join this room.");
        var othersInRoom = known?.JoinedServers.Where(s => s != config.ServerName).ToList() ?? [];
        if (known is not null && (known.JoinedServers.Contains(config.ServerName) || othersInRoom.Count == 0 || !config.Federation.Enabled))
        {
            await ChangeAsync(roomId, userId, userId, "join", reason, extraContent, ct);
            return;
        }
        var content = (JsonObject)extraContent.DeepClone();
        if (reason is not null)
            content["reason"] = reason;
        await AddProfileAsync(content, userId, ct);
        var candidates = servers.Concat(othersInRoom).ToList();
        invite ??= await db.ReadAsync(s => remoteInvites.GetAsync(s, roomId, userId), ct);
        if (invite is { Membership: "invite" or "knock" } && PduParser.TryParse((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(invite.EventJson)!,
                Federation.Rooms.RoomVersions.Find(invite.RoomVersion)!, out var invitePdu, out _))
            candidates.Add(EventSigning.ServerOf(invitePdu.Sender)!);
        if (EventSigning.ServerOf(roomId) is { } roomServer)
            candidates.Add(roomServer);
        await remoteMembership.JoinAsync(roomId, userId, content, candidates, ct);
        await db.WriteAsync(async s =>
        {
            await rooms.UnforgetAsync(s, userId, roomId);
            await remoteInvites.DeleteAsync(s, roomId, userId);
        }, ct);
        await succession.OnLocalJoinAsync(roomId, userId, ct);
    }

    /// <summary>
    /// Declines an invite to (or withdraws a knock on) a room this server does not know. The row of the invite becomes
    /// the leave, at a new stream position, so that the user's incremental syncs list the room under <c>leave</c>.
    /// </summary>
    private async Task<PersistedEvent> RejectRemoteInviteAsync(RemoteInviteRow invite, CancellationToken ct)
    {
        var version = Federation.Rooms.RoomVersions.Find(invite.RoomVersion)!;
        var invitePdu = Pdu.Parse((System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(invite.EventJson)!, version);
        var leave = await remoteMembership.RejectInviteAsync(invitePdu, invite.UserId, invite.ViaServer ?? EventSigning.ServerOf(invitePdu.Sender)!, ct);
        var position = await db.WriteAsync(async s =>
        {
            var next = await streams.NextAsync(s, "events");
            await remoteInvites.SetAsync(s, invite with
            {
                EventId = leave.EventId, RoomVersion = leave.Version.Id, EventJson = Federation.Json.CanonicalJson.EncodeToString(leave.Json),
                StreamOrdering = next, Membership = "leave",
            });
            return next;
        }, ct);
        streams.WhenVisible("events", position, () => notifier.Notify([invite.UserId]));
        return new PersistedEvent(leave, position);
    }

    /// <summary>Knocks on a room this server does not know, through <paramref name="servers"/> (and the room ID's server).</summary>
    public async Task<PersistedEvent> KnockRemoteAsync(string roomId, string userId, string? reason, IEnumerable<string> servers, CancellationToken ct)
    {
        await blockedRooms.RefuseIfBlockedAsync(db, roomId, ct);
        var content = new JsonObject();
        if (reason is not null)
            content["reason"] = reason;
        await AddProfileAsync(content, userId, ct);
        var candidates = servers.ToList();
        if (EventSigning.ServerOf(roomId) is { } roomServer)
            candidates.Add(roomServer);
        var (knock, roomState, server) = await remoteMembership.KnockAsync(roomId, userId, content, candidates, ct);
        await db.WriteAsync(async s => await remoteInvites.SetAsync(s, new RemoteInviteRow(roomId, userId, knock.EventId, knock.Version.Id,
            Federation.Json.CanonicalJson.EncodeToString(knock.Json), roomState.ToJsonString(), await streams.NextAsync(s, "events"), "knock", server)), ct);
        notifier.Notify([userId]);
        return new PersistedEvent(knock, 0);
    }

    /// <summary>
    /// A kick (or a withdrawn invite or refused knock) needs a target in the room, as in Synapse: the auth rules alone
    /// would let a moderator "kick" anyone, banned users included (who would thereby be unbanned).
    /// </summary>
    public async Task<PersistedEvent> KickAsync(string roomId, string sender, string target, string? reason, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room.");
        var member = await spine.GetStateEventAsync(room, StateKey.Member(target), ct);
        if (member?.Membership is not ("join" or "invite" or "knock"))
            throw MatrixException.Forbidden($"{target} is not in the room.");
        return await ChangeAsync(roomId, sender, target, "leave", reason, null, ct);
    }

    /// <summary>Unbanning is a leave by another user, allowed only when the target is banned.</summary>
    public async Task<PersistedEvent> UnbanAsync(string roomId, string sender, string target, string? reason, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room.");
        var member = await spine.GetStateEventAsync(room, StateKey.Member(target), ct);
        if (member?.Membership != "ban")
            throw MatrixException.Forbidden("The user is not banned.");
        return await ChangeAsync(roomId, sender, target, "leave", reason, null, ct);
    }

    public async Task ForgetAsync(string roomId, string userId, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.NotFound("Unknown room.");
        var membership = (await spine.GetStateEventAsync(room, StateKey.Member(userId), ct))?.Membership;
        if (membership is "join" or "invite" or "knock")
            throw new MatrixException(400, "M_UNKNOWN", "You must leave the room before forgetting it.");
        if (membership is null)
            throw MatrixException.NotFound("You have never been in this room.");
        await db.WriteAsync(s => rooms.ForgetAsync(s, userId, roomId), ct);
    }

    /// <summary>After a profile change, a new join event in every joined room carries the new display name and avatar (as Synapse does).</summary>
    public async Task RefreshProfileAsync(string userId, CancellationToken ct)
    {
        foreach (var membership in (await db.ReadAsync(s => rooms.MembershipsAsync(s, userId), ct)).Where(m => m.Membership == "join"))
        {
            var content = new JsonObject { ["membership"] = "join" };
            await AddProfileAsync(content, userId, ct);
            await spine.SendAsync(membership.RoomId, new NewEvent("m.room.member", userId, userId, content), ct);
        }
    }

    public async Task<bool> GuestsMayJoinAsync(RoomSnapshot room, CancellationToken ct) =>
        (await spine.GetStateEventAsync(room, GuestAccessKey, ct))?.ContentString("guest_access") == "can_join";

    public static readonly StateKey GuestAccessKey = new("m.room.guest_access", "");

    private static bool InviteAllowsGuests(RemoteInviteRow invite) =>
        JsonNode.Parse(invite.InviteStateJson) is JsonArray state && state.OfType<JsonObject>().Any(e =>
            e["type"].AsString() == GuestAccessKey.Type && e["state_key"].AsString() == "" && (e["content"] as JsonObject)?["guest_access"].AsString() == "can_join");

    private async Task AddProfileAsync(JsonObject content, string userId, CancellationToken ct)
    {
        var (displayName, avatarUrl) = await db.ReadAsync(async s =>
            (await profiles.GetAsync(s, userId, "displayname"), await profiles.GetAsync(s, userId, "avatar_url")), ct);
        if (displayName is not null && !content.ContainsKey("displayname"))
            content["displayname"] = JsonNode.Parse(displayName);
        if (avatarUrl is not null && !content.ContainsKey("avatar_url"))
            content["avatar_url"] = JsonNode.Parse(avatarUrl);
    }
}
