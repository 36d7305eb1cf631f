using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Federation.StateResolution;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// The events state resolution reads, loaded from the database before it runs (resolution itself does no I/O): the
/// events of the state sets and their whole auth chains, fetched breadth-first in batches.
/// </summary>
public sealed class DbEventGraph : IEventGraph
{
    private readonly Dictionary<string, Pdu> _events = new(StringComparer.Ordinal);
    private readonly HashSet<string> _rejected = new(StringComparer.Ordinal);

    public Pdu? Find(string eventId) => _events.GetValueOrDefault(eventId);

    public bool IsRejected(string eventId) => _rejected.Contains(eventId);

    /// <param name="pending">events not stored yet (the one being persisted), which the states may already contain</param>
    public static async Task<DbEventGraph> LoadAsync(Database db, RoomStore rooms, EventCache cache, RoomVersion version,
        IEnumerable<string> eventIds, IEnumerable<Pdu> pending, CancellationToken ct)
    {
        var graph = new DbEventGraph();
        foreach (var pdu in pending)
            graph._events[pdu.EventId] = pdu;
        var frontier = eventIds.Concat(graph._events.Values.SelectMany(p => p.AuthEvents)).Distinct().Where(id => !graph._events.ContainsKey(id)).ToList();
        while (frontier.Count > 0)
        {
            var next = new List<string>();
            foreach (var batch in frontier.Chunk(500))
            {
                var batchIds = batch.ToList();
                foreach (var row in await db.ReadAsync(s => rooms.GetEventsAsync(s, batchIds), ct))
                {
                    var pdu = cache.FromRow(row, version);
                    graph._events[pdu.EventId] = pdu;
                    if (row.Rejected == 1)
                        graph._rejected.Add(pdu.EventId);
                    next.AddRange(pdu.AuthEvents.Where(id => !graph._events.ContainsKey(id)));
                }
            }
            frontier = next.Distinct().Where(id => !graph._events.ContainsKey(id)).ToList();
        }
        return graph;
    }
}
