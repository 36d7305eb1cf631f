using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Push;

/// <summary>Checks rules and actions a client sends, and builds the stored form of a user rule for its kind.</summary>
public static partial class PushRuleValidation
{
    [GeneratedRegex("^(==|<|>|<=|>=)?[0-9]+$")]
    private static partial Regex MemberCountPattern();

    public static string Kind(string kind) => PushRuleSet.Kinds.Contains(kind)
        ? kind
        : throw MatrixException.InvalidParam($"Unknown push rule kind '{kind}'.");

    public static string RuleId(string ruleId) => ruleId.Contains('/') || ruleId.Contains('\\')
        ? throw MatrixException.InvalidParam("Rule IDs must not contain '/' or '\\'.")
        : ruleId;

    /// <summary>The rule a <c>PUT</c> creates, from its body: actions always, conditions or a pattern by kind.</summary>
    public static JsonObject NewRule(string kind, string ruleId, JsonElement body)
    {
        if (ruleId.StartsWith('.'))
            throw MatrixException.InvalidParam("Rule IDs starting with '.' are reserved for server-default rules.");
        var rule = new JsonObject { ["rule_id"] = ruleId, ["default"] = false, ["enabled"] = true };
        switch (kind)
        {
            case "override" or "underride":
                rule["conditions"] = body.TryGetProperty("conditions", out var conditions) && conditions.ValueKind != JsonValueKind.Null
                    ? Conditions(conditions)
                    : new JsonArray();
                break;
            case "content":
                rule["pattern"] = body.TryGetProperty("pattern", out var pattern) && pattern.ValueKind == JsonValueKind.String
                    ? pattern.GetString()
                    : throw MatrixException.InvalidParam("Content rules need a string 'pattern'.");
                break;
        }
        rule["actions"] = Actions(body.TryGetProperty("actions", out var actions) ? actions : throw MatrixException.MissingParam("actions"));
        return rule;
    }

    /// <summary>notify, the deprecated dont_notify and coalesce (which mean nothing), and set_tweak objects.</summary>
    public static JsonArray Actions(JsonElement actions)
    {
        if (actions.ValueKind != JsonValueKind.Array)
            throw MatrixException.BadJson("'actions' must be an array.");
        var result = new JsonArray();
        foreach (var action in actions.EnumerateArray())
        {
            var valid = action.ValueKind switch
            {
                JsonValueKind.String => action.GetString() is "notify" or "dont_notify" or "coalesce",
                JsonValueKind.Object => action.TryGetProperty("set_tweak", out var tweak) && tweak.ValueKind == JsonValueKind.String,
                _ => false,
            };
            if (!valid)
                throw MatrixException.InvalidParam($"Unknown push rule action: {action.GetRawText()}");
            result.Add(JsonNode.Parse(action.GetRawText()));
        }
        return result;
    }

    /// <summary>Known condition kinds must be well formed; unknown kinds are kept (they never match, per the spec).</summary>
    private static JsonArray Conditions(JsonElement conditions)
    {
        if (conditions.ValueKind != JsonValueKind.Array)
            throw MatrixException.BadJson("'conditions' must be an array.");
        var result = new JsonArray();
        foreach (var condition in conditions.EnumerateArray())
        {
            if (condition.ValueKind != JsonValueKind.Object || !condition.TryGetProperty("kind", out var kind) || kind.ValueKind != JsonValueKind.String)
                throw MatrixException.InvalidParam("Each condition must be an object with a string 'kind'.");
            var ok = kind.GetString() switch
            {
                "event_match" => IsString(condition, "key") && IsString(condition, "pattern"),
                "event_property_is" => IsString(condition, "key") && condition.TryGetProperty("value", out var v)
                    && v.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null,
                "event_property_contains" => IsString(condition, "key") && condition.TryGetProperty("value", out _),
                "room_member_count" => IsString(condition, "is") && MemberCountPattern().IsMatch(condition.GetProperty("is").GetString()!),
                "sender_notification_permission" => IsString(condition, "key"),
                _ => true,
            };
            if (!ok)
                throw MatrixException.InvalidParam($"Malformed '{kind.GetString()}' condition.");
            result.Add(JsonNode.Parse(condition.GetRawText()));
        }
        return result;
    }

    private static bool IsString(JsonElement obj, string name) => obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String;
}
