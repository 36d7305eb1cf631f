using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// History this server lacks (from before it joined a room, or a gap a long absence left), fetched with <c>backfill</c>
/// from other servers in the room when a client pages back past an event whose prev events are not here. Each event's
/// signatures and auth (against its own auth events) are checked; accepted events get negative stream positions, so they
/// sort before everything this server saw live (history filling a gap further on thus pages after the room's oldest
/// events: stream positions leave no room between two events).
/// Their history visibility is judged with the room state this server joined with.
/// </summary>
public sealed class RemoteBackfill(Database db, RoomStore rooms, StreamPositions streams, EventCache events, FederationClient client,
    ServerKeyService keys, HomeserverConfig config, ILogger<RemoteBackfill> logger)
{
    public const int Batch = 50;

    /// <summary>Whether any other server in the room could fill a gap (none to ask costs a local room nothing).</summary>
    public bool CanBackfill(RoomSnapshot room) => config.Federation.Enabled && room.JoinedServers.Any(s => s != config.ServerName);

    /// <summary>
    /// The events among <paramref name="rows"/> (timeline events of the room) with history missing before them: a prev
    /// event this server lacks or holds only as an outlier. A prev event of another room is no gap: nothing of this
    /// room's history can fill it.
    /// </summary>
    public async Task<List<EventRow>> GapsAsync(RoomSnapshot room, IReadOnlyCollection<EventRow> rows, CancellationToken ct)
    {
        var prevs = rows.ToDictionary(r => r.EventId, r => events.FromRow(r, room.Version).PrevEvents);
        var outside = prevs.Values.SelectMany(p => p).Where(id => !prevs.ContainsKey(id)).Distinct().ToList();
        if (outside.Count == 0)
            return [];
        var known = (await db.ReadAsync(s => rooms.GetEventsAsync(s, outside), ct))
            .Where(r => FillsNoGap(r, room)).Select(r => r.EventId).ToHashSet(StringComparer.Ordinal);
        return rows.Where(r => prevs[r.EventId].Any(id => !prevs.ContainsKey(id) && !known.Contains(id))).ToList();
    }

    /// <summary>Fetches up to <see cref="Batch"/> events from before <paramref name="gap"/>; true when any were added.</summary>
    public async Task<bool> BackfillAsync(RoomSnapshot room, EventRow gap, CancellationToken ct)
    {
        var prevEvents = events.FromRow(gap, room.Version).PrevEvents;
        var known = (await db.ReadAsync(s => rooms.GetEventsAsync(s, prevEvents.ToList()), ct))
            .Where(r => FillsNoGap(r, room)).Select(r => r.EventId).ToHashSet(StringComparer.Ordinal);
        var query = string.Join('&', prevEvents.Where(id => !known.Contains(id)).Select(id => $"v={Uri.EscapeDataString(id)}"));
        if (query.Length == 0)
            return false;
        foreach (var server in room.JoinedServers.Where(s => s != config.ServerName))
        {
            try
            {
                var answer = await client.SendAsync(HttpMethod.Get, server,
                    $"/_matrix/federation/v1/backfill/{Uri.EscapeDataString(room.RoomId)}?{query}&limit={Batch}", null, ct) as JsonObject;
                var pdus = (answer?["pdus"] as JsonArray ?? []).OfType<JsonObject>().Select(e => Parse(e, room.Version)).OfType<Pdu>()
                    .Where(e => e.RoomId == room.RoomId).ToList();
                if (pdus.Count > 0)
                    return await StoreAsync(room, pdus, gap.StateGroup, ct) > 0;
            }
            catch (FederationException e)
            {
                logger.LogInformation("Backfilling {Room} from {Server} failed: {Reason}", room.RoomId, server, e.Message);
            }
        }
        return false;
    }

    private static bool FillsNoGap(EventRow prev, RoomSnapshot room) => prev.Outlier == 0 || prev.RoomId != room.RoomId;

    private async Task<int> StoreAsync(RoomSnapshot room, List<Pdu> pdus, long stateGroup, CancellationToken ct)
    {
        var byId = pdus.ToDictionary(p => p.EventId);
        var accepted = new List<Pdu>();
        foreach (var pdu in pdus.OrderBy(p => p.Depth))
        {
            var authEvents = new List<Pdu>();
            foreach (var id in pdu.AuthEvents)
                if (byId.TryGetValue(id, out var inBatch))
                    authEvents.Add(inBatch);
                else if (await events.GetAsync(id, room.Version, ct) is { } known)
                    authEvents.Add(known);
            var create = room.Version.RoomIdIsCreateEventHash ? await events.GetAsync("$" + room.RoomId[1..], room.Version, ct) : null;
            if (EventSigning.HasValidSignatures(pdu, await keys.KeysForAsync(pdu, ct), out _)
                && AuthEventSelection.CheckAgainstAuthEvents(pdu, authEvents, _ => false, create).Allowed)
                accepted.Add(pdu);
        }
        var stored = 0;
        await db.WriteAsync(async s =>
        {
            var existing = (await rooms.GetEventsAsync(s, accepted.Select(p => p.EventId).ToList())).ToDictionary(r => r.EventId);
            // Newest first, so older events get lower (more negative) positions.
            foreach (var pdu in accepted.OrderByDescending(p => p.Depth).ThenByDescending(p => p.OriginServerTs))
            {
                if (existing.TryGetValue(pdu.EventId, out var row) && row.Outlier == 0)
                    continue;
                var position = -await streams.NextAsync(s, "backfill");
                if (row is not null)
                    await rooms.PromoteOutlierAsync(s, pdu.EventId, position, stateGroup);
                else
                    await rooms.InsertEventAsync(s, new EventRow(position, pdu.EventId, pdu.RoomId, pdu.Type, pdu.StateKey, pdu.Sender, pdu.Depth,
                        pdu.OriginServerTs, stateGroup, null, pdu.CanonicalText()));
                stored++;
            }
        }, ct);
        foreach (var pdu in accepted)
            events.Add(pdu);
        return stored;
    }

    private static Pdu? Parse(JsonObject json, RoomVersion version) => PduParser.TryParseUntrusted(json, version, out var pdu, out _) ? pdu : null;
}
