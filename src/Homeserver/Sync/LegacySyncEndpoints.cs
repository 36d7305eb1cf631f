using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// Spec: the deprecated "Legacy" sync endpoints (<c>GET /events</c>, <c>GET /initialSync</c>,
/// <c>GET /rooms/{roomId}/initialSync</c>, <c>GET /events/{eventId}</c>). Still served (as Synapse does) for older
/// clients and bots; the event stream is <c>/sync</c> flattened, on the same tokens.
/// </summary>
public sealed class LegacySyncEndpoints(
    Authenticator authenticator, SyncService sync, SyncNotifier notifier, RoomReader reader, Database db, RoomStore rooms,
    Presence.PresenceService presence, Receipts.TypingService typing, Receipts.ReceiptStore receipts) : IEndpoints
{
    private const int DefaultEventStreamTimeoutMs = 30_000;
    private const int MaxRoomStreamEvents = 100;
    private const int DefaultInitialSyncLimit = 10;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "events", EventStreamAsync);
        app.MapV3("GET", "initialSync", InitialSyncAsync);
        app.MapV3("GET", "rooms/{roomId}/initialSync", RoomInitialSyncAsync);
        app.MapV3("GET", "events/{eventId}", EventAsync);
    }

    /// <summary>
    /// Every new event the user may see since <c>from</c> (now when absent), as one list: timeline events of their rooms,
    /// typing and receipts with their room ID, presence, and their invites. With <c>room_id</c>, one room's new events
    /// (<see cref="RoomEventStreamAsync"/>).
    /// </summary>
    private async Task EventStreamAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var fromText = context.Query("from");
        var parsedFrom = fromText is { Length: > 0 } ? SyncToken.Parse(fromText, "from") : (SyncToken?)null;
        var timeout = context.Query("timeout") is { Length: > 0 } t
            ? long.TryParse(t, out var ms) && ms >= 0 ? (int)Math.Min(ms, SyncService.MaxTimeoutMs) : throw MatrixException.InvalidParam("Invalid timeout.")
            : DefaultEventStreamTimeoutMs;
        var peeked = context.Query("room_id") is { Length: > 0 } id ? id : null;
        // Guests see rooms only by peeking into them, one at a time (as in Synapse).
        if (peeked is null && requester.IsGuest)
            throw new MatrixException(400, "M_MISSING_PARAM", "Guests must give the room_id of the room to listen to.");
        // Polling the stream is activity, as a sync without set_presence is (Synapse marks the poller online too; SyTest's
        // presence tests rely on it): the user reads as online, keeping their status message. Before "now" is taken, so a
        // first poll does not bring the poller's own change back.
        if (!requester.IsGuest)
            await presence.SetAsync(requester.UserId.Value, "online", null, keepStatusMsg: true, context.RequestAborted);
        if (peeked is not null)
        {
            await RoomEventStreamAsync(context, requester.UserId.Value, peeked, parsedFrom, timeout);
            return;
        }
        var from = parsedFrom ?? await sync.CurrentPositionsAsync(context.RequestAborted);
        var filter = SyncFilter.Default with { Timeline = EventFilter.All with { Limit = SyncFilter.MaxTimelineLimit }, IncludeLeave = true };
        var response = (await sync.SyncAsync(requester, from, filter, fullState: false, useStateAfter: false, timeout, writeOnly: false, context.RequestAborted)).AsObject();
        var chunk = new JsonArray();
        foreach (var (roomId, room) in Rooms(response, "join").Concat(Rooms(response, "leave")))
        {
            AddWithRoomId(chunk, room["timeline"]?["events"], roomId);
            AddWithRoomId(chunk, room["ephemeral"]?["events"], roomId);
        }
        foreach (var (roomId, room) in Rooms(response, "invite"))
            AddWithRoomId(chunk, new JsonArray(room["invite_state"]?["events"]?.AsArray()
                .Where(e => e?["type"]?.GetValue<string>() == "m.room.member" && e["state_key"]?.GetValue<string>() == requester.UserId.Value)
                .Select(e => e!.DeepClone()).ToArray() ?? []), roomId);
        foreach (var presenceEvent in response["presence"]?["events"]?.AsArray() ?? [])
            chunk.Add(WithUserIdInContent(presenceEvent!.DeepClone().AsObject()));
        await context.WriteJsonAsync(new JsonObject { ["chunk"] = chunk, ["start"] = from.ToString(), ["end"] = response["next_batch"]!.DeepClone() });
    }

    /// <summary>
    /// Spec (Room Previews, <c>GET /events?room_id=</c>): the room's new events after <c>from</c>, waiting up to the
    /// timeout for one, for its members and, when its history is world readable, anyone (guests and previews peek this
    /// way); 403 for anyone else. Each event is shown as history visibility lets the user see it; the room's typing,
    /// receipts and members' presence changes come too.
    /// </summary>
    private async Task RoomEventStreamAsync(HttpContext context, string userId, string roomId, SyncToken? parsedFrom, int timeoutMs)
    {
        var ct = context.RequestAborted;
        var start = parsedFrom ?? await sync.CurrentPositionsAsync(ct);
        var seen = start;
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            // Registered before looking, so an event committed meanwhile still wakes the wait below.
            var waiter = notifier.Register(roomId, out var unregister);
            try
            {
                var room = await reader.RoomAsync(roomId, ct);
                var joined = await reader.MembershipAsync(room, userId, ct) == "join";
                if (!joined && !await reader.IsWorldReadableAsync(room, ct))
                    throw MatrixException.Forbidden("You may not listen to the events of a room you are not in unless it is world readable.");
                var positions = (await sync.CurrentPositionsAsync(ct)).AtLeast(seen);
                var chunk = new JsonArray();
                var after = seen.Events;
                if (positions.Events > after)
                {
                    var rows = await db.ReadAsync(s => rooms.RoomEventsAsync(s, roomId, after, positions.Events, MaxRoomStreamEvents, newestFirst: false), ct);
                    // A full page ends at its last event: the next poll goes on from there.
                    if (rows.Count == MaxRoomStreamEvents)
                        positions = positions with { Events = rows[^1].StreamOrdering };
                    foreach (var row in rows)
                        if (await reader.CanSeeAsync(room, row, userId, joined, ct))
                            chunk.Add(await reader.ToClientAsync(room, row, ct, erased: await reader.IsErasedForAsync(room, row, userId, ct)));
                }
                // What else of the room the window holds, as Synapse shows it there: its typing, receipts and members' presence.
                foreach (var ephemeral in await RoomEphemeralAsync(room, userId, seen, positions, ct))
                    chunk.Add(ephemeral);
                seen = positions;
                var remaining = deadline - DateTime.UtcNow;
                if (chunk.Count > 0 || remaining <= TimeSpan.Zero)
                {
                    await context.WriteJsonAsync(new JsonObject { ["chunk"] = chunk, ["start"] = start.ToString(), ["end"] = seen.ToString() });
                    return;
                }
                await notifier.WaitAsync(waiter, remaining, Observability.ServerMetrics.SyncLongPoll, ct);
            }
            finally
            {
                unregister();
            }
        }
    }

    /// <summary>The room's typing list when it changed, its receipts and its members' presence changes between the two positions.</summary>
    private async Task<List<JsonObject>> RoomEphemeralAsync(RoomSnapshot room, string userId, SyncToken from, SyncToken upTo, CancellationToken ct)
    {
        var events = new List<JsonObject>();
        var (typingUsers, typingChanged) = typing.Get(room.RoomId, from.Typing);
        if (typingChanged)
        {
            var typingEvent = Receipts.TypingService.Event(typingUsers);
            typingEvent["room_id"] = room.RoomId;
            events.Add(typingEvent);
        }
        if (from.Receipts < upTo.Receipts
            && SyncService.ReceiptEvent(await db.ReadAsync(s => s.QueryAsync(receipts.ChangedSince([room.RoomId], from.Receipts, upTo.Receipts)), ct), userId)
                is { } receiptEvent)
        {
            receiptEvent["room_id"] = room.RoomId;
            events.Add(receiptEvent);
        }
        events.AddRange((await presence.RoomChangesAsync(room, from.Presence, upTo.Presence, ct)).Select(WithUserIdInContent));
        return events;
    }

    /// <summary>A presence event as the legacy stream gives it: its user in its content too (as Synapse's, for clients of that era).</summary>
    private static JsonObject WithUserIdInContent(JsonObject presenceEvent)
    {
        if (presenceEvent["content"] is JsonObject content && presenceEvent["sender"] is JsonValue sender)
            content["user_id"] = sender.DeepClone();
        return presenceEvent;
    }

    /// <summary>A snapshot of every room of the user: recent messages, current state, their membership.</summary>
    private async Task InitialSyncAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var limit = Limit(context);
        var filter = SyncFilter.Default with { Timeline = EventFilter.All with { Limit = limit }, IncludeLeave = context.Query("archived") == "true" };
        var response = (await sync.SyncAsync(requester, null, filter, fullState: true, useStateAfter: false, 0, writeOnly: false, context.RequestAborted)).AsObject();
        var end = response["next_batch"]!.GetValue<string>();
        var list = new JsonArray();
        foreach (var membership in new[] { "join", "leave" })
            foreach (var (roomId, room) in Rooms(response, membership))
            {
                var (snapshot, state) = await reader.LastSeenStateAsync(roomId, requester.UserId.Value, context.RequestAborted);
                var entry = await RoomEntryAsync(snapshot, state, membership, context.RequestAborted);
                entry["messages"] = new JsonObject
                {
                    ["chunk"] = room["timeline"]?["events"]?.DeepClone() ?? new JsonArray(),
                    ["start"] = room["timeline"]?["prev_batch"]?.DeepClone() ?? end,
                    ["end"] = end,
                };
                entry["account_data"] = room["account_data"]?["events"]?.DeepClone() ?? new JsonArray();
                list.Add(entry);
            }
        foreach (var (roomId, room) in Rooms(response, "invite"))
        {
            var invite = room["invite_state"]?["events"]?.AsArray()
                .FirstOrDefault(e => e?["type"]?.GetValue<string>() == "m.room.member" && e["state_key"]?.GetValue<string>() == requester.UserId.Value);
            var entry = new JsonObject { ["room_id"] = roomId, ["membership"] = "invite" };
            if (invite is not null)
            {
                var inviteEvent = invite.DeepClone().AsObject();
                inviteEvent["room_id"] = roomId;
                entry["invite"] = inviteEvent;
                entry["inviter"] = inviteEvent["sender"]?.DeepClone();
            }
            list.Add(entry);
        }
        await context.WriteJsonAsync(new JsonObject
        {
            ["end"] = end,
            ["rooms"] = list,
            ["presence"] = response["presence"]?["events"]?.DeepClone() ?? new JsonArray(),
            ["account_data"] = response["account_data"]?["events"]?.DeepClone() ?? new JsonArray(),
        });
    }

    /// <summary>One room's snapshot, for a member or (in a world-readable room) anyone; a departed member's ends at their leave.</summary>
    private async Task RoomInitialSyncAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var user = requester.UserId.Value;
        var limit = Limit(context);
        var (room, state) = await reader.VisibleStateAsync(RoomEndpoints.RoomIdFromRoute(context), user, context.RequestAborted);
        var membership = await reader.MembershipAsync(room, user, context.RequestAborted);
        var upTo = long.MaxValue;
        if (membership is "leave" or "ban")
            upTo = (await db.ReadAsync(s => rooms.GetEventAsync(s, room.State[StateKey.Member(user)]), context.RequestAborted))!.StreamOrdering;
        var rows = await db.ReadAsync(s => rooms.RoomEventsAsync(s, room.RoomId, long.MinValue, upTo, limit, newestFirst: true), context.RequestAborted);
        rows.Reverse();
        var end = upTo == long.MaxValue ? (await sync.CurrentPositionsAsync(context.RequestAborted)) : new SyncToken(upTo);
        var entry = await RoomEntryAsync(room, state, membership ?? "leave", context.RequestAborted);
        if (membership is null)
            entry.Remove("membership");
        entry["messages"] = new JsonObject
        {
            ["chunk"] = await sync.TimelineAsync(requester, room, rows, membership == "join", context.RequestAborted),
            ["start"] = new SyncToken(rows.Count > 0 ? rows[0].StreamOrdering - 1 : end.Events).ToString(),
            ["end"] = end.ToString(),
        };
        var presenceEvents = new JsonArray();
        foreach (var member in room.JoinedMembers)
            presenceEvents.Add(new JsonObject
            {
                ["type"] = "m.presence", ["sender"] = member, ["content"] = await presence.GetStatusAsync(member, context.RequestAborted),
            });
        entry["presence"] = presenceEvents;
        entry["receipts"] = new JsonArray();
        entry["account_data"] = new JsonArray();
        await context.WriteJsonAsync(entry);
    }

    /// <summary>An event by ID alone, when the user may see it.</summary>
    private async Task EventAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var eventId = context.Route("eventId");
        var row = eventId.StartsWith('$') ? await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted) : null;
        var room = row is null ? null : await reader.RoomAsync(row.RoomId, context.RequestAborted);
        var joined = room is not null && await reader.MembershipAsync(room, requester.UserId.Value, context.RequestAborted) == "join";
        if (row is null || room is null || !await reader.CanSeeAsync(room, row, requester.UserId.Value, joined, context.RequestAborted))
            throw MatrixException.NotFound("Event not found.");
        await context.WriteJsonAsync((await sync.TimelineAsync(requester, room, [row], joined, context.RequestAborted)).FirstOrDefault()?.DeepClone()
            ?? throw MatrixException.NotFound("Event not found."));
    }

    private async Task<JsonObject> RoomEntryAsync(RoomSnapshot room, IReadOnlyDictionary<StateKey, string> state, string membership, CancellationToken ct)
    {
        var stateEvents = new JsonArray();
        foreach (var eventId in state.Values)
            stateEvents.Add(await reader.StateEventToClientAsync(room, eventId, ct));
        var listed = await db.ReadAsync(s => rooms.GetRoomAsync(s, room.RoomId), ct);
        return new JsonObject
        {
            ["room_id"] = room.RoomId,
            ["membership"] = membership,
            ["state"] = stateEvents,
            ["visibility"] = listed?.IsPublic == 1 ? "public" : "private",
        };
    }

    private static int Limit(HttpContext context) => context.Query("limit") is { Length: > 0 } l
        ? int.TryParse(l, out var n) && n >= 0 ? Math.Min(n, SyncFilter.MaxTimelineLimit) : throw MatrixException.InvalidParam("Invalid limit.")
        : DefaultInitialSyncLimit;

    private static IEnumerable<(string RoomId, JsonObject Room)> Rooms(JsonObject response, string section) =>
        response["rooms"]?[section] is JsonObject rooms
            ? rooms.Select(r => (r.Key, r.Value!.AsObject()))
            : [];

    private static void AddWithRoomId(JsonArray chunk, JsonNode? events, string roomId)
    {
        foreach (var e in events?.AsArray() ?? [])
        {
            var copy = e!.DeepClone().AsObject();
            copy["room_id"] = roomId;
            chunk.Add(copy);
        }
    }
}
