using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.StateResolution;

/// <summary>
/// State resolution v2 (rooms v2-v11) and v2.1 (room v12: conflicted state subgraph, iterative checks from an empty
/// state). Each step is named after the spec's definitions.
/// </summary>
internal sealed class StateResolutionV2(RoomVersion version, string roomId, IEventGraph graph)
{
    private readonly bool _v21 = version.StateResolution == StateResolutionAlgorithm.V2_1;
    private readonly Dictionary<string, long> _senderLevels = new(StringComparer.Ordinal);

    public Dictionary<StateKey, string> Resolve(IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets,
        Dictionary<StateKey, string> unconflicted, Dictionary<StateKey, HashSet<string>> conflicted)
    {
        var conflictedEvents = new HashSet<string>(conflicted.Values.SelectMany(ids => ids), StringComparer.Ordinal);
        var fullConflicted = AuthDifference(stateSets);
        fullConflicted.UnionWith(conflictedEvents);
        if (_v21)
            fullConflicted.UnionWith(ConflictedStateSubgraph(conflictedEvents));
        fullConflicted.RemoveWhere(id => graph.Find(id) is null);

        var powerEvents = PowerEventsWithAuthChains(fullConflicted);
        var sortedPower = ReverseTopologicalPowerOrder(powerEvents);
        var partial = IterativeAuthChecks(_v21 ? [] : new Dictionary<StateKey, string>(unconflicted), sortedPower);

        var others = fullConflicted.Where(id => !powerEvents.Contains(id)).ToList();
        var sortedOthers = MainlineOrder(others, partial.GetValueOrDefault(StateKey.PowerLevels));
        var resolved = IterativeAuthChecks(partial, sortedOthers);

        foreach (var (key, eventId) in unconflicted)
            resolved[key] = eventId;
        return resolved;
    }

    /// <summary>
    /// ∪ Cᵢ − ∩ Cᵢ over the full auth chains Cᵢ of each state set. As in Synapse, Cᵢ also holds the state set's own
    /// events, so an unconflicted event cited only by one side's auth chain is not pulled into the conflicted set.
    /// </summary>
    private HashSet<string> AuthDifference(IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets)
    {
        var chains = stateSets.Select(set =>
        {
            var chain = AuthChainOf(set.Values);
            chain.UnionWith(set.Values);
            return chain;
        }).ToList();
        var union = new HashSet<string>(chains[0], StringComparer.Ordinal);
        var intersection = new HashSet<string>(chains[0], StringComparer.Ordinal);
        foreach (var chain in chains.Skip(1))
        {
            union.UnionWith(chain);
            intersection.IntersectWith(chain);
        }
        union.ExceptWith(intersection);
        return union;
    }

    /// <summary>Every event reachable through <c>auth_events</c> from the given events (not the events themselves unless reachable).</summary>
    private HashSet<string> AuthChainOf(IEnumerable<string> eventIds)
    {
        var chain = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        foreach (var id in eventIds)
            PushAuthEvents(id, pending);
        while (pending.TryPop(out var id))
            if (chain.Add(id))
                PushAuthEvents(id, pending);
        return chain;
    }

    private void PushAuthEvents(string eventId, Stack<string> pending)
    {
        if (graph.Find(eventId) is { } evt)
            foreach (var authId in evt.AuthEvents)
                pending.Push(authId);
    }

    /// <summary>v2.1: the events on <c>auth_events</c> paths from one conflicted event to another (endpoints included).</summary>
    private HashSet<string> ConflictedStateSubgraph(HashSet<string> conflictedEvents)
    {
        var reachable = AuthChainOf(conflictedEvents);
        reachable.UnionWith(conflictedEvents);
        var leadsToConflicted = new Dictionary<string, bool>(StringComparer.Ordinal);
        var subgraph = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in reachable)
            if (LeadsToConflicted(id, conflictedEvents, leadsToConflicted))
                subgraph.Add(id);
        return subgraph;
    }

    /// <summary>Whether the event is conflicted or has a conflicted event in its auth chain (memoised, iterative for deep graphs).</summary>
    private bool LeadsToConflicted(string start, HashSet<string> conflictedEvents, Dictionary<string, bool> memo)
    {
        if (memo.TryGetValue(start, out var known))
            return known;
        var stack = new Stack<(string Id, int Next)>();
        stack.Push((start, 0));
        while (stack.Count > 0)
        {
            var (id, next) = stack.Pop();
            var evt = graph.Find(id);
            if (next == 0 && conflictedEvents.Contains(id))
            {
                memo[id] = true;
                continue;
            }
            var result = false;
            var descended = false;
            for (var i = next; evt is not null && i < evt.AuthEvents.Count; i++)
            {
                var authId = evt.AuthEvents[i];
                if (memo.TryGetValue(authId, out var authResult))
                {
                    if (authResult) { result = true; break; }
                    continue;
                }
                stack.Push((id, i));
                stack.Push((authId, 0));
                descended = true;
                break;
            }
            if (!descended)
                memo[id] = result;
        }
        return memo[start];
    }

    private static bool IsPowerEvent(Pdu evt) =>
        evt.IsState && (evt.Type is "m.room.power_levels" or "m.room.join_rules"
                        || (evt.Type == "m.room.member" && evt.Membership is "leave" or "ban" && evt.Sender != evt.StateKey))
        || (evt.Type == "m.room.create" && evt.StateKey == "");

    /// <summary>The power events of the full conflicted set, enlarged with their auth chains' events in the full conflicted set.</summary>
    private HashSet<string> PowerEventsWithAuthChains(HashSet<string> fullConflicted)
    {
        var power = new HashSet<string>(fullConflicted.Where(id => IsPowerEvent(graph.Find(id)!)), StringComparer.Ordinal);
        var chain = AuthChainOf(power);
        chain.IntersectWith(fullConflicted);
        power.UnionWith(chain);
        return power;
    }

    /// <summary>Kahn's algorithm over the auth DAG within the set, always taking the highest sender power, then the oldest, then the smallest ID.</summary>
    private List<string> ReverseTopologicalPowerOrder(HashSet<string> events)
    {
        var waitingOn = new Dictionary<string, int>(StringComparer.Ordinal);
        var dependants = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var id in events)
        {
            var count = 0;
            foreach (var authId in graph.Find(id)!.AuthEvents.Distinct())
            {
                if (!events.Contains(authId))
                    continue;
                count++;
                if (!dependants.TryGetValue(authId, out var list))
                    dependants[authId] = list = [];
                list.Add(id);
            }
            waitingOn[id] = count;
        }
        var ready = new PriorityQueue<string, (long NegatedLevel, long Ts, string Id)>(PowerOrderComparer.Instance);
        foreach (var (id, count) in waitingOn)
            if (count == 0)
                ready.Enqueue(id, PowerOrderKey(id));
        var sorted = new List<string>(events.Count);
        while (ready.TryDequeue(out var id, out _))
        {
            sorted.Add(id);
            if (!dependants.TryGetValue(id, out var children))
                continue;
            foreach (var child in children)
                if (--waitingOn[child] == 0)
                    ready.Enqueue(child, PowerOrderKey(child));
        }
        return sorted;
    }

    private (long, long, string) PowerOrderKey(string eventId)
    {
        var evt = graph.Find(eventId)!;
        return (-SenderLevel(evt), evt.OriginServerTs, evt.EventId);
    }

    /// <summary>The sender's power level according to the event's own auth events (rejected or not, as Synapse orders them).</summary>
    private long SenderLevel(Pdu evt)
    {
        if (_senderLevels.TryGetValue(evt.EventId, out var level))
            return level;
        var authEvents = AuthStateView.AuthEventsOf(evt, graph, includeRejected: true);
        var create = version.RoomIdIsCreateEventHash ? graph.Find("$" + roomId[1..]) : authEvents.GetValueOrDefault(StateKey.Create);
        level = create is null ? 0 : new RoomPowers(create, authEvents.GetValueOrDefault(StateKey.PowerLevels)).UserLevel(evt.Sender);
        _senderLevels[evt.EventId] = level;
        return level;
    }

    /// <summary>Applies each event whose auth rules pass against the state built so far (falling back to its own auth events).</summary>
    private Dictionary<StateKey, string> IterativeAuthChecks(Dictionary<StateKey, string> state, List<string> sortedEvents)
    {
        foreach (var id in sortedEvents)
        {
            var evt = graph.Find(id)!;
            if (!evt.IsState)
                continue;
            if (EventAuthorizer.Check(evt, AuthStateView.For(evt, state, graph, fallBackToAuthEvents: true)).Allowed)
                state[evt.StateKeyPair] = id;
        }
        return state;
    }

    /// <summary>Orders events by their position relative to the mainline of the resolved power levels event (earliest first).</summary>
    private List<string> MainlineOrder(List<string> events, string? powerLevelsId)
    {
        var mainline = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var (p, i) = (powerLevelsId is null ? null : graph.Find(powerLevelsId), 0); p is not null; p = PowerLevelsAuthEvent(p), i++)
            if (!mainline.TryAdd(p.EventId, i))
                break;
        var positions = new Dictionary<string, int>(StringComparer.Ordinal);
        var keys = events.ToDictionary(id => id, id =>
        {
            var evt = graph.Find(id)!;
            return (Position: MainlinePosition(evt, mainline, positions), evt.OriginServerTs, evt.EventId);
        });
        events.Sort((x, y) =>
        {
            var (a, b) = (keys[x], keys[y]);
            if (a.Position != b.Position) return b.Position.CompareTo(a.Position);
            if (a.OriginServerTs != b.OriginServerTs) return a.OriginServerTs.CompareTo(b.OriginServerTs);
            return string.CompareOrdinal(a.EventId, b.EventId);
        });
        return events;
    }

    /// <summary>The mainline index of the first power levels event in the event's chain of power levels auth events; int.MaxValue (∞) when none is on the mainline.</summary>
    private int MainlinePosition(Pdu evt, Dictionary<string, int> mainline, Dictionary<string, int> memo)
    {
        var walked = new List<string>();
        var position = int.MaxValue;
        for (var p = PowerLevelsAuthEvent(evt); p is not null; p = PowerLevelsAuthEvent(p))
        {
            if (mainline.TryGetValue(p.EventId, out var index) || memo.TryGetValue(p.EventId, out index))
            {
                position = index;
                break;
            }
            if (walked.Contains(p.EventId))
                break;
            walked.Add(p.EventId);
        }
        foreach (var id in walked)
            memo[id] = position;
        return position;
    }

    private Pdu? PowerLevelsAuthEvent(Pdu evt)
    {
        foreach (var id in evt.AuthEvents)
            if (graph.Find(id) is { Type: "m.room.power_levels", StateKey: "" } powerLevels)
                return powerLevels;
        return null;
    }

    private sealed class PowerOrderComparer : IComparer<(long NegatedLevel, long Ts, string Id)>
    {
        public static readonly PowerOrderComparer Instance = new();

        public int Compare((long NegatedLevel, long Ts, string Id) x, (long NegatedLevel, long Ts, string Id) y)
        {
            var byLevel = x.NegatedLevel.CompareTo(y.NegatedLevel);
            if (byLevel != 0) return byLevel;
            var byTs = x.Ts.CompareTo(y.Ts);
            return byTs != 0 ? byTs : string.CompareOrdinal(x.Id, y.Id);
        }
    }
}
