using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>A timeline event a history purge may delete, with its sender (local events go only when asked).</summary>
public sealed record PurgeCandidate(string EventId, string Sender);

/// <summary>
/// The SQL of purging a room's history: timeline events before a point go with their relations, search entries, push
/// actions and transaction IDs. State events stay (the state of every later event is built from them), and so do the
/// room's forward extremities (the next event needs its prev events).
/// </summary>
public sealed class HistoryPurgeStore
{
    public async Task<List<PurgeCandidate>> CandidatesAsync(DbSession s, string roomId, long before) =>
        (await s.QueryAsync<PurgeCandidate>("""
            SELECT event_id, sender FROM events
            WHERE room_id = @roomId AND stream_ordering < @before AND state_key IS NULL
              AND event_id NOT IN (SELECT event_id FROM forward_extremities WHERE room_id = @roomId)
            """, new { roomId, before })).ToList();

    /// <summary>The position of the room's first event at or after a time, or null when every event is older.</summary>
    public Task<long?> FirstPositionFromAsync(DbSession s, string roomId, long ts) => s.ExecuteScalarAsync<long?>(
        "SELECT MIN(stream_ordering) FROM events WHERE room_id = @roomId AND origin_server_ts >= @ts AND outlier = 0", new { roomId, ts });

    public async Task DeleteAsync(DbSession s, IReadOnlyCollection<string> eventIds)
    {
        foreach (var chunk in eventIds.Chunk(500))
        {
            var args = new SqlArgs();
            var ids = SqlList.In(args, "id", chunk);
            foreach (var table in new[] { "event_relations", "event_search", "event_push_actions", "event_txn_ids", "events" })
                await s.ExecuteAsync($"DELETE FROM {table} WHERE event_id IN {ids}", args);
        }
    }
}
