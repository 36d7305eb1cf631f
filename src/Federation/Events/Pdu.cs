using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>
/// A persistent data unit (room event) in federation format, checked against its room version's event format, with
/// the fields the room protocol reads parsed once. <see cref="Json"/> is the event as signed (without <c>unsigned</c>).
/// A cached event that has not been used for a while is kept as its UTF-8 alone (<see cref="Compact"/>): a parsed
/// message's JSON tree takes 3-5 KB, its UTF-8 under 1 KB, and the tree is parsed again when it is next read.
/// </summary>
public sealed class Pdu
{
    private JsonObject? _json;
    private byte[]? _utf8;

    public Pdu() { }

    /// <summary>An event read back from storage: its tree is parsed from <paramref name="utf8"/> when first read.</summary>
    internal Pdu(byte[] utf8) => _utf8 = utf8;

    public required RoomVersion Version { get; init; }
    /// <summary>The event's JSON tree, shared by every reader: never modify it.</summary>
    public JsonObject Json { get => _json ?? ParseTree(); init => _json = value; }
    public required string EventId { get; init; }
    public required string RoomId { get; init; }
    public required string Type { get; init; }
    public required string? StateKey { get; init; }
    public required string Sender { get; init; }
    public required long Depth { get; init; }
    public required long OriginServerTs { get; init; }
    public required IReadOnlyList<string> PrevEvents { get; init; }
    public required IReadOnlyList<string> AuthEvents { get; init; }
    public JsonObject Content => (JsonObject)Json["content"]!;
    /// <summary>The redacted event's ID for <c>m.room.redaction</c> (top level before v11, in content from v11).</summary>
    public string? Redacts { get; init; }

    public bool IsState => StateKey is not null;
    public StateKey StateKeyPair => new(Type, StateKey ?? throw new InvalidOperationException("not a state event"));
    /// <summary>The content's <c>membership</c> of an <c>m.room.member</c> event, read without parsing a compacted event again.</summary>
    public string? Membership { get; init; }

    public string? ContentString(string key) =>
        Content[key] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    /// <summary>
    /// Drops the JSON tree, keeping the event's UTF-8 to parse it again when it is next read: its canonical JSON, which
    /// every event's tree was encoded to when it was hashed or checked, and which reads back as exactly what was signed.
    /// </summary>
    public void Compact()
    {
        if (_json is null)
            return;
        CanonicalUtf8();
        Volatile.Write(ref _json, null);
    }

    /// <summary>The event's canonical JSON as UTF-8 (what is stored), encoded once and kept, so compacting costs nothing more.</summary>
    public byte[] CanonicalUtf8()
    {
        if (Volatile.Read(ref _utf8) is { } utf8)
            return utf8;
        var encoded = CanonicalJson.Encode(_json);
        return Interlocked.CompareExchange(ref _utf8, encoded, null) ?? encoded;
    }

    /// <summary>The event's canonical JSON as text, as the events table stores it.</summary>
    public string CanonicalText() => Encoding.UTF8.GetString(CanonicalUtf8());

    private JsonObject ParseTree()
    {
        var json = (JsonObject)JsonNode.Parse(_utf8!)!;
        return Interlocked.CompareExchange(ref _json, json, null) ?? json;
    }

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
