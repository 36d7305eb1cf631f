using System.Text.Json.Nodes;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>
/// A persistent data unit (room event) in federation format, checked against its room version's event format, with
/// the fields the room protocol reads parsed once. <see cref="Json"/> is the event as signed (without <c>unsigned</c>).
/// </summary>
public sealed class Pdu
{
    public required RoomVersion Version { get; init; }
    public required JsonObject Json { get; init; }
    public required string EventId { get; init; }
    public required string RoomId { get; init; }
    public required string Type { get; init; }
    public required string? StateKey { get; init; }
    public required string Sender { get; init; }
    public required long Depth { get; init; }
    public required long OriginServerTs { get; init; }
    public required IReadOnlyList<string> PrevEvents { get; init; }
    public required IReadOnlyList<string> AuthEvents { get; init; }
    public required JsonObject Content { get; init; }
    /// <summary>The redacted event's ID for <c>m.room.redaction</c> (top level before v11, in content from v11).</summary>
    public string? Redacts { get; init; }

    public bool IsState => StateKey is not null;
    public StateKey StateKeyPair => new(Type, StateKey ?? throw new InvalidOperationException("not a state event"));
    public string? Membership => Type == "m.room.member" ? ContentString("membership") : null;

    public string? ContentString(string key) =>
        Content[key] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    public static Pdu Parse(JsonObject json, RoomVersion version) =>
        PduParser.TryParse(json, version, out var pdu, out var error) ? pdu : throw new FormatException(error);

    public override string ToString() => $"{EventId} ({Type}{(StateKey is null ? "" : $", '{StateKey}'")})";
}

/// <summary>A state map key: event type and state key.</summary>
public readonly record struct StateKey(string Type, string Key)
{
    public static readonly StateKey Create = new("m.room.create", "");
    public static readonly StateKey PowerLevels = new("m.room.power_levels", "");
    public static readonly StateKey JoinRules = new("m.room.join_rules", "");

    public static StateKey Member(string userId) => new("m.room.member", userId);
    public static StateKey ThirdPartyInvite(string token) => new("m.room.third_party_invite", token);

    public override string ToString() => $"({Type}, '{Key}')";
}
