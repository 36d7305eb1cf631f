using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>A room's part of a response (null: nothing new to send), what the connection has sent of it after, and its timeline's events.</summary>
public sealed record BuiltRoom(JsonObject? Response, SentRoom Sent, IReadOnlyList<string> TimelineEventIds);

/// <summary>
/// One room of a sliding sync response. A room new to the connection (or whose membership changed, other than by
/// leaving) is sent whole (<c>initial</c>): its latest events and the state its config asks for. A room sent before
/// gets what happened since: new events, the state that changed among what the config asks for, state a wider config
/// now asks for, and the latest events again when the timeline limit grew (<c>expanded_timeline</c>). Rooms the user
/// never joined (invites, knocks, and those declined or refused) carry stripped state only; a room the user left shows
/// what happened up to their leave.
/// </summary>
public sealed class SlidingRoomBuilder(Database db, RoomStore rooms, RoomReader reader, EventCache events, SyncService sync)
{
    private const int MaxHeroes = 5;
    private static readonly StateKey NameKey = new("m.room.name", "");
    private static readonly StateKey AvatarKey = new("m.room.avatar", "");

    /// <summary>What every room of one response shares.</summary>
    public sealed record Context(Requester Requester, SyncToken? From, long UpTo, IReadOnlySet<string> DirectRooms, IReadOnlySet<string> Ignored,
        ILookup<string, Push.UnreadCount> Unread);

    public async Task<BuiltRoom> BuildAsync(Context context, RoomListEntry entry, RoomConfig config, SentRoom? previous, CancellationToken ct)
    {
        var leftSinceSent = previous?.Membership == "join" && entry.Membership is "leave" or "ban";
        var initial = previous is null || (previous.Membership != entry.Membership && !leftSinceSent);
        if (await NeverJoinedAsync(context, entry, leftSinceSent, ct))
            return initial || entry.MembershipPosition > previous!.EventsUpTo
                ? new BuiltRoom(await StrippedRoomAsync(context, entry, ct), new SentRoom(context.UpTo, entry.Membership, config, SentRoom.NoMembers), [])
                : new BuiltRoom(null, previous, []);
        return await RoomWithHistoryAsync(context, entry, config, initial ? null : previous, ct);
    }

    /// <summary>Whether the user is outside the room and never joined it (an invite or knock, declined, withdrawn or refused; a ban beforehand): they see stripped state only.</summary>
    private async Task<bool> NeverJoinedAsync(Context context, RoomListEntry entry, bool leftSinceSent, CancellationToken ct)
    {
        if (entry.Membership is "invite" or "knock" || entry.Room is null)
            return true;
        if (entry.Membership is not ("leave" or "ban") || leftSinceSent)
            return false;
        return !await sync.WasJoinedAsync(entry.Room, context.Requester.UserId.Value, entry.MembershipPosition - 1, ct);
    }

    private async Task<JsonObject> StrippedRoomAsync(Context context, RoomListEntry entry, CancellationToken ct)
    {
        var response = new JsonObject
        {
            ["invite_state"] = entry.Remote is { } remote ? SyncService.RemoteStrippedState(remote) : await sync.StrippedStateAsync(entry.Room!, entry.EventId, ct),
            ["initial"] = true,
            ["membership"] = entry.Membership,
            ["bump_stamp"] = entry.BumpStamp,
            ["notification_count"] = 0,
            ["highlight_count"] = 0,
        };
        if (context.DirectRooms.Contains(entry.RoomId))
            response["is_dm"] = true;
        return response;
    }

    private async Task<BuiltRoom> RoomWithHistoryAsync(Context context, RoomListEntry entry, RoomConfig config, SentRoom? previous, CancellationToken ct)
    {
        var user = context.Requester.UserId.Value;
        var room = entry.Room!;
        var ceiling = entry.IsJoined ? context.UpTo : entry.MembershipPosition;
        var timelineGrew = previous is not null && config.TimelineLimit > previous.Config.TimelineLimit;
        var stateConfigChanged = previous is not null && config.RequiredState.Canonical != previous.Config.RequiredState.Canonical;
        if (previous is not null && !timelineGrew && !stateConfigChanged && Math.Min(entry.Activity, ceiling) <= previous.EventsUpTo)
            return new BuiltRoom(null, previous, []);

        var filter = SyncFilter.Default with { Timeline = EventFilter.All with { Limit = config.TimelineLimit } };
        var (rows, limited) = await sync.TimelineRowsAsync(room, previous is null || timelineGrew ? 0 : previous.EventsUpTo, ceiling, filter,
            sync.VisibleIn(room, user, entry.IsJoined, context.Ignored), ct);
        var expanded = timelineGrew && rows.Any(r => r.StreamOrdering <= previous!.EventsUpTo);

        var state = entry.IsJoined ? room.State : await sync.StateAtAsync(room.RoomId, ceiling, ct);
        var changed = previous is null ? null : await ChangedStateAsync(room, state, previous, rows, limited, entry.IsJoined, ct);
        var lazyUsers = config.RequiredState.LazyMembers
            ? rows.Select(r => r.Sender).Concat(rows.Where(r => r.Type == "m.room.member").Select(r => r.StateKey!))
                .Where(u => previous is null || !previous.LazyMembers.Contains(u)).ToHashSet(StringComparer.Ordinal)
            : [];
        var wanted = new List<string>();
        foreach (var (key, eventId) in state)
        {
            var asked = config.RequiredState.Matches(key, user);
            var send = previous is null
                ? asked
                : (asked && changed!.Contains(key))
                  || (asked && stateConfigChanged && !previous.Config.RequiredState.Matches(key, user))
                  || (key.Type == "m.room.member" && config.RequiredState.LazyMembers && !limited && changed!.Contains(key)
                      && previous.LazyMembers.Contains(key.Key));
            if (send || (key.Type == "m.room.member" && lazyUsers.Contains(key.Key)))
                wanted.Add(eventId);
        }
        var sent = new SentRoom(ceiling, entry.Membership, config,
            !config.RequiredState.LazyMembers ? SentRoom.NoMembers
            : lazyUsers.Count == 0 && previous is not null ? previous.LazyMembers
            : lazyUsers.Union(previous?.LazyMembers ?? SentRoom.NoMembers).ToHashSet(StringComparer.Ordinal));
        if (previous is not null && rows.Count == 0 && wanted.Count == 0)
            return new BuiltRoom(null, sent, []);

        var response = new JsonObject();
        if (previous is null)
            response["initial"] = true;
        response["membership"] = entry.Membership;
        if (previous is null || changed!.Contains(NameKey))
            await AddStateFieldAsync(response, "name", room, state, NameKey, "name", ct);
        if (previous is null || changed!.Contains(AvatarKey))
            await AddStateFieldAsync(response, "avatar", room, state, AvatarKey, "url", ct);
        if (!state.ContainsKey(NameKey) && (previous is null || changed!.Any(k => k.Type == "m.room.member")))
            response["heroes"] = await HeroesAsync(room, state, user, ct);
        if (wanted.Count > 0)
        {
            var stateRows = await db.ReadAsync(s => rooms.GetEventsAsync(s, wanted), ct);
            var requiredState = new JsonArray();
            foreach (var row in stateRows)
                requiredState.Add(await reader.ToClientAsync(room, row, ct));
            response["required_state"] = requiredState;
        }
        if (rows.Count > 0)
            response["timeline"] = await sync.FormatTimelineAsync(context.Requester, room, rows, federationFormat: false, ct);
        response["limited"] = limited;
        response["prev_batch"] = new SyncToken(rows.Count > 0 ? rows[0].StreamOrdering - 1 : ceiling).ToString();
        response["num_live"] = context.From is { } from ? rows.Count(r => r.StreamOrdering > from.Events) : 0;
        if (expanded)
        {
            response["expanded_timeline"] = true;
            response["unstable_expanded_timeline"] = true;
        }
        response["bump_stamp"] = entry.BumpStamp;
        response["joined_count"] = room.JoinedMembers.Count;
        response["invited_count"] = room.InvitedMembers.Count;
        var unread = entry.IsJoined ? context.Unread[room.RoomId].ToList() : [];
        response["notification_count"] = unread.Sum(u => u.Notifications);
        response["highlight_count"] = unread.Sum(u => u.Highlights);
        if (context.DirectRooms.Contains(room.RoomId))
            response["is_dm"] = true;
        return new BuiltRoom(response, sent, rows.Select(r => r.EventId).ToList());
    }

    /// <summary>
    /// The state keys whose event changed since the room was last sent. Without a gap, every change is an event of the
    /// timeline; state changed without an event of its own (state resolution) shows once the timeline has a gap.
    /// </summary>
    private async Task<IReadOnlySet<StateKey>> ChangedStateAsync(RoomSnapshot room, IReadOnlyDictionary<StateKey, string> state, SentRoom previous,
        List<EventRow> rows, bool limited, bool joined, CancellationToken ct)
    {
        if (!limited && rows.All(r => r.StateKey is null) && joined)
            return new HashSet<StateKey>();
        var before = await sync.StateAtAsync(room.RoomId, previous.EventsUpTo, ct);
        return state.Where(p => !(before.TryGetValue(p.Key, out var old) && old == p.Value)).Select(p => p.Key).ToHashSet();
    }

    /// <summary>A field taken from a state event's content (null when the event is gone or holds no such string: the value was removed).</summary>
    private async Task AddStateFieldAsync(JsonObject response, string field, RoomSnapshot room, IReadOnlyDictionary<StateKey, string> state, StateKey key,
        string contentKey, CancellationToken ct)
    {
        var value = state.TryGetValue(key, out var eventId) ? (await events.GetAsync(eventId, room.Version, ct))?.ContentString(contentKey) : null;
        if (value is { Length: > 0 })
            response[field] = value;
    }

    /// <summary>Up to five joined or invited members other than the user (smallest IDs first), with their display names and avatars.</summary>
    private async Task<JsonArray> HeroesAsync(RoomSnapshot room, IReadOnlyDictionary<StateKey, string> state, string userId, CancellationToken ct)
    {
        var heroes = new JsonArray();
        foreach (var member in room.JoinedMembers.Concat(room.InvitedMembers).Where(m => m != userId).Order(StringComparer.Ordinal).Take(MaxHeroes))
        {
            var hero = new JsonObject { ["user_id"] = member };
            if (state.TryGetValue(StateKey.Member(member), out var eventId) && await events.GetAsync(eventId, room.Version, ct) is { } memberEvent)
            {
                if (memberEvent.ContentString("displayname") is { } name)
                    hero["displayname"] = name;
                if (memberEvent.ContentString("avatar_url") is { } avatar)
                    hero["avatar_url"] = avatar;
            }
            heroes.Add(hero);
        }
        return heroes;
    }
}
