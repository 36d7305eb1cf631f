using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// The SQL of purging a room: every row of it goes (events, state, receipts, room account data and tags, unread counts,
/// push actions, relations, search, aliases, directory entries, pending invites, key backups of its sessions, as Synapse
/// does), except what records why it went: event reports and the block.
/// </summary>
public sealed class RoomPurgeStore(Rooms.MembershipCache memberships, Push.UnreadCountCache unreadCounts)
{
    private static readonly string[] Statements =
    [
        "DELETE FROM event_txn_ids WHERE event_id IN (SELECT event_id FROM events WHERE room_id = @roomId)",
        "DELETE FROM state_group_entries WHERE group_id IN (SELECT group_id FROM state_groups WHERE room_id = @roomId)",
        "DELETE FROM state_groups WHERE room_id = @roomId",
        "DELETE FROM current_state WHERE room_id = @roomId",
        "DELETE FROM forward_extremities WHERE room_id = @roomId",
        "DELETE FROM event_push_actions WHERE room_id = @roomId",
        "DELETE FROM unread_counts WHERE room_id = @roomId",
        "DELETE FROM event_relations WHERE room_id = @roomId",
        "DELETE FROM event_search WHERE room_id = @roomId",
        "DELETE FROM receipts WHERE room_id = @roomId",
        "DELETE FROM account_data WHERE room_id = @roomId",
        "DELETE FROM room_aliases WHERE room_id = @roomId",
        "DELETE FROM appservice_room_list WHERE room_id = @roomId",
        "DELETE FROM remote_invites WHERE room_id = @roomId",
        "DELETE FROM forgotten_rooms WHERE room_id = @roomId",
        "DELETE FROM room_key_backup_keys WHERE room_id = @roomId",
        "DELETE FROM events WHERE room_id = @roomId",
        "DELETE FROM rooms WHERE room_id = @roomId",
    ];

    public async Task PurgeAsync(DbSession s, string roomId)
    {
        foreach (var statement in Statements)
            await s.ExecuteAsync(statement, new { roomId });
        // The members' cached memberships and unread counts of the room go with it (all of them: who was in it is gone).
        s.OnCompleted(_ =>
        {
            memberships.ForgetAll();
            unreadCounts.ForgetAll();
        });
    }
}
