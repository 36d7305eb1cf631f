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
        var backfilling = dir == "b" && to is null && backfill.CanBackfill(room);
        // Paging back from just below an event (a sync's prev_batch) crosses the gap before that event, if it has one.
        var scanned = backfilling ? await db.ReadAsync(s => rooms.RoomEventsAsync(s, room.RoomId, from, from + 1, 1, newestFirst: false), ct) : [];
        var gapsTried = new HashSet<string>(StringComparer.Ordinal);
        while (rows.Count < limit && low < high)
        {
            var (lowBound, highBound) = (low, high);
            var batch = await db.ReadAsync(s => rooms.RoomEventsAsync(s, room.RoomId, lowBound, highBound, Math.Max(limit, 50), newestFirst: dir == "b"), ct);
            foreach (var row in batch)
            {
                lastScanned = dir == "b" ? row.StreamOrdering - 1 : row.StreamOrdering;
                scanned.Add(row);
                if (query.Filter.Matches(row.Type, row.Sender))
                    rows.Add(row);
                if (rows.Count == limit)
                    break;
            }
            if (rows.Count == limit)
                break;
            var backfilled = backfilling && await BackfillGapsAsync(room, scanned, gapsTried, ct);
            scanned = [];
            if (batch.Count < Math.Max(limit, 50) && !backfilled)
                break;
            if (dir == "b") high = lastScanned; else low = lastScanned;
        }
        return new MessagesPage(rows, lastScanned);
    }

    /// <summary>Fetches the history missing before the scanned events (each gap tried once a page); true when any came.</summary>
    private async Task<bool> BackfillGapsAsync(RoomSnapshot room, List<EventRow> scanned, HashSet<string> tried, CancellationToken ct)
    {
        var backfilled = false;
        foreach (var gap in await backfill.GapsAsync(room, scanned, ct))
            if (tried.Add(gap.EventId))
                backfilled |= await backfill.BackfillAsync(room, gap, ct);
        return backfilled;
    }

    /// <summary>The <c>limit</c> of <c>/context</c>: 10 unless given, at most 100.</summary>
    public static int ContextLimit(HttpContext context) => context.Query("limit") is { Length: > 0 } l
        ? int.TryParse(l, out var n) && n >= 0 ? Math.Min(n, 100) : throw MatrixException.InvalidParam("Invalid limit.")
        : 10;

    /// <summary>
    /// The answer of <c>/context</c>: the event with events around it and the room state at it; <paramref name="format"/>
    /// shows events as the requester may see them. The filter applies to the events around it and the state, whose
    /// members it may lazy-load (only the senders of the events returned).
    /// </summary>
    public async Task<JsonObject> ContextAsync(RoomSnapshot room, EventRow row, int limit, EventFilter filter,
        Func<List<EventRow>, Task<JsonArray>> format, CancellationToken ct)
    {
        var before = (await db.ReadAsync(s => rooms.RoomEventsAsync(s, room.RoomId, 0, row.StreamOrdering - 1, limit / 2 + limit % 2, newestFirst: true), ct))
            .Where(r => filter.Matches(r.Type, r.Sender)).ToList();
        var after = (await db.ReadAsync(s => rooms.RoomEventsAsync(s, room.RoomId, row.StreamOrdering, long.MaxValue, limit / 2, newestFirst: false), ct))
            .Where(r => filter.Matches(r.Type, r.Sender)).ToList();
        var senders = before.Concat(after).Append(row).Select(r => r.Sender).ToHashSet(StringComparer.Ordinal);
        var stateIds = (await reader.StateGroupAsync(row.StateGroup, ct))
            .Where(p => !(filter.LazyLoadMembers && p.Key.Type == "m.room.member" && !senders.Contains(p.Key.Key))).Select(p => p.Value).ToList();
        var state = new JsonArray();
        foreach (var stateRow in await db.ReadAsync(s => rooms.GetEventsAsync(s, stateIds), ct))
            if (filter.Matches(stateRow.Type, stateRow.Sender))
                state.Add(await reader.ToClientAsync(room, stateRow, ct));
        return new JsonObject
        {
            ["event"] = (await format([row]))[0]!.DeepClone(),
            ["events_before"] = await format(before),
            ["events_after"] = await format(after),
            ["start"] = new SyncToken(before.Count > 0 ? before[^1].StreamOrdering - 1 : row.StreamOrdering - 1).ToString(),
            ["end"] = new SyncToken(after.Count > 0 ? after[^1].StreamOrdering : row.StreamOrdering).ToString(),
            ["state"] = state,
        };
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
