namespace Matrix.Homeserver.Rooms;

/// <summary>
/// The rooms of the latest events, and which of those events were member events, by stream position: what an
/// incremental sync woken by a new event would otherwise ask the database. <see cref="RoomStore"/> records every event
/// row as its transaction writes it, so an event is here before readers can see it (one that rolls back stays, and
/// only makes a sync look at a room with nothing new). The index answers for windows starting at or after the position
/// from which it holds everything: the first visible position it was asked about (events after that were all written
/// by this process), raised as the oldest entries are dropped. It also keeps the events that relations written since
/// then point at: a relation to an event created on this server can only be written after it, so such an event
/// written after that position, and not among them, has none. A worker writes no events: the main process sends it the
/// entries of each stretch of positions it announces (<see cref="Between"/>, <see cref="Follow"/>), and its index
/// answers for windows within what it followed without a gap; it knows no relations (its syncs ask the database).
/// </summary>
public sealed class RecentEventIndex(Config.HomeserverConfig config)
{
    private readonly bool _writesEvents = config.Worker.IsMain;
    private const int Capacity = 50_000;
    private const int RelationTargetsCapacity = 100_000;

    private readonly record struct Entry(long Position, string RoomId, bool IsMemberEvent);

    /// <summary>The events of a window: the rooms they are in, and whether any is a member event.</summary>
    public sealed record Window(IReadOnlySet<string> Rooms, bool HasMemberEvents);

    private readonly List<Entry> _entries = [];
    private readonly Lock _lock = new();
    private long? _completeAfter;
    // Where entries were dropped for room (the main process cannot hand out what came before).
    private long _droppedUpTo = long.MinValue;
    // A worker: the position up to which it holds every event the main process announced (null: none yet, or a gap).
    private long? _followedUpTo;
    private readonly HashSet<string> _relationTargets = new(StringComparer.Ordinal);
    private long _latestRelation = long.MinValue;
    private long _relationTargetsForgottenUpTo = long.MinValue;

    public void Record(long position, string roomId, string type)
    {
        lock (_lock)
            Add(new Entry(position, roomId, type == "m.room.member"));
    }

    private void Add(Entry entry)
    {
        // Transactions commit nearly in position order: the place is almost always at the end.
        var index = _entries.Count;
        while (index > 0 && _entries[index - 1].Position > entry.Position)
            index--;
        _entries.Insert(index, entry);
        if (_entries.Count <= Capacity)
            return;
        var dropped = _entries.Count / 2;
        _droppedUpTo = Math.Max(_droppedUpTo, _entries[dropped - 1].Position);
        _completeAfter = Math.Max(_completeAfter ?? long.MinValue, _droppedUpTo);
        _entries.RemoveRange(0, dropped);
    }

    /// <summary>
    /// The main process: its events after <paramref name="from"/> up to <paramref name="to"/> (a visible position), for
    /// its workers; null when some of them were dropped.
    /// </summary>
    public List<(long Position, string RoomId, bool IsMemberEvent)>? Between(long from, long to)
    {
        lock (_lock)
        {
            if (from < _droppedUpTo)
                return null;
            var (first, end) = (FirstAfter(from), FirstAfter(to));
            return _entries.GetRange(first, end - first).Select(e => (e.Position, e.RoomId, e.IsMemberEvent)).ToList();
        }
    }

    /// <summary>
    /// A worker: the main process's events after <paramref name="from"/> up to <paramref name="to"/>. Following on from
    /// the last stretch keeps the index whole; after a gap it holds everything from <paramref name="from"/> on.
    /// </summary>
    public void Follow(long from, long to, IEnumerable<(long Position, string RoomId, bool IsMemberEvent)> events)
    {
        lock (_lock)
        {
            if (_followedUpTo != from)
            {
                _entries.Clear();
                _completeAfter = from;
            }
            foreach (var (position, roomId, isMember) in events)
                Add(new Entry(position, roomId, isMember));
            _followedUpTo = to;
        }
    }

    /// <summary>A worker that may have missed the main process's messages: it holds nothing whole until the next stretch.</summary>
    public void ForgetFollowed()
    {
        lock (_lock)
            _followedUpTo = null;
    }

    /// <summary>Notes that the relation at <paramref name="position"/> points at <paramref name="targetId"/>.</summary>
    public void RecordRelation(string targetId, long position)
    {
        lock (_lock)
        {
            // Forgetting the targets forgets relations up to the latest one: only events after that can be vouched for.
            if (_relationTargets.Count >= RelationTargetsCapacity)
            {
                _relationTargets.Clear();
                _relationTargetsForgottenUpTo = _latestRelation;
            }
            _relationTargets.Add(targetId);
            _latestRelation = Math.Max(_latestRelation, position);
        }
    }

    /// <summary>
    /// Whether relations may point at an event created on this server, written at <paramref name="position"/>: false
    /// only when the index has seen every relation written since it.
    /// </summary>
    public bool MayBeRelatedTo(string eventId, long position)
    {
        if (!_writesEvents)
            return true;
        lock (_lock)
            return _completeAfter is not { } start || position <= Math.Max(start, _relationTargetsForgottenUpTo) || _relationTargets.Contains(eventId);
    }

    /// <summary>
    /// The events after <paramref name="after"/> up to <paramref name="upTo"/>, a position readers see; null when the
    /// window reaches back before what the index holds.
    /// </summary>
    public Window? Find(long after, long upTo)
    {
        lock (_lock)
        {
            if (_writesEvents)
                _completeAfter ??= upTo;
            else if (_followedUpTo is not { } followed || upTo > followed)
                return null;
            if (_completeAfter is not { } start || after < start)
                return null;
            var (first, end) = (FirstAfter(after), FirstAfter(upTo));
            var rooms = new HashSet<string>(end - first, StringComparer.Ordinal);
            var hasMemberEvents = false;
            for (var i = first; i < end; i++)
            {
                rooms.Add(_entries[i].RoomId);
                hasMemberEvents |= _entries[i].IsMemberEvent;
            }
            return new Window(rooms, hasMemberEvents);
        }
    }

    private int FirstAfter(long position)
    {
        int low = 0, high = _entries.Count;
        while (low < high)
        {
            var middle = (low + high) / 2;
            if (_entries[middle].Position <= position)
                low = middle + 1;
            else
                high = middle;
        }
        return low;
    }
}
