using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;

namespace Matrix.Federation.Auth;

/// <summary>The <c>m.room.member</c> authorisation rules: join, invite (incl. third-party), leave/kick, ban, knock.</summary>
internal static class MembershipRules
{
    public static AuthResult Check(Pdu evt, Func<StateKey, Pdu?> state, RoomPowers powers)
    {
        var membership = evt.Membership;
        if (evt.StateKey is null || membership is null)
            return AuthResult.Reject("member event without state_key or membership");
        var version = evt.Version;
        if (version.RestrictedJoinRule && evt.Content.TryGetPropertyValue("join_authorised_via_users_server", out var via))
        {
            var authoriser = via is JsonValue value && value.TryGetValue<string>(out var user) ? EventSigning.ServerOf(user) : null;
            if (authoriser is null || evt.Json["signatures"] is not JsonObject signatures || !signatures.ContainsKey(authoriser))
                return AuthResult.Reject("not signed by the server of join_authorised_via_users_server");
        }

        var target = evt.StateKey;
        var targetMembership = EventAuthorizer.MembershipOf(state, target);
        var senderMembership = EventAuthorizer.MembershipOf(state, evt.Sender);
        var joinRule = state(StateKey.JoinRules)?.ContentString("join_rule") ?? "invite";
        return membership switch
        {
            "join" => Join(evt, state, powers, targetMembership, joinRule),
            "invite" => Invite(evt, state, powers, senderMembership, targetMembership),
            "leave" => Leave(evt, powers, senderMembership, targetMembership),
            "ban" => Ban(evt, powers, senderMembership),
            "knock" when version.KnockJoinRule => Knock(evt, senderMembership, joinRule),
            _ => AuthResult.Reject($"unknown membership '{membership}'"),
        };
    }

    private static AuthResult Join(Pdu evt, Func<StateKey, Pdu?> state, RoomPowers powers, string membership, string joinRule)
    {
        var version = evt.Version;
        if (evt.PrevEvents.Count == 1 && evt.PrevEvents[0] == powers.Create.EventId && IsFirstCreator(evt.StateKey!, powers))
            return AuthResult.Allow;
        if (evt.Sender != evt.StateKey)
            return AuthResult.Reject("cannot join on behalf of another user");
        if (membership == "ban")
            return AuthResult.Reject("sender is banned");
        if (joinRule == "invite" || (version.KnockJoinRule && joinRule == "knock"))
            return membership is "invite" or "join" ? AuthResult.Allow : AuthResult.Reject("room is invite-only");
        if ((version.RestrictedJoinRule && joinRule == "restricted") || (version.KnockRestrictedJoinRule && joinRule == "knock_restricted"))
        {
            if (membership is "invite" or "join")
                return AuthResult.Allow;
            if (evt.Content["join_authorised_via_users_server"] is not JsonValue value || !value.TryGetValue<string>(out var authoriser))
                return AuthResult.Reject("restricted join without join_authorised_via_users_server");
            if (EventAuthorizer.MembershipOf(state, authoriser) != "join" || powers.UserLevel(authoriser) < powers.Levels.Invite)
                return AuthResult.Reject("join_authorised_via_users_server may not invite");
            return AuthResult.Allow;
        }
        return joinRule == "public" ? AuthResult.Allow : AuthResult.Reject($"join rule '{joinRule}' does not allow joining");
    }

    /// <summary>The creator's own first join: <c>content.creator</c> before v11, the create event's sender from v11.</summary>
    private static bool IsFirstCreator(string userId, RoomPowers powers) =>
        powers.Create.Version.ImplicitRoomCreator ? userId == powers.Create.Sender : powers.Creators.Contains(userId);

    private static AuthResult Invite(Pdu evt, Func<StateKey, Pdu?> state, RoomPowers powers, string senderMembership, string targetMembership)
    {
        if (evt.Content.TryGetPropertyValue("third_party_invite", out var thirdParty))
            return ThirdPartyInvite(evt, thirdParty, state, targetMembership);
        if (senderMembership != "join")
            return AuthResult.Reject("sender is not joined to the room");
        if (targetMembership is "join" or "ban")
            return AuthResult.Reject($"target is already {(targetMembership == "join" ? "joined" : "banned")}");
        return powers.UserLevel(evt.Sender) >= powers.Levels.Invite ? AuthResult.Allow : AuthResult.Reject("sender may not invite");
    }

    private static AuthResult ThirdPartyInvite(Pdu evt, JsonNode? thirdParty, Func<StateKey, Pdu?> state, string targetMembership)
    {
        if (targetMembership == "ban")
            return AuthResult.Reject("target is banned");
        if (thirdParty?["signed"] is not JsonObject signed)
            return AuthResult.Reject("third_party_invite has no signed object");
        if (signed["mxid"] is not JsonValue mxidValue || !mxidValue.TryGetValue<string>(out var mxid)
            || signed["token"] is not JsonValue tokenValue || !tokenValue.TryGetValue<string>(out var token))
            return AuthResult.Reject("third_party_invite.signed lacks mxid or token");
        if (mxid != evt.StateKey)
            return AuthResult.Reject("third_party_invite mxid is not the invited user");
        var invite = state(StateKey.ThirdPartyInvite(token));
        if (invite is null)
            return AuthResult.Reject("no m.room.third_party_invite for this token");
        if (invite.Sender != evt.Sender)
            return AuthResult.Reject("sender did not send the m.room.third_party_invite");
        return PublicKeysOf(invite).Any(key => SignedByKey(signed, key))
            ? AuthResult.Allow
            : AuthResult.Reject("third_party_invite is not signed by the invite's public keys");
    }

    private static IEnumerable<byte[]> PublicKeysOf(Pdu invite)
    {
        var encoded = new List<string>();
        if (invite.ContentString("public_key") is { } single)
            encoded.Add(single);
        if (invite.Content["public_keys"] is JsonArray keys)
            foreach (var key in keys)
                if (key?["public_key"] is JsonValue value && value.TryGetValue<string>(out var text))
                    encoded.Add(text);
        foreach (var text in encoded)
            if (UnpaddedBase64.TryDecode(text, out var bytes))
                yield return bytes;
    }

    private static bool SignedByKey(JsonObject signed, byte[] publicKey)
    {
        if (signed["signatures"] is not JsonObject signatures)
            return false;
        var signingBytes = JsonSigning.SigningBytes(signed);
        return signatures.Any(entity => entity.Value is JsonObject keys
            && keys.Any(k => JsonSigning.Verify(signed, signingBytes, entity.Key, k.Key, publicKey)));
    }

    private static AuthResult Leave(Pdu evt, RoomPowers powers, string senderMembership, string targetMembership)
    {
        if (evt.Sender == evt.StateKey)
            return senderMembership is "invite" or "join" || (evt.Version.KnockJoinRule && senderMembership == "knock")
                ? AuthResult.Allow
                : AuthResult.Reject($"cannot leave from membership '{senderMembership}'");
        if (senderMembership != "join")
            return AuthResult.Reject("sender is not joined to the room");
        var senderLevel = powers.UserLevel(evt.Sender);
        if (targetMembership == "ban" && senderLevel < powers.Levels.Ban)
            return AuthResult.Reject("sender may not unban");
        return senderLevel >= powers.Levels.Kick && powers.UserLevel(evt.StateKey!) < senderLevel
            ? AuthResult.Allow
            : AuthResult.Reject("sender may not kick this user");
    }

    private static AuthResult Ban(Pdu evt, RoomPowers powers, string senderMembership)
    {
        if (senderMembership != "join")
            return AuthResult.Reject("sender is not joined to the room");
        var senderLevel = powers.UserLevel(evt.Sender);
        return senderLevel >= powers.Levels.Ban && powers.UserLevel(evt.StateKey!) < senderLevel
            ? AuthResult.Allow
            : AuthResult.Reject("sender may not ban this user");
    }

    private static AuthResult Knock(Pdu evt, string senderMembership, string joinRule)
    {
        if (joinRule != "knock" && !(evt.Version.KnockRestrictedJoinRule && joinRule == "knock_restricted"))
            return AuthResult.Reject($"join rule '{joinRule}' does not allow knocking");
        if (evt.Sender != evt.StateKey)
            return AuthResult.Reject("cannot knock on behalf of another user");
        return senderMembership is "ban" or "invite" or "join"
            ? AuthResult.Reject($"cannot knock from membership '{senderMembership}'")
            : AuthResult.Allow;
    }
}
