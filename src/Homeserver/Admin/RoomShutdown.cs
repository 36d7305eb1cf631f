using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>What an admin asked of a room's deletion (Synapse's body of <c>DELETE /_synapse/admin/v[12]/rooms/{roomId}</c>).</summary>
public sealed record RoomShutdownRequest(string? NewRoomUserId, string RoomName, string Message, bool Block, bool Purge, bool ForcePurge);

/// <summary>What the shutdown did: who left, who could not be made to, the aliases moved and the room they now name.</summary>
public sealed record RoomShutdownResult(List<string> KickedUsers, List<string> FailedToKickUsers, List<string> LocalAliases, string? NewRoomId)
{
    public JsonObject ToJson() => new()
    {
        ["kicked_users"] = new JsonArray(KickedUsers.Select(u => (JsonNode)u).ToArray()),
        ["failed_to_kick_users"] = new JsonArray(FailedToKickUsers.Select(u => (JsonNode)u).ToArray()),
        ["local_aliases"] = new JsonArray(LocalAliases.Select(a => (JsonNode)a).ToArray()),
        ["new_room_id"] = NewRoomId,
    };
}

/// <summary>
/// Shutting a room down as Synapse does: optionally block it; every local member, invitee and knocker leaves (their
/// own leave) and forgets it; it leaves the room directory; with <c>new_room_user_id</c> a new public room, where
/// nobody but its creator may speak, receives them all, the admin's message and the room's local aliases. Then,
/// when asked, the room is purged from the database.
/// </summary>
public sealed class RoomShutdown(
    EventSpine spine, MembershipService memberships, RoomCreation creation, RoomStore rooms, BlockedRoomStore blocked, RoomPurgeStore purges,
    Database db, HomeserverConfig config, ILogger<RoomShutdown> logger)
{
    /// <summary>The part before the purge; throws (changing nothing) for an unknown room that is not to be blocked.</summary>
    public async Task<RoomShutdownResult> ShutDownAsync(string roomId, string admin, RoomShutdownRequest request, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct);
        if (room is null && !request.Block && await db.ReadAsync(s => rooms.GetRoomAsync(s, roomId), ct) is null)
            throw MatrixException.NotFound($"Unknown room id {roomId}.");
        if (request.Block)
            await db.WriteAsync(s => blocked.BlockAsync(s, roomId, admin), ct);
        var result = new RoomShutdownResult([], [], [], null);
        if (room is null)
            return result;
        await db.WriteAsync(s => rooms.SetPublicAsync(s, roomId, false), ct);

        var newRoomId = request.NewRoomUserId is { } creator ? await CreateNoticeRoomAsync(creator, request.RoomName, ct) : null;
        foreach (var (userId, membership) in await LocalMembersAsync(room, ct))
        {
            try
            {
                if (membership is "join" or "invite" or "knock")
                    await memberships.ChangeAsync(roomId, userId, userId, "leave", reason: null, extraContent: null, ct);
                await db.WriteAsync(s => rooms.ForgetAsync(s, userId, roomId), ct);
                if (newRoomId is not null && membership == "join" && userId != request.NewRoomUserId)
                    await memberships.ChangeAsync(newRoomId, userId, userId, "join", reason: null, extraContent: null, ct);
                if (membership == "join")
                    result.KickedUsers.Add(userId);
            }
            catch (Exception e) when (e is MatrixException or InvalidOperationException)
            {
                logger.LogWarning("Shutting down {RoomId}: {UserId} could not be made to leave: {Reason}", roomId, userId, e.Message);
                result.FailedToKickUsers.Add(userId);
            }
        }
        if (newRoomId is not null)
        {
            await spine.SendAsync(newRoomId, new NewEvent("m.room.message", null, request.NewRoomUserId!,
                new JsonObject { ["msgtype"] = "m.text", ["body"] = request.Message }), ct);
            result.LocalAliases.AddRange(await db.WriteAsync(async s =>
            {
                var aliases = await rooms.AliasesOfAsync(s, roomId);
                await rooms.MoveAliasesAsync(s, roomId, newRoomId);
                return aliases;
            }, ct));
        }
        logger.LogWarning("{Admin} shut down {RoomId}: {Kicked} left, {Failed} could not, new room {NewRoomId}, blocked {Blocked}",
            admin, roomId, result.KickedUsers.Count, result.FailedToKickUsers.Count, newRoomId, request.Block);
        return result with { NewRoomId = newRoomId };
    }

    /// <summary>Deletes every row of the room; refused while local users are still in it, unless forced.</summary>
    public async Task PurgeAsync(string roomId, bool force, CancellationToken ct)
    {
        if (!force && await spine.GetRoomAsync(roomId, ct) is { } room
            && room.JoinedMembers.Any(IsLocal))
            throw new MatrixException(400, "M_UNKNOWN", "Users are still joined to this room.");
        await spine.DropRoomAsync(roomId, s => purges.PurgeAsync(s, roomId), ct);
        logger.LogWarning("Purged {RoomId} from the database", roomId);
    }

    private bool IsLocal(string userId) => EventSigning.ServerOf(userId) == config.ServerName;

    private async Task<List<(string UserId, string Membership)>> LocalMembersAsync(RoomSnapshot room, CancellationToken ct)
    {
        var members = new List<(string, string)>();
        foreach (var key in room.State.Keys.Where(k => k.Type == "m.room.member" && IsLocal(k.Key)).OrderBy(k => k.Key, StringComparer.Ordinal))
            if ((await spine.GetStateEventAsync(room, key, ct))?.Membership is { } membership)
                members.Add((key.Key, membership));
        return members;
    }

    private async Task<string> CreateNoticeRoomAsync(string creator, string name, CancellationToken ct)
    {
        // Everyone moved in may read the notice; nobody but its creator may speak (as Synapse's users_default -10).
        var powerLevels = new JsonObject { ["users_default"] = -10 };
        return await creation.CreateAsync(creator, new CreateRoomRequest(config.EffectiveDefaultRoomVersion, "public_chat", Public: false, name,
            Topic: null, Invite: [], IsDirect: false, CreationContent: [], InitialState: [], powerLevels, AliasName: null), ct);
    }
}
