using System.Text.Json.Nodes;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// A transaction from the homeserver, typed: room events in order, ephemeral events (stable <c>ephemeral</c> or the
/// MSC2409 name), to-device messages and device data (MSC4203/MSC3202 unstable names). Malformed entries are skipped,
/// so one bad event never blocks the rest.
/// </summary>
public sealed record Transaction(
    IReadOnlyList<RoomEvent> Events, IReadOnlyList<TypingEvent> Typing, IReadOnlyList<Receipt> Receipts, IReadOnlyList<PresenceEvent> Presence,
    IReadOnlyList<ToDeviceMessage> ToDevice, DeviceDataUpdate DeviceData)
{
    public static Transaction Parse(JsonObject body)
    {
        var events = Objects(body["events"]).Select(RoomEvent.From).OfType<RoomEvent>().ToList();
        var typing = new List<TypingEvent>();
        var receipts = new List<Receipt>();
        var presence = new List<PresenceEvent>();
        foreach (var e in Objects(body["ephemeral"] ?? body["de.sorunome.msc2409.ephemeral"]))
        {
            var content = e["content"] as JsonObject ?? [];
            var roomId = RoomEvent.Text(e, "room_id");
            switch (RoomEvent.Text(e, "type"))
            {
                case "m.typing" when roomId is not null:
                    typing.Add(new TypingEvent(roomId, Strings(content["user_ids"])));
                    break;
                case "m.receipt" when roomId is not null:
                    foreach (var (eventId, byType) in content)
                        foreach (var (receiptType, byUser) in byType as JsonObject ?? [])
                            foreach (var (userId, data) in byUser as JsonObject ?? [])
                                if (data is JsonObject receipt)
                                    receipts.Add(new Receipt(roomId, eventId, receiptType, userId, RoomEvent.Number(receipt, "ts") ?? 0,
                                        RoomEvent.Text(receipt, "thread_id")));
                    break;
                case "m.presence" when RoomEvent.Text(e, "sender") is { } sender && RoomEvent.Text(content, "presence") is { } state:
                    presence.Add(new PresenceEvent(sender, state, RoomEvent.Text(content, "status_msg"), RoomEvent.Number(content, "last_active_ago"),
                        content["currently_active"] is JsonValue active && active.TryGetValue<bool>(out var isActive) ? isActive : null));
                    break;
            }
        }
        var toDevice = Objects(body["de.sorunome.msc2409.to_device"])
            .Select(m => RoomEvent.Text(m, "sender") is { } sender && RoomEvent.Text(m, "type") is { } type && RoomEvent.Text(m, "to_user_id") is { } user
                && RoomEvent.Text(m, "to_device_id") is { } device && m["content"] is JsonObject content
                    ? new ToDeviceMessage(sender, type, user, device, content)
                    : null)
            .OfType<ToDeviceMessage>().ToList();
        return new Transaction(events, typing, receipts, presence, toDevice, ParseDeviceData(body));
    }

    private static DeviceDataUpdate ParseDeviceData(JsonObject body)
    {
        var lists = body["org.matrix.msc3202.device_lists"] as JsonObject;
        var counts = new Dictionary<(string, string), IReadOnlyDictionary<string, long>>();
        foreach (var (user, device, value) in PerDevice(body["org.matrix.msc3202.device_one_time_keys_count"] ?? body["org.matrix.msc3202.device_one_time_key_counts"]))
            if (value is JsonObject byAlgorithm)
                counts[(user, device)] = byAlgorithm.Where(p => p.Value is JsonValue v && v.TryGetValue<long>(out _))
                    .ToDictionary(p => p.Key, p => p.Value!.GetValue<long>());
        var fallbacks = new Dictionary<(string, string), IReadOnlyList<string>>();
        foreach (var (user, device, value) in PerDevice(body["org.matrix.msc3202.device_unused_fallback_key_types"]))
            fallbacks[(user, device)] = Strings(value);
        return new DeviceDataUpdate(Strings(lists?["changed"]), Strings(lists?["left"]), counts, fallbacks);
    }

    private static IEnumerable<(string User, string Device, JsonNode? Value)> PerDevice(JsonNode? node) =>
        (node as JsonObject ?? []).SelectMany(user => (user.Value as JsonObject ?? []).Select(device => (user.Key, device.Key, device.Value)));

    private static IEnumerable<JsonObject> Objects(JsonNode? node) => (node as JsonArray ?? []).OfType<JsonObject>();

    private static List<string> Strings(JsonNode? node) =>
        (node as JsonArray ?? []).Select(n => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null).OfType<string>().ToList();
}
