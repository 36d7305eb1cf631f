using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>Hashing and signing outgoing events, and checking the signatures on received ones.</summary>
public static class EventSigning
{
    /// <summary>Sets <c>hashes.sha256</c>, then signs the redacted event and copies the signature into <paramref name="evt"/>.</summary>
    public static void HashAndSign(JsonObject evt, RoomVersion version, string serverName, Ed25519KeyPair key)
    {
        evt["hashes"] = new JsonObject { ["sha256"] = UnpaddedBase64.Encode(EventHashes.ContentHash(evt)) };
        AddSignature(evt, version, serverName, key);
    }

    /// <summary>Adds this server's signature to an event signed elsewhere (e.g. a restricted join or an invite), keeping the other signatures.</summary>
    public static void AddSignature(JsonObject evt, RoomVersion version, string serverName, Ed25519KeyPair key) =>
        JsonSigning.AddSignature(evt, serverName, key, Redaction.EncodeRedactedWithout(evt, version, "signatures", "unsigned"));

    /// <summary>
    /// The servers whose signatures an event needs: the sender's server; the event ID's server in v1-v2; the
    /// authorising server of a restricted join (v8+). A third-party invite needs the server of the invited
    /// <c>mxid</c> instead of the sender's, since another server may send it on the inviter's behalf.
    /// </summary>
    public static IReadOnlySet<string> RequiredSigners(Pdu pdu)
    {
        var servers = new HashSet<string>(StringComparer.Ordinal);
        if (pdu.Type == "m.room.member" && pdu.Membership == "invite" && pdu.Content["third_party_invite"] is JsonObject thirdParty)
        {
            if (thirdParty["signed"]?["mxid"] is JsonValue mxid && mxid.TryGetValue<string>(out var invited) && ServerOf(invited) is { } invitedServer)
                servers.Add(invitedServer);
        }
        else
            servers.Add(ServerOf(pdu.Sender)!);
        if (pdu.Version.EventIdDomainSignature && ServerOf(pdu.EventId) is { } eventIdServer)
            servers.Add(eventIdServer);
        if (pdu.Version.RestrictedJoinRule && pdu.Type == "m.room.member" && pdu.Membership == "join"
            && pdu.Content["join_authorised_via_users_server"] is JsonValue via && via.TryGetValue<string>(out var authoriser)
            && ServerOf(authoriser) is { } authoriserServer)
            servers.Add(authoriserServer);
        return servers;
    }

    /// <summary>
    /// The server that sends the event to the others in the room: the sender's, except for a third-party invite the
    /// sender's server did not sign, which the invited user's server built and sent on the inviter's behalf (spec:
    /// server-server API, "Third-party invites": "If the invited homeserver is in the room the invite came from, it can
    /// auth the event and send it"). Every server works out the same answer from the event alone.
    /// </summary>
    public static string? SendingServer(Pdu pdu)
    {
        var senderServer = ServerOf(pdu.Sender);
        if (pdu.Type == "m.room.member" && pdu.Membership == "invite" && pdu.Content["third_party_invite"] is JsonObject
            && (senderServer is null || pdu.Json["signatures"]?[senderServer] is null))
            return pdu.StateKey is { } invitee ? ServerOf(invitee) : null;
        return senderServer;
    }

    /// <summary>
    /// Checks that every required server signed the redacted event with at least one known key valid at the event's
    /// <c>origin_server_ts</c>; signatures under unknown or expired keys are skipped. <paramref name="findKey"/> returns
    /// the key and when it was fetched, or null when the key is unknown.
    /// </summary>
    public static bool HasValidSignatures(Pdu pdu, Func<string, string, (VerifyKey Key, long FetchedAtTs)?> findKey, out string error) =>
        HasValidSignaturesFrom(pdu, RequiredSigners(pdu), findKey, out error);

    /// <summary>
    /// The same for the given servers only: an event still on its way to a signer (a third-party invite the invitee's
    /// server is asked to countersign) is checked for what it carries so far.
    /// </summary>
    public static bool HasValidSignaturesFrom(Pdu pdu, IEnumerable<string> signers, Func<string, string, (VerifyKey Key, long FetchedAtTs)?> findKey,
        out string error)
    {
        // Redaction keeps the signatures as they are: they are read from the event, the bytes they sign are its redacted form's.
        var signingBytes = Redaction.EncodeRedactedWithout(pdu.Json, pdu.Version, "signatures", "unsigned");
        foreach (var server in signers)
        {
            var verified = false;
            foreach (var keyId in JsonSigning.SigningKeyIds(pdu.Json, server))
            {
                if (findKey(server, keyId) is not { } known || !known.Key.IsValidAt(pdu.OriginServerTs, known.FetchedAtTs, pdu.Version.EnforceKeyValidity))
                    continue;
                if (!JsonSigning.Verify(pdu.Json, signingBytes, server, keyId, known.Key.PublicKey))
                {
                    error = $"bad signature from {server} ({keyId})";
                    return false;
                }
                verified = true;
            }
            if (!verified)
            {
                error = $"no valid signature from {server}";
                return false;
            }
        }
        error = "";
        return true;
    }

    /// <summary>The server part of a user, room or event ID (after the first colon), or null when there is none.</summary>
    public static string? ServerOf(string id)
    {
        var colon = id.IndexOf(':');
        return colon > 0 && colon < id.Length - 1 ? id[(colon + 1)..] : null;
    }

    /// <summary>Whether <see cref="ServerOf"/> of the ID is <paramref name="server"/>, without making that string (checked per member, per message).</summary>
    public static bool IsOf(string id, string server)
    {
        var colon = id.IndexOf(':');
        return colon > 0 && id.AsSpan(colon + 1).SequenceEqual(server);
    }
}
