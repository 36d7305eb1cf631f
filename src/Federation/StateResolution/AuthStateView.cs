using Matrix.Federation.Events;

namespace Matrix.Federation.StateResolution;

/// <summary>The state the auth rules see for one event during resolution.</summary>
internal static class AuthStateView
{
    /// <summary>
    /// Entries of <paramref name="state"/> (skipping rejected events); with <paramref name="fallBackToAuthEvents"/>,
    /// keys the state lacks are taken from the event's own non-rejected auth events (the iterative auth checks). In
    /// v12 the create event always comes from the room ID.
    /// </summary>
    public static Func<StateKey, Pdu?> For(Pdu evt, IReadOnlyDictionary<StateKey, string> state, IEventGraph graph, bool fallBackToAuthEvents)
    {
        Dictionary<StateKey, Pdu>? authEvents = null;
        return key =>
        {
            if (key == StateKey.Create && evt.Version.RoomIdIsCreateEventHash)
                return graph.Find("$" + evt.RoomId[1..]);
            if (state.TryGetValue(key, out var eventId) && !graph.IsRejected(eventId) && graph.Find(eventId) is { } fromState)
                return fromState;
            if (!fallBackToAuthEvents)
                return null;
            authEvents ??= AuthEventsOf(evt, graph);
            return authEvents.GetValueOrDefault(key);
        };
    }

    /// <summary>The event's known auth events by state key, without rejected ones unless asked.</summary>
    public static Dictionary<StateKey, Pdu> AuthEventsOf(Pdu evt, IEventGraph graph, bool includeRejected = false)
    {
        var map = new Dictionary<StateKey, Pdu>(evt.AuthEvents.Count);
        foreach (var id in evt.AuthEvents)
            if ((includeRejected || !graph.IsRejected(id)) && graph.Find(id) is { IsState: true } authEvent)
                map.TryAdd(authEvent.StateKeyPair, authEvent);
        return map;
    }
}
