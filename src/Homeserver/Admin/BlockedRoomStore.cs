using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>The rooms an admin blocked (Synapse's <c>blocked_rooms</c>), and who blocked each.</summary>
public sealed class BlockedRoomStore
{
    public Task BlockAsync(DbSession s, string roomId, string admin) => s.ExecuteAsync(
        "INSERT INTO blocked_rooms (room_id, blocked_by) VALUES (@roomId, @admin) ON CONFLICT (room_id) DO UPDATE SET blocked_by = excluded.blocked_by",
        new { roomId, admin });

    public Task UnblockAsync(DbSession s, string roomId) => s.ExecuteAsync("DELETE FROM blocked_rooms WHERE room_id = @roomId", new { roomId });

    /// <summary>Nobody here joins, knocks on or is invited to a room an admin blocked (as in Synapse).</summary>
    public async Task RefuseIfBlockedAsync(Database db, string roomId, CancellationToken ct)
    {
        if (await db.ReadAsync(s => BlockedByAsync(s, roomId), ct) is not null)
            throw MatrixException.Forbidden("This room has been blocked on this server.");
    }

    /// <summary>The admin who blocked the room, or null when it is not blocked.</summary>
    public Task<string?> BlockedByAsync(DbSession s, string roomId) =>
        s.QuerySingleOrDefaultAsync<string?>("SELECT blocked_by FROM blocked_rooms WHERE room_id = @roomId", new { roomId });
}
