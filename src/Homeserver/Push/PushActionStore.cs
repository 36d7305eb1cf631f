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

// A class with setters, not a positional record: SQLite cannot type aggregate columns of an empty result, which
// Dapper's constructor matching needs.
public sealed class UnreadCount
{
    public string RoomId { get; init; } = "";
    public string ThreadId { get; init; } = "";
    public long Notifications { get; init; }
    public long Highlights { get; init; }
}

/// <summary>
/// The notifying events of each user (what their push rules decided), from which unread counts are derived: the events
/// after the user's read receipt, per thread (a threaded receipt covers its thread; an unthreaded one everything).
/// </summary>
public sealed class PushActionStore
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

    /// <summary>Rows for many users at once: one statement per 500 (an event in a big room notifies hundreds).</summary>
    public async Task InsertAsync(DbSession s, IReadOnlyList<PushActionRow> rows)
    {
        foreach (var chunk in rows.Chunk(500))
        {
            var args = new SqlArgs();
            var values = new List<string>(chunk.Length);
            for (var i = 0; i < chunk.Length; i++)
            {
                var row = chunk[i];
                args.Add($"u{i}", row.UserId);
                args.Add($"e{i}", row.EventId);
                args.Add($"r{i}", row.RoomId);
                args.Add($"o{i}", row.StreamOrdering);
                args.Add($"t{i}", row.ThreadId);
                args.Add($"h{i}", row.Highlight);
                args.Add($"a{i}", row.Actions);
                args.Add($"s{i}", row.Ts);
                values.Add($"(@u{i}, @e{i}, @r{i}, @o{i}, @t{i}, @h{i}, @a{i}, @s{i})");
            }
            await s.DeferAsync($"""
                INSERT INTO event_push_actions (user_id, event_id, room_id, stream_ordering, thread_id, highlight, actions, ts)
                VALUES {string.Join(", ", values)}
                ON CONFLICT DO NOTHING
                """, args);
        }
    }

    /// <summary>Unread notifying events of the user in these rooms, per room and thread, after the read receipts that cover them.</summary>
    public SqlRead<UnreadCount, List<UnreadCount>> Unread(string userId, IReadOnlyCollection<string> roomIds)
    {
        var args = new SqlArgs(new { userId });
        return SqlReads.Rows<UnreadCount>($"""
            SELECT a.room_id, a.thread_id, CAST(COUNT(*) AS BIGINT) AS notifications, CAST(SUM(a.highlight) AS BIGINT) AS highlights
            FROM event_push_actions a
            WHERE a.user_id = @userId AND a.room_id IN {SqlList.In(args, "r", roomIds)}
              AND a.stream_ordering > {ReadUpTo}
            GROUP BY a.room_id, a.thread_id
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
        await s.ExecuteScalarAsync<long>($"""
            SELECT COUNT(*) FROM event_push_actions a
            WHERE a.user_id = @userId
              AND a.stream_ordering > {ReadUpTo}
            """, new { userId });

    public Task<int> DeleteOlderThanAsync(DbSession s, long ts) =>
        s.ExecuteAsync("DELETE FROM event_push_actions WHERE ts < @ts", new { ts });
}
