using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The main process telling its workers where its streams stand, with the users to wake and the entries of the events
/// and relations since its last announcement (so a worker's <see cref="RecentEventIndex"/> knows which rooms they are
/// in, and which events have relations, as the main process's does). Announcements go out one at a time, in position order.
/// With several event writers (<see cref="SharedEventStream"/>) each of them announces where it has committed its own
/// events, and its wake-ups for once readers see what it saw.
/// </summary>
public sealed class PositionAnnouncer(StreamPositions streams, RecentEventIndex recentEvents, ReplicationBus replication, HomeserverConfig config)
{
    private readonly Lock _lock = new();
    private long? _eventsAnnounced;

    public void Announce(IReadOnlyCollection<string> wake)
    {
        if (!replication.Enabled)
            return;
        if (config.Worker.SharesEvents)
        {
            AnnounceAsWriter(wake);
            return;
        }
        if (!replication.IsMain)
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

    /// <summary>An event writer of a shared events stream: where it has committed everything of its own.</summary>
    public void AnnounceOwn() => AnnounceAsWriter([]);

    private void AnnounceAsWriter(IReadOnlyCollection<string> wake)
    {
        if (config.Worker.EventWriterName is not { } writer || !streams.IsShared(StreamPositions.SharedStream))
            return;
        lock (_lock)
        {
            // The main process's other streams go along as before; the events position is this writer's own.
            var visible = replication.IsMain ? streams.VisiblePositions() : [];
            visible[StreamPositions.SharedStream] = streams.OwnSharedPosition();
            long? wakeAt = wake.Count > 0 && streams.TryCurrent(StreamPositions.SharedStream, out var seen) ? seen : null;
            replication.Publish(new ReplicationMessage.Positions(visible, wake, Writer: writer, WakeAt: wakeAt));
        }
    }
}
