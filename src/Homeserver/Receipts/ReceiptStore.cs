using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Receipts;

public sealed record ReceiptRow(string RoomId, string UserId, string ReceiptType, string ThreadId, string EventId, long Ts);

/// <summary>Read receipts: one per (room, user, type, thread); <c>thread_id</c> "" is the unthreaded receipt.</summary>
public sealed class ReceiptStore
{
    public Task SetAsync(DbSession s, ReceiptRow receipt, long streamId) => s.ExecuteAsync("""
        INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, ts, stream_id)
        VALUES (@RoomId, @UserId, @ReceiptType, @ThreadId, @EventId, @Ts, @streamId)
        ON CONFLICT (room_id, user_id, receipt_type, thread_id)
        DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts, stream_id = excluded.stream_id
        """, new { receipt.RoomId, receipt.UserId, receipt.ReceiptType, receipt.ThreadId, receipt.EventId, receipt.Ts, streamId });

    /// <summary>Receipts of these rooms stored in the window.</summary>
    public SqlRead<ReceiptRow, List<ReceiptRow>> ChangedSince(IReadOnlyCollection<string> roomIds, long after, long upTo)
    {
        var args = new SqlArgs(new { after, upTo });
        return SqlReads.Rows<ReceiptRow>(
            $"SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM receipts WHERE room_id IN {SqlList.In(args, "r", roomIds)} AND stream_id > @after AND stream_id <= @upTo",
            args);
    }

    /// <summary>A room's receipts on some of its events, and the user's own receipts in it.</summary>
    public SqlRead<ReceiptRow, List<ReceiptRow>> OnEventsOrBy(string roomId, IReadOnlyCollection<string> eventIds, string userId)
    {
        var args = new SqlArgs(new { roomId, userId });
        var onEvents = eventIds.Count > 0 ? $"event_id IN {SqlList.In(args, "e", eventIds)} OR " : "";
        return SqlReads.Rows<ReceiptRow>(
            $"SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM receipts WHERE room_id = @roomId AND ({onEvents}user_id = @userId)", args);
    }

    /// <summary>Rooms with receipts stored in the window (an incremental sync looks only at rooms where something happened).</summary>
    public SqlRead<string, List<string>> RoomsChanged(long after, long upTo) =>
        SqlReads.Rows<string>("SELECT DISTINCT room_id FROM receipts WHERE stream_id > @after AND stream_id <= @upTo", new { after, upTo });
}
