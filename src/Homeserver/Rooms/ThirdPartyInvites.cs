using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Spec: third-party invites (modules/third_party_invites). An invite by 3PID becomes an invite of the user the
/// identity server has it bound to, or else an <c>m.room.third_party_invite</c> whose token the identity server keeps.
/// When the 3PID is bound later the identity server sends the signed token (<c>/3pid/onbind</c>), and the invite
/// becomes an <c>m.room.member</c> invite from the original inviter: built and sent by this server when it is in the
/// room (signed by this server in the inviter's stead, which the spec allows for third-party invites), else by the
/// inviter's server through <c>exchange_third_party_invite</c>. As Synapse does, the signature's key must still be
/// vouched for by its <c>key_validity_url</c>.
/// </summary>
public sealed class ThirdPartyInvites(
    EventSpine spine, MembershipService memberships, EventCache events, IdentityServerClient identity, Database db, ProfileStore profiles,
    FederationClient federation, HomeserverConfig config, ILogger<ThirdPartyInvites> logger)
{
    public async Task InviteAsync(string roomId, string sender, string idServer, string idAccessToken, string medium, string address, CancellationToken ct)
    {
        if (medium == "email")
            address = Email.MailAddresses.Canonicalise(address) ?? throw MatrixException.InvalidParam("Unable to parse email address.");
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room.");
        if (!room.JoinedMembers.Contains(sender))
            throw MatrixException.Forbidden("You are not in this room.");
        if (await identity.LookupAsync(idServer, idAccessToken, medium, address, ct) is { } bound)
        {
            await memberships.ChangeAsync(roomId, sender, bound, "invite", null, null, ct);
            return;
        }
        var request = new JsonObject { ["medium"] = medium, ["address"] = address, ["room_id"] = roomId, ["sender"] = sender };
        foreach (var (type, contentKey, field) in new[]
                 {
                     ("m.room.canonical_alias", "alias", "room_alias"), ("m.room.avatar", "url", "room_avatar_url"),
                     ("m.room.join_rules", "join_rule", "room_join_rules"), ("m.room.name", "name", "room_name"),
                 })
            if (await StateStringAsync(room, type, contentKey, ct) is { } value)
                request[field] = value;
        foreach (var (profileField, field) in new[] { ("displayname", "sender_display_name"), ("avatar_url", "sender_avatar_url") })
            if (await db.ReadAsync(s => profiles.GetAsync(s, sender, profileField), ct) is { } json && JsonNode.Parse(json) is JsonValue v
                && v.TryGetValue<string>(out var text))
                request[field] = text;
        var stored = await identity.StoreInviteAsync(idServer, idAccessToken, request, ct);
        await spine.SendAsync(roomId, new NewEvent("m.room.third_party_invite", stored.Token, sender, new JsonObject
        {
            ["display_name"] = stored.DisplayName,
            ["key_validity_url"] = stored.PublicKeys[0].KeyValidityUrl,
            ["public_key"] = stored.PublicKeys[0].PublicKey,
            ["public_keys"] = new JsonArray(stored.PublicKeys.Select(k => (JsonNode)new JsonObject
            {
                ["public_key"] = k.PublicKey, ["key_validity_url"] = k.KeyValidityUrl,
            }).ToArray()),
        }), ct);
    }

    /// <summary>
    /// Spec (server-server): <c>/3pid/onbind</c> from an identity server: each invite for the now bound 3PID is turned
    /// into a membership invite, here when this server is in the room ("If the invited homeserver is in the room the
    /// invite came from, it can auth the event and send it"), else by the inviter's server. One bad invite does not block the others; the identity server is told of the first
    /// failure afterwards (as Synapse answers it), so a refused signature is not reported as success.
    /// </summary>
    public async Task OnBindAsync(JsonObject body, CancellationToken ct)
    {
        var mxid = body["mxid"] is JsonValue m && m.TryGetValue<string>(out var user) ? user : throw MatrixException.MissingParam("mxid");
        if (EventSigning.ServerOf(mxid) != config.ServerName)
            throw MatrixException.Forbidden("The user is not on this server.");
        MatrixException? firstFailure = null;
        foreach (var invite in (body["invites"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (invite["room_id"]?.GetValue<string>() is not { } roomId || invite["sender"]?.GetValue<string>() is not { } sender
                || invite["signed"] is not JsonObject signed || signed["mxid"]?.GetValue<string>() != mxid)
                continue;
            try
            {
                if (await spine.GetRoomAsync(roomId, ct) is { } room
                    && (room.JoinedServers.Contains(config.ServerName) || EventSigning.ServerOf(sender) == config.ServerName))
                    await ExchangeAsync(roomId, sender, mxid, signed, ct);
                else
                    await federation.SendAsync(HttpMethod.Put, EventSigning.ServerOf(sender)!,
                        $"/_matrix/federation/v1/exchange_third_party_invite/{Uri.EscapeDataString(roomId)}", new JsonObject
                        {
                            ["type"] = "m.room.member", ["room_id"] = roomId, ["sender"] = sender, ["state_key"] = mxid,
                            ["content"] = new JsonObject
                            {
                                ["membership"] = "invite",
                                ["third_party_invite"] = new JsonObject { ["display_name"] = "", ["signed"] = signed.DeepClone() },
                            },
                        }, ct);
            }
            catch (Exception e) when (e is MatrixException or HttpRequestException or FederationException)
            {
                logger.LogWarning("Third-party invite of {UserId} to {RoomId} not exchanged: {Reason}", mxid, roomId, e.Message);
                firstFailure ??= e as MatrixException ?? new MatrixException(502, "M_UNKNOWN", $"The room's server did not take the invite: {e.Message}");
            }
        }
        if (firstFailure is not null)
            throw firstFailure;
    }

    /// <summary>
    /// Makes the membership invite a signed third-party invite token proves, sent as the inviter: the token must name an
    /// <c>m.room.third_party_invite</c> of the room, be signed by one of its keys, and that key still be valid.
    /// </summary>
    public async Task ExchangeAsync(string roomId, string sender, string invitee, JsonObject signed, CancellationToken ct)
    {
        var room = await spine.GetRoomAsync(roomId, ct) ?? throw MatrixException.NotFound("This server does not know the room.");
        var token = signed["token"] is JsonValue t && t.TryGetValue<string>(out var text) ? text : throw MatrixException.MissingParam("token");
        var inviteEvent = room.StateEventId(StateKey.ThirdPartyInvite(token)) is { } eventId ? await events.GetAsync(eventId, room.Version, ct) : null;
        if (inviteEvent is null || inviteEvent.Sender != sender)
            throw MatrixException.Forbidden("No third-party invite from that sender matches the token.");
        if (!await SignedByValidKeyAsync(inviteEvent, signed, ct))
            throw MatrixException.Forbidden("The third-party invite is not signed by a valid key of its identity server.");
        var content = new JsonObject
        {
            ["third_party_invite"] = new JsonObject { ["display_name"] = inviteEvent.ContentString("display_name") ?? "", ["signed"] = signed.DeepClone() },
        };
        await memberships.ChangeAsync(roomId, sender, invitee, "invite", null, content, ct);
    }

    private async Task<bool> SignedByValidKeyAsync(Pdu inviteEvent, JsonObject signed, CancellationToken ct)
    {
        var keys = new List<(string PublicKey, string? ValidityUrl)>();
        if (inviteEvent.ContentString("public_key") is { } single)
            keys.Add((single, inviteEvent.ContentString("key_validity_url")));
        if (inviteEvent.Content["public_keys"] is JsonArray list)
            foreach (var entry in list.OfType<JsonObject>())
                if (entry["public_key"] is JsonValue pk && pk.TryGetValue<string>(out var publicKey))
                    keys.Add((publicKey, entry["key_validity_url"] is JsonValue u && u.TryGetValue<string>(out var url) ? url : null));
        if (signed["signatures"] is not JsonObject signatures)
            return false;
        var signingBytes = JsonSigning.SigningBytes(signed);
        foreach (var (publicKey, validityUrl) in keys)
        {
            if (!UnpaddedBase64.TryDecode(publicKey, out var keyBytes))
                continue;
            var verifies = signatures.Any(entity => entity.Value is JsonObject byKey
                && byKey.Any(sig => JsonSigning.Verify(signed, signingBytes, entity.Key, sig.Key, keyBytes)));
            if (verifies && (validityUrl is null || await identity.IsKeyValidAsync(validityUrl, publicKey, ct)))
                return true;
        }
        return false;
    }

    private async Task<string?> StateStringAsync(RoomSnapshot room, string type, string key, CancellationToken ct) =>
        room.StateEventId(new StateKey(type, "")) is { } id && await events.GetAsync(id, room.Version, ct) is { } pdu ? pdu.ContentString(key) : null;
}
