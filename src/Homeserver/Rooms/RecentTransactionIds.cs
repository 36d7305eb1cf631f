using System.Collections.Concurrent;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// The client transaction IDs of the latest events sent with one, by event: the sender's own sync shows each new event
/// with its transaction ID, and finds it here instead of asking the database. An event not here may still have one.
/// </summary>
public sealed class RecentTransactionIds
{
    private const int Capacity = 10_000;

    private readonly ConcurrentDictionary<string, (string UserId, string DeviceId, string TxnId)> _byEvent = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _order = new();

    public void Add(string eventId, string userId, string deviceId, string txnId)
    {
        if (!_byEvent.TryAdd(eventId, (userId, deviceId, txnId)))
            return;
        _order.Enqueue(eventId);
        // The queue's count, not the dictionary's: that one takes every lock of the dictionary (8 µs at 10,000 entries).
        while (_order.Count > Capacity && _order.TryDequeue(out var oldest))
            _byEvent.TryRemove(oldest, out _);
    }

    /// <summary>The device's transaction IDs of the events when every one of them is known here (those sent otherwise have none).</summary>
    public bool TryGet(string userId, string deviceId, IReadOnlyCollection<string> eventIds, out Dictionary<string, string> txnIds)
    {
        txnIds = [];
        foreach (var eventId in eventIds)
        {
            if (!_byEvent.TryGetValue(eventId, out var sent))
                return false;
            if (sent.UserId == userId && sent.DeviceId == deviceId)
                txnIds[eventId] = sent.TxnId;
        }
        return true;
    }
}
