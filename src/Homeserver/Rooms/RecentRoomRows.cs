namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Each room's latest event rows, kept by the process that writes events (the main process), so that a sync woken by a
/// new event reads its room's new events from memory. A room's rows are whole from the first one written since start
/// (later positions are all this process's), or since older ones were dropped; a window reaching further back, or
/// holding a row whose transaction has not been seen to end, or while a redaction in the room is in flight, is read
/// from the database. Rows that rolled back are left out. A row holds its event (<see cref="EventRow.Event"/>), not its
/// JSON text. Workers keep the rows they read instead (FollowedRoomRows).
/// </summary>
public sealed class RecentRoomRows(Config.HomeserverConfig config)
{
    private const int RowsPerRoom = 64;
    // Rows kept over all rooms (a row holds its event, mostly the one the event cache holds too: under 1 KB compacted).
    private const int MaxRows = 10_000;
    // Rooms remembered with nothing held but where their rows ended (about 100 bytes each).
    private const int MaxRooms = 100_000;

    private readonly bool _enabled = config.Worker.IsMain && !config.Worker.SharesEvents;
    private readonly Dictionary<string, Room> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _rowCount;

    private sealed class Room(long heldAfter)
    {
        /// <summary>Every row of the room after this position is in <see cref="Rows"/>.</summary>
        public long HeldAfter = heldAfter;
        public int RedactionsInFlight;
        public readonly List<Slot> Rows = [];
    }

    private sealed class Slot(EventRow row)
    {
        public EventRow Row = row;
        public bool InFlight = true;
    }

    /// <summary>A row <paramref name="s"/>'s transaction inserts (before it commits), and the event it stores when given (kept instead of the row's text).</summary>
    public void Record(Storage.DbSession s, EventRow row, Federation.Events.Pdu? pdu)
    {
        if (!_enabled || row.StreamOrdering <= 0)
            return;
        var slot = new Slot(pdu is null ? row : row with { Json = "", Event = pdu });
        Room room;
        lock (_lock)
        {
            room = RoomFor(row.RoomId, row.StreamOrdering);
            if (row.StreamOrdering <= room.HeldAfter)
                return;
            var index = room.Rows.Count;
            while (index > 0 && room.Rows[index - 1].Row.StreamOrdering > row.StreamOrdering)
                index--;
            room.Rows.Insert(index, slot);
            _rowCount++;
            if (room.Rows.Count > RowsPerRoom)
            {
                room.HeldAfter = room.Rows[0].Row.StreamOrdering;
                room.Rows.RemoveAt(0);
                _rowCount--;
            }
            if (_rowCount > MaxRows)
                DropQuietest(except: row.RoomId);
        }
        s.OnCompleted(committed =>
        {
            lock (_lock)
                if (committed)
                    slot.InFlight = false;
                else if (room.Rows.Remove(slot) && _rooms.GetValueOrDefault(row.RoomId) == room)
                    _rowCount--;
        });
    }

    /// <summary>An event of the room <paramref name="s"/>'s transaction marks redacted.</summary>
    public void Redacted(Storage.DbSession s, string roomId, string eventId, string redactionId)
    {
        if (!_enabled)
            return;
        Room? room;
        lock (_lock)
        {
            if (!_rooms.TryGetValue(roomId, out room))
                return;
            room.RedactionsInFlight++;
        }
        s.OnCompleted(committed =>
        {
            lock (_lock)
            {
                room.RedactionsInFlight--;
                if (committed && room.Rows.Find(r => r.Row.EventId == eventId) is { Row.RedactedBy: null } slot)
                    slot.Row = slot.Row with { RedactedBy = redactionId };
            }
        });
    }

    /// <summary>
    /// The room's timeline events (not rejected, soft-failed or outliers) after <paramref name="after"/> up to
    /// <paramref name="upTo"/> (a visible position), newest first, at most <paramref name="limit"/>; false when memory
    /// cannot tell them all.
    /// </summary>
    public bool TryPage(string roomId, long after, long upTo, int limit, out List<EventRow> rows)
    {
        rows = [];
        lock (_lock)
        {
            if (!_rooms.TryGetValue(roomId, out var room) || after < room.HeldAfter || room.RedactionsInFlight > 0)
                return false;
            for (var i = room.Rows.Count - 1; i >= 0 && rows.Count < limit; i--)
            {
                var (row, inFlight) = (room.Rows[i].Row, room.Rows[i].InFlight);
                if (row.StreamOrdering <= after)
                    break;
                if (row.StreamOrdering > upTo)
                    continue;
                // Visible, so its transaction has ended, but whether it committed is not known here yet.
                if (inFlight)
                    return false;
                if (row is { Rejected: 0, SoftFailed: 0, Outlier: 0 })
                    rows.Add(row);
            }
            return true;
        }
    }

    /// <summary>Some of the room's events were deleted (a history purge), or the whole room.</summary>
    public void ForgetRoom(string roomId)
    {
        lock (_lock)
            Drop(roomId);
    }

    private Room RoomFor(string roomId, long firstPosition)
    {
        if (_rooms.TryGetValue(roomId, out var room))
            return room;
        return _rooms[roomId] = new Room(firstPosition - 1);
    }

    private void Drop(string roomId)
    {
        if (_rooms.Remove(roomId, out var room))
            _rowCount -= room.Rows.Count;
    }

    // The rooms whose latest rows are oldest give their rows up until half of them are left. Each keeps where its rows
    // ended, so the syncs its next event wakes, whose tokens are mostly past that, still find the room's news here (a
    // write in flight for it finishes on rows no longer listed; the row is at or before that position, so no window
    // after it needs the row). Rooms with nothing held go once there are many.
    private void DropQuietest(string except)
    {
        foreach (var (roomId, room) in _rooms.Where(r => r.Key != except && r.Value.Rows.Count > 0)
                     .OrderBy(r => r.Value.Rows[^1].Row.StreamOrdering).ToList())
        {
            if (_rowCount <= MaxRows / 2)
                break;
            room.HeldAfter = room.Rows[^1].Row.StreamOrdering;
            _rowCount -= room.Rows.Count;
            room.Rows.Clear();
        }
        if (_rooms.Count > MaxRooms)
            foreach (var (roomId, _) in _rooms.Where(r => r.Value.Rows.Count == 0).Take(_rooms.Count - MaxRooms / 2).ToList())
                _rooms.Remove(roomId);
    }
}
