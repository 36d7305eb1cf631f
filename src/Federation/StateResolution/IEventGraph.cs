using Matrix.Federation.Events;

namespace Matrix.Federation.StateResolution;

/// <summary>
/// The events state resolution may read: the events of the state sets and their auth chains. The homeserver loads
/// them before resolving (resolution itself does no I/O); an unknown event is treated as absent.
/// </summary>
public interface IEventGraph
{
    Pdu? Find(string eventId);

    /// <summary>True for events rejected by the auth rules on receipt.</summary>
    bool IsRejected(string eventId);
}

/// <summary>An event graph held in memory.</summary>
public sealed class InMemoryEventGraph : IEventGraph
{
    private readonly Dictionary<string, Pdu> _events = new(StringComparer.Ordinal);
    private readonly HashSet<string> _rejected = new(StringComparer.Ordinal);

    public int Count => _events.Count;

    public void Add(Pdu pdu, bool rejected = false)
    {
        _events[pdu.EventId] = pdu;
        if (rejected)
            _rejected.Add(pdu.EventId);
        else
            _rejected.Remove(pdu.EventId);
    }

    public Pdu? Find(string eventId) => _events.GetValueOrDefault(eventId);

    public bool IsRejected(string eventId) => _rejected.Contains(eventId);
}
