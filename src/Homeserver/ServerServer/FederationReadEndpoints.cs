using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Spec (server-server): reading rooms — <c>event</c>, <c>state</c>, <c>state_ids</c>, <c>event_auth</c>,
/// <c>backfill</c>, <c>get_missing_events</c> — with server ACLs and history visibility checked for the asking server.
/// Events whose sender was erased go out redacted from these (as Synapse sends them); the room's state does not.
/// </summary>
public sealed class FederationReadEndpoints(
    FederationRequestAuth auth, EventSpine spine, ServerRoomAccess access, Database db, RoomStore rooms, EventCache events,
    Accounts.ErasedUsers erasedUsers, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public const int MaxEvents = 100;

    public void Map(IEndpointRouteBuilder app)
    {
        var prefix = FederationQueryEndpoints.FederationPrefix;
        app.MapGet($"{prefix}/v1/event/{{eventId}}", EventAsync);
        app.MapGet($"{prefix}/v1/state/{{roomId}}", StateAsync);
        app.MapGet($"{prefix}/v1/state_ids/{{roomId}}", StateIdsAsync);
        app.MapGet($"{prefix}/v1/event_auth/{{roomId}}/{{eventId}}", EventAuthAsync);
        app.MapGet($"{prefix}/v1/backfill/{{roomId}}", BackfillAsync);
        app.MapPost($"{prefix}/v1/get_missing_events/{{roomId}}", MissingEventsAsync);
    }

    private async Task<JsonObject> TransactionAsync(RoomVersion version, IEnumerable<Pdu> pdus, CancellationToken ct) => new()
    {
        ["origin"] = config.ServerName,
        ["origin_server_ts"] = clock.GetUtcNow().ToUnixTimeMilliseconds(),
        ["pdus"] = await ForServerAsync(version, pdus, ct),
    };

    /// <summary>The events as another server gets them: redacted when their sender was erased.</summary>
    private async Task<JsonArray> ForServerAsync(RoomVersion version, IEnumerable<Pdu> pdus, CancellationToken ct)
    {
        var erased = await erasedUsers.GetAsync(ct);
        return new JsonArray(pdus.Select(p => (JsonNode)(erased.Contains(p.Sender) ? Redaction.Redact(p.Json, version) : p.Json.DeepClone())).ToArray());
    }

    private async Task EventAsync(HttpContext context)
    {
        var (origin, _) = await auth.AuthenticateAsync(context);
        var (room, row, pdu) = await VisibleEventAsync(context.Route("eventId"), null, origin, context.RequestAborted);
        await context.WriteJsonAsync(await TransactionAsync(room.Version, [pdu], context.RequestAborted));
    }

    /// <summary>The state before the event named by <c>event_id</c>, and its auth chain, for a server in the room that may see it.</summary>
    private async Task<(List<Pdu> State, List<Pdu> AuthChain)> StateBeforeRequestedEventAsync(HttpContext context)
    {
        var (origin, _) = await auth.AuthenticateAsync(context);
        await RoomAsync(context.Route("roomId"), origin, context.RequestAborted);
        var (room, row, pdu) = await VisibleEventAsync(context.Query("event_id"), context.Route("roomId"), origin, context.RequestAborted);
        // An outlier's state is not this server's to vouch for (it was taken from another server, or is unknown).
        if (row.Outlier == 1)
            throw MatrixException.NotFound("The event is an outlier: its state is not known here.");
        var state = await events.LoadAsync(room.Version, (await spine.StateBeforeEventAsync(room, pdu, context.RequestAborted)).Values.ToList(), context.RequestAborted);
        return (state, await events.AuthChainAsync(room.Version, state, context.RequestAborted));
    }

    private async Task StateAsync(HttpContext context)
    {
        var (state, authChain) = await StateBeforeRequestedEventAsync(context);
        await context.WriteJsonAsync(new JsonObject
        {
            ["pdus"] = new JsonArray(state.Select(e => (JsonNode)e.Json.DeepClone()).ToArray()),
            ["auth_chain"] = new JsonArray(authChain.Select(e => (JsonNode)e.Json.DeepClone()).ToArray()),
        });
    }

    private async Task StateIdsAsync(HttpContext context)
    {
        var (state, authChain) = await StateBeforeRequestedEventAsync(context);
        await context.WriteJsonAsync(new JsonObject
        {
            ["pdu_ids"] = new JsonArray(state.Select(e => (JsonNode)e.EventId).ToArray()),
            ["auth_chain_ids"] = new JsonArray(authChain.Select(e => (JsonNode)e.EventId).ToArray()),
        });
    }

    private async Task EventAuthAsync(HttpContext context)
    {
        var (origin, _) = await auth.AuthenticateAsync(context);
        await RoomAsync(context.Route("roomId"), origin, context.RequestAborted);
        var (room, _, pdu) = await VisibleEventAsync(context.Route("eventId"), context.Route("roomId"), origin, context.RequestAborted);
        var chain = await events.AuthChainAsync(room.Version, [pdu], context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["auth_chain"] = new JsonArray(chain.Select(e => (JsonNode)e.Json.DeepClone()).ToArray()) });
    }

    /// <summary>Events before the given ones, walking prev_events newest first, that the server may see.</summary>
    private async Task BackfillAsync(HttpContext context)
    {
        var (origin, _) = await auth.AuthenticateAsync(context);
        var room = await RoomAsync(context.Route("roomId"), origin, context.RequestAborted);
        var limit = int.TryParse(context.Query("limit"), out var l) ? Math.Clamp(l, 0, MaxEvents) : 10;
        var from = context.Request.Query["v"].OfType<string>().ToList();
        var found = await WalkBackAsync(room, origin, from, includeStart: true, new HashSet<string>(), limit, context.RequestAborted);
        await context.WriteJsonAsync(await TransactionAsync(room.Version, found, context.RequestAborted));
    }

    private async Task MissingEventsAsync(HttpContext context)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        var room = await RoomAsync(context.Route("roomId"), origin, context.RequestAborted);
        var request = body as JsonObject ?? throw MatrixException.BadJson("Expected a JSON object.");
        var latest = (request["latest_events"] as JsonArray ?? []).Select(e => e.AsString()).OfType<string>().Take(MaxEvents).ToList();
        var earliest = (request["earliest_events"] as JsonArray ?? []).Select(e => e.AsString()).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var limit = request["limit"].TryGetInteger(out var l) ? (int)Math.Clamp(l, 0, MaxEvents) : 10;
        var minDepth = request["min_depth"].TryGetInteger(out var d) ? d : 0;
        var found = await WalkBackAsync(room, origin, latest, includeStart: false, earliest, limit, context.RequestAborted);
        var result = found.Where(e => e.Depth >= minDepth).OrderBy(e => e.Depth).ThenBy(e => e.OriginServerTs).ToList();
        await context.WriteJsonAsync(new JsonObject { ["events"] = await ForServerAsync(room.Version, result, context.RequestAborted) });
    }

    /// <summary>Breadth-first over prev_events from <paramref name="start"/>, newest first, not past <paramref name="stopAt"/>.</summary>
    private async Task<List<Pdu>> WalkBackAsync(RoomSnapshot room, string origin, List<string> start, bool includeStart, ISet<string> stopAt,
        int limit, CancellationToken ct)
    {
        var found = new List<Pdu>();
        var seen = new HashSet<string>(stopAt, StringComparer.Ordinal);
        var frontier = new List<string>();
        if (includeStart)
            frontier.AddRange(start);
        else
            foreach (var pdu in await events.LoadAsync(room.Version, start, ct))
                frontier.AddRange(pdu.PrevEvents);
        while (frontier.Count > 0 && found.Count < limit)
        {
            var rows = await db.ReadAsync(s => rooms.GetEventsAsync(s, frontier.Where(seen.Add).ToList()), ct);
            frontier = [];
            foreach (var row in rows.Where(r => r.RoomId == room.RoomId && r.Outlier == 0).OrderByDescending(r => r.Depth))
            {
                if (found.Count >= limit)
                    break;
                var pdu = events.FromRow(row, room.Version);
                if (row.Rejected == 0 && await access.CanSeeAsync(room, row, origin, ct))
                    found.Add(pdu);
                frontier.AddRange(pdu.PrevEvents);
            }
        }
        return found;
    }

    private async Task<RoomSnapshot> RoomAsync(string roomId, string origin, CancellationToken ct)
    {
        if (!RoomId.TryParse(roomId, out _))
            throw MatrixException.InvalidParam("Invalid room ID.");
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.NotFound("This server does not know the room.");
        await access.EnsureInRoomAsync(room, origin, ct);
        return room;
    }

    /// <summary>An event the asking server may see (in the given room, when one is named); 404 otherwise.</summary>
    private async Task<(RoomSnapshot Room, EventRow Row, Pdu Pdu)> VisibleEventAsync(string eventId, string? roomId, string origin, CancellationToken ct)
    {
        if (!eventId.StartsWith('$'))
            throw MatrixException.InvalidParam("Invalid event ID.");
        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, eventId), ct);
        if (row is null || row.Rejected == 1 || (roomId is not null && row.RoomId != roomId))
            throw MatrixException.NotFound("Event not found.");
        var room = await spine.GetRoomAsync(row.RoomId, ct) ?? throw MatrixException.NotFound("Event not found.");
        await access.EnsureAllowedAsync(room, origin, ct);
        if (!await access.CanSeeAsync(room, row, origin, ct))
            throw MatrixException.NotFound("Event not found.");
        return (room, row, events.FromRow(row, room.Version));
    }

}
