using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Admin;

/// <summary>A room as Synapse's room admin API describes it, from its counts and descriptive state.</summary>
public sealed record AdminRoomDescription(
    AdminRoomCounts Counts, string? Name, string? CanonicalAlias, string? Encryption, bool Federatable, string? JoinRules, string? GuestAccess,
    string? HistoryVisibility, string? RoomType, string? Topic, string? Avatar, bool Tombstoned, string? ReplacementRoom)
{
    public static AdminRoomDescription From(AdminRoomCounts counts, IEnumerable<AdminRoomStateRow> state)
    {
        var content = state.ToDictionary(row => row.Type, row => ContentOf(row.Json));
        string? Field(string type, string field) => StringField(content.GetValueOrDefault(type), field);
        var create = content.GetValueOrDefault("m.room.create");
        var federatable = !(create.ValueKind == JsonValueKind.Object && create.TryGetProperty("m.federate", out var federate)
            && federate.ValueKind == JsonValueKind.False);
        return new AdminRoomDescription(counts, Field("m.room.name", "name"), Field("m.room.canonical_alias", "alias"),
            Field("m.room.encryption", "algorithm"), federatable, Field("m.room.join_rules", "join_rule"), Field("m.room.guest_access", "guest_access"),
            Field("m.room.history_visibility", "history_visibility"), Field("m.room.create", "type"), Field("m.room.topic", "topic"),
            Field("m.room.avatar", "url"), content.ContainsKey("m.room.tombstone"), Field("m.room.tombstone", "replacement_room"));
    }

    /// <summary>The content of an event as stored (JSON text).</summary>
    public static JsonElement ContentOf(string eventJson) =>
        JsonSerializer.Deserialize<JsonElement>(eventJson).TryGetProperty("content", out var content) ? content : default;

    /// <summary>A string field of an event's content; null when absent or not a string.</summary>
    public static string? StringField(JsonElement content, string field) =>
        content.ValueKind == JsonValueKind.Object && content.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() : null;

    /// <summary>Synapse's <c>order_by</c> values: each one's sort key, and whether it sorts largest first when going forwards.</summary>
    public static readonly IReadOnlyDictionary<string, (Func<AdminRoomDescription, IComparable?> Key, bool LargestFirst)> Orders =
        new Dictionary<string, (Func<AdminRoomDescription, IComparable?>, bool)>
        {
            ["name"] = (r => r.Name, false),
            ["alphabetical"] = (r => r.Name, false),
            ["canonical_alias"] = (r => r.CanonicalAlias, false),
            ["joined_members"] = (r => r.Counts.JoinedMembers, true),
            ["size"] = (r => r.Counts.JoinedMembers, true),
            ["joined_local_members"] = (r => r.Counts.JoinedLocalMembers, true),
            ["version"] = (r => r.Counts.RoomVersion, true),
            ["creator"] = (r => r.Counts.Creator, false),
            ["encryption"] = (r => r.Encryption, false),
            ["federatable"] = (r => r.Federatable, false),
            ["public"] = (r => r.Counts.IsPublic, false),
            ["join_rules"] = (r => r.JoinRules, false),
            ["guest_access"] = (r => r.GuestAccess, false),
            ["history_visibility"] = (r => r.HistoryVisibility, false),
            ["state_events"] = (r => r.Counts.StateEvents, true),
        };

    /// <summary>Synapse's <c>search_term</c>: in the name or the alias's localpart (ignoring case), or in the room ID (exactly).</summary>
    public bool Matches(string term) =>
        Name?.Contains(term, StringComparison.OrdinalIgnoreCase) == true
        || (CanonicalAlias is { } alias && alias.IndexOf(':') is var colon and > 0
            && alias[1..colon].Contains(term, StringComparison.OrdinalIgnoreCase))
        || Counts.RoomId.Contains(term, StringComparison.Ordinal);

    /// <summary>The fields of a room in the room list.</summary>
    public JsonObject ToListJson() => new()
    {
        ["room_id"] = Counts.RoomId,
        ["name"] = Name,
        ["canonical_alias"] = CanonicalAlias,
        ["joined_members"] = Counts.JoinedMembers,
        ["joined_local_members"] = Counts.JoinedLocalMembers,
        ["version"] = Counts.RoomVersion,
        ["creator"] = Counts.Creator,
        ["encryption"] = Encryption,
        ["federatable"] = Federatable,
        ["public"] = Counts.IsPublic != 0,
        ["join_rules"] = JoinRules,
        ["guest_access"] = GuestAccess,
        ["history_visibility"] = HistoryVisibility,
        ["state_events"] = Counts.StateEvents,
        ["room_type"] = RoomType,
    };
}
