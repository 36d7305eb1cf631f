using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.ServerServer;

namespace Matrix.Homeserver.RoomDirectory;

/// <summary>
/// Spec: spaces — <c>GET /rooms/{roomId}/hierarchy</c> walks <c>m.space.child</c> links breadth-first from a space and
/// lists the rooms the user could see or join; other servers get one level with <c>federation/v1/hierarchy</c>.
/// Rooms this server does not know are left out.
/// </summary>
public sealed class SpaceHierarchy(Authenticator authenticator, FederationRequestAuth federationAuth, EventSpine spine,
    ServerRoomAccess serverAccess, RoomPeeking peeking) : IEndpoints
{
    public const int MaxLimit = 100;
    public const int MaxRooms = 1000;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV1("GET", "rooms/{roomId}/hierarchy", ClientAsync);
        app.MapGet($"{FederationQueryEndpoints.FederationPrefix}/v1/hierarchy/{{roomId}}", FederationAsync);
    }

    private async Task ClientAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var user = requester.UserId.Value;
        var ct = context.RequestAborted;
        var root = await spine.GetRoomAsync(RoomEndpoints.RoomIdFromRoute(context), ct);
        if (root is null || !await peeking.UserMayPeekAsync(root, user, ct))
            throw MatrixException.Forbidden("You cannot see this space.");
        var suggestedOnly = context.Query("suggested_only") == "true";
        var limit = context.Query("limit") is { Length: > 0 } l ? int.TryParse(l, out var n) && n > 0 ? Math.Min(n, MaxLimit) : throw MatrixException.InvalidParam("Invalid limit.") : 50;
        var maxDepth = context.Query("max_depth") is { Length: > 0 } d ? int.TryParse(d, out var m) && m >= 0 ? m : throw MatrixException.InvalidParam("Invalid max_depth.") : int.MaxValue;
        var offset = context.Query("from") is { Length: > 0 } f ? f.StartsWith('h') && int.TryParse(f[1..], out var o) && o >= 0 ? o : throw MatrixException.InvalidParam("Invalid from token.") : 0;

        var rooms = new List<JsonObject>();
        var visited = new HashSet<string>(StringComparer.Ordinal) { root.RoomId };
        var queue = new Queue<(RoomSnapshot Room, int Depth)>([(root, 0)]);
        while (queue.TryDequeue(out var item) && rooms.Count < MaxRooms)
        {
            var (children, entry) = await EntryAsync(item.Room, suggestedOnly, ct);
            rooms.Add(entry);
            if (item.Depth >= maxDepth)
                continue;
            foreach (var childId in children)
                if (visited.Add(childId) && await spine.GetRoomAsync(childId, ct) is { } child && await peeking.UserMayPeekAsync(child, user, ct))
                    queue.Enqueue((child, item.Depth + 1));
        }
        var response = new JsonObject { ["rooms"] = new JsonArray(rooms.Skip(offset).Take(limit).Select(r => (JsonNode)r).ToArray()) };
        if (offset + limit < rooms.Count)
            response["next_batch"] = $"h{offset + limit}";
        await context.WriteJsonAsync(response);
    }

    private async Task FederationAsync(HttpContext context)
    {
        var (origin, _) = await federationAuth.AuthenticateAsync(context);
        var ct = context.RequestAborted;
        var room = await spine.GetRoomAsync(context.Route("roomId"), ct);
        if (room is null || !await serverAccess.IsAllowedAsync(room, origin, ct) || !await peeking.IsOpenAsync(room, ct))
            throw MatrixException.NotFound("This server cannot share that space.");
        var suggestedOnly = context.Query("suggested_only") == "true";
        var (children, entry) = await EntryAsync(room, suggestedOnly, ct);
        var accessible = new JsonArray();
        var inaccessible = new JsonArray();
        foreach (var childId in children)
            if (await spine.GetRoomAsync(childId, ct) is { } child)
            {
                if (await peeking.IsOpenAsync(child, ct))
                    accessible.Add((await EntryAsync(child, suggestedOnly, ct)).Entry);
                else
                    inaccessible.Add(childId);
            }
        await context.WriteJsonAsync(new JsonObject { ["room"] = entry, ["children"] = accessible, ["inaccessible_children"] = inaccessible });
    }

    /// <summary>The room's summary with its child links (<c>m.space.child</c> with a non-empty <c>via</c>), as stripped state.</summary>
    private async Task<(List<string> Children, JsonObject Entry)> EntryAsync(RoomSnapshot room, bool suggestedOnly, CancellationToken ct)
    {
        var entry = await peeking.DetailedSummaryAsync(room, ct);
        var childrenState = new JsonArray();
        var children = new List<string>();
        foreach (var (key, _) in room.State.Where(e => e.Key.Type == "m.space.child").OrderBy(e => e.Key.Key, StringComparer.Ordinal))
            if (await spine.GetStateEventAsync(room, key, ct) is { } link && link.Content["via"] is JsonArray { Count: > 0 }
                && (!suggestedOnly || link.Content["suggested"] is JsonValue suggested && suggested.TryGetValue<bool>(out var s) && s))
            {
                var stripped = ClientEventFormat.ToStripped(link);
                stripped["origin_server_ts"] = link.OriginServerTs;
                childrenState.Add(stripped);
                children.Add(key.Key);
            }
        entry["children_state"] = childrenState;
        return (children, entry);
    }
}
