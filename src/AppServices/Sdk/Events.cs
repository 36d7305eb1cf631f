using System.Text.Json.Nodes;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// A room event of a transaction (client format). <see cref="Content"/> and <see cref="Json"/> keep everything the
/// typed fields do not cover.
/// </summary>
public sealed record RoomEvent(string EventId, string RoomId, string Sender, string Type, string? StateKey, long OriginServerTs,
    JsonObject Content, JsonObject Json)
{
    /// <summary>The typed event, or null when a required field is missing or mistyped (such events are skipped).</summary>
    public static RoomEvent? From(JsonObject json) =>
        Text(json, "event_id") is { } eventId && Text(json, "room_id") is { } roomId && Text(json, "sender") is { } sender
        && Text(json, "type") is { } type && json["content"] is JsonObject content
            ? new RoomEvent(eventId, roomId, sender, type, Text(json, "state_key"), Number(json, "origin_server_ts") ?? 0, content, json)
            : null;

    public bool IsState => StateKey is not null;

    /// <summary>For <c>m.room.member</c>: the membership it sets, for the user in <see cref="StateKey"/>.</summary>
    public string? Membership => Type == "m.room.member" ? Text(Content, "membership") : null;

    /// <summary>For <c>m.room.message</c> with a body: the message.</summary>
    public MessageContent? Message => Type == "m.room.message" ? MessageContent.From(Content) : null;

    internal static string? Text(JsonObject json, string key) =>
        json[key] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    internal static long? Number(JsonObject json, string key) =>
        json[key] is JsonValue value && value.TryGetValue<long>(out var number) ? number : null;
}

/// <summary>An <c>m.room.message</c>: type and body, the HTML body when given, and what it replies to or continues.</summary>
public sealed record MessageContent(string MsgType, string Body, string? FormattedBody, string? InReplyTo, string? ThreadRoot)
{
    public static MessageContent? From(JsonObject content)
    {
        if (RoomEvent.Text(content, "body") is not { } body)
            return null;
        var relation = content["m.relates_to"] as JsonObject;
        var formatted = RoomEvent.Text(content, "format") == "org.matrix.custom.html" ? RoomEvent.Text(content, "formatted_body") : null;
        return new MessageContent(RoomEvent.Text(content, "msgtype") ?? "m.text", body, formatted,
            relation?["m.in_reply_to"] is JsonObject reply ? RoomEvent.Text(reply, "event_id") : null,
            relation is not null && RoomEvent.Text(relation, "rel_type") == "m.thread" ? RoomEvent.Text(relation, "event_id") : null);
    }
}

/// <summary>The users typing in a room now (<c>m.typing</c>).</summary>
public sealed record TypingEvent(string RoomId, IReadOnlyList<string> UserIds);

/// <summary>One user's receipt (<c>m.receipt</c>): of which type, up to which event, in which thread if any.</summary>
public sealed record Receipt(string RoomId, string EventId, string ReceiptType, string UserId, long Timestamp, string? ThreadId);

/// <summary>A user's presence (<c>m.presence</c>).</summary>
public sealed record PresenceEvent(string UserId, string Presence, string? StatusMessage, long? LastActiveAgo, bool? CurrentlyActive);

/// <summary>A to-device message for one of the service's devices (MSC4203).</summary>
public sealed record ToDeviceMessage(string Sender, string Type, string ToUserId, string ToDeviceId, JsonObject Content);

/// <summary>
/// The device data of a transaction for encrypting bridges (MSC3202): users whose device lists changed or who no
/// longer share a room with the service's users, and one-time key counts and unused fallback key algorithms per user
/// and device.
/// </summary>
public sealed record DeviceDataUpdate(
    IReadOnlyList<string> Changed, IReadOnlyList<string> Left,
    IReadOnlyDictionary<(string UserId, string DeviceId), IReadOnlyDictionary<string, long>> OneTimeKeyCounts,
    IReadOnlyDictionary<(string UserId, string DeviceId), IReadOnlyList<string>> UnusedFallbackKeyTypes)
{
    public bool IsEmpty => Changed.Count + Left.Count + OneTimeKeyCounts.Count + UnusedFallbackKeyTypes.Count == 0;
}
