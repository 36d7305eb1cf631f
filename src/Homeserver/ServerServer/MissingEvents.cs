using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Closes a gap between this server's forward extremities of a room and later events another server knows:
/// <c>get_missing_events</c> from that server (pages of at most <see cref="Limit"/>, Synapse's own cap, each asked from
/// the oldest events of the one before), then every returned event received through the spine, oldest first.
/// </summary>
public sealed class MissingEvents(FederationClient client, EventSpine spine, ServerKeyService keys, Database db, RoomStore rooms,
    ILogger<MissingEvents> logger)
{
    public const int Limit = 20;

    /// <param name="pages">how many pages to ask for at most before giving up on the gap's far end</param>
    /// <returns>the fetched events still missing prev or auth events (the gap's far end was not reached), oldest first</returns>
    public async Task<List<Pdu>> FetchAsync(string server, RoomSnapshot room, IReadOnlyCollection<string> latestEvents, int pages, CancellationToken ct)
    {
        var fetched = new Dictionary<string, Pdu>(StringComparer.Ordinal);
        var latest = latestEvents;
        for (var page = 0; page < pages && latest.Count > 0; page++)
        {
            var events = await PageAsync(server, room, latest, ct);
            if (events.Count == 0)
                break;
            foreach (var pdu in events)
                fetched.TryAdd(pdu.EventId, pdu);
            var citedElsewhere = events.SelectMany(e => e.PrevEvents).Where(id => !fetched.ContainsKey(id)).Distinct().ToList();
            var here = (await db.ReadAsync(s => rooms.GetEventsAsync(s, citedElsewhere), ct)).Select(r => r.EventId).ToHashSet();
            var stillMissing = citedElsewhere.Where(id => !here.Contains(id)).ToHashSet();
            latest = events.Where(e => e.PrevEvents.Any(stillMissing.Contains)).Select(e => e.EventId).ToList();
        }
        var stuck = new List<Pdu>();
        foreach (var pdu in fetched.Values.OrderBy(e => e.Depth).ThenBy(e => e.OriginServerTs))
            if ((await spine.ReceiveAsync(pdu, await keys.KeysForAsync(pdu, ct), ct)).Outcome == ReceiveOutcome.MissingEvents)
                stuck.Add(pdu);
        return stuck;
    }

    private async Task<List<Pdu>> PageAsync(string server, RoomSnapshot room, IReadOnlyCollection<string> latest, CancellationToken ct)
    {
        var request = new JsonObject
        {
            ["earliest_events"] = new JsonArray(room.Extremities.Select(e => (JsonNode)e.EventId).ToArray()),
            ["latest_events"] = new JsonArray(latest.Select(id => (JsonNode)id).ToArray()),
            ["limit"] = Limit,
            ["min_depth"] = room.Extremities.Min(e => e.Depth),
        };
        try
        {
            var events = (await client.SendAsync(HttpMethod.Post, server, $"/_matrix/federation/v1/get_missing_events/{Uri.EscapeDataString(room.RoomId)}", request, ct)
                as JsonObject)?["events"] as JsonArray ?? [];
            return events.OfType<JsonObject>().Select(e => PduParser.TryParseUntrusted(e, room.Version, out var p, out _) ? p : null).OfType<Pdu>()
                .Where(e => e.RoomId == room.RoomId).ToList();
        }
        catch (FederationException e)
        {
            logger.LogInformation("get_missing_events from {Server} failed: {Reason}", server, e.Message);
            return [];
        }
    }
}
