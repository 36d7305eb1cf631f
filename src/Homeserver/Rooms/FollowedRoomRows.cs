namespace Matrix.Homeserver.Rooms;

/// <summary>
/// A worker's copy of the latest event rows it read, so that the syncs one new event wakes on a worker read that event
/// once, not once each (the main process keeps the rows it writes instead: <see cref="RecentRoomRows"/>). Which
/// positions a room's window holds comes from the <see cref="RecentEventIndex"/> the main process's announcements feed;
/// a window is answered from memory only when every one of them is known here, as a row or as one never served
/// (rejected, soft-failed, an outlier). A room's rows go when the main process redacts something in it or purges its
/// history, and everything goes when the worker may have missed news; a page read while that happened is not kept.
/// </summary>
public sealed class FollowedRoomRows(Config.HomeserverConfig config, RecentEventIndex index)
{
    // Rows kept over all rooms (a row holds its event's JSON: about 1-2 KB each).
    private const int MaxRows = 10_000;

    private readonly bool _enabled = !config.Worker.IsMain && !config.Worker.SharesEvents;
    private readonly Dictionary<string, Dictionary<long, EventRow?>> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _rowCount;
    private long _generation;

    /// <summary>What a read started now hands to <see cref="Remember"/>.</summary>
    public long Generation
    {
        get
        {
            lock (_lock)
                return _generation;
        }
    }

    /// <summary>
    /// The room's served events after <paramref name="after"/> up to <paramref name="upTo"/>, newest first, at most
    /// <paramref name="limit"/>; false when memory cannot tell them all.
    /// </summary>
    public bool TryPage(string roomId, long after, long upTo, int limit, out List<EventRow> rows)
    {
        rows = [];
        if (!_enabled || index.PositionsIn(roomId, after, upTo) is not { } positions)
            return false;
        lock (_lock)
        {
            if (!_rooms.TryGetValue(roomId, out var known))
                return positions.Count == 0;
            for (var i = positions.Count - 1; i >= 0 && rows.Count < limit; i--)
            {
                if (!known.TryGetValue(positions[i], out var row))
                    return false;
                if (row is not null)
                    rows.Add(row);
            }
            return true;
        }
    }

    /// <summary>
    /// Keeps what a page read of the window found (newest first, at most <paramref name="limit"/>), begun at
    /// <paramref name="generation"/>: the window's positions it did not return, down to its oldest row, were not served.
    /// </summary>
    public void Remember(string roomId, long after, long upTo, int limit, List<EventRow> page, long generation)
    {
        if (!_enabled || index.PositionsIn(roomId, after, upTo) is not { } positions)
            return;
        var oldest = page.Count < limit ? after : page[^1].StreamOrdering;
        lock (_lock)
        {
            if (generation != _generation)
                return;
            if (!_rooms.TryGetValue(roomId, out var known))
                _rooms[roomId] = known = [];
            foreach (var position in positions.Where(p => p > oldest))
                if (known.TryAdd(position, null))
                    _rowCount++;
            foreach (var row in page)
            {
                if (!known.ContainsKey(row.StreamOrdering))
                    _rowCount++;
                known[row.StreamOrdering] = row;
            }
            if (_rowCount > MaxRows)
                ForgetAllLocked();
        }
    }

    /// <summary>The room's rows may have changed (a redaction, a purge).</summary>
    public void ForgetRoom(string roomId)
    {
        lock (_lock)
        {
            _generation++;
            if (_rooms.Remove(roomId, out var known))
                _rowCount -= known.Count;
        }
    }

    /// <summary>The worker may have missed news, or events were purged.</summary>
    public void ForgetAll()
    {
        lock (_lock)
            ForgetAllLocked();
    }

    private void ForgetAllLocked()
    {
        _generation++;
        _rooms.Clear();
        _rowCount = 0;
    }
}
