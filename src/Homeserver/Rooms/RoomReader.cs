using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Reads rooms on a user's behalf: membership checks, the state a user may see, and events in client format with
/// history visibility and redactions applied.
/// </summary>
public sealed class RoomReader(
    EventSpine spine, Database db, RoomStore rooms, StateGroupCache groups, EventCache events, Accounts.ErasedUsers erasedUsers, TimeProvider clock)
{
    public long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<RoomSnapshot> RoomAsync(string roomId, CancellationToken ct) =>
        await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room.");

    /// <summary>
    /// The stripped state that describes a room to someone outside it (invites, knocks): create, join rules, name, avatar,
    /// alias, encryption, topic, and guest access (so an invited guest's server can tell whether the guest may join);
    /// with the membership of <paramref name="inviter"/>, who invited them (as Synapse: clients show who it was).
    /// </summary>
    public async Task<JsonArray> StrippedStateAsync(RoomSnapshot room, CancellationToken ct, string? inviter = null)
    {
        var stripped = new JsonArray();
        var keys = new[] { "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption",
            "m.room.topic", "m.room.guest_access" }.Select(type => new StateKey(type, ""));
        if (inviter is not null)
            keys = keys.Append(StateKey.Member(inviter));
        foreach (var key in keys)
            if (room.State.TryGetValue(key, out var id) && await events.GetAsync(id, room.Version, ct) is { } stateEvent)
                stripped.Add(ClientEventFormat.ToStripped(stateEvent));
        return stripped;
    }

    /// <summary>Whether anyone, member or not, may read the room's history (<c>world_readable</c>).</summary>
    public async Task<bool> IsWorldReadableAsync(RoomSnapshot room, CancellationToken ct) =>
        await HistoryVisibilityAsync(room, room.State, ct) == "world_readable";

    /// <summary>
    /// The user and everyone joined to a room they are joined to (whose presence and profile they may see); with
    /// <paramref name="includeInvited"/>, those invited there too (whose devices an encrypted room's messages are for).
    /// </summary>
    public async Task<HashSet<string>> UsersSharingRoomsAsync(string userId, CancellationToken ct, bool includeInvited = false)
    {
        var joined = await JoinedRoomsAsync(userId, ct);
        var users = UsersSharing(userId, joined);
        if (includeInvited)
            foreach (var room in joined)
                users.UnionWith(room.InvitedMembers);
        return users;
    }

    /// <summary>The user and the members joined to <paramref name="joinedRooms"/>.</summary>
    public static HashSet<string> UsersSharing(string userId, IEnumerable<RoomSnapshot> joinedRooms)
    {
        var users = new HashSet<string>(StringComparer.Ordinal) { userId };
        foreach (var room in joinedRooms)
            users.UnionWith(room.JoinedMembers);
        return users;
    }

    /// <summary>The rooms the user is joined to.</summary>
    public async Task<List<RoomSnapshot>> JoinedRoomsAsync(string userId, CancellationToken ct)
    {
        var joined = new List<RoomSnapshot>();
        foreach (var membership in await rooms.CurrentMembershipsAsync(db, userId, ct))
            if (membership.Membership == "join" && await spine.GetRoomAsync(membership.RoomId, ct) is { } room)
                joined.Add(room);
        return joined;
    }

    public async Task<string?> MembershipAsync(RoomSnapshot room, string userId, CancellationToken ct) =>
        (await spine.GetStateEventAsync(room, StateKey.Member(userId), ct))?.Membership;

    /// <summary>
    /// The room state the state endpoints show the user: current while joined, as it was when they left; for anyone
    /// else (never a member, or banned, as Synapse treats them) only a world-readable room's, else 403.
    /// </summary>
    public Task<(RoomSnapshot Room, IReadOnlyDictionary<StateKey, string> State)> VisibleStateAsync(string roomId, string userId, CancellationToken ct) =>
        StateForAsync(roomId, userId, departures: ["leave"], ct);

    /// <summary>The state as the user last saw it, a ban included (for rooms their own sync or search already lists).</summary>
    public Task<(RoomSnapshot Room, IReadOnlyDictionary<StateKey, string> State)> LastSeenStateAsync(string roomId, string userId, CancellationToken ct) =>
        StateForAsync(roomId, userId, departures: ["leave", "ban"], ct);

    private async Task<(RoomSnapshot Room, IReadOnlyDictionary<StateKey, string> State)> StateForAsync(string roomId, string userId,
        string[] departures, CancellationToken ct)
    {
        var room = await RoomAsync(roomId, ct);
        var member = await spine.GetStateEventAsync(room, StateKey.Member(userId), ct);
        if (member?.Membership == "join")
            return (room, room.State);
        if (member?.Membership is { } membership && departures.Contains(membership))
        {
            var row = await db.ReadAsync(s => rooms.GetEventAsync(s, member.EventId), ct);
            return (room, await StateGroupAsync(row!.StateGroup, ct));
        }
        if (await HistoryVisibilityAsync(room, room.State, ct) == "world_readable")
            return (room, room.State);
        throw MatrixException.Forbidden("You are not in this room.");
    }

    /// <summary>The room state after the room's last event at or before a stream position (empty before the room existed).</summary>
    public async Task<(IReadOnlyDictionary<StateKey, string> State, long Position)> StateAtPositionAsync(string roomId, long position, CancellationToken ct)
    {
        var row = await db.ReadAsync(s => rooms.LastEventAtAsync(s, roomId, position), ct);
        return row is null ? (new Dictionary<StateKey, string>(), 0) : (await StateGroupAsync(row.StateGroup, ct), row.StreamOrdering);
    }

    public ValueTask<IReadOnlyDictionary<StateKey, string>> StateGroupAsync(long groupId, CancellationToken ct) => groups.GetAsync(groupId, ct);

    private static readonly StateKey HistoryVisibilityKey = new("m.room.history_visibility", "");

    /// <summary>0 for the most open visibility; unknown values are as closed as <c>joined</c>, as <see cref="CanSeeAsync"/> treats them.</summary>
    private static int Openness(string visibility) => visibility switch
    {
        "world_readable" => 0,
        "shared" => 1,
        "invited" => 2,
        _ => 3,
    };

    private async Task<string> HistoryVisibilityAsync(RoomSnapshot room, IReadOnlyDictionary<StateKey, string> state, CancellationToken ct) =>
        state.TryGetValue(HistoryVisibilityKey, out var id)
            ? (await events.GetAsync(id, room.Version, ct))?.ContentString("history_visibility") ?? "shared"
            : "shared";

    /// <summary>
    /// History visibility: whether the user may see an event, given the room state after it and whether they are
    /// joined now. <c>world_readable</c>: anyone; <c>shared</c>: members from any time once joined; <c>invited</c>:
    /// also while invited; <c>joined</c>: only while joined. A change of visibility is judged by the more open of the
    /// values before and after it (as Synapse does), so those who could see the room before see it closing.
    /// </summary>
    public async Task<bool> CanSeeAsync(RoomSnapshot room, EventRow row, string userId, bool joinedNow, CancellationToken ct)
    {
        var state = await StateGroupAsync(row.StateGroup, ct);
        var visibility = await HistoryVisibilityAsync(room, state, ct);
        if (row.Type == HistoryVisibilityKey.Type && row.StateKey == "")
            foreach (var before in await db.ReadAsync(s => rooms.GetEventsAsync(s, events.FromRow(row, room.Version).PrevEvents), ct))
            {
                var earlier = await HistoryVisibilityAsync(room, await StateGroupAsync(before.StateGroup, ct), ct);
                if (Openness(earlier) < Openness(visibility))
                    visibility = earlier;
            }
        if (visibility == "world_readable")
            return true;
        var membership = await MembershipInAsync(room, state, userId, ct);
        // A user's own membership change is always visible to them.
        if (row.Type == "m.room.member" && row.StateKey == userId)
            return true;
        return visibility switch
        {
            "shared" => joinedNow || membership == "join",
            "invited" => membership is "join" or "invite",
            _ => membership == "join",
        };
    }

    private async Task<string?> MembershipInAsync(RoomSnapshot room, IReadOnlyDictionary<StateKey, string> state, string userId, CancellationToken ct) =>
        state.TryGetValue(StateKey.Member(userId), out var memberId) ? (await events.GetAsync(memberId, room.Version, ct))?.Membership : null;

    /// <summary>
    /// Erasure (as Synapse): an event of a user deactivated with erasure is shown redacted to whoever was not joined
    /// when it was sent; those who were keep seeing it.
    /// </summary>
    public async Task<bool> IsErasedForAsync(RoomSnapshot room, EventRow row, string userId, CancellationToken ct) =>
        (await erasedUsers.GetAsync(ct)).Contains(row.Sender)
        && await MembershipInAsync(room, await StateGroupAsync(row.StateGroup, ct), userId, ct) != "join";

    /// <param name="erased">shown redacted, its sender erased (see <see cref="IsErasedForAsync"/>)</param>
    public async Task<JsonObject> ToClientAsync(RoomSnapshot room, EventRow row, CancellationToken ct, string? transactionId = null,
        bool federationFormat = false, bool erased = false)
    {
        var pdu = events.FromRow(row, room.Version);
        Pdu? redaction = null;
        if (row.RedactedBy is { } redactionId)
            redaction = await events.GetAsync(redactionId, room.Version, ct);
        return federationFormat
            ? ClientEventFormat.ToFederation(pdu, Now, transactionId, redaction)
            : ClientEventFormat.ToClient(pdu, Now, transactionId, redaction, pruned: erased);
    }

    public async Task<JsonObject> StateEventToClientAsync(RoomSnapshot room, string eventId, CancellationToken ct)
    {
        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), ct) ?? throw MatrixException.NotFound("Event not found.");
        return await ToClientAsync(room, row, ct);
    }
}
