using System.Globalization;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Relations;

/// <summary>
/// Spec: relationships, <c>GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]</c> (paginated both
/// ways, <c>recurse</c> up to three levels) and threads, <c>GET /v1/rooms/{roomId}/threads</c>.
/// </summary>
public sealed class RelationsEndpoints(
    Authenticator authenticator, Database db, RelationStore relations, RoomStore rooms, RoomReader reader, RelationBundler bundler) : IEndpoints
{
    private const int DefaultLimit = 50;
    private const int MaxLimit = 100;
    private const int MaxRecursionDepth = 3;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV1("GET", "rooms/{roomId}/relations/{eventId}", RelationsAsync);
        app.MapV1("GET", "rooms/{roomId}/relations/{eventId}/{relType}", RelationsAsync);
        app.MapV1("GET", "rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", RelationsAsync);
        app.MapV1("GET", "rooms/{roomId}/threads", ThreadsAsync);
    }

    private async Task RelationsAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var user = requester.UserId.Value;
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var eventId = context.Route("eventId");
        var relType = context.Request.RouteValues.ContainsKey("relType") ? context.Route("relType") : null;
        var eventType = context.Request.RouteValues.ContainsKey("eventType") ? context.Route("eventType") : null;
        var forwards = context.Query("dir") switch
        {
            "" or "b" => false,
            "f" => true,
            _ => throw MatrixException.InvalidParam("dir must be 'f' or 'b'."),
        };
        var limit = Limit(context);
        var from = Token(context, "from") ?? (forwards ? 0 : long.MaxValue);
        var to = Token(context, "to") ?? (forwards ? long.MaxValue : 0);
        var recurse = context.Query("recurse") switch
        {
            "" or "false" => false,
            "true" => true,
            _ => throw MatrixException.InvalidParam("recurse must be true or false."),
        };

        var (room, joined) = await VisibleRoomAsync(roomId, user, context.RequestAborted);
        var parent = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), context.RequestAborted);
        if (parent is null || parent.RoomId != roomId || !await reader.CanSeeAsync(room, parent, user, joined, context.RequestAborted))
            throw MatrixException.NotFound("Event not found.");

        // With recurse, children of children (to three levels) are listed too, all in one stream order.
        var parents = new List<string> { eventId };
        var depth = 0;
        var rows = new List<RelationRow>();
        while (true)
        {
            var level = await db.ReadAsync(s => relations.ChildrenAsync(s, parents, relType, eventType, from, to, forwards, limit + 1), context.RequestAborted);
            rows.AddRange(level);
            if (!recurse || depth + 1 >= MaxRecursionDepth || level.Count == 0)
                break;
            depth++;
            var next = await db.ReadAsync(s => relations.ChildrenAsync(s, parents, null, null, 0, long.MaxValue, true, 10_000), context.RequestAborted);
            parents = next.Select(r => r.EventId).Except(parents).ToList();
            if (parents.Count == 0)
                break;
        }
        rows = (forwards ? rows.OrderBy(r => r.StreamOrdering) : rows.OrderByDescending(r => r.StreamOrdering)).DistinctBy(r => r.EventId).ToList();
        var page = rows.Take(limit).ToList();

        var chunk = new JsonArray();
        foreach (var relation in page)
            if (await db.ReadAsync(s => rooms.GetEventAsync(s, relation.EventId), context.RequestAborted) is { } row
                && await reader.CanSeeAsync(room, row, user, joined, context.RequestAborted))
                chunk.Add(await reader.ToClientAsync(room, row, context.RequestAborted));
        await bundler.AddAsync(room, chunk, user, context.RequestAborted);
        var body = new JsonObject { ["chunk"] = chunk };
        if (rows.Count > limit)
            body["next_batch"] = page[^1].StreamOrdering.ToString(CultureInfo.InvariantCulture);
        if (Token(context, "from") is { } start)
            body["prev_batch"] = start.ToString(CultureInfo.InvariantCulture);
        if (recurse)
            body["recursion_depth"] = depth + 1;
        await context.WriteJsonAsync(body);
    }

    private async Task ThreadsAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var user = requester.UserId.Value;
        var roomId = RoomEndpoints.RoomIdFromRoute(context);
        var participant = context.Query("include") switch
        {
            "" or "all" => null,
            "participated" => user,
            _ => throw MatrixException.InvalidParam("include must be 'all' or 'participated'."),
        };
        var limit = Limit(context);
        var before = Token(context, "from") ?? long.MaxValue;
        var (room, joined) = await VisibleRoomAsync(roomId, user, context.RequestAborted);
        var threads = await db.ReadAsync(s => relations.ThreadsAsync(s, roomId, participant, before, limit + 1), context.RequestAborted);
        var page = threads.Take(limit).ToList();
        var chunk = new JsonArray();
        foreach (var thread in page)
            if (await db.ReadAsync(s => rooms.GetEventAsync(s, thread.RelatesToId), context.RequestAborted) is { } root && root.RoomId == roomId
                && await reader.CanSeeAsync(room, root, user, joined, context.RequestAborted))
                chunk.Add(await reader.ToClientAsync(room, root, context.RequestAborted));
        await bundler.AddAsync(room, chunk, user, context.RequestAborted);
        var body = new JsonObject { ["chunk"] = chunk };
        if (threads.Count > limit)
            body["next_batch"] = page[^1].Latest.ToString(CultureInfo.InvariantCulture);
        await context.WriteJsonAsync(body);
    }

    /// <summary>The room, if the user is or was in it (history visibility then decides per event).</summary>
    private async Task<(RoomSnapshot Room, bool Joined)> VisibleRoomAsync(string roomId, string user, CancellationToken ct)
    {
        RoomSnapshot room;
        try
        {
            room = await reader.RoomAsync(roomId, ct);
        }
        catch (MatrixException e) when (e.Status == 404)
        {
            throw MatrixException.Forbidden("You are not in this room.");
        }
        var membership = await reader.MembershipAsync(room, user, ct);
        if (membership is null && !await reader.IsWorldReadableAsync(room, ct))
            throw MatrixException.Forbidden("You are not in this room.");
        return (room, membership == "join");
    }

    private static int Limit(HttpContext context) => context.Query("limit") is { Length: > 0 } text
        ? int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) ? Math.Clamp(limit, 1, MaxLimit)
            : throw MatrixException.InvalidParam("Invalid limit.")
        : DefaultLimit;

    private static long? Token(HttpContext context, string name) => context.Query(name) is { Length: > 0 } text
        ? long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var position) ? position
            : throw MatrixException.InvalidParam($"Invalid '{name}' token.")
        : null;
}
