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
/// entries and relation targets of each stretch of positions it announces (<see cref="Between"/>, <see cref="Follow"/>),
/// and its index answers for windows within what it followed without a gap, and for relations to events after where
/// that began.
/// </summary>
public sealed class RecentEventIndex(Config.HomeserverConfig config)
{
    // With several event writers no process writes or hears of every event: the index then answers nothing (the
    // database does), and the caches built on it (RecentRoomRows, FollowedRoomRows, UnreadCountCache) stay off too.
    private readonly bool _writesEvents = config.Worker.IsMain && !config.Worker.SharesEvents;
    private readonly bool _announces = config.Worker.IsMain && config.Worker.Replicates && !config.Worker.SharesEvents;
    private const int Capacity = 50_000;
    private const int RelationTargetsCapacity = 100_000;

    private readonly record struct Entry(long Position, string RoomId, bool IsMemberEvent, bool IsRedaction = false);

    /// <summary>
    /// The events of a window: how many, whether any is a member event, and which rooms they are in, asked for rooms of
    /// interest (a sync's) so that neither a big window nor a user of many rooms costs a set as large as itself.
    /// </summary>
    public sealed class Window(RecentEventIndex index, long after, long upTo, int eventCount, bool hasMemberEvents)
    {
        public int EventCount => eventCount;
        public bool HasMemberEvents => hasMemberEvents;

        /// <summary>
        /// The rooms of <paramref name="memberships"/> with events in the window, or, when the window has fewer events
        /// than there are memberships (or none are given), every room of the window.
        /// </summary>
        public IReadOnlySet<string> Rooms(IReadOnlyList<MembershipRow>? memberships = null) => index.RoomsIn(after, upTo, eventCount, memberships);
    }

    /// <summary>
    /// What the main process wrote in a stretch of positions: its events' entries, the events its relations point at, and
    /// the rooms where it redacted something.
    /// </summary>
    public sealed record Stretch(List<(long Position, string RoomId, bool IsMemberEvent)> Events, List<(long Position, string TargetId)> Relations,
        List<string> RoomsWithRedactions);

    private readonly List<Entry> _entries = [];
    // The same positions by room, and those of member events, each in order.
    private readonly Dictionary<string, List<long>> _byRoom = new(StringComparer.Ordinal);
    private readonly List<long> _memberEvents = [];
    private readonly Lock _lock = new();
    private long? _completeAfter;
    // Where entries were dropped for room (the main process cannot hand out what came before).
    private long _droppedUpTo = long.MinValue;
    // A worker: the position up to which it holds every event the main process announced (null: none yet, or a gap).
    private long? _followedUpTo;
    private readonly HashSet<string> _relationTargets = new(StringComparer.Ordinal);
    // The main process of a deployment: its relations not yet handed to workers (see Between), by position.
    private readonly List<(long Position, string TargetId)> _relations = [];
    private long _relationsDroppedUpTo = long.MinValue;
    private long _latestRelation = long.MinValue;
    private long _relationTargetsForgottenUpTo = long.MinValue;

    public void Record(long position, string roomId, string type)
    {
        lock (_lock)
            Add(new Entry(position, roomId, type == "m.room.member", type == "m.room.redaction"));
    }

    private void Add(Entry entry)
    {
        InsertInOrder(_entries, entry, static e => e.Position);
        if (!_byRoom.TryGetValue(entry.RoomId, out var roomPositions))
            _byRoom[entry.RoomId] = roomPositions = [];
        InsertInOrder(roomPositions, entry.Position, static p => p);
        if (entry.IsMemberEvent)
            InsertInOrder(_memberEvents, entry.Position, static p => p);
        if (_entries.Count <= Capacity)
            return;
        var dropped = _entries.Count / 2;
        _droppedUpTo = Math.Max(_droppedUpTo, _entries[dropped - 1].Position);
        _completeAfter = Math.Max(_completeAfter ?? long.MinValue, _droppedUpTo);
        foreach (var roomId in _entries.Take(dropped).Select(e => e.RoomId).Distinct().ToList())
        {
            var positions = _byRoom[roomId];
            positions.RemoveRange(0, FirstAfter(positions, _droppedUpTo));
            if (positions.Count == 0)
                _byRoom.Remove(roomId);
        }
        _memberEvents.RemoveRange(0, FirstAfter(_memberEvents, _droppedUpTo));
        _entries.RemoveRange(0, dropped);
    }

    // Transactions commit nearly in position order: the place is almost always at the end.
    private static void InsertInOrder<T>(List<T> items, T item, Func<T, long> positionOf)
    {
        var index = items.Count;
        while (index > 0 && positionOf(items[index - 1]) > positionOf(item))
            index--;
        items.Insert(index, item);
    }

    private void Clear()
    {
        _entries.Clear();
        _byRoom.Clear();
        _memberEvents.Clear();
    }

    /// <summary>
    /// The main process: its events and relations after <paramref name="from"/> up to <paramref name="to"/> (a visible
    /// position, where the next stretch starts), for its workers; null when some of them were dropped.
    /// </summary>
    public Stretch? Between(long from, long to)
    {
        lock (_lock)
        {
            if (from < _droppedUpTo || from < _relationsDroppedUpTo)
                return null;
            var (first, end) = (FirstAfter(_entries, from), FirstAfter(_entries, to));
            // Every relation up to a visible position has been recorded, and the next stretch starts there: they go.
            var relations = _relations.Where(r => r.Position > from && r.Position <= to).ToList();
            _relations.RemoveAll(r => r.Position <= to);
            var entries = _entries.GetRange(first, end - first);
            return new Stretch(entries.Select(e => (e.Position, e.RoomId, e.IsMemberEvent)).ToList(), relations,
                entries.Where(e => e.IsRedaction).Select(e => e.RoomId).Distinct().ToList());
        }
    }

    /// <summary>
    /// A worker: the main process's events after <paramref name="from"/> up to <paramref name="to"/>. Following on from
    /// the last stretch keeps the index whole; after a gap it holds everything from <paramref name="from"/> on.
    /// </summary>
    public void Follow(long from, long to, Stretch stretch)
    {
        lock (_lock)
        {
            if (_followedUpTo != from)
            {
                Clear();
                _completeAfter = from;
            }
            foreach (var (position, roomId, isMember) in stretch.Events)
                Add(new Entry(position, roomId, isMember));
            foreach (var (position, targetId) in stretch.Relations)
                AddRelationTarget(targetId, position);
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
            AddRelationTarget(targetId, position);
            if (!_announces)
                return;
            var index = _relations.Count;
            while (index > 0 && _relations[index - 1].Position > position)
                index--;
            _relations.Insert(index, (position, targetId));
            if (_relations.Count > RelationTargetsCapacity)
            {
                var dropped = _relations.Count / 2;
                _relationsDroppedUpTo = Math.Max(_relationsDroppedUpTo, _relations[dropped - 1].Position);
                _relations.RemoveRange(0, dropped);
            }
        }
    }

    private void AddRelationTarget(string targetId, long position)
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

    /// <summary>
    /// Whether relations may point at an event created on this server, written at <paramref name="position"/>: false
    /// only when the index has seen every relation written since it.
    /// </summary>
    public bool MayBeRelatedTo(string eventId, long position)
    {
        lock (_lock)
            return _completeAfter is not { } start || (!_writesEvents && _followedUpTo is null)
                || position <= Math.Max(start, _relationTargetsForgottenUpTo) || _relationTargets.Contains(eventId);
    }

    /// <summary>
    /// The events after <paramref name="after"/> up to <paramref name="upTo"/>, a position readers see; null when the
    /// window reaches back before what the index holds.
    /// </summary>
    public Window? Find(long after, long upTo)
    {
        lock (_lock)
        {
            if (!Holds(after, upTo))
                return null;
            var memberEventsAfter = FirstAfter(_memberEvents, after);
            return new Window(this, after, upTo, FirstAfter(_entries, upTo) - FirstAfter(_entries, after),
                memberEventsAfter < _memberEvents.Count && _memberEvents[memberEventsAfter] <= upTo);
        }
    }

    private IReadOnlySet<string> RoomsIn(long after, long upTo, int eventCount, IReadOnlyList<MembershipRow>? memberships)
    {
        lock (_lock)
        {
            var rooms = new HashSet<string>(StringComparer.Ordinal);
            // Entries of the window dropped since it was found: every membership's room may have events in it (the sync
            // looks at each, finding nothing new in most), and without memberships, nothing is known.
            if (after < _droppedUpTo)
            {
                foreach (var membership in memberships ?? [])
                    rooms.Add(membership.RoomId);
                return rooms;
            }
            if (memberships is null || eventCount <= memberships.Count)
            {
                for (int i = FirstAfter(_entries, after), end = FirstAfter(_entries, upTo); i < end; i++)
                    rooms.Add(_entries[i].RoomId);
                return rooms;
            }
            foreach (var membership in memberships)
                if (_byRoom.TryGetValue(membership.RoomId, out var positions) && FirstAfter(positions, after) is var first
                    && first < positions.Count && positions[first] <= upTo)
                    rooms.Add(membership.RoomId);
            return rooms;
        }
    }

    /// <summary>
    /// The positions of the room's events after <paramref name="after"/> up to <paramref name="upTo"/> (a position
    /// readers see), oldest first; null when the window reaches back before what the index holds.
    /// </summary>
    public List<long>? PositionsIn(string roomId, long after, long upTo)
    {
        lock (_lock)
        {
            if (!Holds(after, upTo))
                return null;
            var positions = new List<long>();
            if (_byRoom.TryGetValue(roomId, out var roomPositions))
                for (var i = FirstAfter(roomPositions, after); i < roomPositions.Count && roomPositions[i] <= upTo; i++)
                    positions.Add(roomPositions[i]);
            return positions;
        }
    }

    // Under the lock: whether every event of the window is here.
    private bool Holds(long after, long upTo)
    {
        if (_writesEvents)
            _completeAfter ??= upTo;
        else if (_followedUpTo is not { } followed || upTo > followed)
            return false;
        return _completeAfter is { } start && after >= start;
    }

    private static int FirstAfter(List<Entry> entries, long position) => FirstAfter(entries, position, static e => e.Position);

    private static int FirstAfter(List<long> positions, long position) => FirstAfter(positions, position, static p => p);

    private static int FirstAfter<T>(List<T> items, long position, Func<T, long> positionOf)
    {
        int low = 0, high = items.Count;
        while (low < high)
        {
            var middle = (low + high) / 2;
            if (positionOf(items[middle]) <= position)
                low = middle + 1;
            else
                high = middle;
        }
        return low;
    }
}
