using System.Collections.Concurrent;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// The member events each device was last sent by a lazy-loading sync, so its incremental syncs leave out the redundant
/// ones (spec: "Lazy-loading room members"). In memory, as Synapse keeps it: a bounded number per device, forgotten after
/// half an hour unused; anything forgotten is merely sent again.
/// </summary>
public sealed class LazyLoadedMembers(TimeProvider clock)
{
    private const int MaxPerDevice = 1000;
    private static readonly TimeSpan Unused = TimeSpan.FromMinutes(30);

    private readonly ConcurrentDictionary<(string User, string Device), Sent> _devices = new();
    private DateTimeOffset _nextSweep = DateTimeOffset.MinValue;

    /// <summary>What one device was sent: (room, member) to member event ID, oldest first for eviction.</summary>
    public sealed class Sent
    {
        private readonly Dictionary<(string Room, string Member), LinkedListNode<((string Room, string Member) Key, string EventId)>> _index = [];
        private readonly LinkedList<((string Room, string Member) Key, string EventId)> _order = new();

        internal DateTimeOffset LastUsed { get; set; }

        public bool Has(string roomId, string member, string eventId)
        {
            lock (_order)
                return _index.TryGetValue((roomId, member), out var node) && node.Value.EventId == eventId;
        }

        public void Add(string roomId, string member, string eventId)
        {
            lock (_order)
            {
                if (_index.Remove((roomId, member), out var old))
                    _order.Remove(old);
                _index[(roomId, member)] = _order.AddLast(((roomId, member), eventId));
                if (_order.Count > MaxPerDevice)
                {
                    _index.Remove(_order.First!.Value.Key);
                    _order.RemoveFirst();
                }
            }
        }
    }

    /// <summary>The device's record; an initial sync (<paramref name="fresh"/>) starts it over, the client having forgotten everything.</summary>
    public Sent For(string userId, string deviceId, bool fresh)
    {
        var now = clock.GetUtcNow();
        if (now >= _nextSweep)
        {
            _nextSweep = now + Unused;
            foreach (var (key, sent) in _devices)
                if (now - sent.LastUsed > Unused)
                    _devices.TryRemove(key, out _);
        }
        var record = fresh ? _devices[(userId, deviceId)] = new Sent() : _devices.GetOrAdd((userId, deviceId), _ => new Sent());
        record.LastUsed = now;
        return record;
    }
}
