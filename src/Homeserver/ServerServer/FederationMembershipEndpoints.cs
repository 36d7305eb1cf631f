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
/// Spec (server-server): joining, leaving and knocking on a room of this server from another one (<c>make_*</c>,
/// <c>send_*</c>; the deprecated v1 <c>send_join</c> and <c>send_leave</c> too, which answer <c>[200, body]</c>).
/// </summary>
public sealed class FederationMembershipEndpoints(
    FederationRequestAuth auth, EventSpine spine, ServerKeyService keys, Database db, RoomStore rooms, EventCache events, RoomReader reader,
    ServerRoomAccess access, RestrictedJoins restrictedJoins, Matrix.Federation.Crypto.Ed25519KeyPair signingKey, HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet($"{FederationQueryEndpoints.FederationPrefix}/v1/make_join/{{roomId}}/{{userId}}", MakeJoinAsync);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v2/send_join/{{roomId}}/{{eventId}}", SendJoinAsync);
        app.MapGet($"{FederationQueryEndpoints.FederationPrefix}/v1/make_leave/{{roomId}}/{{userId}}", MakeLeaveAsync);
        app.MapGet($"{FederationQueryEndpoints.FederationPrefix}/v1/make_knock/{{roomId}}/{{userId}}", MakeKnockAsync);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/send_knock/{{roomId}}/{{eventId}}", SendKnockAsync);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v2/send_leave/{{roomId}}/{{eventId}}", SendLeaveAsync);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/send_join/{{roomId}}/{{eventId}}", SendJoinV1Async);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/send_leave/{{roomId}}/{{eventId}}", SendLeaveV1Async);
    }

    private Task MakeLeaveAsync(HttpContext context) => MakeMembershipAsync(context, "leave");

    private Task MakeKnockAsync(HttpContext context) => MakeMembershipAsync(context, "knock");

    /// <summary>
    /// A membership template (<c>make_leave</c>, <c>make_knock</c>; <c>make_join</c> adds restricted-join authorisers)
    /// for one of the origin's users, when the room's version is one the origin supports.
    /// </summary>
    private async Task MakeMembershipAsync(HttpContext context, string membership, Func<RoomSnapshot, string, Task<string?>>? authoriserFor = null)
    {
        var (origin, _) = await auth.AuthenticateAsync(context);
        var room = await KnownRoomAsync(context);
        await access.EnsureAllowedAsync(room, origin, context.RequestAborted);
        var userId = context.Route("userId");
        if (!UserId.TryParse(userId, out var user) || user.Server.Value != origin)
            throw MatrixException.Forbidden($"A server may only make {membership}s for its own users.");
        // Without ver the requesting server supports only room version 1 (knocks have no such default).
        var supported = context.Request.Query["ver"].Where(v => v is not null).Select(v => v!).DefaultIfEmpty(membership == "knock" ? "" : "1").ToList();
        if ((membership != "leave" && !supported.Contains(room.Version.Id)) || (membership == "knock" && !room.Version.KnockJoinRule))
            throw new MatrixException(400, "M_INCOMPATIBLE_ROOM_VERSION", $"The room has version {room.Version.Id}.",
                new JsonObject { ["room_version"] = room.Version.Id });
        // A room this server has left (nobody of it joined) is not this server's to let anyone into (404, as Synapse).
        if (membership == "join" && !room.JoinedServers.Contains(config.ServerName))
            throw MatrixException.NotFound("No user of this server is in the room.");
        var authoriser = authoriserFor is null ? null : await authoriserFor(room, userId);
        var template = await spine.MembershipTemplateAsync(room, userId, membership, context.RequestAborted, authoriser);
        await context.WriteJsonAsync(new JsonObject { ["room_version"] = room.Version.Id, ["event"] = template });
    }

    private async Task SendKnockAsync(HttpContext context)
    {
        var (room, _) = await ReceiveMembershipAsync(context, "knock");
        var state = await reader.StrippedStateAsync(room, context.RequestAborted);
        // Synapse 1.37 to 1.69 read the stripped state from "knock_state_events" (and fail the knock without it).
        await context.WriteJsonAsync(new JsonObject { ["knock_room_state"] = state, ["knock_state_events"] = state.DeepClone() });
    }

    private async Task SendLeaveAsync(HttpContext context)
    {
        await ReceiveMembershipAsync(context, "leave");
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task SendLeaveV1Async(HttpContext context)
    {
        await ReceiveMembershipAsync(context, "leave");
        await context.WriteJsonAsync(new JsonArray(200, new JsonObject()));
    }

    /// <summary>A send_leave or send_knock: the origin's user's own membership event, through the spine.</summary>
    private async Task<(RoomSnapshot Room, Pdu Pdu)> ReceiveMembershipAsync(HttpContext context, string membership)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        var room = await KnownRoomAsync(context);
        await access.EnsureAllowedAsync(room, origin, context.RequestAborted);
        var pdu = ParseMembership(body, room, context, origin, membership);
        var result = await spine.ReceiveAsync(pdu, await keys.KeysForAsync(pdu, context.RequestAborted), context.RequestAborted);
        if (result.Outcome is not (ReceiveOutcome.Accepted or ReceiveOutcome.Duplicate))
            throw MatrixException.Forbidden($"The {membership} was refused: {result.Reason}");
        return (room, pdu);
    }

    /// <summary>A membership event of one of the origin's users for itself, matching the request path.</summary>
    private static Pdu ParseMembership(JsonNode? body, RoomSnapshot room, HttpContext context, string origin, string membership)
    {
        if (body is not JsonObject json)
            throw MatrixException.BadJson($"The body must be the {membership} event.");
        // Unsigned (no hashes or signatures at all) is refused as any bad signature is (403, as Synapse), not as malformed.
        if (json["signatures"] is not JsonObject || json["hashes"] is not JsonObject)
            throw MatrixException.Forbidden($"The {membership} is not signed.");
        if (!PduParser.TryParseUntrusted(json, room.Version, out var pdu, out var error))
            throw MatrixException.BadJson(error);
        if (pdu.EventId != context.Route("eventId") || pdu.RoomId != room.RoomId)
            throw MatrixException.BadJson("The event does not match the path.");
        if (pdu.Type != "m.room.member" || pdu.Membership != membership || pdu.StateKey != pdu.Sender)
            throw MatrixException.BadJson($"Expected a {membership} of the event's sender.");
        if (EventSigning.ServerOf(pdu.Sender) != origin)
            throw MatrixException.Forbidden($"A server may only send the {membership}s of its own users.");
        return pdu;
    }

    private Task MakeJoinAsync(HttpContext context) =>
        MakeMembershipAsync(context, "join", (room, userId) => restrictedJoins.AuthoriserForAsync(room, userId, context.RequestAborted));

    private async Task SendJoinAsync(HttpContext context) => await context.WriteJsonAsync(await AcceptJoinAsync(context));

    private async Task SendJoinV1Async(HttpContext context) => await context.WriteJsonAsync(new JsonArray(200, await AcceptJoinAsync(context)));

    /// <summary>The origin's user's join, through the spine; the answer: the state before it and its auth chain.</summary>
    private async Task<JsonObject> AcceptJoinAsync(HttpContext context)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        var room = await KnownRoomAsync(context);
        await access.EnsureAllowedAsync(room, origin, context.RequestAborted);
        var pdu = ParseMembership(body, room, context, origin, "join");
        // A restricted join names one of our users as authoriser: this server vouches for it with its signature.
        if (pdu.Content["join_authorised_via_users_server"]?.AsString() is { } authoriser && EventSigning.ServerOf(authoriser) == config.ServerName)
        {
            var countersigned = (JsonObject)pdu.Json.DeepClone();
            EventSigning.AddSignature(countersigned, room.Version, config.ServerName, signingKey);
            pdu = Pdu.Parse(countersigned, room.Version);
        }

        var result = await spine.ReceiveAsync(pdu, await keys.KeysForAsync(pdu, context.RequestAborted), context.RequestAborted);
        if (result.Outcome is not (ReceiveOutcome.Accepted or ReceiveOutcome.Duplicate))
            throw MatrixException.Forbidden($"The join was refused: {result.Reason}");

        var row = await db.ReadAsync(s => rooms.GetEventAsync(s, pdu.EventId), context.RequestAborted);
        var stateAfter = await reader.StateGroupAsync(row!.StateGroup, context.RequestAborted);
        // The state before the join: the state after it, with the joiner's previous membership (an invite, say) back.
        var stateBefore = stateAfter.Where(e => e.Value != pdu.EventId).ToDictionary(e => e.Key, e => e.Value);
        var prevRow = await db.ReadAsync(s => rooms.GetEventAsync(s, pdu.PrevEvents[0]), context.RequestAborted);
        if (prevRow is not null && (await reader.StateGroupAsync(prevRow.StateGroup, context.RequestAborted))
                .TryGetValue(pdu.StateKeyPair, out var previousMembership))
            stateBefore[pdu.StateKeyPair] = previousMembership;
        var state = await events.LoadAsync(room.Version, stateBefore.Values.ToList(), context.RequestAborted);
        var authChain = await events.AuthChainAsync(room.Version, state.Append(pdu), context.RequestAborted);
        return new JsonObject
        {
            ["origin"] = config.ServerName,
            ["members_omitted"] = false,
            ["state"] = new JsonArray(state.Select(e => (JsonNode)e.Json.DeepClone()).ToArray()),
            ["auth_chain"] = new JsonArray(authChain.Select(e => (JsonNode)e.Json.DeepClone()).ToArray()),
            ["event"] = pdu.Json.DeepClone(),
        };
    }

    private async Task<RoomSnapshot> KnownRoomAsync(HttpContext context)
    {
        var roomId = context.Route("roomId");
        if (!RoomId.TryParse(roomId, out _))
            throw MatrixException.InvalidParam("Invalid room ID.");
        return await spine.GetRoomAsync(roomId, context.RequestAborted) ?? throw MatrixException.NotFound("This server does not know the room.");
    }

}
