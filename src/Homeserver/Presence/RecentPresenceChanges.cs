namespace Matrix.Homeserver.Presence;

/// <summary>
/// Which user's change took each of the latest positions of the presence stream, as this process committed them (the
/// main process writes all presence). A sync asking which of its room-mates changed in a window is answered from here
/// when every position of the window is known, instead of reading every row of the window: when a crowd comes online
/// at once, each of their room-mates' syncs read the whole crowd's rows, all at the same time.
/// </summary>
public sealed class RecentPresenceChanges(int capacity)
{
    private readonly Dictionary<long, string> _userAt = [];
    // The known positions in order (changes commit nearly in position order: a new one lands at or near the end).
    private readonly List<long> _positions = [];
    private readonly Lock _lock = new();

    /// <summary>A committed change of <paramref name="userId"/>'s presence at <paramref name="position"/>.</summary>
    public void Add(long position, string userId)
    {
        lock (_lock)
        {
            if (!_userAt.TryAdd(position, userId))
                return;
            var index = _positions.Count;
            while (index > 0 && _positions[index - 1] > position)
                index--;
            _positions.Insert(index, position);
            if (_positions.Count <= capacity)
                return;
            _userAt.Remove(_positions[0]);
            _positions.RemoveAt(0);
        }
    }

    /// <summary>
    /// Whether every position after <paramref name="after"/> up to <paramref name="upTo"/> is known here (a position
    /// taken by a transaction that rolled back, by another process or before this one started, or forgotten since,
    /// leaves the answer to the database).
    /// </summary>
    public bool Knows(long after, long upTo)
    {
        if (upTo - after > capacity)
            return false;
        lock (_lock)
            return FirstAfter(upTo) - FirstAfter(after) == upTo - after;
    }

    /// <summary>
    /// The users whose changes took the positions after <paramref name="after"/> up to <paramref name="upTo"/> (a user
    /// once per change), when every one of them is known here; else null.
    /// </summary>
    public List<string>? UsersIn(long after, long upTo)
    {
        if (upTo - after > capacity)
            return null;
        lock (_lock)
        {
            var (first, end) = (FirstAfter(after), FirstAfter(upTo));
            if (end - first != upTo - after)
                return null;
            var users = new List<string>(end - first);
            for (var i = first; i < end; i++)
                users.Add(_userAt[_positions[i]]);
            return users;
        }
    }

    // Positions are unique (a second change at a known position is not added).
    private int FirstAfter(long position)
    {
        var index = _positions.BinarySearch(position);
        return index >= 0 ? index + 1 : ~index;
    }
}
