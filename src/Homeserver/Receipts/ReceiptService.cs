using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Receipts;

/// <summary>Stores a receipt (from a local client or another server) and wakes whoever may see it.</summary>
public sealed class ReceiptService(Database db, ReceiptStore receipts, StreamPositions streams, RoomReader reader, SyncNotifier notifier)
{
    public async Task SetAsync(string roomId, string userId, string type, string threadId, string eventId, long ts, CancellationToken ct)
    {
        var receipt = new ReceiptRow(roomId, userId, type, threadId, eventId, ts);
        await db.WriteAsync(async s => await receipts.SetAsync(s, receipt, await streams.NextAsync(s, "receipts")), ct);
        // Private receipts concern only their owner.
        if (type == "m.read.private")
            notifier.Notify([userId]);
        else
            notifier.Notify((await reader.RoomAsync(roomId, ct)).MemberUserIds);
    }
}
