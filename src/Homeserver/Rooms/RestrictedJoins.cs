using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Restricted join rules (<c>restricted</c>, <c>knock_restricted</c>): a user who is a member of one of the rooms the
/// <c>allow</c> list names may join without an invite, authorised by a local member who may invite
/// (<c>join_authorised_via_users_server</c>).
/// </summary>
public sealed class RestrictedJoins(EventSpine spine, RoomReader reader, HomeserverConfig config)
{
    /// <summary>
    /// The local user to name as authoriser of <paramref name="userId"/>'s join, or null when the room is not
    /// restricted or the user is already invited or joined. As the spec's make_join has it: 400 M_UNABLE_TO_AUTHORISE_JOIN
    /// when this server knows none of the allowed rooms, 403 M_FORBIDDEN when the user is in none of them, and 400
    /// M_UNABLE_TO_GRANT_JOIN (try another server) when no member here may authorise the join.
    /// </summary>
    public async Task<string?> AuthoriserForAsync(RoomSnapshot room, string userId, CancellationToken ct)
    {
        var joinRules = await spine.GetStateEventAsync(room, StateKey.JoinRules, ct);
        var rule = joinRules?.ContentString("join_rule");
        var restricted = (room.Version.RestrictedJoinRule && rule == "restricted") || (room.Version.KnockRestrictedJoinRule && rule == "knock_restricted");
        if (!restricted || await reader.MembershipAsync(room, userId, ct) is "invite" or "join")
            return null;
        var allowed = false;
        var knowsAny = false;
        foreach (var condition in (joinRules!.Content["allow"] as JsonArray ?? []).OfType<JsonObject>())
            if (condition["type"]?.AsString() == "m.room_membership" && condition["room_id"]?.AsString() is { } allowRoomId
                && await spine.GetRoomAsync(allowRoomId, ct) is { } allowRoom)
            {
                knowsAny = true;
                allowed |= await reader.MembershipAsync(allowRoom, userId, ct) == "join";
            }
        if (!knowsAny)
            throw new MatrixException(400, "M_UNABLE_TO_AUTHORISE_JOIN", "This server knows none of the rooms this room lets in.");
        if (!allowed)
            throw MatrixException.Forbidden("You are not a member of any room this room lets in.");

        var powers = new RoomPowers((await spine.GetStateEventAsync(room, StateKey.Create, ct))!, await spine.GetStateEventAsync(room, StateKey.PowerLevels, ct));
        foreach (var key in room.State.Keys.Where(k => k.Type == "m.room.member").OrderBy(k => k.Key, StringComparer.Ordinal))
            if (UserId.TryParse(key.Key, out var member) && member.Server.Value == config.ServerName
                && await reader.MembershipAsync(room, key.Key, ct) == "join" && powers.UserLevel(key.Key) >= powers.Levels.Invite)
                return key.Key;
        throw new MatrixException(400, "M_UNABLE_TO_GRANT_JOIN", "No member of this server may authorise the join.");
    }
}
