using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// A local user's invite to (or knock on) a room this server does not know yet, with the stripped state the other
/// server sent. <paramref name="Membership"/> is <c>invite</c> or <c>knock</c>; <paramref name="ViaServer"/> is the server
/// to tell when it is withdrawn (the inviter's, or the one knocked through).
/// </summary>
public sealed record RemoteInviteRow(string RoomId, string UserId, string EventId, string RoomVersion, string EventJson, string InviteStateJson,
    long StreamOrdering, string Membership = "invite", string? ViaServer = null);

public sealed class RemoteInviteStore(MembershipCache memberships)
{
    private const string Columns = "room_id, user_id, event_id, room_version, event_json, invite_state_json, stream_ordering, membership, via_server";

    public Task SetAsync(DbSession s, RemoteInviteRow row)
    {
        memberships.Changed(s, row.UserId);
        return s.ExecuteAsync($"""
        INSERT INTO remote_invites ({Columns}) VALUES (@RoomId, @UserId, @EventId, @RoomVersion, @EventJson, @InviteStateJson, @StreamOrdering, @Membership, @ViaServer)
        ON CONFLICT (room_id, user_id) DO UPDATE SET event_id = excluded.event_id, room_version = excluded.room_version,
            event_json = excluded.event_json, invite_state_json = excluded.invite_state_json, stream_ordering = excluded.stream_ordering,
            membership = excluded.membership, via_server = excluded.via_server
        """, row);
    }

    /// <summary>The user's invites and knocks (read with their other memberships: <see cref="RoomStore.UserMemberships"/>).</summary>
    internal static SqlRead<RemoteInviteRow, List<RemoteInviteRow>> ForUser(string userId) =>
        SqlReads.Rows<RemoteInviteRow>($"SELECT {Columns} FROM remote_invites WHERE user_id = @userId", new { userId });

    public Task<RemoteInviteRow?> GetAsync(DbSession s, string roomId, string userId) => s.QuerySingleOrDefaultAsync<RemoteInviteRow>(
        $"SELECT {Columns} FROM remote_invites WHERE room_id = @roomId AND user_id = @userId", new { roomId, userId });

    public Task DeleteAsync(DbSession s, string roomId, string userId)
    {
        memberships.Changed(s, userId);
        return s.ExecuteAsync("DELETE FROM remote_invites WHERE room_id = @roomId AND user_id = @userId", new { roomId, userId });
    }
}
