using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.ServerServer;

/// <summary>What another server may do and read in a room: server ACLs, and history visibility judged for its users.</summary>
public sealed class ServerRoomAccess(EventSpine spine, EventCache events, RoomReader reader)
{
    /// <summary>403 when the room's <c>m.room.server_acl</c> bans the server.</summary>
    public async Task EnsureAllowedAsync(RoomSnapshot room, string server, CancellationToken ct)
    {
        var acl = await spine.GetStateEventAsync(room, new StateKey("m.room.server_acl", ""), ct);
        if (!ServerAcl.IsAllowed(server, acl?.Content))
            throw MatrixException.Forbidden("The room's server ACL bans this server.");
    }

    public async Task<bool> IsAllowedAsync(RoomSnapshot room, string server, CancellationToken ct)
    {
        var acl = await spine.GetStateEventAsync(room, new StateKey("m.room.server_acl", ""), ct);
        return ServerAcl.IsAllowed(server, acl?.Content);
    }

    /// <summary>403 unless one of the server's users is joined to the room now.</summary>
    public async Task EnsureInRoomAsync(RoomSnapshot room, string server, CancellationToken ct)
    {
        await EnsureAllowedAsync(room, server, ct);
        if (!await HasMemberAsync(room.State, room.Version, server, "join", ct))
            throw MatrixException.Forbidden("The server has no user in the room.");
    }

    /// <summary>
    /// History visibility for a server: <c>world_readable</c> events are public; otherwise the server needs a user joined
    /// at the event (or invited, under <c>invited</c> or <c>shared</c>), or under <c>shared</c> a user joined now.
    /// </summary>
    public async Task<bool> CanSeeAsync(RoomSnapshot room, EventRow row, string server, CancellationToken ct)
    {
        var stateAtEvent = await reader.StateGroupAsync(row.StateGroup, ct);
        var visibility = stateAtEvent.TryGetValue(new StateKey("m.room.history_visibility", ""), out var id)
            ? (await events.GetAsync(id, room.Version, ct))?.ContentString("history_visibility") ?? "shared"
            : "shared";
        if (visibility == "world_readable" || await HasMemberAsync(stateAtEvent, room.Version, server, "join", ct))
            return true;
        if (visibility is "invited" or "shared" && await HasMemberAsync(stateAtEvent, room.Version, server, "invite", ct))
            return true;
        return visibility == "shared" && await HasMemberAsync(room.State, room.Version, server, "join", ct);
    }

    private async Task<bool> HasMemberAsync(IReadOnlyDictionary<StateKey, string> state, RoomVersion version, string server, string membership,
        CancellationToken ct)
    {
        foreach (var (key, eventId) in state)
            if (key.Type == "m.room.member" && UserId.TryParse(key.Key, out var user) && user.Server.Value == server
                && (await events.GetAsync(eventId, version, ct))?.Membership == membership)
                return true;
        return false;
    }
}
