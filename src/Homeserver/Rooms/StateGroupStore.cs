using Matrix.Federation.Events;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Room state snapshots stored as deltas: a group records only the entries that differ from its previous group, and
/// every <see cref="MaxDeltaChain"/> groups a full snapshot bounds the walk. Nothing is copied per event.
/// </summary>
public sealed class StateGroupStore(StreamPositions streams)
{
    public const int MaxDeltaChain = 50;

    private sealed record GroupRow(long GroupId, long? PrevGroup, long DeltaDepth);

    private sealed record EntryRow(string Type, string StateKey, string EventId);

    /// <summary>Stores the state <paramref name="after"/> as a delta on <paramref name="previous"/> (or a snapshot) and returns its group ID.</summary>
    public async Task<long> CreateAsync(DbSession s, string roomId, long? previous, IReadOnlyDictionary<StateKey, string> before,
        IReadOnlyDictionary<StateKey, string> after)
    {
        var groupId = await streams.NextAsync(s, "state_groups");
        var depth = 0L;
        if (previous is { } prev)
            depth = (await s.QuerySingleOrDefaultAsync<GroupRow>("SELECT group_id, prev_group, delta_depth FROM state_groups WHERE group_id = @prev", new { prev }))!.DeltaDepth + 1;
        var snapshot = previous is null || depth >= MaxDeltaChain;
        await s.ExecuteAsync("INSERT INTO state_groups (group_id, room_id, prev_group, delta_depth) VALUES (@groupId, @roomId, @prevGroup, @depth)",
            new { groupId, roomId, prevGroup = snapshot ? null : previous, depth = snapshot ? 0L : depth });
        var entries = snapshot ? after : after.Where(e => !before.TryGetValue(e.Key, out var old) || old != e.Value);
        foreach (var (key, eventId) in entries)
            await s.ExecuteAsync("INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES (@groupId, @Type, @Key, @eventId)",
                new { groupId, key.Type, key.Key, eventId });
        return groupId;
    }

    /// <summary>The full state of a group: its snapshot plus the deltas on the way to it, read in one query.</summary>
    public async Task<Dictionary<StateKey, string>> LoadAsync(DbSession s, long groupId)
    {
        var rows = await s.QueryAsync<EntryRow>("""
            WITH RECURSIVE chain (group_id, prev_group, distance) AS (
                SELECT group_id, prev_group, 0 FROM state_groups WHERE group_id = @groupId
                UNION ALL
                SELECT g.group_id, g.prev_group, c.distance + 1 FROM state_groups g JOIN chain c ON g.group_id = c.prev_group
            )
            SELECT e.type, e.state_key, e.event_id FROM chain c JOIN state_group_entries e ON e.group_id = c.group_id
            ORDER BY c.distance DESC
            """, new { groupId });
        var state = new Dictionary<StateKey, string>();
        foreach (var row in rows)
            state[new StateKey(row.Type, row.StateKey)] = row.EventId;
        return state;
    }
}
