using System.Security.Cryptography;
using System.Text;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;

namespace Matrix.Federation.StateResolution;

/// <summary>The original state resolution of room version 1: auth-relevant conflicts first, each resolved by depth and sha1(event_id).</summary>
internal static class StateResolutionV1
{
    public static Dictionary<StateKey, string> Resolve(Dictionary<StateKey, string> unconflicted, Dictionary<StateKey, HashSet<string>> conflicted, IEventGraph graph)
    {
        var resolved = new Dictionary<StateKey, string>(unconflicted);
        var remaining = conflicted
            .Select(c => (c.Key, Events: c.Value.Select(graph.Find).OfType<Pdu>().ToList()))
            .Where(c => c.Events.Count > 0)
            .ToDictionary(c => c.Key, c => c.Events);

        foreach (var key in new[] { StateKey.PowerLevels, StateKey.JoinRules })
            if (remaining.Remove(key, out var events))
                resolved[key] = ResolveAuthEvents(events, resolved, graph);
        foreach (var (key, events) in remaining.Where(c => c.Key.Type == "m.room.member").ToList())
        {
            resolved[key] = ResolveAuthEvents(events, resolved, graph);
            remaining.Remove(key);
        }
        foreach (var (key, events) in remaining)
            resolved[key] = ResolveNormalEvents(events, resolved, graph);
        return resolved;
    }

    /// <summary>Takes the events in ascending depth (then descending sha1) while each passes auth against the state so far.</summary>
    private static string ResolveAuthEvents(List<Pdu> events, Dictionary<StateKey, string> resolved, IEventGraph graph)
    {
        var ordered = events.OrderBy(e => e.Depth).ThenByDescending(e => Sha1Hex(e.EventId), StringComparer.Ordinal).ToList();
        var key = ordered[0].StateKeyPair;
        resolved[key] = ordered[0].EventId;
        foreach (var evt in ordered.Skip(1))
        {
            if (!EventAuthorizer.Check(evt, AuthStateView.For(evt, resolved, graph, fallBackToAuthEvents: false)).Allowed)
                break;
            resolved[key] = evt.EventId;
        }
        return resolved[key];
    }

    /// <summary>The deepest event (then lowest sha1) that passes auth; the shallowest when none does.</summary>
    private static string ResolveNormalEvents(List<Pdu> events, Dictionary<StateKey, string> resolved, IEventGraph graph)
    {
        var ordered = events.OrderByDescending(e => e.Depth).ThenBy(e => Sha1Hex(e.EventId), StringComparer.Ordinal).ToList();
        foreach (var evt in ordered)
            if (EventAuthorizer.Check(evt, AuthStateView.For(evt, resolved, graph, fallBackToAuthEvents: false)).Allowed)
                return evt.EventId;
        return ordered[^1].EventId;
    }

    private static string Sha1Hex(string eventId) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(eventId)));
}
