using System.Collections.Concurrent;
using Matrix.Federation.Events;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// State groups' full states (a group is written once and never changes), bounded by <c>caches.state_groups</c>. A group
/// this process writes is kept as it commits: the syncs the room's next events wake ask for it first. One read serves
/// everyone asking for a group at the same time: the syncs one message wakes in a room whose group is not cached yet
/// (after a start-up) all want it at once, and each read walks the group's chain.
/// </summary>
public sealed class StateGroupCache(Database db, StateGroupStore stateGroups, Config.HomeserverConfig config) : IExpiringCache
{
    private sealed record Entry(IReadOnlyDictionary<StateKey, string> State) : UsedEntry;

    private readonly ConcurrentDictionary<long, Entry> _groups = new();
    private readonly ConcurrentDictionary<long, Lazy<Task<IReadOnlyDictionary<StateKey, string>>>> _loading = new();

    public ValueTask<IReadOnlyDictionary<StateKey, string>> GetAsync(long groupId, CancellationToken ct)
    {
        if (_groups.TryGetValue(groupId, out var entry))
        {
            entry.Touch();
            return new(entry.State);
        }
        var load = _loading.GetOrAdd(groupId, id => new Lazy<Task<IReadOnlyDictionary<StateKey, string>>>(() => LoadAsync(id)));
        return new(load.Value.WaitAsync(ct));
    }

    /// <summary>A group this process wrote, once its transaction has committed.</summary>
    public void Remember(long groupId, IReadOnlyDictionary<StateKey, string> state) => Add(groupId, state);

    // Not cancelled by any one of the callers it serves.
    private async Task<IReadOnlyDictionary<StateKey, string>> LoadAsync(long groupId)
    {
        try
        {
            return Add(groupId, await db.ReadAsync(s => stateGroups.LoadAsync(s, groupId), CancellationToken.None));
        }
        finally
        {
            _loading.TryRemove(groupId, out _);
        }
    }

    private IReadOnlyDictionary<StateKey, string> Add(long groupId, IReadOnlyDictionary<StateKey, string> state)
    {
        if (_groups.Count >= config.Caches.StateGroups)
            _groups.Clear();
        return _groups.GetOrAdd(groupId, new Entry(state)).State;
    }

    public int ExpireUnusedSince(long cutoff) => _groups.RemoveUnusedSince(cutoff);
}
