using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// One room of the user's room list: their membership (from the room, or from an invite or knock over federation to a
/// room this server is not in, with the stripped state it came with) and the position that orders the list.
/// </summary>
/// <param name="MembershipPosition">Where the member event is in the stream; not read for joins (0), which the room's activity orders.</param>
/// <param name="Sender">Who sent the member event; not read for joins ("").</param>
public sealed record RoomListEntry(string RoomId, string Membership, string EventId, long MembershipPosition, string Sender, RoomSnapshot? Room,
    RemoteInviteRow? Remote)
{
    /// <summary>Whether the room is on the server's list (rooms the user left themselves long ago are not, but may be subscribed to).</summary>
    public bool Listed { get; init; } = true;

    /// <summary>The latest event the user may see: any in a joined room, their own member event elsewhere.</summary>
    public long Activity { get; init; } = MembershipPosition;

    /// <summary>The room's <c>bump_stamp</c>: its latest bump event (or latest event) while joined, else the member event (never negative).</summary>
    public long BumpStamp { get; init; } = Math.Max(0, MembershipPosition);

    public bool IsJoined => Membership == "join";

    /// <summary>Stripped state of a room the user only knows from an invite or knock over federation.</summary>
    public JsonArray? RemoteStrippedState => Remote is null ? null : JsonNode.Parse(Remote.InviteStateJson)!.AsArray();
}

/// <summary>
/// The server's list of the user's rooms for sliding sync (MSC4186): every room they are joined to, invited to,
/// knocked on or banned from, were kicked from, or left since the connection's last response; ordered by recent
/// activity, newest first; filtered and cut to ranges per list.
/// </summary>
public sealed class SlidingRoomList(
    Database db, RoomStore rooms, EventSpine spine, AccountDataStore accountData, RoomActivity activity,
    IgnoredUsers ignoredUsers, InvitePermissions invitePermissions)
{
    /// <summary>The user's rooms, newest activity first, with what the filters look at.</summary>
    public sealed class UserRooms(IReadOnlyList<RoomListEntry> entries, IReadOnlySet<string> directRooms)
    {
        public static readonly UserRooms Empty = new([], new HashSet<string>());

        /// <summary>The rooms on the list, newest activity first.</summary>
        public IReadOnlyList<RoomListEntry> Entries { get; } = entries.Where(e => e.Listed).ToList();
        public IReadOnlySet<string> DirectRooms => directRooms;
        /// <summary>Every room the user has a membership in and has not forgotten, listed or not.</summary>
        public IReadOnlyDictionary<string, RoomListEntry> ById { get; } = entries.ToDictionary(e => e.RoomId, StringComparer.Ordinal);
        public Dictionary<string, IReadOnlySet<string>>? Tags { get; set; }
    }

    public async Task<UserRooms> LoadAsync(string userId, long? sinceEvents, CancellationToken ct)
    {
        // Joins come from the current state alone (a thousand rooms' member events would cost a join apiece): their
        // position in the list is their latest event's.
        var userMemberships = rooms.UserMemberships(userId);
        var otherThanJoins = rooms.MembershipEventsOtherThanJoins(userId);
        await db.ReadAllAsync([.. userMemberships.Reads, otherThanJoins], ct);
        var (memberships, forgotten, remote) = userMemberships.Result;
        var ignored = await ignoredUsers.OfAsync(userId, ct);
        var invitesBlocked = await invitePermissions.BlocksInvitesAsync(userId, ct);

        // Rooms the user left themselves stay out (they know), unless they left since the last response; kicks and bans stay in.
        bool Listed(string membership, string sender, long position) =>
            membership switch
            {
                "leave" => sender != userId || position > sinceEvents,
                "invite" => !invitesBlocked && !ignored.Contains(sender),
                _ => true,
            };

        var entries = new List<RoomListEntry>();
        var joins = memberships.Where(m => m.Membership == "join").Select(m => new MembershipEventRow(m.RoomId, m.Membership, m.EventId, 0, ""));
        foreach (var row in joins.Concat(otherThanJoins.Result))
            if (!forgotten.Contains(row.RoomId) && await spine.GetRoomAsync(row.RoomId, ct) is { } room)
                entries.Add(new RoomListEntry(row.RoomId, row.Membership, row.EventId, row.StreamOrdering, row.Sender, room, null)
                {
                    Listed = Listed(row.Membership, row.Sender, row.StreamOrdering),
                });
        var local = entries.Select(e => e.RoomId).ToHashSet(StringComparer.Ordinal);
        foreach (var invite in remote)
        {
            var sender = JsonNode.Parse(invite.EventJson)?["sender"]?.GetValue<string>() ?? "";
            if (!local.Contains(invite.RoomId) && !forgotten.Contains(invite.RoomId) && !await spine.IsInRoomAsync(invite.RoomId, ct))
                entries.Add(new RoomListEntry(invite.RoomId, invite.Membership, invite.EventId, invite.StreamOrdering, sender, null, invite)
                {
                    Listed = Listed(invite.Membership, sender, invite.StreamOrdering),
                });
        }

        var joined = entries.Where(e => e.IsJoined).Select(e => e.RoomId).ToList();
        var positions = await activity.ForRoomsAsync(joined, ct);
        for (var i = 0; i < entries.Count; i++)
            if (entries[i].IsJoined && positions.TryGetValue(entries[i].RoomId, out var p))
                entries[i] = entries[i] with { Activity = p.Latest ?? 0, BumpStamp = Math.Max(0, p.Bump ?? p.Latest ?? 0) };
        entries.Sort((a, b) => b.Activity != a.Activity ? b.Activity.CompareTo(a.Activity) : string.CompareOrdinal(a.RoomId, b.RoomId));
        return new UserRooms(entries, await DirectRoomsAsync(userId, ct));
    }

    /// <summary>The rooms of a list in order, after its filters.</summary>
    public async Task<List<RoomListEntry>> FilterAsync(UserRooms userRooms, string userId, ListFilters filters, CancellationToken ct)
    {
        if (filters.NeedsTags && userRooms.Tags is null)
            userRooms.Tags = await TagsAsync(userId, ct);
        var spaceChildren = filters.Spaces is { } spaces ? await SpaceChildrenAsync(userRooms, spaces, ct) : null;
        var matching = new List<RoomListEntry>();
        foreach (var entry in userRooms.Entries)
            if (await MatchesAsync(entry, filters, userRooms, spaceChildren, ct))
                matching.Add(entry);
        return matching;
    }

    private async Task<bool> MatchesAsync(RoomListEntry entry, ListFilters filters, UserRooms userRooms, IReadOnlySet<string>? spaceChildren,
        CancellationToken ct)
    {
        if (filters.IsDm is { } dm && userRooms.DirectRooms.Contains(entry.RoomId) != dm)
            return false;
        if (filters.IsInvite is { } invite && (entry.Membership == "invite") != invite)
            return false;
        if (spaceChildren is not null && !spaceChildren.Contains(entry.RoomId))
            return false;
        if (filters.IsEncrypted is { } encrypted && (await StateContentAsync(entry, "m.room.encryption", ct) is not null) != encrypted)
            return false;
        if (filters.RoomTypes is not null || filters.NotRoomTypes is not null)
        {
            var type = (await StateContentAsync(entry, "m.room.create", ct))?["type"] is JsonValue t && t.TryGetValue<string>(out var text) ? text : null;
            if ((filters.RoomTypes is { } types && !types.Contains(type)) || (filters.NotRoomTypes?.Contains(type) ?? false))
                return false;
        }
        if (filters.NeedsTags)
        {
            var tags = userRooms.Tags!.GetValueOrDefault(entry.RoomId) ?? new HashSet<string>();
            if ((filters.NotTags?.Any(tags.Contains) ?? false) || (filters.Tags is { } wanted && !wanted.Any(tags.Contains)))
                return false;
        }
        if (filters.RoomNameLike is { Length: > 0 } like)
        {
            var name = (await StateContentAsync(entry, "m.room.name", ct))?["name"] is JsonValue n && n.TryGetValue<string>(out var nameText) ? nameText : "";
            if (!name.Contains(like, StringComparison.OrdinalIgnoreCase))
                return false;
        }
        return true;
    }

    /// <summary>The content of a room state event with an empty state key, from the room or the stripped state of a remote invite.</summary>
    public async Task<JsonObject?> StateContentAsync(RoomListEntry entry, string type, CancellationToken ct)
    {
        if (entry.Room is { } room)
            return (await spine.GetStateEventAsync(room, new StateKey(type, ""), ct))?.Content;
        return entry.RemoteStrippedState?.OfType<JsonObject>()
            .FirstOrDefault(e => e["type"]?.GetValue<string>() == type && (e["state_key"]?.GetValue<string>() ?? "") == "")?["content"] as JsonObject;
    }

    /// <summary>The rooms <c>m.direct</c> names as direct chats.</summary>
    private async Task<IReadOnlySet<string>> DirectRoomsAsync(string userId, CancellationToken ct)
    {
        var content = await db.ReadAsync(s => accountData.GetAsync(s, userId, AccountDataStore.Global, "m.direct"), ct);
        var direct = new HashSet<string>(StringComparer.Ordinal);
        if (content is not null && JsonNode.Parse(content) is JsonObject byUser)
            foreach (var (_, roomIds) in byUser)
                if (roomIds is JsonArray list)
                    foreach (var roomId in list)
                        if (roomId is JsonValue value && value.TryGetValue<string>(out var id))
                            direct.Add(id);
        return direct;
    }

    private async Task<Dictionary<string, IReadOnlySet<string>>> TagsAsync(string userId, CancellationToken ct)
    {
        var tags = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        foreach (var entry in await db.ReadAsync(s => s.QueryAsync(accountData.OfType(userId, "m.tag")), ct))
            if (JsonNode.Parse(entry.Content)?["tags"] is JsonObject roomTags)
                tags[entry.RoomId] = roomTags.Select(t => t.Key).ToHashSet(StringComparer.Ordinal);
        return tags;
    }

    /// <summary>The rooms that spaces the user is joined to name as children (with a non-empty <c>via</c>); subspaces are not followed.</summary>
    private async Task<IReadOnlySet<string>> SpaceChildrenAsync(UserRooms userRooms, IReadOnlyList<string> spaceIds, CancellationToken ct)
    {
        var children = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spaceId in spaceIds.Distinct())
            if (userRooms.ById.GetValueOrDefault(spaceId) is { IsJoined: true, Room: { } space })
                foreach (var key in space.State.Keys.Where(k => k.Type == "m.space.child"))
                    if ((await spine.GetStateEventAsync(space, key, ct))?.Content["via"] is JsonArray { Count: > 0 })
                        children.Add(key.Key);
        return children;
    }
}
