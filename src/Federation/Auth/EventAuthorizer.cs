using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Auth;

/// <summary>The outcome of an authorisation check; <see cref="Reason"/> says which rule rejected the event.</summary>
public readonly record struct AuthResult(bool Allowed, string Reason)
{
    public static readonly AuthResult Allow = new(true, "");
    public static AuthResult Reject(string reason) => new(false, reason);
}

/// <summary>
/// The authorisation rules of room versions 1-12 (server-server API and the room version specs), checked against a
/// room state: the state before the event, the current state, or the state built from the event's auth events.
/// <paramref name="state"/> must resolve <see cref="StateKey.Create"/> even in v12, where the create event is found
/// through the room ID rather than the auth events.
/// </summary>
public static class EventAuthorizer
{
    public static AuthResult Check(Pdu evt, Func<StateKey, Pdu?> state)
    {
        var version = evt.Version;
        if (evt.Type == "m.room.create")
            return CheckCreate(evt);

        var create = state(StateKey.Create);
        if (create is null)
            return AuthResult.Reject("no m.room.create event in the room state");
        if (version.RoomIdIsCreateEventHash ? create.EventId != "$" + evt.RoomId[1..] : create.RoomId != evt.RoomId)
            return AuthResult.Reject("room_id does not belong to the room's create event");
        if (create.Content["m.federate"] is JsonValue federate && federate.TryGetValue<bool>(out var federated) && !federated
            && EventSigning.ServerOf(evt.Sender) != EventSigning.ServerOf(create.Sender))
            return AuthResult.Reject("room is not federated (m.federate is false)");

        if (version.SpecialCaseAliasesAuth && evt.Type == "m.room.aliases")
        {
            if (evt.StateKey is null)
                return AuthResult.Reject("m.room.aliases without a state_key");
            return EventSigning.ServerOf(evt.Sender) == evt.StateKey ? AuthResult.Allow : AuthResult.Reject("m.room.aliases state_key is not the sender's server");
        }

        var powers = new RoomPowers(create, state(StateKey.PowerLevels));
        if (evt.Type == "m.room.member")
            return MembershipRules.Check(evt, state, powers);

        if (MembershipOf(state, evt.Sender) != "join")
            return AuthResult.Reject("sender is not joined to the room");
        var senderLevel = powers.UserLevel(evt.Sender);
        if (evt.Type == "m.room.third_party_invite")
            return senderLevel >= powers.Levels.Invite ? AuthResult.Allow : AuthResult.Reject("sender may not invite");
        if (powers.Levels.RequiredFor(evt.Type, evt.IsState) > senderLevel)
            return AuthResult.Reject($"sender's power level is too low to send {evt.Type}");
        if (evt.StateKey is { Length: > 0 } stateKey && stateKey[0] == '@' && stateKey != evt.Sender)
            return AuthResult.Reject("state_key names another user");
        if (evt.Type == "m.room.power_levels")
            return PowerLevelRules.Check(evt, powers, senderLevel);
        if (version.EventIdDomainSignature && evt.Type == "m.room.redaction")
        {
            if (senderLevel >= powers.Levels.Redact)
                return AuthResult.Allow;
            return evt.Redacts is { } redacts && EventSigning.ServerOf(redacts) == EventSigning.ServerOf(evt.EventId)
                ? AuthResult.Allow
                : AuthResult.Reject("sender may not redact events from other servers");
        }
        return AuthResult.Allow;
    }

    private static AuthResult CheckCreate(Pdu evt)
    {
        var version = evt.Version;
        if (evt.PrevEvents.Count > 0)
            return AuthResult.Reject("m.room.create has prev_events");
        if (version.RoomIdIsCreateEventHash)
        {
            if (evt.Json.ContainsKey("room_id"))
                return AuthResult.Reject("m.room.create has a room_id");
        }
        else if (EventSigning.ServerOf(evt.RoomId) != EventSigning.ServerOf(evt.Sender))
            return AuthResult.Reject("room_id's server is not the sender's");
        if (evt.Content.TryGetPropertyValue("room_version", out var roomVersion)
            && (roomVersion is not JsonValue value || !value.TryGetValue<string>(out var id) || RoomVersions.Find(id) is null))
            return AuthResult.Reject("unknown content.room_version");
        if (!version.ImplicitRoomCreator && !evt.Content.ContainsKey("creator"))
            return AuthResult.Reject("m.room.create has no content.creator");
        if (version.PrivilegedCreators && evt.Content.TryGetPropertyValue("additional_creators", out var additional)
            && (additional is not JsonArray creators || !creators.All(c => c is JsonValue v && v.TryGetValue<string>(out var user) && UserId.TryParse(user, out _))))
            return AuthResult.Reject("additional_creators must be an array of user IDs");
        return AuthResult.Allow;
    }

    /// <summary>A user's membership in the state: <c>leave</c> when they have no member event.</summary>
    internal static string MembershipOf(Func<StateKey, Pdu?> state, string userId) =>
        state(StateKey.Member(userId))?.Membership ?? "leave";
}
