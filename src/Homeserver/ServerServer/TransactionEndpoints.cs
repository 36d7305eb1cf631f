using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Spec (server-server): <c>PUT /send/{txnId}</c>. Each PDU goes through the spine (format, signatures, hashes, auth,
/// soft-fail) and gets its own result; EDUs (typing, receipts, presence, device lists, cross-signing keys, to-device
/// messages) are applied for the origin's own users (<see cref="InboundEdus"/>; by the main process, for which an event
/// writer receiving the transaction queues them).
/// A transaction is processed once per origin and txnId; a retry gets the first answer.
/// </summary>
public sealed class TransactionEndpoints(
    FederationRequestAuth auth, Database db, EventSpine spine, ServerKeyService keys, Matrix.Federation.Transport.FederationClient client,
    ServerRoomAccess access, RoomStore rooms, InboundEdus inboundEdus, InboundEduQueue inboundEduQueue, HomeserverConfig config, TimeProvider clock,
    MissingEvents missingEvents, ILogger<TransactionEndpoints> logger) : IEndpoints
{
    public const int MaxPdus = 50;
    public const int MaxEdus = 100;
    /// <summary>State and auth events fetched at most to bridge one gap.</summary>
    public const int MaxGapEvents = 1000;

    public void Map(IEndpointRouteBuilder app) => app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/send/{{txnId}}", SendAsync);

    private async Task SendAsync(HttpContext context)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        var txnId = context.Route("txnId");
        var ct = context.RequestAborted;
        var previous = await db.ReadAsync(s => s.QuerySingleOrDefaultAsync<string>(
            "SELECT response_json FROM federation_inbound_txns WHERE origin = @origin AND txn_id = @txnId", new { origin, txnId }), ct);
        if (previous is not null)
        {
            await context.WriteJsonAsync(JsonNode.Parse(previous)!);
            return;
        }
        if (body is not JsonObject transaction || transaction["pdus"] is not JsonArray pdus)
            throw MatrixException.BadJson("A transaction needs a pdus array.");
        var edus = transaction["edus"] as JsonArray ?? [];
        if (pdus.Count > MaxPdus || edus.Count > MaxEdus)
            throw MatrixException.BadJson($"A transaction carries at most {MaxPdus} PDUs and {MaxEdus} EDUs.");

        var results = new JsonObject();
        foreach (var node in pdus)
            if (node is JsonObject pduJson && await ReceivePduAsync(origin, pduJson, ct) is { } result)
                results[result.EventId] = result.Error is null ? new JsonObject() : new JsonObject { ["error"] = result.Error };
        if (config.Worker.IsMain)
            foreach (var edu in edus.OfType<JsonObject>())
                await inboundEdus.ApplyAsync(origin, edu, ct);
        else
            await inboundEduQueue.EnqueueAsync(origin, edus.OfType<JsonObject>().ToList(), ct);

        var response = new JsonObject { ["pdus"] = results };
        await db.WriteAsync(s => s.ExecuteAsync(
            "INSERT INTO federation_inbound_txns (origin, txn_id, response_json, received_ts) VALUES (@origin, @txnId, @json, @now) ON CONFLICT DO NOTHING",
            new { origin, txnId, json = response.ToJsonString(), now = clock.GetUtcNow().ToUnixTimeMilliseconds() }), ct);
        await context.WriteJsonAsync(response);
    }

    /// <summary>One PDU; null when it cannot even be identified (unknown room, unparseable).</summary>
    private async Task<(string EventId, string? Error)?> ReceivePduAsync(string origin, JsonObject json, CancellationToken ct)
    {
        if (json["room_id"] is not JsonValue roomValue || !roomValue.TryGetValue<string>(out var roomId)
            || await spine.GetRoomAsync(roomId, ct) is not { } room)
            return null;
        if (!PduParser.TryParseUntrusted(json, room.Version, out var pdu, out var error))
        {
            logger.LogInformation("Dropped a malformed PDU from {Origin}: {Error}", origin, error);
            return null;
        }
        if (!await access.IsAllowedAsync(room, origin, ct))
        {
            logger.LogInformation("Dropped a PDU from {Origin}, which the server ACL of {Room} bans", origin, roomId);
            return (pdu.EventId, "the room's server ACL bans the origin server");
        }
        // The origin speaks for its own users only (third-party invites aside, which name their own signer).
        if (UserId.TryParse(pdu.Sender, out var sender) && sender.Server.Value != origin
            && !(pdu.Type == "m.room.member" && pdu.Content.ContainsKey("third_party_invite")))
            return (pdu.EventId, "the sender does not belong to the origin server");
        var result = await spine.ReceiveAsync(pdu, await keys.KeysForAsync(pdu, ct), ct);
        if (result.Outcome == ReceiveOutcome.MissingEvents)
        {
            // What get_missing_events brought but could not place (the gap's far end not reached) is placed on the state
            // before its own missing prev events, and the events after it follow. A sender that divulges nothing of the
            // events its event cites gets it refused (as Synapse does), not taken on the state it claims for them.
            var stuck = await missingEvents.FetchAsync(origin, room, [pdu.EventId], pages: 1, ct);
            if (stuck.Count > 0)
            {
                await BridgeGapAsync(origin, room, stuck[0], ct);
                foreach (var fetched in stuck)
                    await spine.ReceiveAsync(fetched, await keys.KeysForAsync(fetched, ct), ct);
            }
            result = await spine.ReceiveAsync(pdu, await keys.KeysForAsync(pdu, ct), ct);
        }
        // A rejected event was handled (kept as rejected, as the spec's auth rules say): no error, as Synapse answers.
        return (pdu.EventId, result.Outcome is ReceiveOutcome.Dropped or ReceiveOutcome.MissingEvents ? result.Reason : null);
    }

    /// <summary>
    /// A gap <c>get_missing_events</c> could not close (it brought events whose own prev events are still missing): each
    /// missing prev event is fetched with the room state before it (<c>state_ids</c>, then the events this server lacks,
    /// one by one) and stored as an outlier with that state.
    /// </summary>
    private async Task BridgeGapAsync(string origin, RoomSnapshot room, Pdu pdu, CancellationToken ct)
    {
        var known = (await db.ReadAsync(s => rooms.GetEventsAsync(s, pdu.PrevEvents.ToList()), ct)).Select(r => r.EventId).ToHashSet();
        foreach (var prevId in pdu.PrevEvents.Where(id => !known.Contains(id)))
        {
            try
            {
                var r = Uri.EscapeDataString(room.RoomId);
                var ids = await client.SendAsync(HttpMethod.Get, origin, $"/_matrix/federation/v1/state_ids/{r}?event_id={Uri.EscapeDataString(prevId)}", null, ct) as JsonObject;
                var stateIds = (ids?["pdu_ids"] as JsonArray ?? []).Select(n => n.AsString()).OfType<string>().Take(MaxGapEvents).ToList();
                var authIds = (ids?["auth_chain_ids"] as JsonArray ?? []).Select(n => n.AsString()).OfType<string>().Take(MaxGapEvents).ToList();
                var wanted = stateIds.Concat(authIds).Append(prevId).Distinct().ToList();
                var have = (await db.ReadAsync(s => rooms.GetEventsAsync(s, wanted), ct)).Select(e => e.EventId).ToHashSet();
                var fetched = new List<Pdu>();
                foreach (var id in wanted.Where(id => !have.Contains(id)))
                {
                    var answer = await client.SendAsync(HttpMethod.Get, origin, $"/_matrix/federation/v1/event/{Uri.EscapeDataString(id)}", null, ct) as JsonObject;
                    if ((answer?["pdus"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault() is { } json && PduParser.TryParseUntrusted(json, room.Version, out var fetchedPdu, out _)
                        && fetchedPdu.EventId == id)
                        fetched.Add(fetchedPdu);
                }
                if (fetched.FirstOrDefault(e => e.EventId == prevId) is not { } prev)
                    continue;
                await spine.ImportGapAsync(room, prev, stateIds, fetched, e => keys.KeysForAsync(e, ct), ct);
            }
            catch (Matrix.Federation.Transport.FederationException e)
            {
                logger.LogInformation("Bridging the gap before {Event} through {Origin} failed: {Reason}", pdu.EventId, origin, e.Message);
            }
        }
    }
}
