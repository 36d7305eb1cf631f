using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Receipts;

/// <summary>
/// Stores a receipt (from a local client or another server) and wakes whoever may see it. A local user's read receipt
/// also counts their unread events in the room anew and sends their push gateways the new badge.
/// </summary>
public sealed class ReceiptService(Database db, ReceiptStore receipts, StreamPositions streams, RoomReader reader, RoomLocks locks,
    Push.PushActionStore pushActions, SyncNotifier notifier, ServerServer.FederationSender federation,
    ApplicationServices.AppServiceSender appServices, Push.PushSender pushSender, Config.HomeserverConfig config)
{
    public async Task SetAsync(string roomId, string userId, string type, string threadId, string eventId, long ts, CancellationToken ct)
    {
        var receipt = new ReceiptRow(roomId, userId, type, threadId, eventId, ts);
        var movesUnread = type is "m.read" or "m.read.private" && Federation.Events.EventSigning.ServerOf(userId) == config.ServerName;
        // The room's events add to the counts as they commit: none may commit between the recount's read and its write.
        using (movesUnread ? await locks.AcquireAsync(roomId, ct) : null)
            await db.WriteAsync(async s =>
            {
                await receipts.SetAsync(s, receipt, await streams.NextAsync(s, "receipts"));
                if (movesUnread)
                    await pushActions.RecountAsync(s, userId, roomId);
            }, ct);
        if (movesUnread)
            pushSender.OnReadReceipt(userId);
        // Private receipts concern only their owner.
        if (type == "m.read.private")
        {
            notifier.Notify([userId]);
            return;
        }
        var room = await reader.RoomAsync(roomId, ct);
        notifier.Notify([.. room.MemberUserIds, roomId]);
        var receiptData = new System.Text.Json.Nodes.JsonObject { ["ts"] = ts };
        if (threadId.Length > 0)
            receiptData["thread_id"] = threadId;
        await appServices.QueueEphemeralAsync(room, new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "m.receipt",
            ["content"] = new System.Text.Json.Nodes.JsonObject
            {
                [eventId] = new System.Text.Json.Nodes.JsonObject { [type] = new System.Text.Json.Nodes.JsonObject { [userId] = receiptData.DeepClone() } },
            },
        }, ct);
        if (Federation.Events.EventSigning.ServerOf(userId) != config.ServerName)
            return;
        await federation.SendEduAsync(room.JoinedServers, "m.receipt", new System.Text.Json.Nodes.JsonObject
        {
            [roomId] = new System.Text.Json.Nodes.JsonObject
            {
                [type] = new System.Text.Json.Nodes.JsonObject
                {
                    [userId] = new System.Text.Json.Nodes.JsonObject { ["event_ids"] = new System.Text.Json.Nodes.JsonArray(eventId), ["data"] = receiptData },
                },
            },
        }, ct);
    }
}
