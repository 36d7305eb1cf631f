using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Matrix.Homeserver.Push;

/// <summary>
/// What evaluating an event's push rules for one user needs beyond the event: the room's joined member count, the
/// user's display name in the room (only for <c>contains_display_name</c>), the sender's power level and the room's
/// <c>notifications</c> levels.
/// </summary>
public sealed record PushContext(
    int MemberCount, string? DisplayName, long SenderLevel, IReadOnlyDictionary<string, long> NotificationLevels)
{
    /// <summary>A notification kind's required level: the room's, else 50 (the spec's default for <c>room</c>).</summary>
    public bool SenderMayNotify(string key) => SenderLevel >= NotificationLevels.GetValueOrDefault(key, 50);
}

/// <summary>The outcome for one user: the matching rule's actions, and whether they notify and highlight.</summary>
public sealed record PushOutcome(JsonArray Actions, bool Notify, bool Highlight);

/// <summary>
/// Evaluates a user's push rules against an event (spec: "Push rules", conditions and the kinds' implicit
/// conditions): the first enabled matching rule in priority order decides.
/// </summary>
public static class PushEvaluator
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(50);
    private static readonly ConcurrentDictionary<(string Pattern, bool WordBoundary), Regex> Globs = new();

    /// <summary>The first matching rule's outcome, or null when no rule matches (no notification).</summary>
    public static PushOutcome? Evaluate(JsonObject ruleset, JsonObject ev, PushContext context)
    {
        foreach (var kind in PushRuleSet.Kinds)
            foreach (var rule in (ruleset[kind] as JsonArray ?? []).OfType<JsonObject>())
            {
                if (rule["enabled"]?.GetValue<bool>() == false || !Matches(kind, rule, ev, context))
                    continue;
                var actions = rule["actions"] as JsonArray ?? [];
                return new PushOutcome((JsonArray)actions.DeepClone(), actions.Any(a => a is JsonValue v && v.TryGetValue<string>(out var s) && s == "notify"),
                    actions.OfType<JsonObject>().Any(a => a["set_tweak"]?.GetValue<string>() == "highlight"
                        && (a["value"] is null || (a["value"] is JsonValue value && value.TryGetValue<bool>(out var on) && on))));
            }
        return null;
    }

    private static bool Matches(string kind, JsonObject rule, JsonObject ev, PushContext context)
    {
        var ruleId = rule["rule_id"]?.GetValue<string>() ?? "";
        return kind switch
        {
            "content" => rule["pattern"]?.GetValue<string>() is { } pattern && Property(ev, "content.body") is JsonValue body
                && body.TryGetValue<string>(out var text) && Glob(pattern, text, wordBoundary: true),
            "room" => ev["room_id"]?.GetValue<string>() == ruleId,
            "sender" => ev["sender"]?.GetValue<string>() == ruleId,
            _ => (rule["conditions"] as JsonArray ?? []).All(c => c is JsonObject condition && Condition(condition, ev, context)),
        };
    }

    private static bool Condition(JsonObject condition, JsonObject ev, PushContext context)
    {
        var key = condition["key"] is JsonValue k && k.TryGetValue<string>(out var keyText) ? keyText : null;
        switch (condition["kind"]?.GetValue<string>())
        {
            case "event_match":
                return key is not null && condition["pattern"] is JsonValue p && p.TryGetValue<string>(out var pattern)
                    && Property(ev, key) is JsonValue value && value.TryGetValue<string>(out var text)
                    && Glob(pattern, text, wordBoundary: key == "content.body");
            case "event_property_is":
                return key is not null && TryProperty(ev, key, out var property) && IsScalar(property, out var actual)
                    && IsScalar(condition["value"], out var wanted) && actual == wanted;
            case "event_property_contains":
                return key is not null && Property(ev, key) is JsonArray array && IsScalar(condition["value"], out var needle)
                    && array.Any(item => IsScalar(item, out var element) && element == needle);
            case "contains_display_name":
                return context.DisplayName is { Length: > 0 } name && Property(ev, "content.body") is JsonValue b
                    && b.TryGetValue<string>(out var bodyText) && ContainsWord(bodyText, name);
            case "room_member_count":
                return condition["is"] is JsonValue isValue && isValue.TryGetValue<string>(out var expression)
                    && CompareCount(expression, context.MemberCount);
            case "sender_notification_permission":
                return key is not null && context.SenderMayNotify(key);
            default:
                return false;
        }
    }

    /// <summary>Whether any enabled rule needs the user's display name (the deprecated <c>contains_display_name</c>).</summary>
    public static bool UsesDisplayName(JsonObject ruleset) =>
        PushRuleSet.Kinds.SelectMany(kind => (ruleset[kind] as JsonArray ?? []).OfType<JsonObject>())
            .Where(rule => rule["enabled"]?.GetValue<bool>() != false)
            .SelectMany(rule => (rule["conditions"] as JsonArray ?? []).OfType<JsonObject>())
            .Any(condition => condition["kind"]?.GetValue<string>() == "contains_display_name");

    /// <summary>A property by the spec's dot-separated path (<c>\.</c> escapes a dot, <c>\\</c> a backslash); null when absent or JSON null.</summary>
    public static JsonNode? Property(JsonObject ev, string path) => TryProperty(ev, path, out var value) ? value : null;

    /// <summary>False only when the property is absent: a JSON null is found, with a null value.</summary>
    public static bool TryProperty(JsonObject ev, string path, out JsonNode? value)
    {
        value = ev;
        foreach (var segment in SplitPath(path))
            if (value is not JsonObject obj || !obj.TryGetPropertyValue(segment, out value))
                return false;
        return true;
    }

    private static IEnumerable<string> SplitPath(string path)
    {
        var segment = new StringBuilder();
        for (var i = 0; i < path.Length; i++)
        {
            if (path[i] == '\\' && i + 1 < path.Length && path[i + 1] is '.' or '\\')
                segment.Append(path[++i]);
            else if (path[i] == '.')
            {
                yield return segment.ToString();
                segment.Clear();
            }
            else
                segment.Append(path[i]);
        }
        yield return segment.ToString();
    }

    /// <summary>Canonical text of a string, integer, boolean or null (the only values these conditions compare).</summary>
    private static bool IsScalar(JsonNode? node, out string canonical)
    {
        canonical = "";
        if (node is null)
        {
            canonical = "null";
            return true;
        }
        switch (node.GetValueKind())
        {
            case System.Text.Json.JsonValueKind.String:
                canonical = "s:" + node.GetValue<string>();
                return true;
            case System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False:
                canonical = node.GetValueKind() == System.Text.Json.JsonValueKind.True ? "true" : "false";
                return true;
            case System.Text.Json.JsonValueKind.Number:
                // Integers only (canonical JSON's range); 3 and 3.0 are the same number.
                if (!double.TryParse(node.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var number)
                    || number != Math.Floor(number) || Math.Abs(number) >= 9007199254740992)
                    return false;
                canonical = "i:" + (long)number;
                return true;
            default:
                return false;
        }
    }

    /// <summary>Glob (<c>*</c>, <c>?</c>) matching, case-insensitive: the whole value, or for <c>content.body</c> any word-bounded part.</summary>
    public static bool Glob(string pattern, string value, bool wordBoundary)
    {
        var regex = Globs.GetOrAdd((pattern, wordBoundary), key =>
        {
            var body = Regex.Escape(key.Pattern).Replace("\\*", ".*?").Replace("\\?", ".");
            var anchored = key.WordBoundary ? $"(?<![A-Za-z0-9_]){body}(?![A-Za-z0-9_])" : $"^{body}$";
            return new Regex(anchored, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline, MatchTimeout);
        });
        if (Globs.Count > 10_000)
            Globs.Clear();
        try
        {
            return regex.IsMatch(value);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether <paramref name="word"/> occurs in <paramref name="text"/>, case-insensitively, not inside a longer word.
    /// Searched directly rather than with a regex per display name, as it runs for every member of a room per event.
    /// </summary>
    private static bool ContainsWord(string text, string word)
    {
        if (word.Length == 0)
            return false;
        for (var at = text.IndexOf(word, StringComparison.OrdinalIgnoreCase); at >= 0;
             at = at + 1 < text.Length ? text.IndexOf(word, at + 1, StringComparison.OrdinalIgnoreCase) : -1)
        {
            var end = at + word.Length;
            if ((at == 0 || !IsWordCharacter(text[at - 1])) && (end == text.Length || !IsWordCharacter(text[end])))
                return true;
        }
        return false;
    }

    private static bool IsWordCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private static bool CompareCount(string expression, int count)
    {
        var op = expression.TakeWhile(c => c is '=' or '<' or '>').Count();
        if (!int.TryParse(expression[op..], out var number))
            return false;
        return expression[..op] switch
        {
            "" or "==" => count == number,
            "<" => count < number,
            ">" => count > number,
            "<=" => count <= number,
            ">=" => count >= number,
            _ => false,
        };
    }
}
