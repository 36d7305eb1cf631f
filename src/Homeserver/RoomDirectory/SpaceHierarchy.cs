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
/// lists the rooms the user could see or join; rooms this server is not in are asked of the servers their
/// <c>m.space.child</c> links name (<c>federation/v1/hierarchy</c>, which also answers other servers here, one level).
/// </summary>
public sealed class SpaceHierarchy(Authenticator authenticator, FederationRequestAuth federationAuth, EventSpine spine,
    ServerRoomAccess serverAccess, RoomPeeking peeking, RoomReader reader, Matrix.Federation.Transport.FederationClient federation) : IEndpoints
{
    public const int MaxLimit = 100;
    public const int MaxRooms = 1000;
    private const int MaxRemoteRequests = 20;

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
        var remote = new RemoteHierarchy(federation, suggestedOnly, MaxRemoteRequests);
        var queue = new Queue<(JsonObject Entry, int Depth)>([((await EntryAsync(root, suggestedOnly, ct)).Entry, 0)]);
        while (queue.TryDequeue(out var item) && rooms.Count < MaxRooms)
        {
            rooms.Add(item.Entry);
            if (item.Depth >= maxDepth)
                continue;
            foreach (var (childId, via) in ChildLinks(item.Entry))
            {
                if (!visited.Add(childId))
                    continue;
                if (await spine.GetRoomAsync(childId, ct) is { } child)
                {
                    if (await peeking.UserMayPeekAsync(child, user, ct))
                        queue.Enqueue(((await EntryAsync(child, suggestedOnly, ct)).Entry, item.Depth + 1));
                }
                else if (await remote.EntryAsync(childId, via, ct) is { } entry && await MaySeeRemoteAsync(entry, user, ct))
                    queue.Enqueue((entry, item.Depth + 1));
            }
        }
        var response = new JsonObject { ["rooms"] = new JsonArray(rooms.Skip(offset).Take(limit).Select(r => (JsonNode)r).ToArray()) };
        if (offset + limit < rooms.Count)
            response["next_batch"] = $"h{offset + limit}";
        await context.WriteJsonAsync(response);
    }

    /// <summary>The children an entry links to (its <c>children_state</c>), with the servers each link names.</summary>
    private static IEnumerable<(string RoomId, List<string> Via)> ChildLinks(JsonObject entry) =>
        (entry["children_state"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(link => link["state_key"] is JsonValue)
            .Select(link => (link["state_key"]!.GetValue<string>(),
                (link["content"]?["via"] as JsonArray ?? []).Select(v => v?.AsString()).OfType<string>().ToList()));

    /// <summary>Another server lists open rooms and restricted ones: the latter only for members of a room they allow.</summary>
    private async Task<bool> MaySeeRemoteAsync(JsonObject entry, string user, CancellationToken ct)
    {
        if (entry["join_rule"]?.AsString() is not ("restricted" or "knock_restricted") || entry["world_readable"]?.GetValue<bool>() == true)
            return true;
        foreach (var allowed in (entry["allowed_room_ids"] as JsonArray ?? []).Select(r => r?.AsString()).OfType<string>())
            if (await spine.GetRoomAsync(allowed, ct) is { } room && await reader.MembershipAsync(room, user, ct) == "join")
                return true;
        return entry["join_rule"]?.AsString() == "knock_restricted";
    }

    /// <summary>Rooms fetched from other servers for one walk: each answer's children are kept, so a level costs one request.</summary>
    private sealed class RemoteHierarchy(Matrix.Federation.Transport.FederationClient federation, bool suggestedOnly, int budget)
    {
        private readonly Dictionary<string, JsonObject> _known = new(StringComparer.Ordinal);
        private int _requests;

        public async Task<JsonObject?> EntryAsync(string roomId, List<string> via, CancellationToken ct)
        {
            if (_known.TryGetValue(roomId, out var known))
                return known;
            foreach (var server in via.Where(s => s != federation.ServerName).Distinct().Take(3))
            {
                if (_requests++ >= budget)
                    return null;
                try
                {
                    var path = $"/_matrix/federation/v1/hierarchy/{Uri.EscapeDataString(roomId)}?suggested_only={(suggestedOnly ? "true" : "false")}";
                    if (await federation.SendAsync(HttpMethod.Get, server, path, null, ct) is not JsonObject answer
                        || answer["room"] is not JsonObject room || room["room_id"]?.AsString() != roomId)
                        continue;
                    foreach (var child in (answer["children"] as JsonArray ?? []).OfType<JsonObject>())
                        if (child["room_id"]?.AsString() is { } childId)
                            _known.TryAdd(childId, (JsonObject)child.DeepClone());
                    return _known[roomId] = (JsonObject)room.DeepClone();
                }
                catch (Matrix.Federation.Transport.FederationException)
                {
                }
            }
            return null;
        }
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
