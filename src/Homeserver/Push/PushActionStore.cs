using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

public sealed class PushActionRow
{
    public string UserId { get; init; } = "";
    public string EventId { get; init; } = "";
    public string RoomId { get; init; } = "";
    public long StreamOrdering { get; init; }
    public string ThreadId { get; init; } = "";
    public long Highlight { get; init; }
    public string Actions { get; init; } = "[]";
    public long Ts { get; init; }
}

public sealed class NotificationRow
{
    public string EventId { get; init; } = "";
    public string RoomId { get; init; } = "";
    public long StreamOrdering { get; init; }
    public string Actions { get; init; } = "[]";
    public long Ts { get; init; }
    public long IsRead { get; init; }
}

public sealed class UnreadCount
{
    public string RoomId { get; init; } = "";
    public string ThreadId { get; init; } = "";
    public long Notifications { get; init; }
    public long Highlights { get; init; }
}

/// <summary>
/// The notifying events of each user (what their push rules decided), and the unread counts derived from them: the
/// events after the user's read receipt, per thread (a threaded receipt covers its thread; an unthreaded one
/// everything). The counts are kept in <c>unread_counts</c>: each notifying event adds to them, a read receipt counts
/// its room anew.
/// </summary>
public sealed class PushActionStore(UnreadCountCache unreadCache)
{
    /// <summary>The main timeline's thread ID, as receipts name it.</summary>
    public const string MainThread = "main";

    /// <summary>
    /// How far the user has read where push action <c>a</c> is: the latest of their read receipts (public or private)
    /// that is unthreaded or of the action's thread, as a stream position.
    /// </summary>
    private const string ReadUpTo = """
        COALESCE((SELECT MAX(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id
                  WHERE r.room_id = a.room_id AND r.user_id = a.user_id AND r.receipt_type IN ('m.read', 'm.read.private')
                    AND (r.thread_id = '' OR r.thread_id = a.thread_id)), 0)
        """;

    /// <summary>
    /// The rows of one event, one per user (an event in a big room notifies hundreds), each adding one to its user's
    /// unread count of the room and thread unless <paramref name="unread"/> is false (an invite notifies, but is no unread
    /// message of a room the invitee is not in, as in Synapse).
    /// </summary>
    public async Task InsertAsync(DbSession s, IReadOnlyList<PushActionRow> rows, bool unread = true)
    {
        var count = rows.Count;
        if (count == 0)
            return;
        var (users, eventIds, roomIds, orderings) = (new string[count], new string[count], new string[count], new long[count]);
        var (threads, highlights, actionLists, timestamps) = (new string[count], new long[count], new string[count], new long[count]);
        for (var i = 0; i < count; i++)
        {
            var row = rows[i];
            (users[i], eventIds[i], roomIds[i], orderings[i]) = (row.UserId, row.EventId, row.RoomId, row.StreamOrdering);
            (threads[i], highlights[i], actionLists[i], timestamps[i]) = (row.ThreadId, row.Highlight, row.Actions, row.Ts);
        }
        foreach (var (sql, args) in RowsInsert.Statements(s.Database.Engine,
            "event_push_actions (user_id, event_id, room_id, stream_ordering, thread_id, highlight, actions, ts)",
            [users, eventIds, roomIds, orderings, threads, highlights, actionLists, timestamps], "ON CONFLICT DO NOTHING"))
            await s.DeferAsync(sql, args);
        if (!unread)
            return;
        // One row per user, room and thread (an upsert may not touch a row twice): the rows are one event's, one per user.
        var ones = new long[count];
        for (var i = 0; i < count; i++)
        {
            ones[i] = 1;
            unreadCache.Add(s, users[i], roomIds[i], threads[i], 1, highlights[i]);
        }
        foreach (var (sql, args) in RowsInsert.Statements(s.Database.Engine,
            "unread_counts (user_id, room_id, thread_id, notifications, highlights)", [users, roomIds, threads, ones, highlights],
            """
            ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET notifications = unread_counts.notifications + excluded.notifications,
                highlights = unread_counts.highlights + excluded.highlights
            """))
            await s.DeferAsync(sql, args);
    }

    /// <summary>
    /// Counts the user's unread events in the room anew, after their read receipts moved; the user's own membership
    /// events (their invite) never count, as <see cref="InsertAsync"/> leaves them out. The caller holds the room's
    /// lock: an event committing between this read and write would add to a count this then overwrites.
    /// </summary>
    public async Task RecountAsync(DbSession s, string userId, string roomId)
    {
        var args = new { userId, roomId };
        unreadCache.Recounted(s, userId, roomId);
        await s.DeferAsync("DELETE FROM unread_counts WHERE user_id = @userId AND room_id = @roomId", args);
        // Nothing before the unthreaded receipt is unread in any thread: that bound keeps the scan to the user's notifying
        // events after it (the primary key's range), of which this room's are kept.
        await s.DeferAsync($"""
            INSERT INTO unread_counts (user_id, room_id, thread_id, notifications, highlights)
            SELECT a.user_id, a.room_id, a.thread_id, COUNT(*), SUM(a.highlight) FROM event_push_actions a
            WHERE a.user_id = @userId AND a.room_id = @roomId
              AND a.stream_ordering > COALESCE((SELECT MAX(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id
                  WHERE r.room_id = @roomId AND r.user_id = @userId AND r.receipt_type IN ('m.read', 'm.read.private') AND r.thread_id = ''), 0)
              AND a.stream_ordering > {ReadUpTo}
              AND EXISTS (SELECT 1 FROM events e WHERE e.event_id = a.event_id AND (e.type <> 'm.room.member' OR e.state_key <> a.user_id))
            GROUP BY a.user_id, a.room_id, a.thread_id
            """, args);
    }

    /// <summary>The user's unread counts in these rooms for a sync: from memory where known, the rest by reads run in the sync's batch.</summary>
    public UnreadLookup UnreadForSync(string userId, IReadOnlyCollection<string> roomIds)
    {
        var known = new List<UnreadCount>();
        var missing = new List<string>();
        foreach (var roomId in roomIds)
            if (unreadCache.TryGet(userId, roomId, out var counts))
                known.AddRange(counts);
            else
                missing.Add(roomId);
        // A woken sync mostly finds every count in memory: then there is nothing to read.
        if (missing.Count == 0)
            return new UnreadLookup(known, [], [], unreadCache);
        var tickets = missing.Select(roomId => unreadCache.Begin(userId, roomId)).ToList();
        return new UnreadLookup(known, missing.Chunk(500).Select(ids => Unread(userId, ids)).ToList(), tickets, unreadCache);
    }

    /// <summary>Unread notifying events of the user in these rooms, per room and thread.</summary>
    public SqlRead<UnreadCount, List<UnreadCount>> Unread(string userId, IReadOnlyCollection<string> roomIds)
    {
        var args = new SqlArgs(new { userId });
        return SqlReads.Rows<UnreadCount>($"""
            SELECT room_id, thread_id, notifications, highlights FROM unread_counts
            WHERE user_id = @userId AND room_id IN {SqlList.In(args, "r", roomIds)}
            """, args);
    }

    /// <summary>The user's notifying events after <paramref name="after"/>, oldest first (what a pusher has still to send).</summary>
    public async Task<List<PushActionRow>> AfterAsync(DbSession s, string userId, long after, int limit) =>
        (await s.QueryAsync<PushActionRow>("""
            SELECT user_id, event_id, room_id, stream_ordering, thread_id, highlight, actions, ts FROM event_push_actions
            WHERE user_id = @userId AND stream_ordering > @after ORDER BY stream_ordering LIMIT @limit
            """, new { userId, after, limit })).ToList();

    /// <summary>The user's notifications newest first, before <paramref name="before"/>, with whether a read receipt covers each.</summary>
    public async Task<List<NotificationRow>> NotificationsAsync(DbSession s, string userId, long before, int limit, bool onlyHighlights) =>
        (await s.QueryAsync<NotificationRow>($"""
            SELECT a.event_id, a.room_id, a.stream_ordering, a.actions, a.ts,
                CASE WHEN a.stream_ordering > {ReadUpTo} THEN 0 ELSE 1 END AS is_read
            FROM event_push_actions a
            WHERE a.user_id = @userId AND a.stream_ordering < @before {(onlyHighlights ? "AND a.highlight = 1" : "")}
            ORDER BY a.stream_ordering DESC LIMIT @limit
            """, new { userId, before, limit })).ToList();

    /// <summary>Unread notifying events of the user over all rooms: the badge a push gateway shows.</summary>
    public async Task<long> UnreadTotalAsync(DbSession s, string userId) =>
        await s.ExecuteScalarAsync<long>("SELECT COALESCE(SUM(notifications), 0) FROM unread_counts WHERE user_id = @userId", new { userId });

    public Task<int> DeleteOlderThanAsync(DbSession s, long ts) =>
        s.ExecuteAsync("DELETE FROM event_push_actions WHERE ts < @ts", new { ts });
}

/// <summary>Unread counts found in memory, and the reads of the others (kept in memory once read).</summary>
public sealed class UnreadLookup(List<UnreadCount> known, List<SqlRead<UnreadCount, List<UnreadCount>>> reads, List<UnreadCountCache.Ticket> tickets,
    UnreadCountCache cache)
{
    public static readonly UnreadLookup None = new([], [], [], null!);

    public IReadOnlyList<SqlRead> Reads => reads;

    /// <summary>Every room's counts, once <see cref="Reads"/> have run.</summary>
    public IEnumerable<UnreadCount> Result
    {
        get
        {
            if (tickets.Count == 0)
                return known;
            var read = reads.SelectMany(r => r.Result).ToLookup(c => c.RoomId);
            foreach (var ticket in tickets)
                cache.Store(ticket, read[ticket.RoomId].ToList());
            known.AddRange(read.SelectMany(g => g));
            tickets.Clear();
            return known;
        }
    }
}
