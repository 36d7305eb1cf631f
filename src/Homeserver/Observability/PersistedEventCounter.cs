using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Observability;

/// <summary>Counts the events the spine persists, by whether a local or a remote user sent them.</summary>
public sealed class PersistedEventCounter(ServerMetrics metrics, HomeserverConfig config) : IEventListener
{
    private static readonly string[] Local = ["local"], Remote = ["remote"];

    public Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore) =>
        Task.CompletedTask;

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter) =>
        metrics.EventsPersisted.Inc(EventSigning.ServerOf(pdu.Sender) == config.ServerName ? Local : Remote);
}
