using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Events a device sent with a transaction ID, until a moment after their send was answered. The device's sync stops
/// short of those not answered yet, and a long-poll of the device woken by such an answer waits that moment before
/// it answers: clients match the copy their sync brings to the send they are waiting on, and matrix-js-sdk (threads
/// on) fails the send when it handles the copy first. A sync that finds the event already there is not held back, nor
/// are the user's other devices; an entry whose answer never went out is dropped after a few seconds.
/// </summary>
public sealed class UnansweredSends(TimeProvider clock)
{
    /// <summary>How long a long-poll woken by the answer waits before it answers.</summary>
    public static readonly TimeSpan AfterAnswer = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(5);

    private readonly Dictionary<(string UserId, string DeviceId), List<Entry>> _pending = [];
    private readonly Lock _lock = new();

    private sealed class Entry(long position, long since)
    {
        public readonly long Position = position, Since = since;
        public long? AnsweredAt;
    }

    /// <summary>A send's event, in <paramref name="s"/>'s transaction (forgotten again if it rolls back).</summary>
    public void Add(DbSession s, string userId, string deviceId, long position)
    {
        var entry = new Entry(position, clock.GetTimestamp());
        lock (_lock)
        {
            if (!_pending.TryGetValue((userId, deviceId), out var entries))
                _pending[(userId, deviceId)] = entries = [];
            entries.Add(entry);
        }
        s.OnCompleted(committed =>
        {
            if (!committed)
                lock (_lock)
                    EntriesOf(userId, deviceId)?.Remove(entry);
        });
    }

    /// <summary>The send of the event was answered: <see cref="AfterAnswer"/> from now the device's sync may bring it.</summary>
    public void Answered(string userId, string deviceId, long position)
    {
        lock (_lock)
            foreach (var entry in EntriesOf(userId, deviceId) ?? [])
                if (entry.Position == position)
                    entry.AnsweredAt ??= clock.GetTimestamp();
    }

    /// <summary>The device's first event whose send is not answered yet, if any: its sync stops short of it.</summary>
    public long? FirstUnanswered(string userId, string deviceId)
    {
        lock (_lock)
        {
            var held = Pending(userId, deviceId)?.Where(e => e.AnsweredAt is null).ToList();
            return held is { Count: > 0 } ? held.Min(e => e.Position) : null;
        }
    }

    /// <summary>
    /// How long a long-poll of the device, woken with its token at <paramref name="since"/>, still waits before it answers:
    /// until <see cref="AfterAnswer"/> has passed since the answer of each of its events after <paramref name="since"/>
    /// answered less than that ago (zero when there is none: an event the device was given already holds nothing back).
    /// </summary>
    public TimeSpan HoldAfterAnswers(string userId, string deviceId, long since)
    {
        lock (_lock)
        {
            var hold = TimeSpan.Zero;
            foreach (var entry in Pending(userId, deviceId) ?? [])
                if (entry.Position > since && entry.AnsweredAt is { } answered && AfterAnswer - clock.GetElapsedTime(answered) is var left && left > hold)
                    hold = left;
            return hold;
        }
    }

    // The device's entries still in force (those answered long enough ago, or given up on, are dropped here).
    private List<Entry>? Pending(string userId, string deviceId)
    {
        if (EntriesOf(userId, deviceId) is not { } pending)
            return null;
        pending.RemoveAll(e => e.AnsweredAt is { } answered ? clock.GetElapsedTime(answered) >= AfterAnswer : clock.GetElapsedTime(e.Since) > GiveUpAfter);
        if (pending.Count > 0)
            return pending;
        _pending.Remove((userId, deviceId));
        return null;
    }

    private List<Entry>? EntriesOf(string userId, string deviceId) => _pending.GetValueOrDefault((userId, deviceId));
}
