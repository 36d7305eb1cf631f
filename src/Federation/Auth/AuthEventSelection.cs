using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Auth;

/// <summary>
/// "Auth events selection" (server-server API): which state an event must cite in <c>auth_events</c>, and the checks
/// the auth rules make on the cited events themselves.
/// </summary>
public static class AuthEventSelection
{
    /// <summary>The state keys an event's auth events are chosen from (each one only if present in the state).</summary>
    public static IReadOnlyList<StateKey> KeysFor(RoomVersion version, string type, string? stateKey, string sender, JsonObject content)
    {
        if (type == "m.room.create")
            return [];
        var keys = new List<StateKey>(6);
        if (version.CreateEventInAuthEvents)
            keys.Add(StateKey.Create);
        keys.Add(StateKey.PowerLevels);
        keys.Add(StateKey.Member(sender));
        if (type == "m.room.member" && stateKey is not null)
        {
            var membership = content["membership"] is JsonValue value && value.TryGetValue<string>(out var m) ? m : null;
            if (stateKey != sender)
                keys.Add(StateKey.Member(stateKey));
            if (membership is "join" or "invite" or "knock")
                keys.Add(StateKey.JoinRules);
            if (membership == "invite" && content["third_party_invite"]?["signed"]?["token"] is JsonValue tokenValue
                && tokenValue.TryGetValue<string>(out var token))
                keys.Add(StateKey.ThirdPartyInvite(token));
            if (membership == "join" && version.RestrictedJoinRule && content["join_authorised_via_users_server"] is JsonValue via
                && via.TryGetValue<string>(out var authoriser) && authoriser != sender)
                keys.Add(StateKey.Member(authoriser));
        }
        return keys;
    }

    public static IReadOnlyList<StateKey> KeysFor(Pdu evt) => KeysFor(evt.Version, evt.Type, evt.StateKey, evt.Sender, evt.Content);

    /// <summary>Chooses the auth events for a new event from a room state (event IDs in selection order).</summary>
    public static List<string> Select(RoomVersion version, string type, string? stateKey, string sender, JsonObject content, Func<StateKey, string?> state)
    {
        var selected = new List<string>();
        foreach (var key in KeysFor(version, type, stateKey, sender, content))
            if (state(key) is { } eventId && !selected.Contains(eventId))
                selected.Add(eventId);
        return selected;
    }

    /// <summary>
    /// The rules on an event's cited auth events: no duplicate state keys, nothing outside the selection, nothing
    /// rejected, the create event present (v1-v11), all in the same room. <paramref name="authEvents"/> are the cited
    /// events that could be found; a missing one fails the check.
    /// </summary>
    public static AuthResult CheckAuthEvents(Pdu evt, IReadOnlyList<Pdu> authEvents, Func<string, bool> isRejected)
    {
        if (evt.Type == "m.room.create")
            return evt.AuthEvents.Count == 0 ? AuthResult.Allow : AuthResult.Reject("m.room.create has auth_events");
        if (authEvents.Count != evt.AuthEvents.Count)
            return AuthResult.Reject("auth_events cites unknown or duplicate events");
        var allowed = KeysFor(evt);
        var seen = new HashSet<StateKey>();
        foreach (var authEvent in authEvents)
        {
            if (!authEvent.IsState || !seen.Add(authEvent.StateKeyPair))
                return AuthResult.Reject($"auth_events has duplicate or non-state entries ({authEvent.EventId})");
            if (!allowed.Contains(authEvent.StateKeyPair))
                return AuthResult.Reject($"auth_events cites {authEvent.StateKeyPair}, which the selection does not allow");
            if (isRejected(authEvent.EventId))
                return AuthResult.Reject($"auth event {authEvent.EventId} was rejected");
            if (authEvent.RoomId != evt.RoomId)
                return AuthResult.Reject($"auth event {authEvent.EventId} is from another room");
        }
        if (evt.Version.CreateEventInAuthEvents && !seen.Contains(StateKey.Create))
            return AuthResult.Reject("auth_events lacks the m.room.create event");
        return AuthResult.Allow;
    }

    /// <summary>
    /// Check 4 on receipt of a PDU: the event's cited auth events pass <see cref="CheckAuthEvents"/>, and the event passes
    /// the auth rules against the state they form.
    /// </summary>
    public static AuthResult CheckAgainstAuthEvents(Pdu evt, IReadOnlyList<Pdu> authEvents, Func<string, bool> isRejected, Pdu? createEvent)
    {
        var result = CheckAuthEvents(evt, authEvents, isRejected);
        return result.Allowed ? EventAuthorizer.Check(evt, StateFromAuthEvents(authEvents, createEvent)) : result;
    }

    /// <summary>
    /// The state the auth rules see when checking an event against its own auth events. In v12 the create event is
    /// not among them; <paramref name="createEvent"/> supplies it (the event whose ID the room ID names).
    /// </summary>
    public static Func<StateKey, Pdu?> StateFromAuthEvents(IReadOnlyList<Pdu> authEvents, Pdu? createEvent)
    {
        var map = new Dictionary<StateKey, Pdu>();
        foreach (var authEvent in authEvents)
            if (authEvent.IsState)
                map.TryAdd(authEvent.StateKeyPair, authEvent);
        if (createEvent is not null)
            map.TryAdd(StateKey.Create, createEvent);
        return key => map.GetValueOrDefault(key);
    }
}
