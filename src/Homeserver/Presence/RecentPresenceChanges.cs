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
    private readonly Queue<long> _oldestFirst = new();
    private readonly Lock _lock = new();

    /// <summary>A committed change of <paramref name="userId"/>'s presence at <paramref name="position"/>.</summary>
    public void Add(long position, string userId)
    {
        lock (_lock)
        {
            if (!_userAt.TryAdd(position, userId))
                return;
            _oldestFirst.Enqueue(position);
            if (_oldestFirst.Count > capacity)
                _userAt.Remove(_oldestFirst.Dequeue());
        }
    }

    /// <summary>
    /// The users whose changes took the positions after <paramref name="after"/> up to <paramref name="upTo"/>, when
    /// every one of them is known here (a position taken by a transaction that rolled back, by another process or
    /// before this one started, or forgotten since, leaves the answer to the database).
    /// </summary>
    public bool TryUsersIn(long after, long upTo, out HashSet<string> users)
    {
        users = new HashSet<string>(StringComparer.Ordinal);
        if (upTo - after > capacity)
            return false;
        lock (_lock)
            for (var position = after + 1; position <= upTo; position++)
                if (_userAt.TryGetValue(position, out var user))
                    users.Add(user);
                else
                    return false;
        return true;
    }
}
