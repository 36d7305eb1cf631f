using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's room admin API: the room list (search, sort, offset pagination), a room's details, members, state, forward
/// extremities, the event nearest a time, and its messages (all of them, whoever may see what: an admin reviewing a room).
/// </summary>
public sealed class AdminRoomEndpoints(
    AdminAuth auth, AdminRoomStore store, RoomStore rooms, RoomReader reader, EventSpine spine, Database db, HomeserverConfig config,
    Sync.RoomMessages messages, Sync.SyncService sync, Storage.StreamPositions streams) : IEndpoints
{
    private const string Rooms = AdminAuth.Prefix + "/v1/rooms";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Rooms, ListAsync);
        app.MapGet(Rooms + "/{roomId}", DetailsAsync);
        app.MapGet(Rooms + "/{roomId}/members", MembersAsync);
        app.MapGet(Rooms + "/{roomId}/state", StateAsync);
        app.MapGet(Rooms + "/{roomId}/forward_extremities", ForwardExtremitiesAsync);
        app.MapGet(Rooms + "/{roomId}/timestamp_to_event", TimestampToEventAsync);
        app.MapGet(Rooms + "/{roomId}/messages", MessagesAsync);
        app.MapGet(Rooms + "/{roomId}/context/{eventId}", ContextAsync);
    }

    /// <summary>
    /// Every room is described and sorted in memory: the admin list is rare and the descriptive state is scattered over
    /// events, where SQL would have to read JSON differently on each engine.
    /// </summary>
    private async Task ListAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var (from, limit) = AdminQuery.Page(context);
        var orderBy = AdminQuery.OneOf(context, "order_by", "name", AdminRoomDescription.Orders.Keys.ToList());
        var backwards = AdminQuery.Backwards(context);
        var searchTerm = context.Request.Query.ContainsKey("search_term") ? context.Query("search_term") : null;
        if (searchTerm == "")
            throw MatrixException.InvalidParam("search_term cannot be an empty string.");
        var publicRooms = AdminQuery.Boolean(context, "public_rooms");
        var emptyRooms = AdminQuery.Boolean(context, "empty_rooms");

        var selected = (await DescribeAsync(roomId: null, context.RequestAborted))
            .Where(r => searchTerm is null || r.Matches(searchTerm))
            .Where(r => publicRooms is null || (r.Counts.IsPublic != 0) == publicRooms)
            .Where(r => emptyRooms is null || (r.Counts.JoinedMembers == 0) == emptyRooms)
            .ToList();
        var (key, largestFirst) = AdminRoomDescription.Orders[orderBy];
        selected.Sort((a, b) =>
        {
            var byKey = CompareNullsLast(key(a), key(b));
            return byKey != 0 ? (largestFirst ? -byKey : byKey) : string.CompareOrdinal(a.Counts.RoomId, b.Counts.RoomId);
        });
        if (backwards)
            selected.Reverse();

        var body = new JsonObject
        {
            ["rooms"] = new JsonArray(selected.Skip(from).Take(limit).Select(r => (JsonNode)r.ToListJson()).ToArray()),
            ["offset"] = from,
            ["total_rooms"] = selected.Count,
        };
        if ((long)from + limit < selected.Count)
            body["next_batch"] = from + limit;
        if (from > 0)
            body["prev_batch"] = Math.Max(0, from - limit);
        await context.WriteJsonAsync(body);
    }

    private static int CompareNullsLast(IComparable? a, IComparable? b) => (a, b) switch
    {
        (null, null) => 0,
        (null, _) => 1,
        (_, null) => -1,
        (string x, string y) => string.CompareOrdinal(x, y),
        _ => a.CompareTo(b),
    };

    private async Task<List<AdminRoomDescription>> DescribeAsync(string? roomId, CancellationToken ct)
    {
        var (counts, state) = await db.ReadAsync(async s =>
            (await store.RoomsAsync(s, config.ServerName, roomId), await store.DescriptiveStateAsync(s, roomId)), ct);
        var stateByRoom = state.ToLookup(row => row.RoomId);
        return counts.Select(c => AdminRoomDescription.From(c, stateByRoom[c.RoomId])).ToList();
    }

    private async Task DetailsAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var room = (await DescribeAsync(roomId, context.RequestAborted)).SingleOrDefault() ?? throw MatrixException.NotFound("Room not found.");
        var (devices, forgotten) = await db.ReadAsync(async s =>
            (await store.JoinedLocalDevicesAsync(s, roomId, config.ServerName), await store.ForgottenByAllLocalUsersAsync(s, roomId, config.ServerName)),
            context.RequestAborted);
        var body = room.ToListJson();
        body["topic"] = room.Topic;
        body["avatar"] = room.Avatar;
        body["joined_local_devices"] = devices;
        body["forgotten"] = forgotten;
        body["tombstoned"] = room.Tombstoned;
        body["replacement_room"] = room.ReplacementRoom;
        await context.WriteJsonAsync(body);
    }

    /// <summary>The room of the <c>{roomId}</c> route value: a room ID or (as Synapse accepts for some endpoints) a local alias.</summary>
    private async Task<RoomSnapshot> KnownRoomAsync(HttpContext context)
    {
        await auth.RequireAdminAsync(context);
        var roomId = context.Route("roomId").StartsWith('#')
            ? await db.ReadAsync(s => rooms.ResolveAliasAsync(s, context.Route("roomId")), context.RequestAborted) ?? throw MatrixException.NotFound("Room alias not found.")
            : RoomEndpoints.RoomIdFromRoute(context);
        return await spine.GetRoomAsync(roomId, context.RequestAborted) ?? throw MatrixException.NotFound("Room not found.");
    }

    private async Task MembersAsync(HttpContext context)
    {
        var room = await KnownRoomAsync(context);
        var members = room.JoinedMembers.Order(StringComparer.Ordinal).ToList();
        await context.WriteJsonAsync(new JsonObject
        {
            ["members"] = new JsonArray(members.Select(m => (JsonNode)m).ToArray()),
            ["total"] = members.Count,
        });
    }

    /// <summary>The room's forward extremities; this server does not record when it received an event, so <c>received_ts</c> is null.</summary>
    private async Task ForwardExtremitiesAsync(HttpContext context)
    {
        var room = await KnownRoomAsync(context);
        await context.WriteJsonAsync(new JsonObject
        {
            ["count"] = room.Extremities.Count,
            ["results"] = new JsonArray(room.Extremities.Select(e => (JsonNode)new JsonObject
            {
                ["event_id"] = e.EventId, ["state_group"] = e.StateGroup, ["depth"] = e.Depth, ["received_ts"] = null,
            }).ToArray()),
        });
    }

    private async Task TimestampToEventAsync(HttpContext context)
    {
        var room = await KnownRoomAsync(context);
        if (context.Query("ts").Length == 0)
            throw MatrixException.MissingParam("ts");
        var ts = AdminQuery.NonNegativeLong(context, "ts", 0);
        var forwards = !AdminQuery.Backwards(context);
        var row = await db.ReadAsync(s => rooms.EventNearTimeAsync(s, room.RoomId, ts, forwards), context.RequestAborted)
            ?? throw MatrixException.NotFound($"Unable to find event from {ts} in direction {(forwards ? "f" : "b")}.");
        await context.WriteJsonAsync(new JsonObject { ["event_id"] = row.EventId, ["origin_server_ts"] = row.OriginServerTs });
    }

    private async Task StateAsync(HttpContext context)
    {
        var room = await KnownRoomAsync(context);
        var type = context.Request.Query.ContainsKey("type") ? context.Query("type") : null;
        var eventIds = room.State.Where(entry => type is null || entry.Key.Type == type).Select(entry => entry.Value).ToList();
        var rows = await db.ReadAsync(s => rooms.GetEventsAsync(s, eventIds), context.RequestAborted);
        var state = new JsonArray();
        foreach (var row in rows)
            state.Add(await reader.ToClientAsync(room, row, context.RequestAborted));
        await context.WriteJsonAsync(new JsonObject { ["state"] = state });
    }

    private async Task MessagesAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var room = await KnownRoomAsync(context);
        var current = await db.ReadAsync(s => streams.CurrentAsync(s, "events"), context.RequestAborted);
        var query = Sync.RoomMessages.Parse(context, current, current, Sync.SyncEndpoints.RoomEventFilter(context));
        var page = await messages.PageAsync(room, query, context.RequestAborted);
        var chunk = await sync.FormatTimelineAsync(admin, room, page.Rows, federationFormat: false, context.RequestAborted);
        await context.WriteJsonAsync(await messages.ResponseAsync(room, query, page, chunk, context.RequestAborted));
    }

    private async Task ContextAsync(HttpContext context)
    {
        var admin = await auth.RequireAdminAsync(context);
        var room = await KnownRoomAsync(context);
        var eventId = context.Route("eventId");
        var row = eventId.StartsWith('$') ? await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted) : null;
        if (row is null || row.RoomId != room.RoomId)
            throw MatrixException.NotFound("Event not found.");
        await context.WriteJsonAsync(await messages.ContextAsync(room, row, Sync.RoomMessages.ContextLimit(context), Sync.SyncEndpoints.RoomEventFilter(context),
            rows => sync.FormatTimelineAsync(admin, room, rows, federationFormat: false, context.RequestAborted), context.RequestAborted));
    }
}
