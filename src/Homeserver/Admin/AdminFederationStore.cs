using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>A room shared with a destination, and its latest event's position.</summary>
public sealed record DestinationRoomRow(string RoomId, long StreamOrdering);

/// <summary>The SQL behind the federation admin API: which servers this one federates with, and in which rooms.</summary>
public sealed class AdminFederationStore
{
    /// <summary>The users joined to rooms here (their servers are the destinations) and the destinations with queued traffic.</summary>
    public async Task<(List<string> JoinedUsers, List<string> QueuedDestinations)> DestinationSourcesAsync(DbSession s) =>
        ((await s.QueryAsync<string>("SELECT DISTINCT state_key FROM current_state WHERE type = 'm.room.member' AND membership = 'join'")).ToList(),
         (await s.QueryAsync<string>("SELECT DISTINCT destination FROM federation_outbox")).ToList());

    /// <summary>The rooms where a user of the destination is joined, by room ID.</summary>
    public async Task<List<DestinationRoomRow>> RoomsOfAsync(DbSession s, string destination) =>
        (await s.QueryAsync<DestinationRoomRow>("""
            SELECT c.room_id, (SELECT MAX(e.stream_ordering) FROM events e WHERE e.room_id = c.room_id) AS stream_ordering
            FROM (SELECT DISTINCT room_id FROM current_state
                  WHERE type = 'm.room.member' AND membership = 'join' AND state_key LIKE @pattern ESCAPE '\') c
            ORDER BY c.room_id
            """, new { pattern = "%:" + AdminUserStore.EscapeLike(destination) })).ToList();
}
