using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Spec (server-server): invites v2 both ways. Receiving: a local user's invite is checked, counter-signed and kept with
/// its stripped room state until they join or reject it. Sending: an invite to another server's user goes there to be
/// counter-signed before it is stored.
/// </summary>
public sealed class FederationInvites(
    FederationRequestAuth auth, FederationClient client, ServerKeyService keys, Database db, EventSpine spine, ServerRoomAccess access, RemoteInviteStore invites,
    StreamPositions streams, RoomReader reader, SyncNotifier notifier, HomeserverConfig config, Ed25519KeyPair signingKey,
    AccountData.InvitePermissions invitePermissions, Push.PushActionsWriter pushActions, Push.PushSender pushSender, Admin.BlockedRoomStore blockedRooms) : IEndpoints
{
    public const int MaxInviteStateEvents = 50;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v2/invite/{{roomId}}/{{eventId}}", ReceiveInviteAsync);
        app.MapPut($"{FederationQueryEndpoints.FederationPrefix}/v1/invite/{{roomId}}/{{eventId}}", ReceiveInviteV1Async);
    }

    /// <summary>For <see cref="NewEvent.BeforePersist"/>: has the invitee's server counter-sign an invite.</summary>
    public async Task<Pdu> CountersignAsync(RoomSnapshot room, Pdu invite, CancellationToken ct)
    {
        var server = EventSigning.ServerOf(invite.StateKey!)!;
        var stripped = await reader.StrippedStateAsync(room, ct, inviter: invite.Sender);
        var body = new JsonObject { ["room_version"] = room.Version.Id, ["event"] = invite.Json.DeepClone(), ["invite_room_state"] = stripped };
        var path = $"{Uri.EscapeDataString(invite.RoomId)}/{Uri.EscapeDataString(invite.EventId)}";
        JsonObject? answer;
        try
        {
            try
            {
                answer = await client.SendAsync(HttpMethod.Put, server, $"/_matrix/federation/v2/invite/{path}", body, ct) as JsonObject;
            }
            catch (FederationException e) when (e.IsUnknownEndpoint && room.Version.EventIdFormat == EventIdFormat.ServerChosen)
            {
                // A server without the v2 API: the v1 invite carries the event itself, its stripped state in unsigned.
                var legacy = (JsonObject)invite.Json.DeepClone();
                ((JsonObject)(legacy["unsigned"] ??= new JsonObject()))["invite_room_state"] = stripped.DeepClone();
                answer = (await client.SendAsync(HttpMethod.Put, server, $"/_matrix/federation/v1/invite/{path}", legacy, ct) as JsonArray)?[1] as JsonObject;
            }
        }
        catch (FederationException e) when (e.Status is 400 or 403 or 404)
        {
            throw MatrixException.Forbidden($"{server} refused the invite: {e.Message}");
        }
        catch (FederationException e)
        {
            throw new MatrixException(502, "M_UNKNOWN", $"Could not reach {server} to invite: {e.Message}");
        }
        // An answer that is no valid event of the room's version (floats, say) is bad JSON, as Synapse reports it.
        if (answer?["event"] is JsonObject returned && !PduParser.TryParseUntrusted(returned, room.Version, out _, out var invalid))
            throw MatrixException.BadJson($"{server} answered the invite with an invalid event: {invalid}");
        if (answer?["event"] is not JsonObject signed || !PduParser.TryParse(signed, room.Version, out var countersigned, out _)
            || countersigned.EventId != invite.EventId
            || !EventSigning.HasValidSignatures(countersigned, await keys.KeysForAsync(countersigned, ct), out _)
            || JsonSigning.SigningKeyIds(countersigned.Json, server).Count == 0)
            throw new MatrixException(502, "M_UNKNOWN", $"{server} did not counter-sign the invite.");
        return countersigned;
    }

    private async Task ReceiveInviteAsync(HttpContext context)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        if (body is not JsonObject request || request["event"] is not JsonObject eventJson)
            throw MatrixException.BadJson("An invite needs an event.");
        var signed = await AcceptInviteAsync(context, origin, eventJson, request["room_version"]?.AsString() ?? "1", request["invite_room_state"] as JsonArray);
        await context.WriteJsonAsync(new JsonObject { ["event"] = signed });
    }

    /// <summary>
    /// The deprecated v1 invite (spec: server-server, still served as Synapse does): the body is the event itself, its
    /// room's version 1 (v1 predates versions), the stripped state in <c>unsigned.invite_room_state</c>, the answer
    /// <c>[200, {"event": ...}]</c>.
    /// </summary>
    private async Task ReceiveInviteV1Async(HttpContext context)
    {
        var (origin, body) = await auth.AuthenticateAsync(context);
        if (body is not JsonObject eventJson)
            throw MatrixException.BadJson("The body must be the invite event.");
        var signed = await AcceptInviteAsync(context, origin, eventJson, "1", (eventJson["unsigned"] as JsonObject)?["invite_room_state"] as JsonArray);
        await context.WriteJsonAsync(new JsonArray(200, new JsonObject { ["event"] = signed }));
    }

    /// <summary>Checks an invite of one of the origin's users to one of ours, keeps it, and returns it signed by this server.</summary>
    private async Task<JsonObject> AcceptInviteAsync(HttpContext context, string origin, JsonObject eventJson, string versionId, JsonArray? inviteRoomState)
    {
        var ct = context.RequestAborted;
        var version = RoomVersions.Find(versionId)
            ?? throw new MatrixException(400, "M_INCOMPATIBLE_ROOM_VERSION", $"Room version {versionId} is not supported.",
                new JsonObject { ["room_version"] = versionId });
        if (!PduParser.TryParseUntrusted(eventJson, version, out var invite, out var error))
            throw MatrixException.BadJson(error);
        if (invite.EventId != context.Route("eventId") || invite.RoomId != context.Route("roomId"))
            throw MatrixException.BadJson("The event does not match the path.");
        if (invite.Type != "m.room.member" || invite.Membership != "invite" || EventSigning.ServerOf(invite.Sender) != origin)
            throw MatrixException.BadJson("Only invites by the origin's users are accepted here.");
        // Whether the user exists yet is not asked (as Synapse): the invite waits for them.
        if (!UserId.TryParse(invite.StateKey, out var invitee) || invitee.Server.Value != config.ServerName)
            throw MatrixException.BadJson("The invite is not for a user of this server.");
        await blockedRooms.RefuseIfBlockedAsync(db, invite.RoomId, ct);
        if (await spine.GetRoomAsync(invite.RoomId, ct) is { } knownRoom)
            await access.EnsureAllowedAsync(knownRoom, origin, ct);
        await invitePermissions.CheckAsync(invitee.Value, ct);
        // The invite must carry its sender's server's signature; a third-party one requires ours too, added below.
        var signers = EventSigning.RequiredSigners(invite).Where(s => s != config.ServerName).Append(origin).Distinct().ToList();
        if (!EventSigning.HasValidSignaturesFrom(invite, signers, await keys.KeysForAsync(invite, ct, signers), out var signatureError))
            throw MatrixException.Forbidden(signatureError);

        var signed = (JsonObject)invite.Json.DeepClone();
        EventSigning.AddSignature(signed, version, config.ServerName, signingKey);
        var stripped = (inviteRoomState ?? []).OfType<JsonObject>().Take(MaxInviteStateEvents)
            .Where(e => e["type"] is JsonValue && e["content"] is JsonObject).Select(e => (JsonNode)e.DeepClone()).ToArray();
        await db.WriteAsync(async s =>
        {
            var position = await streams.NextAsync(s, "events");
            await invites.SetAsync(s, new RemoteInviteRow(invite.RoomId, invitee.Value, invite.EventId, version.Id,
                CanonicalJson.EncodeToString(signed), new JsonArray(stripped).ToJsonString(), position, "invite", origin));
            await pushActions.OnRemoteInviteAsync(s, invite, invitee.Value, position);
        }, ct);
        notifier.Notify([invitee.Value]);
        pushSender.WakeFor([invitee.Value]);
        return signed;
    }
}
