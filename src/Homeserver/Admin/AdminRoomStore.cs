using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// A room's row with its member and state counts. Properties rather than a constructor: SQLite reports no type for a
/// computed column of an empty result, which Dapper then cannot match to constructor parameters.
/// </summary>
public sealed class AdminRoomCounts
{
    public string RoomId { get; init; } = "";
    public string RoomVersion { get; init; } = "";
    public string Creator { get; init; } = "";
    public long IsPublic { get; init; }
    public long JoinedMembers { get; init; }
    public long JoinedLocalMembers { get; init; }
    public long StateEvents { get; init; }
}

/// <summary>One of a room's current state events with an empty state key (its JSON as stored).</summary>
public sealed record AdminRoomStateRow(string RoomId, string Type, string Json);

/// <summary>The SQL behind the room admin API: rooms with their counts and the state events that describe them.</summary>
public sealed class AdminRoomStore
{
    /// <summary>The state types a room's description is made of.</summary>
    private static readonly string[] DescriptiveTypes =
    [
        "m.room.create", "m.room.name", "m.room.canonical_alias", "m.room.encryption", "m.room.join_rules", "m.room.guest_access",
        "m.room.history_visibility", "m.room.topic", "m.room.avatar", "m.room.tombstone",
    ];

    /// <summary>Every room this server knows (or one, with <paramref name="roomId"/>), with its counts.</summary>
    public async Task<List<AdminRoomCounts>> RoomsAsync(DbSession s, string serverName, string? roomId) =>
        (await s.QueryAsync<AdminRoomCounts>($"""
            SELECT r.room_id, r.room_version, r.creator, r.is_public,
                (SELECT COUNT(*) FROM current_state m WHERE m.room_id = r.room_id AND m.type = 'm.room.member' AND m.membership = 'join')
                    AS joined_members,
                (SELECT COUNT(*) FROM current_state m WHERE m.room_id = r.room_id AND m.type = 'm.room.member' AND m.membership = 'join'
                    AND m.state_key LIKE @localUsers ESCAPE '\') AS joined_local_members,
                (SELECT COUNT(*) FROM current_state c WHERE c.room_id = r.room_id) AS state_events
            FROM rooms r {(roomId is null ? "" : "WHERE r.room_id = @roomId")}
            """, new { localUsers = LocalUsers(serverName), roomId })).ToList();

    /// <summary>The descriptive state events (name, alias, join rules...) of every room, or of one.</summary>
    public async Task<List<AdminRoomStateRow>> DescriptiveStateAsync(DbSession s, string? roomId)
    {
        var args = new SqlArgs();
        var types = SqlList.In(args, "t", DescriptiveTypes);
        if (roomId is not null)
            args.Add("roomId", roomId);
        return (await s.QueryAsync<AdminRoomStateRow>($"""
            SELECT c.room_id, c.type, e.json FROM current_state c JOIN events e ON e.event_id = c.event_id
            WHERE c.state_key = '' AND c.type IN {types} {(roomId is null ? "" : "AND c.room_id = @roomId")}
            """, args)).ToList();
    }

    /// <summary>How many devices the room's joined local users have.</summary>
    public Task<long> JoinedLocalDevicesAsync(DbSession s, string roomId, string serverName) => s.ExecuteScalarAsync<long>("""
        SELECT COUNT(*) FROM devices d JOIN current_state m ON m.state_key = d.user_id
        WHERE m.room_id = @roomId AND m.type = 'm.room.member' AND m.membership = 'join' AND m.state_key LIKE @localUsers ESCAPE '\'
        """, new { roomId, localUsers = LocalUsers(serverName) });

    /// <summary>Whether every local user with a membership in the room has forgotten it (Synapse's <c>forgotten</c>).</summary>
    public async Task<bool> ForgottenByAllLocalUsersAsync(DbSession s, string roomId, string serverName) => await s.ExecuteScalarAsync<long>("""
        SELECT COUNT(*) FROM current_state m
        WHERE m.room_id = @roomId AND m.type = 'm.room.member' AND m.state_key LIKE @localUsers ESCAPE '\'
        AND NOT EXISTS (SELECT 1 FROM forgotten_rooms f WHERE f.user_id = m.state_key AND f.room_id = m.room_id)
        """, new { roomId, localUsers = LocalUsers(serverName) }) == 0;

    private static string LocalUsers(string serverName) => "%:" + AdminUserStore.EscapeLike(serverName);
}
