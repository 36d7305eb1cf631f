using Dapper;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Relations;

public sealed class RelationRow
{
    public string EventId { get; init; } = "";
    public string RelatesToId { get; init; } = "";
    public string RelType { get; init; } = "";
    public string? AggregationKey { get; init; }
    public string RoomId { get; init; } = "";
    public string Sender { get; init; } = "";
    public string Type { get; init; } = "";
    public long StreamOrdering { get; init; }
    public long OriginServerTs { get; init; }
}

public sealed class ThreadSummaryRow
{
    public string RelatesToId { get; init; } = "";
    public long Count { get; init; }
    public long Latest { get; init; }
    /// <summary>How many of the thread's events the asking user sent.</summary>
    public long Participated { get; init; }
}

/// <summary>
/// Event relationships (<c>m.relates_to</c>): each child event with its parent, type and annotation key, kept in the
/// child's transaction and dropped when the child is redacted. The source of /relations, /threads, bundled
/// aggregations and duplicate-annotation checks.
/// </summary>
public sealed class RelationStore(Rooms.RecentEventIndex recentEvents)
{
    private const string Columns = "event_id, relates_to_id, rel_type, aggregation_key, room_id, sender, type, stream_ordering, origin_server_ts";

    public Task InsertAsync(DbSession s, RelationRow row)
    {
        recentEvents.RecordRelation(row.RelatesToId, row.StreamOrdering);
        return s.DeferAsync($"""
            INSERT INTO event_relations ({Columns})
            VALUES (@EventId, @RelatesToId, @RelType, @AggregationKey, @RoomId, @Sender, @Type, @StreamOrdering, @OriginServerTs)
            ON CONFLICT DO NOTHING
            """, row);
    }

    public Task DeleteAsync(DbSession s, string eventId) => s.ExecuteAsync("DELETE FROM event_relations WHERE event_id = @eventId", new { eventId });

    public async Task<bool> HasAnnotationAsync(DbSession s, string parentId, string sender, string type, string key) =>
        await s.ExecuteScalarAsync<long>("""
            SELECT COUNT(*) FROM event_relations
            WHERE relates_to_id = @parentId AND rel_type = 'm.annotation' AND sender = @sender AND type = @type AND aggregation_key = @key
            """, new { parentId, sender, type, key }) > 0;

    /// <summary>A page of an event's children in stream order, after (or, backwards, before) <paramref name="from"/>.</summary>
    public async Task<List<RelationRow>> ChildrenAsync(DbSession s, IReadOnlyCollection<string> parentIds, string? relType, string? eventType,
        long from, long to, bool forwards, int limit)
    {
        var args = new SqlArgs(new { relType, eventType, from, to, limit });
        return (await s.QueryAsync<RelationRow>($"""
            SELECT {Columns} FROM event_relations
            WHERE relates_to_id IN {SqlList.In(args, "p", parentIds)}
              AND (@relType IS NULL OR rel_type = @relType) AND (@eventType IS NULL OR type = @eventType)
              AND {(forwards ? "stream_ordering > @from AND stream_ordering <= @to" : "stream_ordering < @from AND stream_ordering >= @to")}
            ORDER BY stream_ordering {(forwards ? "ASC" : "DESC")} LIMIT @limit
            """, args)).ToList();
    }

    /// <summary>Edits and references of the given parents (few per event), in stream order.</summary>
    public SqlRead<RelationRow, List<RelationRow>> EditsAndReferences(IReadOnlyCollection<string> parentIds)
    {
        var args = new SqlArgs();
        return SqlReads.Rows<RelationRow>($"""
            SELECT {Columns} FROM event_relations
            WHERE relates_to_id IN {SqlList.In(args, "p", parentIds)} AND rel_type IN ('m.replace', 'm.reference')
            ORDER BY stream_ordering
            """, args);
    }

    public Task<List<RelationRow>> EditsAndReferencesAsync(DbSession s, IReadOnlyCollection<string> parentIds) => s.QueryAsync(EditsAndReferences(parentIds));

    /// <summary>Per thread root: the number of thread events, the stream position of the latest, and the user's share.</summary>
    public SqlRead<ThreadSummaryRow, List<ThreadSummaryRow>> ThreadSummaries(IReadOnlyCollection<string> rootIds, string userId)
    {
        var args = new SqlArgs(new { userId });
        return SqlReads.Rows<ThreadSummaryRow>($"""
            SELECT relates_to_id, CAST(COUNT(*) AS BIGINT) AS count, CAST(MAX(stream_ordering) AS BIGINT) AS latest,
                CAST(SUM(CASE WHEN sender = @userId THEN 1 ELSE 0 END) AS BIGINT) AS participated
            FROM event_relations
            WHERE relates_to_id IN {SqlList.In(args, "p", rootIds)} AND rel_type = 'm.thread' GROUP BY relates_to_id
            """, args);
    }

    /// <summary>The room's thread roots by latest activity, newest first, before position <paramref name="before"/>.</summary>
    public async Task<List<ThreadSummaryRow>> ThreadsAsync(DbSession s, string roomId, string? participant, long before, int limit) =>
        (await s.QueryAsync<ThreadSummaryRow>($"""
            SELECT t.relates_to_id, CAST(COUNT(*) AS BIGINT) AS count, CAST(MAX(t.stream_ordering) AS BIGINT) AS latest
            FROM event_relations t
            WHERE t.room_id = @roomId AND t.rel_type = 'm.thread'
            GROUP BY t.relates_to_id
            HAVING MAX(t.stream_ordering) < @before
            {(participant is null ? "" : """
               AND (SUM(CASE WHEN t.sender = @participant THEN 1 ELSE 0 END) > 0
                    OR EXISTS (SELECT 1 FROM events root WHERE root.event_id = t.relates_to_id AND root.sender = @participant))
               """)}
            ORDER BY MAX(t.stream_ordering) DESC LIMIT @limit
            """, new { roomId, participant, before, limit })).ToList();
}
