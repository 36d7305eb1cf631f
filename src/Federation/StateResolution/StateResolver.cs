using Matrix.Federation.Events;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.StateResolution;

/// <summary>Resolves the states after an event's <c>prev_events</c> into the state before it, with the room version's algorithm.</summary>
public static class StateResolver
{
    public static Dictionary<StateKey, string> Resolve(RoomVersion version, string roomId,
        IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets, IEventGraph graph)
    {
        if (stateSets.Count == 0)
            return [];
        if (stateSets.Count == 1)
            return new Dictionary<StateKey, string>(stateSets[0]);
        var (unconflicted, conflicted) = Partition(stateSets, version.StateResolution == StateResolutionAlgorithm.V1);
        if (conflicted.Count == 0)
            return unconflicted;
        return version.StateResolution == StateResolutionAlgorithm.V1
            ? StateResolutionV1.Resolve(unconflicted, conflicted, graph)
            : new StateResolutionV2(version, roomId, graph).Resolve(stateSets, unconflicted, conflicted);
    }

    /// <summary>
    /// Splits the state sets into the unconflicted map and the conflicted events per key. In v2 a key missing from
    /// some set is conflicted; in v1 only differing event IDs conflict.
    /// </summary>
    internal static (Dictionary<StateKey, string> Unconflicted, Dictionary<StateKey, HashSet<string>> Conflicted) Partition(
        IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets, bool missingIsUnconflicted)
    {
        var unconflicted = new Dictionary<StateKey, string>();
        var conflicted = new Dictionary<StateKey, HashSet<string>>();
        var keys = new HashSet<StateKey>();
        foreach (var set in stateSets)
            keys.UnionWith(set.Keys);
        foreach (var key in keys)
        {
            var values = new HashSet<string>(StringComparer.Ordinal);
            var missing = false;
            foreach (var set in stateSets)
                if (set.TryGetValue(key, out var eventId))
                    values.Add(eventId);
                else
                    missing = true;
            if (values.Count == 1 && (!missing || missingIsUnconflicted))
                unconflicted[key] = values.First();
            else
                conflicted[key] = values;
        }
        return (unconflicted, conflicted);
    }
}
