using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Events a device sent with a transaction ID, until a moment after their send was answered. The device's sync stops
/// short of those not answered yet: clients match the copy their sync brings to the send they are waiting on. An event
/// that relates to another (<c>m.relates_to</c>) may live in a thread, and matrix-js-sdk (threads on) fails its send when
/// it handles the sync's copy first, since it looks for the copy only in the room's main timeline: a long-poll of the
/// device woken with such an event new to it waits until that moment has passed before it answers. Other events are
/// matched by their transaction ID in either order and hold nothing back, nor are the user's other devices held back;
/// an entry whose answer never went out is dropped after a few seconds.
/// </summary>
public sealed class UnansweredSends(TimeProvider clock)
{
    /// <summary>
    /// How long after the answer of a related event a long-poll woken with it still waits before it answers: long enough
    /// for a busy client to have handled the answer first (100 ms was not, on a machine loaded by a parallel test run).
    /// </summary>
    public static readonly TimeSpan AfterAnswer = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(5);

    private readonly Dictionary<(string UserId, string DeviceId), List<Entry>> _pending = [];
    private readonly Lock _lock = new();

    private sealed class Entry(long position, long since, bool relatesToAnother)
    {
        public readonly long Position = position, Since = since;
        public readonly bool RelatesToAnother = relatesToAnother;
        public long? AnsweredAt;
    }

    /// <summary>A send's event, in <paramref name="s"/>'s transaction (forgotten again if it rolls back).</summary>
    public void Add(DbSession s, string userId, string deviceId, long position, bool relatesToAnother)
    {
        var entry = new Entry(position, clock.GetTimestamp(), relatesToAnother);
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

    /// <summary>The send of the event was answered: the device's sync may bring it (a related event <see cref="AfterAnswer"/> from now).</summary>
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
    /// until <see cref="AfterAnswer"/> has passed since the answer of each of its related events after <paramref name="since"/>
    /// answered less than that ago (zero when there is none: an event the device was given already holds nothing back).
    /// </summary>
    public TimeSpan HoldAfterAnswers(string userId, string deviceId, long since)
    {
        lock (_lock)
        {
            var hold = TimeSpan.Zero;
            foreach (var entry in Pending(userId, deviceId) ?? [])
                if (entry.RelatesToAnother && entry.Position > since && entry.AnsweredAt is { } answered && AfterAnswer - clock.GetElapsedTime(answered) is var left && left > hold)
                    hold = left;
            return hold;
        }
    }

    // The device's entries still in force (those answered long enough ago, or given up on, are dropped here).
    private List<Entry>? Pending(string userId, string deviceId)
    {
        if (EntriesOf(userId, deviceId) is not { } pending)
            return null;
        pending.RemoveAll(e => e.AnsweredAt is { } answered
            ? !e.RelatesToAnother || clock.GetElapsedTime(answered) >= AfterAnswer
            : clock.GetElapsedTime(e.Since) > GiveUpAfter);
        if (pending.Count > 0)
            return pending;
        _pending.Remove((userId, deviceId));
        return null;
    }

    private List<Entry>? EntriesOf(string userId, string deviceId) => _pending.GetValueOrDefault((userId, deviceId));
}
