using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>
/// Who may see a room's summary from outside it (spaces' hierarchy, room summaries): members and invitees, anyone for
/// public, knockable and world-readable rooms, and members of an allowed room for restricted ones.
/// </summary>
public sealed class RoomPeeking(EventSpine spine, RoomReader reader, PublicRoomList summaries)
{
    /// <summary>Rooms a user may see: joined or invited, public or knockable, world readable, or restricted to a room the user is in.</summary>
    public async Task<bool> UserMayPeekAsync(RoomSnapshot room, string userId, CancellationToken ct)
    {
        if (await reader.MembershipAsync(room, userId, ct) is "join" or "invite")
            return true;
        var joinRules = await spine.GetStateEventAsync(room, StateKey.JoinRules, ct);
        if (joinRules?.ContentString("join_rule") is "restricted" or "knock_restricted")
            foreach (var allowed in AllowedRoomIds(joinRules))
                if (await spine.GetRoomAsync(allowed, ct) is { } allowedRoom && await reader.MembershipAsync(allowedRoom, userId, ct) == "join")
                    return true;
        return await IsOpenAsync(room, ct, includeRestricted: false);
    }

    /// <summary>Rooms anyone may see: public, knockable, world readable; for other servers also restricted ones (they check allowed_room_ids).</summary>
    public async Task<bool> IsOpenAsync(RoomSnapshot room, CancellationToken ct, bool includeRestricted = true)
    {
        var joinRule = (await spine.GetStateEventAsync(room, StateKey.JoinRules, ct))?.ContentString("join_rule");
        return joinRule is "public" or "knock" or "knock_restricted" || (includeRestricted && joinRule == "restricted")
            || await reader.IsWorldReadableAsync(room, ct);
    }

    /// <summary>The directory summary with the room version, encryption and, for restricted rooms, the allowed rooms.</summary>
    public async Task<JsonObject> DetailedSummaryAsync(RoomSnapshot room, CancellationToken ct)
    {
        var entry = await summaries.SummaryAsync(room, ct);
        entry["room_version"] = room.Version.Id;
        if ((await spine.GetStateEventAsync(room, new StateKey("m.room.encryption", ""), ct))?.ContentString("algorithm") is { } algorithm)
            entry["encryption"] = algorithm;
        if (await spine.GetStateEventAsync(room, StateKey.JoinRules, ct) is { } joinRules
            && joinRules.ContentString("join_rule") is "restricted" or "knock_restricted")
            entry["allowed_room_ids"] = new JsonArray(AllowedRoomIds(joinRules).Select(id => (JsonNode)id).ToArray());
        return entry;
    }

    private static IEnumerable<string> AllowedRoomIds(Pdu joinRules) =>
        (joinRules.Content["allow"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(c => c["type"]?.AsString() == "m.room_membership").Select(c => c["room_id"]?.AsString()).OfType<string>();
}
