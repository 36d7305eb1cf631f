using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>What a <c>/messages</c> request asks: direction, size, the window's ends, and the filter.</summary>
/// <param name="Ceiling">The last stream position the requester may read (their leave, for someone who left).</param>
public sealed record MessagesQuery(string Dir, int Limit, long From, long? To, long Ceiling, EventFilter Filter);

/// <summary>One page of a room's timeline: the rows that pass the filter and the position scanning stopped at.</summary>
public sealed record MessagesPage(List<EventRow> Rows, long LastScanned);

/// <summary>
/// Paging through a room's timeline, for <c>GET /rooms/{roomId}/messages</c> and the admin API's room messages (which
/// differ only in who may read what): pages fill up to the limit with events that pass the filter, and paging back past
/// the oldest event here fetches older history from the other servers first.
/// </summary>
public sealed class RoomMessages(Database db, RoomStore rooms, RoomReader reader, ServerServer.RemoteBackfill backfill)
{
    public const int MaxLimit = 1000;

    public static MessagesQuery Parse(HttpContext context, long current, long ceiling, EventFilter filter)
    {
        var dir = context.Query("dir") is { Length: > 0 } d ? d : "b";
        if (dir is not ("b" or "f"))
            throw MatrixException.InvalidParam("dir must be 'b' or 'f'.");
        var limit = context.Query("limit") is { Length: > 0 } l
            ? int.TryParse(l, out var n) && n >= 0 ? Math.Min(n, MaxLimit) : throw MatrixException.InvalidParam("Invalid limit.")
            : 10;
        var from = context.Query("from") is { Length: > 0 } f ? SyncToken.Parse(f, "from").Events : dir == "b" ? current : 0;
        var to = context.Query("to") is { Length: > 0 } t ? SyncToken.Parse(t, "to").Events : (long?)null;
        return new MessagesQuery(dir, limit, Math.Min(from, ceiling), to, ceiling, filter);
    }

    public async Task<MessagesPage> PageAsync(RoomSnapshot room, MessagesQuery query, CancellationToken ct)
    {
        var (dir, limit, from, to) = (query.Dir, query.Limit, query.From, query.To);
        var rows = new List<EventRow>();
        var (low, high) = dir == "b" ? (to ?? long.MinValue, from) : (from, Math.Min(to ?? query.Ceiling, query.Ceiling));
        var lastScanned = from;
        while (rows.Count < limit && low < high)
        {
            var (lowBound, highBound) = (low, high);
            var batch = await db.ReadAsync(s => rooms.RoomEventsAsync(s, room.RoomId, lowBound, highBound, Math.Max(limit, 50), newestFirst: dir == "b"), ct);
            foreach (var row in batch)
            {
                lastScanned = dir == "b" ? row.StreamOrdering - 1 : row.StreamOrdering;
                if (query.Filter.Matches(row.Type, row.Sender))
                    rows.Add(row);
                if (rows.Count == limit)
                    break;
            }
            if (rows.Count == limit)
                break;
            if (batch.Count < Math.Max(limit, 50))
            {
                if (dir == "b" && to is null && await backfill.BackfillAsync(room, ct))
                {
                    high = lastScanned;
                    continue;
                }
                break;
            }
            if (dir == "b") high = lastScanned; else low = lastScanned;
        }
        return new MessagesPage(rows, lastScanned);
    }

    /// <summary>The answer around <paramref name="chunk"/> (the page's rows as the requester may see them).</summary>
    public async Task<JsonObject> ResponseAsync(RoomSnapshot room, MessagesQuery query, MessagesPage page, JsonArray chunk, CancellationToken ct)
    {
        var response = new JsonObject
        {
            ["start"] = new SyncToken(query.From).ToString(),
            ["chunk"] = chunk,
            ["state"] = new JsonArray(),
        };
        // Spec: no "end" once no further events are available; paging forwards, later events may yet come.
        if ((page.Rows.Count == query.Limit && query.Limit > 0) || (query.Dir == "f" && page.Rows.Count > 0))
            response["end"] = new SyncToken(page.LastScanned).ToString();
        if (query.Filter.LazyLoadMembers)
        {
            var state = new JsonArray();
            foreach (var sender in page.Rows.Select(r => r.Sender).Distinct())
                if (room.State.TryGetValue(Federation.Events.StateKey.Member(sender), out var memberId))
                    state.Add(await reader.StateEventToClientAsync(room, memberId, ct));
            response["state"] = state;
        }
        return response;
    }
}
