using Matrix.Federation.Events;
using Matrix.Federation.Rooms;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// A room's hot state in memory: its version, current state (the resolution of its forward extremities' states),
/// forward extremities and the users whose current membership is <c>join</c>, and <c>invite</c>. Only the spine
/// replaces it, under the room's lock, after the transaction that changed it has committed.
/// </summary>
public sealed record RoomSnapshot(
    string RoomId, RoomVersion Version, IReadOnlyDictionary<StateKey, string> State, IReadOnlyList<Extremity> Extremities,
    IReadOnlySet<string> JoinedMembers, IReadOnlySet<string> InvitedMembers)
{
    // A class, so that racing syncs swap whole references.
    private sealed record SmallestMembers(IReadOnlySet<string> Joined, IReadOnlySet<string> Invited, IReadOnlyList<string> Ids);

    private SmallestMembers? _smallestMembers;

    public string? StateEventId(StateKey key) => State.GetValueOrDefault(key);

    /// <summary>
    /// The six smallest IDs of the joined and invited members, in ordinal order: an unnamed room's heroes are the first
    /// five other than the syncing user. Worked out once per member sets (snapshots share them while membership does
    /// not change), not by every sync the room's events wake.
    /// </summary>
    public IReadOnlyList<string> SmallestMemberIds
    {
        get
        {
            if (_smallestMembers is { } known && ReferenceEquals(known.Joined, JoinedMembers) && ReferenceEquals(known.Invited, InvitedMembers))
                return known.Ids;
            // Without sorting a big room's whole membership.
            var smallest = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var member in JoinedMembers.Concat(InvitedMembers))
                if (smallest.Count < 6 || StringComparer.Ordinal.Compare(member, smallest.Max) < 0)
                {
                    smallest.Add(member);
                    if (smallest.Count > 6)
                        smallest.Remove(smallest.Max!);
                }
            var ids = smallest.ToList();
            _smallestMembers = new SmallestMembers(JoinedMembers, InvitedMembers, ids);
            return ids;
        }
    }

    /// <summary>The servers of the joined members: where the room's events go.</summary>
    public IEnumerable<string> JoinedServers => JoinedMembers.Select(u => u[(u.IndexOf(':') + 1)..]).Distinct(StringComparer.Ordinal);

    /// <summary>The users among a room's member events (state key and membership of each) whose membership is <paramref name="membership"/>.</summary>
    public static IReadOnlySet<string> MembersWith(IEnumerable<(string UserId, string? Membership)> members, string membership) =>
        members.Where(m => m.Membership == membership).Select(m => m.UserId).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The members with <paramref name="membership"/> after current-state changes (an event ID of null: the key left
    /// the state).
    /// </summary>
    public static IReadOnlySet<string> Members(IReadOnlySet<string> before, IEnumerable<(StateKey Key, string? EventId, string? Membership)> changes,
        string membership)
    {
        HashSet<string>? after = null;
        foreach (var (key, eventId, changed) in changes)
        {
            if (key.Type != "m.room.member")
                continue;
            after ??= new HashSet<string>(before, StringComparer.Ordinal);
            if (eventId is not null && changed == membership)
                after.Add(key.Key);
            else
                after.Remove(key.Key);
        }
        return after ?? before;
    }

    /// <summary>Users with a member event in the room (any membership): whom a new event may concern.</summary>
    public IEnumerable<string> MemberUserIds => State.Keys.Where(k => k.Type == "m.room.member").Select(k => k.Key);
}

/// <summary>One writer per room: event creation for a room is serialised so prev_events, depth and state stay consistent.</summary>
public sealed class RoomLocks
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    public async Task<IDisposable> AcquireAsync(string roomId, CancellationToken ct)
    {
        var semaphore = _locks.GetOrAdd(roomId, _ => new SemaphoreSlim(1, 1));
        await semaphore.WaitAsync(ct);
        return new Releaser(semaphore);
    }

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                semaphore.Release();
        }
    }
}
