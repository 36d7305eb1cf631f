using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// A bounded least-recently-used cache of events, loading misses from the database. A parsed event's JSON tree takes
/// about seven times its UTF-8 (5 KB for a 700-byte message), so only the most recently used tenth stay parsed; the
/// others are kept as their UTF-8 and parsed again (trusted, as a stored event) when asked for.
/// </summary>
public sealed class EventCache(Database db, RoomStore rooms, Config.HomeserverConfig config)
{
    private readonly int _capacity = config.Caches.Events;
    private readonly int _parsedCapacity = Math.Max(1, config.Caches.Events / 10);
    private readonly Dictionary<string, LinkedListNode<Pdu>> _parsed = new(StringComparer.Ordinal);
    private readonly LinkedList<Pdu> _parsedOrder = new();
    private readonly Dictionary<string, LinkedListNode<Serialized>> _serialized = new(StringComparer.Ordinal);
    private readonly LinkedList<Serialized> _serializedOrder = new();
    private readonly Lock _lock = new();

    private sealed record Serialized(string EventId, string RoomId, RoomVersion Version, byte[] Utf8);

    public void Add(Pdu pdu)
    {
        lock (_lock)
        {
            RemoveLocked(pdu.EventId);
            AddParsedLocked(pdu);
        }
    }

    public void ForgetRoom(string roomId)
    {
        lock (_lock)
        {
            RemoveWhere(_parsed, _parsedOrder, pdu => pdu.RoomId == roomId, pdu => pdu.EventId);
            RemoveWhere(_serialized, _serializedOrder, stored => stored.RoomId == roomId, stored => stored.EventId);
        }
    }

    public void Forget(IEnumerable<string> eventIds)
    {
        lock (_lock)
            foreach (var eventId in eventIds)
                RemoveLocked(eventId);
    }

    public Pdu? TryGet(string eventId)
    {
        lock (_lock)
        {
            if (_parsed.TryGetValue(eventId, out var node))
            {
                _parsedOrder.Remove(node);
                _parsedOrder.AddFirst(node);
                return node.Value;
            }
            if (!_serialized.Remove(eventId, out var stored))
                return null;
            _serializedOrder.Remove(stored);
            var pdu = Parse(stored.Value.Utf8, stored.Value.Version, eventId);
            AddParsedLocked(pdu);
            return pdu;
        }
    }

    private void AddParsedLocked(Pdu pdu)
    {
        _parsed[pdu.EventId] = _parsedOrder.AddFirst(pdu);
        if (_parsed.Count <= _parsedCapacity)
            return;
        var demoted = _parsedOrder.Last!.Value;
        _parsed.Remove(demoted.EventId);
        _parsedOrder.RemoveLast();
        if (_capacity <= _parsedCapacity)
            return;
        _serialized[demoted.EventId] = _serializedOrder.AddFirst(
            new Serialized(demoted.EventId, demoted.RoomId, demoted.Version, JsonSerializer.SerializeToUtf8Bytes(demoted.Json)));
        if (_serialized.Count > _capacity - _parsedCapacity)
        {
            _serialized.Remove(_serializedOrder.Last!.Value.EventId);
            _serializedOrder.RemoveLast();
        }
    }

    private void RemoveLocked(string eventId)
    {
        if (_parsed.Remove(eventId, out var parsed))
            _parsedOrder.Remove(parsed);
        if (_serialized.Remove(eventId, out var stored))
            _serializedOrder.Remove(stored);
    }

    private static void RemoveWhere<T>(Dictionary<string, LinkedListNode<T>> entries, LinkedList<T> order, Func<T, bool> matches, Func<T, string> key)
    {
        for (var node = order.First; node is not null;)
        {
            var next = node.Next;
            if (matches(node.Value))
            {
                entries.Remove(key(node.Value));
                order.Remove(node);
            }
            node = next;
        }
    }

    public async Task<Pdu?> GetAsync(string eventId, RoomVersion version, CancellationToken ct)
    {
        if (TryGet(eventId) is { } cached)
            return cached;
        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), ct);
        return row is null ? null : FromRow(row, version);
    }

    /// <summary>The same inside an open session (a writer's transaction must not wait for a second pooled connection).</summary>
    public async Task<Pdu?> GetAsync(DbSession s, string eventId, RoomVersion version)
    {
        if (TryGet(eventId) is { } cached)
            return cached;
        var row = await rooms.GetEventAsync(s, eventId);
        return row is null ? null : FromRow(row, version);
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

    /// <summary>Parses a stored event (trusted: its ID is not recomputed) and caches it.</summary>
    public Pdu FromRow(EventRow row, RoomVersion version)
    {
        if (TryGet(row.EventId) is { } cached)
            return cached;
        var pdu = Parse((JsonObject)JsonNode.Parse(row.Json)!, version, row.EventId);
        Add(pdu);
        return pdu;
    }

    private static Pdu Parse(byte[] utf8, RoomVersion version, string eventId) => Parse((JsonObject)JsonNode.Parse(utf8)!, version, eventId);

    private static Pdu Parse(JsonObject json, RoomVersion version, string eventId) =>
        PduParser.TryParse(json, version, out var pdu, out var error, trustedEventId: eventId)
            ? pdu
            : throw new InvalidOperationException($"stored event {eventId} is invalid: {error}");
}
