using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Homeserver.Presence;
using Matrix.Homeserver.Receipts;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.ServerServer;

/// <summary>
/// Spec (server-server, EDUs): what another server's transaction says of its own users: typing, read receipts,
/// presence, device list and cross-signing key updates, to-device messages. Each is applied only for users of the
/// origin (typing and receipts only for members of the room); EDUs of unknown types are ignored.
/// </summary>
public sealed class InboundEdus(EventSpine spine, RoomReader reader, TypingService typing, ReceiptService receipts, PresenceService presence,
    ServerRoomAccess access, E2ee.DeviceListService deviceLists, E2ee.ToDeviceService toDevice, TimeProvider clock)
{
    public Task ApplyAsync(string origin, JsonObject edu, CancellationToken ct) => (edu["edu_type"]?.AsString(), edu["content"]) switch
    {
        ("m.typing", JsonObject content) => ApplyTypingAsync(origin, content, ct),
        ("m.receipt", JsonObject content) => ApplyReceiptsAsync(origin, content, ct),
        ("m.presence", JsonObject { } content) when content["push"] is JsonArray updates => ApplyPresenceAsync(origin, updates, ct),
        ("m.device_list_update", JsonObject content) => deviceLists.ReceiveDeviceListUpdateAsync(origin, content, ct),
        ("m.signing_key_update", JsonObject content) => deviceLists.ReceiveSigningKeyUpdateAsync(origin, content, ct),
        ("m.direct_to_device", JsonObject content) => toDevice.ReceiveAsync(origin, content, ct),
        _ => Task.CompletedTask,
    };

    private async Task ApplyTypingAsync(string origin, JsonObject content, CancellationToken ct)
    {
        if (content["room_id"]?.AsString() is { } roomId && content["user_id"]?.AsString() is { } userId
            && await IsJoinedFromOriginAsync(origin, roomId, userId, ct))
            await typing.SetAsync(roomId, userId, content["typing"] is JsonValue t && t.TryGetValue<bool>(out var on) && on, 30_000, ct);
    }

    private async Task ApplyReceiptsAsync(string origin, JsonObject content, CancellationToken ct)
    {
        foreach (var (roomId, byType) in content)
            foreach (var (type, byUser) in (byType as JsonObject) ?? [])
                foreach (var (userId, receipt) in (byUser as JsonObject) ?? [])
                    if (type == "m.read" && (receipt as JsonObject)?["event_ids"] is JsonArray { Count: > 0 } ids && ids[0]?.AsString() is { } eventId
                        && await IsJoinedFromOriginAsync(origin, roomId, userId, ct))
                    {
                        var data = receipt!["data"] as JsonObject;
                        await receipts.SetAsync(roomId, userId, type, data?["thread_id"]?.AsString() ?? "", eventId,
                            data?["ts"].TryGetInteger(out var ts) == true ? ts : clock.GetUtcNow().ToUnixTimeMilliseconds(), ct);
                    }
    }

    private Task ApplyPresenceAsync(string origin, JsonArray updates, CancellationToken ct) => presence.SetRemoteAsync(
        updates.OfType<JsonObject>()
            .Where(update => update["user_id"]?.AsString() is { } userId && UserId.TryParse(userId, out var user) && user.Server.Value == origin
                && update["presence"]?.AsString() is not null)
            .Select(update => new RemotePresence(update["user_id"]!.AsString()!, update["presence"]!.AsString()!, update["status_msg"]?.AsString(),
                update["last_active_ago"].TryGetInteger(out var ago) ? ago : 0))
            .ToList(), ct);

    private async Task<bool> IsJoinedFromOriginAsync(string origin, string roomId, string userId, CancellationToken ct) =>
        UserId.TryParse(userId, out var user) && user.Server.Value == origin
        && await spine.GetRoomAsync(roomId, ct) is { } room && await access.IsAllowedAsync(room, origin, ct)
        && await reader.MembershipAsync(room, userId, ct) == "join";
}
