using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// A bounded least-recently-used cache of events, loading misses from the database. The most recently used are kept
/// parsed; the rest only as their UTF-8 (<see cref="Pdu.Compact"/>), parsed again when read (a parsed message takes
/// 3-5 KB, its UTF-8 under 1 KB).
/// </summary>
public sealed class EventCache(Database db, RoomStore rooms, Config.HomeserverConfig config) : IExpiringCache
{
    private record struct Cached(Pdu Pdu, long LastUsed);

    private readonly int _capacity = config.Caches.Events;
    private readonly int _parsedCapacity = Math.Min(config.Caches.ParsedEvents, config.Caches.Events);
    private readonly Dictionary<string, LinkedListNode<Cached>> _entries = new(StringComparer.Ordinal);
    // Both most recently used first, and every parsed event used more lately than every compacted one.
    private readonly LinkedList<Cached> _parsed = new();
    private readonly LinkedList<Cached> _compacted = new();
    private readonly Lock _lock = new();

    public void Add(Pdu pdu)
    {
        Pdu? demoted;
        lock (_lock)
        {
            if (_entries.Remove(pdu.EventId, out var existing))
                existing.List!.Remove(existing);
            _entries[pdu.EventId] = _parsed.AddFirst(new Cached(pdu, Environment.TickCount64));
            demoted = DemoteLeastRecent();
            if (_entries.Count > _capacity)
                Remove(_compacted.Last ?? _parsed.Last!);
        }
        demoted?.Compact();
    }

    /// <summary>Moves the least recently used parsed event to the compacted ones when there are too many; the caller compacts it outside the lock.</summary>
    private Pdu? DemoteLeastRecent()
    {
        if (_parsed.Count <= _parsedCapacity)
            return null;
        var last = _parsed.Last!;
        _parsed.RemoveLast();
        _compacted.AddFirst(last);
        return last.Value.Pdu;
    }

    private void Remove(LinkedListNode<Cached> node)
    {
        _entries.Remove(node.Value.Pdu.EventId);
        node.List!.Remove(node);
    }

    public void ForgetRoom(string roomId)
    {
        lock (_lock)
            foreach (var list in new[] { _parsed, _compacted })
                for (var node = list.First; node is not null;)
                {
                    var next = node.Next;
                    if (node.Value.Pdu.RoomId == roomId)
                        Remove(node);
                    node = next;
                }
    }

    public void Forget(IEnumerable<string> eventIds)
    {
        lock (_lock)
            foreach (var eventId in eventIds)
                if (_entries.TryGetValue(eventId, out var node))
                    Remove(node);
    }

    public int ExpireUnusedSince(long cutoff)
    {
        var expired = 0;
        lock (_lock)
            foreach (var list in new[] { _compacted, _parsed })
                while (list.Last is { } oldest && oldest.Value.LastUsed < cutoff)
                {
                    Remove(oldest);
                    expired++;
                }
        return expired;
    }

    public Pdu? TryGet(string eventId)
    {
        Pdu? demoted;
        LinkedListNode<Cached>? node;
        lock (_lock)
        {
            if (!_entries.TryGetValue(eventId, out node))
                return null;
            node.List!.Remove(node);
            node.ValueRef.LastUsed = Environment.TickCount64;
            _parsed.AddFirst(node);
            demoted = DemoteLeastRecent();
        }
        demoted?.Compact();
        return node.Value.Pdu;
    }

    /// <summary>A cached event without allocating (the read of a missing one is its own method: a lambda capturing the ID would be made on every call).</summary>
    public ValueTask<Pdu?> GetAsync(string eventId, RoomVersion version, CancellationToken ct) =>
        TryGet(eventId) is { } cached ? new(cached) : new(ReadAsync(eventId, version, ct));

    private async Task<Pdu?> ReadAsync(string eventId, RoomVersion version, CancellationToken ct)
    {
        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), ct);
        return row is null ? null : FromRow(row, version);
    }

    /// <summary>The same inside an open session (a writer's transaction must not wait for a second pooled connection).</summary>
    public async ValueTask<Pdu?> GetAsync(DbSession s, string eventId, RoomVersion version)
    {
        if (TryGet(eventId) is { } cached)
            return cached;
        var row = await rooms.GetEventAsync(s, eventId);
        return row is null ? null : FromRow(row, version);
    }

    /// <summary>
    /// The state events at the keys of a state map (keys it lacks and events not stored left out), those not cached read
    /// in one query: through <paramref name="session"/> when given (a writer's transaction must not wait for a second
    /// pooled connection).
    /// </summary>
    public async Task<Dictionary<StateKey, Pdu>> StateEventsAsync(IReadOnlyDictionary<StateKey, string> state, IEnumerable<StateKey> keys,
        RoomVersion version, CancellationToken ct, DbSession? session = null)
    {
        var ids = keys.Distinct().Select(key => (Key: key, EventId: state.GetValueOrDefault(key))).Where(k => k.EventId is not null).ToList();
        var found = await CachedOrRead.ManyAsync(ids.Select(k => k.EventId!).Distinct(), TryGet, async missing =>
            (session is not null ? await rooms.GetEventsAsync(session, missing) : await db.ReadAsync(s => rooms.GetEventsAsync(s, missing), ct))
            .Select(row => (row.EventId, FromRow(row, version))));
        return ids.Where(k => found.ContainsKey(k.EventId!)).ToDictionary(k => k.Key, k => found[k.EventId!]);
    }

    /// <summary>Stored events by ID (unknown IDs are left out).</summary>
    public async Task<List<Pdu>> LoadAsync(RoomVersion version, IReadOnlyCollection<string> eventIds, CancellationToken ct) =>
        (await db.ReadAsync(s => rooms.GetEventsAsync(s, eventIds), ct)).Select(r => FromRow(r, version)).ToList();

    /// <summary>Every stored event reachable through auth_events from the given events, oldest first.</summary>
    public async Task<List<Pdu>> AuthChainAsync(RoomVersion version, IEnumerable<Pdu> from, CancellationToken ct)
    {
        var chain = new Dictionary<string, Pdu>(StringComparer.Ordinal);
        var frontier = from.SelectMany(e => e.AuthEvents).Distinct().ToList();
        while (frontier.Count > 0)
        {
            var loaded = await LoadAsync(version, frontier, ct);
            foreach (var pdu in loaded)
                chain.TryAdd(pdu.EventId, pdu);
            frontier = loaded.SelectMany(e => e.AuthEvents).Where(id => !chain.ContainsKey(id)).Distinct().ToList();
        }
        return chain.Values.OrderBy(e => e.Depth).ToList();
    }

    /// <summary>Parses a stored event (trusted: its ID is not recomputed), or takes the one a row kept in memory holds, and caches it.</summary>
    public Pdu FromRow(EventRow row, RoomVersion version)
    {
        if (TryGet(row.EventId) is { } cached)
            return cached;
        if (row.Event is { } kept)
        {
            Add(kept);
            return kept;
        }
        if (!StoredPduReader.TryRead(Encoding.UTF8.GetBytes(row.Json), row.EventId, version, out var pdu)
            && !PduParser.TryParse((JsonObject)JsonNode.Parse(row.Json)!, version, out pdu, out var error, trustedEventId: row.EventId))
            throw new InvalidOperationException($"stored event {row.EventId} is invalid: {error}");
        Add(pdu);
        return pdu;
    }
}
