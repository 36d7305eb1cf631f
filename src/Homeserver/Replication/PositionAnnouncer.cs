using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The main process telling its workers where its streams stand, with the users to wake and the entries of the events
/// and relations since its last announcement (so a worker's <see cref="RecentEventIndex"/> knows which rooms they are
/// in, and which events have relations, as the main process's does). Announcements go out one at a time, in position order.
/// </summary>
public sealed class PositionAnnouncer(StreamPositions streams, RecentEventIndex recentEvents, ReplicationBus replication)
{
    private readonly Lock _lock = new();
    private long? _eventsAnnounced;

    public void Announce(IReadOnlyCollection<string> wake)
    {
        if (!replication.Enabled || !replication.IsMain)
            return;
        lock (_lock)
        {
            var visible = streams.VisiblePositions();
            long? from = null;
            RecentEventIndex.Stretch? stretch = null;
            if (visible.TryGetValue("events", out var upTo) && _eventsAnnounced is { } last && upTo >= last)
                (from, stretch) = (last, recentEvents.Between(last, upTo));
            if (stretch is null)
                from = null;
            if (visible.TryGetValue("events", out upTo))
                _eventsAnnounced = Math.Max(_eventsAnnounced ?? upTo, upTo);
            replication.Publish(new ReplicationMessage.Positions(visible, wake, from, stretch));
        }
    }
}
