using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Closes a gap between this server's forward extremities of a room and later events another server knows:
/// <c>get_missing_events</c> from that server, each returned event then received through the spine, oldest first.
/// </summary>
public sealed class MissingEvents(FederationClient client, EventSpine spine, ServerKeyService keys, ILogger<MissingEvents> logger)
{
    public const int Limit = 20;

    public async Task FetchAsync(string server, RoomSnapshot room, IReadOnlyCollection<string> latestEvents, CancellationToken ct)
    {
        var request = new JsonObject
        {
            ["earliest_events"] = new JsonArray(room.Extremities.Select(e => (JsonNode)e.EventId).ToArray()),
            ["latest_events"] = new JsonArray(latestEvents.Select(id => (JsonNode)id).ToArray()),
            ["limit"] = Limit,
            ["min_depth"] = room.Extremities.Min(e => e.Depth),
        };
        JsonArray missing;
        try
        {
            missing = (await client.SendAsync(HttpMethod.Post, server, $"/_matrix/federation/v1/get_missing_events/{Uri.EscapeDataString(room.RoomId)}", request, ct)
                as JsonObject)?["events"] as JsonArray ?? [];
        }
        catch (FederationException e)
        {
            logger.LogInformation("get_missing_events from {Server} failed: {Reason}", server, e.Message);
            return;
        }
        var parsed = missing.OfType<JsonObject>().Select(e => PduParser.TryParseUntrusted(e, room.Version, out var p, out _) ? p : null).OfType<Pdu>()
            .Where(e => e.RoomId == room.RoomId).OrderBy(e => e.Depth).ThenBy(e => e.OriginServerTs).ToList();
        foreach (var earlier in parsed)
            await spine.ReceiveAsync(earlier, await keys.KeysForAsync(earlier, ct), ct);
    }
}
