using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Events a device sent with a transaction ID whose send has not been answered yet. That device's sync stops short of
/// them: clients match the copy their sync brings to the send they are waiting on, and matrix-js-sdk (threads on) fails
/// the send when the copy comes first. The sync continues once the send is answered (which wakes it), or after a few
/// seconds if the answer never went out.
/// </summary>
public sealed class UnansweredSends(TimeProvider clock)
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(5);

    private readonly Dictionary<(string UserId, string DeviceId), List<(long Position, long Since)>> _pending = [];
    private readonly Lock _lock = new();

    /// <summary>A send's event, in <paramref name="s"/>'s transaction (forgotten again if it rolls back).</summary>
    public void Add(DbSession s, string userId, string deviceId, long position)
    {
        lock (_lock)
        {
            if (!_pending.TryGetValue((userId, deviceId), out var positions))
                _pending[(userId, deviceId)] = positions = [];
            positions.Add((position, clock.GetTimestamp()));
        }
        s.OnCompleted(committed =>
        {
            if (!committed)
                Answered(userId, deviceId, position);
        });
    }

    public void Answered(string userId, string deviceId, long position)
    {
        lock (_lock)
            if (_pending.TryGetValue((userId, deviceId), out var positions))
            {
                positions.RemoveAll(p => p.Position == position);
                if (positions.Count == 0)
                    _pending.Remove((userId, deviceId));
            }
    }

    /// <summary>The device's first event whose send is still unanswered, if any.</summary>
    public long? FirstUnanswered(string userId, string deviceId)
    {
        lock (_lock)
        {
            if (!_pending.TryGetValue((userId, deviceId), out var positions))
                return null;
            positions.RemoveAll(p => clock.GetElapsedTime(p.Since) > GiveUpAfter);
            if (positions.Count == 0)
            {
                _pending.Remove((userId, deviceId));
                return null;
            }
            return positions.Min(p => p.Position);
        }
    }
}
