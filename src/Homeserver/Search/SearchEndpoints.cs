using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Search;

/// <summary>
/// Spec: Server side search, <c>POST /search</c> (<c>room_events</c>): the user's joined rooms, filtered, ranked or
/// newest first, each result visible to the user under history visibility, with optional context, profiles, room
/// state and groupings.
/// </summary>
public sealed class SearchEndpoints(
    Authenticator authenticator, JsonBody json, Database db, SearchStore search, RoomStore rooms, RoomReader reader, SyncService sync,
    Relations.RelationBundler bundler) : IEndpoints
{
    private const int DefaultLimit = 10;
    private const int MaxLimit = 100;
    private const int MaxContext = 20;

    public void Map(IEndpointRouteBuilder app) => app.MapV3("POST", "search", SearchAsync);

    private async Task SearchAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var user = requester.UserId.Value;
        var ct = context.RequestAborted;
        var body = await json.ReadObjectAsync(context);
        var categories = body.OptionalObject("search_categories") ?? throw MatrixException.MissingParam("search_categories");
        if (categories.OptionalObject("room_events") is not { } request)
        {
            await context.WriteJsonAsync(new JsonObject { ["search_categories"] = new JsonObject() });
            return;
        }
        var term = request.OptionalString("search_term") ?? throw MatrixException.MissingParam("search_term");
        var keys = request.TryGetProperty("keys", out _) ? request.RequiredStringArray("keys") : SearchStore.Keys.Keys.ToList();
        if (keys.Count == 0 || keys.Any(k => !SearchStore.Keys.ContainsKey(k)))
            throw MatrixException.InvalidParam($"keys may only be {string.Join(", ", SearchStore.Keys.Keys)}.");
        var byRank = request.OptionalString("order_by") switch
        {
            null or "rank" => true,
            "recent" => false,
            _ => throw MatrixException.InvalidParam("order_by must be 'rank' or 'recent'."),
        };
        var filterElement = request.OptionalObject("filter");
        var filter = EventFilter.Parse(filterElement);
        var limit = Math.Clamp(filter.Limit ?? DefaultLimit, 1, MaxLimit);
        var (before, offset) = ParseBatch(context.Query("next_batch"), byRank);

        var memberships = await db.ReadAsync(s => rooms.MembershipsAsync(s, user), ct);
        var roomFilter = filterElement is { } f && f.TryGetProperty("rooms", out _) ? f.RequiredStringArray("rooms").ToHashSet() : null;
        var notRooms = filterElement is { } n && n.TryGetProperty("not_rooms", out _) ? n.RequiredStringArray("not_rooms").ToHashSet() : [];
        var roomIds = memberships.Where(m => m.Membership == "join" && (roomFilter?.Contains(m.RoomId) ?? true) && !notRooms.Contains(m.RoomId))
            .Select(m => m.RoomId).ToList();
        var words = SearchStore.Words(term);

        var results = new JsonArray();
        var groups = new Dictionary<string, JsonObject>();
        var resultRooms = new HashSet<string>();
        long count = 0;
        string? nextBatch = null;
        if (roomIds.Count > 0 && words.Count > 0)
        {
            var (hits, total) = await db.ReadAsync(s => search.SearchAsync(s, roomIds, keys, words, byRank, before, offset, limit), ct);
            count = total;
            if (hits.Count == limit)
                nextBatch = byRank ? $"r{offset + limit}" : $"t{hits[^1].StreamOrdering}";
            var eventContext = request.OptionalObject("event_context");
            var rowsById = (await db.ReadAsync(s => rooms.GetEventsAsync(s, hits.Select(h => h.EventId).ToList()), ct))
                .ToDictionary(r => r.EventId);
            var served = new List<(SearchHit Hit, EventRow Row, RoomSnapshot Room, JsonObject Event)>();
            foreach (var hit in hits)
            {
                if (!rowsById.TryGetValue(hit.EventId, out var row) || row.RedactedBy is not null || !filter.Matches(row.Type, row.Sender))
                    continue;
                var room = await reader.RoomAsync(row.RoomId, ct);
                if (await reader.CanSeeAsync(room, row, user, joinedNow: true, ct))
                    served.Add((hit, row, room, await reader.ToClientAsync(room, row, ct)));
            }
            // Aggregations in one pass per room rather than per result.
            foreach (var group in served.GroupBy(r => r.Room.RoomId))
                await bundler.AddAsync(group.First().Room, new JsonArray(group.Select(r => (JsonNode)r.Event).ToArray()), user, ct);
            foreach (var (hit, row, room, ev) in served)
            {
                var result = new JsonObject { ["rank"] = hit.Score, ["result"] = ev.DeepClone() };
                if (eventContext is { } contextRequest)
                    result["context"] = await ContextAsync(requester, room, row, contextRequest, ct);
                results.Add(result);
                resultRooms.Add(row.RoomId);
                AddToGroups(request, groups, row, results.Count);
            }
        }

        var roomEvents = new JsonObject
        {
            ["count"] = count,
            ["highlights"] = new JsonArray(words.Select(w => (JsonNode)w).ToArray()),
            ["results"] = results,
        };
        if (nextBatch is not null)
            roomEvents["next_batch"] = nextBatch;
        if (request.OptionalBool("include_state") == true)
            roomEvents["state"] = await StateAsync(resultRooms, user, ct);
        if (groups.Count > 0)
            roomEvents["groups"] = new JsonObject(groups.Select(g => KeyValuePair.Create(g.Key, (JsonNode?)g.Value)));
        await context.WriteJsonAsync(new JsonObject { ["search_categories"] = new JsonObject { ["room_events"] = roomEvents } });
    }

    private static (long Before, int Offset) ParseBatch(string batch, bool byRank)
    {
        if (batch.Length == 0)
            return (long.MaxValue, 0);
        if (byRank && batch.StartsWith('r') && int.TryParse(batch[1..], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
            return (long.MaxValue, offset);
        if (!byRank && batch.StartsWith('t') && long.TryParse(batch[1..], NumberStyles.None, CultureInfo.InvariantCulture, out var before))
            return (before, 0);
        throw MatrixException.InvalidParam("Invalid next_batch token.");
    }

    /// <summary>Results grouped by room or sender, as <c>groupings.group_by</c> asks: each group lists its results' event IDs.</summary>
    private static void AddToGroups(JsonElement request, Dictionary<string, JsonObject> groups, EventRow row, int position)
    {
        if (request.OptionalObject("groupings") is not { } groupings || !groupings.TryGetProperty("group_by", out var groupBy)
            || groupBy.ValueKind != JsonValueKind.Array)
            return;
        foreach (var grouping in groupBy.EnumerateArray())
        {
            var key = grouping.ValueKind == JsonValueKind.Object ? grouping.OptionalString("key") : null;
            var value = key switch { "room_id" => row.RoomId, "sender" => row.Sender, _ => null };
            if (key is null || value is null)
                continue;
            var byKey = groups.TryGetValue(key, out var existing) ? existing : groups[key] = new JsonObject();
            var group = byKey[value] as JsonObject ?? (JsonObject)(byKey[value] = new JsonObject { ["order"] = position, ["results"] = new JsonArray() });
            group["results"]!.AsArray().Add(row.EventId);
        }
    }

    private async Task<JsonObject> ContextAsync(Requester requester, RoomSnapshot room, EventRow row, JsonElement request, CancellationToken ct)
    {
        var beforeLimit = (int)Math.Clamp(request.OptionalInteger("before_limit") ?? 5, 0, MaxContext);
        var afterLimit = (int)Math.Clamp(request.OptionalInteger("after_limit") ?? 5, 0, MaxContext);
        var before = await db.ReadAsync(s => rooms.RoomEventsAsync(s, row.RoomId, 0, row.StreamOrdering - 1, beforeLimit, newestFirst: true), ct);
        var after = await db.ReadAsync(s => rooms.RoomEventsAsync(s, row.RoomId, row.StreamOrdering, long.MaxValue, afterLimit, newestFirst: false), ct);
        var result = new JsonObject
        {
            ["events_before"] = await sync.TimelineAsync(requester, room, before, joinedNow: true, ct),
            ["events_after"] = await sync.TimelineAsync(requester, room, after, joinedNow: true, ct),
            ["start"] = new SyncToken(before.Count > 0 ? before[^1].StreamOrdering - 1 : row.StreamOrdering - 1).ToString(),
            ["end"] = new SyncToken(after.Count > 0 ? after[^1].StreamOrdering : row.StreamOrdering).ToString(),
        };
        if (request.OptionalBool("include_profile") == true)
        {
            var profiles = new JsonObject();
            foreach (var sender in before.Concat(after).Append(row).Select(r => r.Sender).Distinct())
                if (room.StateEventId(StateKey.Member(sender)) is { } memberId
                    && await db.ReadAsync(s => rooms.GetEventAsync(s, memberId), ct) is { } member
                    && JsonNode.Parse(member.Json)?["content"] is JsonObject content)
                {
                    var profile = new JsonObject();
                    if (content["displayname"] is JsonValue name)
                        profile["displayname"] = name.DeepClone();
                    if (content["avatar_url"] is JsonValue avatar)
                        profile["avatar_url"] = avatar.DeepClone();
                    profiles[sender] = profile;
                }
            result["profile_info"] = profiles;
        }
        return result;
    }

    /// <summary>The current state of the rooms with results, as the user may see it.</summary>
    private async Task<JsonObject> StateAsync(IEnumerable<string> roomIds, string user, CancellationToken ct)
    {
        var state = new JsonObject();
        foreach (var roomId in roomIds)
        {
            var (room, visible) = await reader.LastSeenStateAsync(roomId, user, ct);
            var events = new JsonArray();
            foreach (var eventId in visible.Values)
                events.Add(await reader.StateEventToClientAsync(room, eventId, ct));
            state[roomId] = events;
        }
        return state;
    }
}
