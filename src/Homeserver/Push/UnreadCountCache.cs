using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Users' unread counts per room (each thread's), as <c>unread_counts</c> holds them, for the process that writes them
/// (the main process): every sync woken by a message shows its room's counts, and that message just changed them. A
/// new event adds to a known count when its transaction commits, before its stream position becomes visible (stream
/// positions are the last thing a commit completes), so the woken sync finds it here instead of reading it again; a
/// recount (a read receipt) drops it. A known count is answered while writes of the key are in flight: it is the
/// committed one, which a read would find too. No read is kept while a write is in flight or after one began, so a
/// read racing a write never keeps a value the write's delta is then added to twice. Workers keep nothing (the main
/// process's writes do not reach them).
/// </summary>
public sealed class UnreadCountCache(Config.HomeserverConfig config)
{
    private readonly bool _enabled = config.Worker.IsMain && !config.Worker.SharesEvents;
    private readonly int _maxEntries = config.Caches.UnreadCounts;
    private readonly Dictionary<(string UserId, string RoomId), Entry> _entries = [];
    private readonly Lock _lock = new();
    // Bumped when entries are dropped, so that a read begun before cannot store into an entry made anew.
    private long _epoch;

    private sealed class Entry
    {
        public long Version;
        public int WritesInFlight;
        public IReadOnlyList<UnreadCount>? Counts;
    }

    public readonly record struct Ticket(string UserId, string RoomId, long Epoch, long Version);

    public bool TryGet(string userId, string roomId, out IReadOnlyList<UnreadCount> counts)
    {
        lock (_lock)
            if (_entries.TryGetValue((userId, roomId), out var entry) && entry.Counts is { } known)
            {
                counts = known;
                return true;
            }
        counts = [];
        return false;
    }

    /// <summary>Taken before reading the counts from the database; <see cref="Store"/> keeps what the read found.</summary>
    public Ticket Begin(string userId, string roomId)
    {
        lock (_lock)
            return new Ticket(userId, roomId, _epoch, _entries.TryGetValue((userId, roomId), out var entry) ? entry.Version : 0);
    }

    public void Store(Ticket ticket, IReadOnlyList<UnreadCount> counts)
    {
        if (!_enabled)
            return;
        lock (_lock)
        {
            _entries.TryGetValue((ticket.UserId, ticket.RoomId), out var entry);
            if (ticket.Epoch != _epoch || (entry?.Version ?? 0) != ticket.Version || entry?.WritesInFlight > 0)
                return;
            if (entry is null)
            {
                if (_entries.Count >= _maxEntries)
                    DropIdle();
                _entries[(ticket.UserId, ticket.RoomId)] = entry = new Entry();
            }
            entry.Counts = counts;
        }
    }

    /// <summary>An event adds to the user's count of a room's thread, in <paramref name="s"/>'s transaction.</summary>
    public void Add(DbSession s, string userId, string roomId, string threadId, long notifications, long highlights) =>
        Writing(s, userId, roomId, forget: false, (entry, committed) =>
        {
            if (!committed || entry.Counts is not { } counts)
                return;
            // A new list, not the old one changed: a sync may be reading that one outside the lock.
            var updated = new List<UnreadCount>(counts.Count + 1);
            UnreadCount? thread = null;
            for (var i = 0; i < counts.Count; i++)
                if (counts[i].ThreadId == threadId)
                    thread = counts[i];
                else
                    updated.Add(counts[i]);
            updated.Add(new UnreadCount
            {
                RoomId = roomId, ThreadId = threadId,
                Notifications = (thread?.Notifications ?? 0) + notifications, Highlights = (thread?.Highlights ?? 0) + highlights,
            });
            entry.Counts = updated;
        });

    /// <summary>The user's counts of the room are counted anew in <paramref name="s"/>'s transaction: forgotten until read again.</summary>
    public void Recounted(DbSession s, string userId, string roomId) =>
        Writing(s, userId, roomId, forget: true, (entry, _) => entry.Counts = null);

    /// <summary>A room was purged: every count goes.</summary>
    public void ForgetAll()
    {
        lock (_lock)
            DropIdle();
    }

    /// <summary>
    /// A write of the key in <paramref name="s"/>'s transaction: in flight until it completes, when
    /// <paramref name="completed"/> runs under the cache's lock.
    /// </summary>
    private void Writing(DbSession s, string userId, string roomId, bool forget, Action<Entry, bool> completed)
    {
        if (!_enabled)
            return;
        Entry? entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue((userId, roomId), out entry))
                _entries[(userId, roomId)] = entry = new Entry();
            entry.WritesInFlight++;
            entry.Version++;
            if (forget)
                entry.Counts = null;
        }
        s.OnCompleted(committed =>
        {
            lock (_lock)
            {
                entry.WritesInFlight--;
                entry.Version++;
                completed(entry, committed);
            }
        });
    }

    // Entries with no write in flight go when the cache is full (a write's entry must stay until its transaction ends).
    private void DropIdle()
    {
        _epoch++;
        foreach (var key in _entries.Where(e => e.Value.WritesInFlight == 0).Select(e => e.Key).ToList())
            _entries.Remove(key);
    }
}
