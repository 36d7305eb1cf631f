using System.Collections.Concurrent;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// The state event rows syncs read for their state sections, each with the events position visible when it was read:
/// a sync up to a position no later than that takes the row as it is (any redaction up to there had committed with
/// its position), the others read it again. A message from a member new to a big room's long-polls made each of them
/// read that member's event from the database; now the first one does.
/// </summary>
public sealed class SharedStateRows(Database db, RoomStore rooms, StreamPositions streams, Config.HomeserverConfig config)
{
    private readonly ConcurrentDictionary<string, (EventRow Row, long ReadAt)> _rows = new(StringComparer.Ordinal);

    /// <summary>The stored rows of <paramref name="eventIds"/> (unknown IDs left out), for a sync up to <paramref name="upTo"/>.</summary>
    public Task<Dictionary<string, EventRow>> GetAsync(IReadOnlyCollection<string> eventIds, long upTo, CancellationToken ct) =>
        CachedOrRead.ManyAsync(eventIds, id => _rows.TryGetValue(id, out var kept) && kept.ReadAt >= upTo ? kept.Row : null, async missing =>
        {
            // Taken before the read, so the rows are at least as new as this position.
            var known = streams.TryCurrent("events", out var readAt);
            var rows = await db.ReadAsync(s => rooms.GetEventsAsync(s, missing), ct);
            if (known && _rows.Count + rows.Count > config.Caches.StateEventRows)
                _rows.Clear();
            if (known)
                foreach (var row in rows)
                    _rows[row.EventId] = (row, readAt);
            return rows.Select(row => (row.EventId, row));
        });
}
