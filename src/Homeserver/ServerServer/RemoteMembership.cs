using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Membership in rooms this server does not know yet, or has left. Joining: <c>make_join</c> and <c>send_join</c> (v2) with one
/// of the servers that can help, then the room's state and auth chain are checked and stored by the spine. Rejecting
/// an invite: <c>make_leave</c> and <c>send_leave</c> (v2) with the inviting server.
/// </summary>
public sealed class RemoteMembership(FederationClient client, EventSpine spine, ServerKeyService keys, HomeserverConfig config, Ed25519KeyPair signingKey,
    MissingEvents missingEvents, TimeProvider clock, ILogger<RemoteMembership> logger)
{
    /// <summary>Pages of <c>get_missing_events</c> asked for at most on a rejoin: the last 100 events of the absence.</summary>
    public const int RejoinPages = 5;

    private static readonly string SupportedVersions = string.Join('&', RoomVersions.All.Select(v => $"ver={v.Id}"));

    public async Task JoinAsync(string roomId, string userId, JsonObject profileContent, IEnumerable<string> servers, CancellationToken ct)
    {
        if (!config.Federation.Enabled)
            throw MatrixException.NotFound("This server does not know the room.");
        var failures = new List<string>();
        FederationException? refusal = null;
        foreach (var server in servers.Where(s => s != config.ServerName).Distinct())
        {
            try
            {
                await JoinThroughAsync(server, roomId, userId, profileContent, ct);
                return;
            }
            catch (FederationException e)
            {
                logger.LogInformation("Joining {Room} through {Server} failed: {Reason}", roomId, server, e.Message);
                failures.Add(e.Message);
                // A server in the room said no: its errcode and reason reach the user (as Synapse passes them on).
                if (e.Status == 403)
                    throw new MatrixException(403, e.Errcode ?? "M_FORBIDDEN", $"The join was refused: {e.Message}");
                if (e.Status is >= 400 and < 500 && e.Errcode is not null)
                    refusal ??= e;
            }
        }
        if (refusal is not null)
            throw new MatrixException(refusal.Status, refusal.Errcode!, $"The join was refused: {refusal.Message}", RefusalDetails(refusal));
        throw MatrixException.NotFound(failures.Count == 0 ? "No server to join the room through." : $"Could not join: {string.Join("; ", failures)}");
    }

    /// <summary>What the refusing server said beside errcode and error (the room_version of M_INCOMPATIBLE_ROOM_VERSION, say).</summary>
    private static JsonObject? RefusalDetails(FederationException refusal)
    {
        if (refusal.ErrorBody is not { } body)
            return null;
        var details = new JsonObject();
        foreach (var (key, value) in body)
            if (key is not ("errcode" or "error") && value is JsonValue)
                details[key] = value.DeepClone();
        return details;
    }

    private async Task JoinThroughAsync(string server, string roomId, string userId, JsonObject profileContent, CancellationToken ct)
    {
        var path = $"/_matrix/federation/v1/make_join/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(userId)}?{SupportedVersions}";
        var made = await client.SendAsync(HttpMethod.Get, server, path, null, ct) as JsonObject
            ?? throw new FederationException(0, null, "make_join answered no object");
        var version = RoomVersions.Find(made["room_version"]?.AsString() ?? "1")
            ?? throw new FederationException(0, null, "the room's version is not supported");
        if (made["event"] is not JsonObject template)
            throw new FederationException(0, null, "make_join answered no event");

        var content = (JsonObject)profileContent.DeepClone();
        content["membership"] = "join";
        if ((template["content"] as JsonObject)?["join_authorised_via_users_server"] is { } authoriser)
            content["join_authorised_via_users_server"] = authoriser.DeepClone();
        var pdu = SignedMembership(template, version, roomId, userId, content);
        var join = pdu.Json;

        var sendPath = $"{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(pdu.EventId)}";
        JsonObject answer;
        try
        {
            answer = await client.SendAsync(HttpMethod.Put, server, $"/_matrix/federation/v2/send_join/{sendPath}", join, ct) as JsonObject
                ?? throw new FederationException(0, null, "send_join answered no object");
        }
        catch (FederationException e) when (e.IsUnknownEndpoint)
        {
            // A server without v2: the deprecated v1 answers [200, body].
            answer = (await client.SendAsync(HttpMethod.Put, server, $"/_matrix/federation/v1/send_join/{sendPath}", join, ct) as JsonArray)?[1] as JsonObject
                ?? throw new FederationException(0, null, "v1 send_join answered no [200, object]");
        }
        // A restricted join comes back counter-signed by the authorising server.
        if (answer["event"] is JsonObject signedJoin && Parse(signedJoin, version) is { } countersigned && countersigned.EventId == pdu.EventId)
            pdu = countersigned;
        // Rejoining a room this server had left: what was sent meanwhile (the events before the join, which the resident
        // server now has) comes first, so the history has no hole; a longer absence than that leaves one.
        if (await spine.GetRoomAsync(roomId, ct) is { } left)
            await missingEvents.FetchAsync(server, left, [pdu.EventId], pages: RejoinPages, ct);
        var state = Events(answer["state"], version);
        var authChain = Events(answer["auth_chain"], version);
        await spine.ImportJoinedRoomAsync(pdu, state, authChain, e => keys.KeysForAsync(e, ct), ct);
    }

    /// <summary>
    /// Knocks on a room this server does not know: <c>make_knock</c>/<c>send_knock</c> (v1) through the first server that
    /// answers; returns the knock and the stripped room state that server sent.
    /// </summary>
    public async Task<(Pdu Knock, JsonArray RoomState, string Server)> KnockAsync(string roomId, string userId, JsonObject profileContent,
        IEnumerable<string> servers, CancellationToken ct)
    {
        if (!config.Federation.Enabled)
            throw MatrixException.NotFound("This server does not know the room.");
        var failures = new List<string>();
        foreach (var server in servers.Where(s => s != config.ServerName).Distinct())
        {
            try
            {
                var made = await client.SendAsync(HttpMethod.Get, server,
                    $"/_matrix/federation/v1/make_knock/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(userId)}?{SupportedVersions}", null, ct) as JsonObject;
                if (RoomVersions.Find(made?["room_version"]?.AsString() ?? "") is not { } version || made?["event"] is not JsonObject template)
                    throw new FederationException(0, null, "make_knock answered no usable template");
                var content = (JsonObject)profileContent.DeepClone();
                content["membership"] = "knock";
                var knock = SignedMembership(template, version, roomId, userId, content);
                var answer = await client.SendAsync(HttpMethod.Put, server,
                    $"/_matrix/federation/v1/send_knock/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(knock.EventId)}", knock.Json, ct) as JsonObject;
                // Synapse 1.37 to 1.69 answer with "knock_state_events".
                return (knock, (answer?["knock_room_state"] ?? answer?["knock_state_events"]) as JsonArray ?? [], server);
            }
            catch (FederationException e)
            {
                failures.Add($"{server}: {e.Message}");
                if (e.Status is 403 or 400)
                    throw MatrixException.Forbidden($"{server} refused the knock: {e.Message}");
            }
        }
        throw MatrixException.NotFound(failures.Count == 0 ? "No server to knock through." : $"Could not knock: {string.Join("; ", failures)}");
    }

    /// <summary>
    /// Declines an invite (or withdraws a knock) of a local user to a room this server is not in: the leave is made
    /// and sent through <paramref name="server"/> (make_leave/send_leave). When that server cannot be reached or
    /// refuses, the leave is made here instead, after the invite (an out-of-band membership, as Synapse makes it), so
    /// the user's clients still see the room left. Either way the leave is returned.
    /// </summary>
    public async Task<Pdu> RejectInviteAsync(Pdu invite, string userId, string server, CancellationToken ct)
    {
        var roomId = invite.RoomId;
        try
        {
            var made = await client.SendAsync(HttpMethod.Get, server,
                $"/_matrix/federation/v1/make_leave/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(userId)}", null, ct) as JsonObject;
            if (RoomVersions.Find(made?["room_version"]?.AsString() ?? "1") is { } version && made?["event"] is JsonObject template)
            {
                var leave = SignedMembership(template, version, roomId, userId, new JsonObject { ["membership"] = "leave" });
                await client.SendAsync(HttpMethod.Put, server,
                    $"/_matrix/federation/v2/send_leave/{Uri.EscapeDataString(roomId)}/{Uri.EscapeDataString(leave.EventId)}", leave.Json, ct);
                return leave;
            }
        }
        catch (FederationException e)
        {
            logger.LogInformation("Rejecting the invite to {Room} through {Server} failed: {Reason}", roomId, server, e.Message);
        }
        JsonNode Reference() => invite.Version.EventIdFormat == EventIdFormat.ServerChosen
            ? new JsonArray(invite.EventId, new JsonObject { ["sha256"] = invite.Json["hashes"]?["sha256"]?.DeepClone() })
            : invite.EventId;
        var outOfBand = new JsonObject
        {
            ["type"] = "m.room.member",
            ["prev_events"] = new JsonArray(Reference()),
            ["auth_events"] = new JsonArray(Reference()),
            ["depth"] = invite.Depth + 1,
        };
        return SignedMembership(outOfBand, invite.Version, roomId, userId, new JsonObject { ["membership"] = "leave" });
    }

    /// <summary>Fills in a make_join/make_leave template for a local user and hashes and signs it.</summary>
    private Pdu SignedMembership(JsonObject template, RoomVersion version, string roomId, string userId, JsonObject content)
    {
        var membership = (JsonObject)template.DeepClone();
        membership["content"] = content;
        membership["origin_server_ts"] = clock.GetUtcNow().ToUnixTimeMilliseconds();
        membership["sender"] = userId;
        membership["state_key"] = userId;
        membership["room_id"] = roomId;
        if (!version.ImplicitRoomCreator)
            membership["origin"] = config.ServerName;
        if (version.EventIdFormat == EventIdFormat.ServerChosen)
            membership["event_id"] = $"${Secrets.NewSessionId()}:{config.ServerName}";
        membership.Remove("signatures");
        membership.Remove("hashes");
        membership.Remove("unsigned");
        EventSigning.HashAndSign(membership, version, config.ServerName, signingKey);
        return PduParser.TryParse(membership, version, out var pdu, out var error) ? pdu : throw new FederationException(0, null, error);
    }

    private static List<Pdu> Events(JsonNode? node, RoomVersion version) =>
        (node as JsonArray ?? []).OfType<JsonObject>().Select(e => Parse(e, version)).OfType<Pdu>().ToList();

    private static Pdu? Parse(JsonObject json, RoomVersion version) => PduParser.TryParseUntrusted(json, version, out var pdu, out _) ? pdu : null;
}
