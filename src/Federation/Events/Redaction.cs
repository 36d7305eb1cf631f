using System.Text.Json.Nodes;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>The redaction algorithm: which top-level and content keys an event keeps, per room version.</summary>
public static class Redaction
{
    private static readonly string[] TopLevelKeys =
        ["event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"];
    private static readonly string[] PreV11TopLevelKeys = ["prev_state", "origin", "membership"];

    /// <summary>Returns a redacted deep copy; the input is not modified.</summary>
    public static JsonObject Redact(JsonObject evt, RoomVersion version)
    {
        var redacted = new JsonObject();
        foreach (var (key, value) in evt)
            if (KeepsTopLevel(key, version))
                redacted[key] = key == "content" ? null : value?.DeepClone();
        redacted["content"] = RedactedContent(evt, version);
        return redacted;
    }

    /// <summary>
    /// The canonical JSON of the redacted event without the named top-level keys: what reference hashes and signatures
    /// cover, written from the event itself rather than from a redacted deep copy (two per event sent).
    /// </summary>
    public static byte[] EncodeRedactedWithout(JsonObject evt, RoomVersion version, params string[] excludedKeys) =>
        CanonicalJson.EncodeSelected(evt, key => KeepsTopLevel(key, version) && Array.IndexOf(excludedKeys, key) < 0, "content",
            RedactedContent(evt, version));

    private static JsonObject RedactedContent(JsonObject evt, RoomVersion version)
    {
        var type = (evt["type"] as JsonValue)?.TryGetValue<string>(out var t) == true ? t : "";
        return RedactContent(evt["content"] as JsonObject ?? [], type, version);
    }

    private static bool KeepsTopLevel(string key, RoomVersion version) =>
        Array.IndexOf(TopLevelKeys, key) >= 0 || (version.Redaction < RedactionRules.V11 && Array.IndexOf(PreV11TopLevelKeys, key) >= 0);

    private static JsonObject RedactContent(JsonObject content, string type, RoomVersion version)
    {
        var rules = version.Redaction;
        if (type == "m.room.create" && rules >= RedactionRules.V11)
            return (JsonObject)content.DeepClone();
        var kept = new JsonObject();
        foreach (var key in KeptContentKeys(type, rules))
            if (content.TryGetPropertyValue(key, out var value))
                kept[key] = value?.DeepClone();
        if (type == "m.room.member" && rules >= RedactionRules.V11
            && content["third_party_invite"] is JsonObject thirdParty && thirdParty.TryGetPropertyValue("signed", out var signed))
            kept["third_party_invite"] = new JsonObject { ["signed"] = signed?.DeepClone() };
        return kept;
    }

    private static IEnumerable<string> KeptContentKeys(string type, RedactionRules rules) => type switch
    {
        "m.room.member" => rules >= RedactionRules.V9 ? ["membership", "join_authorised_via_users_server"] : ["membership"],
        "m.room.create" => ["creator"],
        "m.room.join_rules" => rules >= RedactionRules.V8 ? ["join_rule", "allow"] : ["join_rule"],
        "m.room.power_levels" => rules >= RedactionRules.V11
            ? ["ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"]
            : ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"],
        "m.room.aliases" when rules == RedactionRules.V1 => ["aliases"],
        "m.room.history_visibility" => ["history_visibility"],
        "m.room.redaction" when rules >= RedactionRules.V11 => ["redacts"],
        _ => [],
    };
}
