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

/// <summary>The outcome for one user: the matching rule's actions (as JSON), and whether they notify and highlight.</summary>
public sealed record PushOutcome(string ActionsJson, bool Notify, bool Highlight);

/// <summary>
/// Compiles a user's push rules (spec: "Push rules", conditions and the kinds' implicit conditions) into
/// <see cref="CompiledPushRules"/>, and the matching those use.
/// </summary>
public static class PushEvaluator
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(50);
    private static readonly ConcurrentDictionary<(string Pattern, bool WordBoundary), Regex> Globs = new();
    private static readonly Func<PushEventView, PushContext, bool> Never = (_, _) => false;

    // Most users' rules are the defaults, which are the same for everyone but the few naming the user: a rule is compiled
    // once and shared by every ruleset holding it (compiled per user, a thousand users' rulesets were 3.5 MB of
    // delegates, each made as the user's first event in a room came, so the collector copied them all as they aged).
    private static readonly ConcurrentDictionary<string, (CompiledPushRules.Rule Rule, bool UsesDisplayName)> SharedRules = new(StringComparer.Ordinal);
    private const int MaxSharedRules = 10_000;
    private static int _sharedRuleCount;

    /// <summary>The enabled rules of a ruleset in priority order, each with its conditions and outcome worked out once.</summary>
    public static CompiledPushRules Compile(JsonObject ruleset)
    {
        var rules = new List<CompiledPushRules.Rule>();
        var usesDisplayName = false;
        foreach (var kind in PushRuleSet.Kinds)
            foreach (var rule in (ruleset[kind] as JsonArray ?? []).OfType<JsonObject>())
            {
                if (rule["enabled"] is JsonValue enabled && enabled.TryGetValue<bool>(out var on) && !on)
                    continue;
                var compiled = Shared(kind, rule);
                usesDisplayName |= compiled.UsesDisplayName;
                rules.Add(compiled.Rule);
            }
        return new CompiledPushRules(rules, usesDisplayName);
    }

    private static (CompiledPushRules.Rule Rule, bool UsesDisplayName) Shared(string kind, JsonObject rule)
    {
        var key = kind + "\n" + rule.ToJsonString();
        if (SharedRules.TryGetValue(key, out var shared))
            return shared;
        var conditions = (rule["conditions"] as JsonArray ?? []).Select(c => c as JsonObject).ToList();
        shared = (new CompiledPushRules.Rule(Matcher(kind, rule, conditions), Outcome(rule["actions"] as JsonArray ?? [])),
            conditions.Any(c => Text(c?["kind"]) == "contains_display_name"));
        if (Interlocked.Increment(ref _sharedRuleCount) > MaxSharedRules)
        {
            SharedRules.Clear();
            Interlocked.Exchange(ref _sharedRuleCount, 0);
        }
        return SharedRules.GetOrAdd(key, shared);
    }

    private static string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static PushOutcome Outcome(JsonArray actions) => new(actions.ToJsonString(),
        actions.Any(a => Text(a) == "notify"),
        actions.OfType<JsonObject>().Any(a => Text(a["set_tweak"]) == "highlight"
            && (a["value"] is null || (a["value"] is JsonValue value && value.TryGetValue<bool>(out var on) && on))));

    private static Func<PushEventView, PushContext, bool> Matcher(string kind, JsonObject rule, List<JsonObject?> conditions)
    {
        var ruleId = Text(rule["rule_id"]) ?? "";
        switch (kind)
        {
            case "content":
                if (Text(rule["pattern"]) is not { } pattern)
                    return Never;
                var bodyMatches = GlobMatcher(pattern, wordBoundary: true);
                return (ev, _) => ev.Text("content.body") is { } body && bodyMatches(body);
            case "room":
                return (ev, _) => ev.Text("room_id") == ruleId;
            case "sender":
                return (ev, _) => ev.Text("sender") == ruleId;
            default:
                var compiled = conditions.Select(c => c is null ? Never : Condition(c)).ToArray();
                return (ev, context) =>
                {
                    foreach (var condition in compiled)
                        if (!condition(ev, context))
                            return false;
                    return true;
                };
        }
    }

    private static Func<PushEventView, PushContext, bool> Condition(JsonObject condition)
    {
        var key = Text(condition["key"]);
        switch (Text(condition["kind"]))
        {
            case "event_match" when key is not null && Text(condition["pattern"]) is { } pattern:
                var textMatches = GlobMatcher(pattern, wordBoundary: key == "content.body");
                return (ev, _) => ev.Text(key) is { } text && textMatches(text);
            case "event_property_is" when key is not null && IsScalar(condition["value"], out var wanted):
                return (ev, _) => ev.Scalar(key) == wanted;
            case "event_property_contains" when key is not null && IsScalar(condition["value"], out var needle):
                return (ev, _) => ev.ArrayScalars(key)?.Contains(needle) == true;
            case "contains_display_name":
                return (ev, context) => context.DisplayName is { Length: > 0 } name && ev.Text("content.body") is { } body && ContainsWord(body, name);
            case "room_member_count" when Text(condition["is"]) is { } expression:
                var compare = CountComparison(expression);
                return (_, context) => compare(context.MemberCount);
            case "sender_notification_permission" when key is not null:
                return (_, context) => context.SenderMayNotify(key);
            default:
                return Never;
        }
    }

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
    internal static bool IsScalar(JsonNode? node, out string canonical)
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
    public static bool Glob(string pattern, string value, bool wordBoundary) => GlobMatcher(pattern, wordBoundary)(value);

    /// <summary>
    /// A glob as a test of a value. Most patterns are literal (the default rules' event types, a user's own name), and
    /// those are compared directly: every member's rules run for every event of a room, and the regex was a tenth of it.
    /// </summary>
    private static Func<string, bool> GlobMatcher(string pattern, bool wordBoundary)
    {
        if (pattern.Length > 0 && pattern.AsSpan().IndexOfAny('*', '?') < 0)
            return wordBoundary
                ? text => ContainsWord(text, pattern)
                : text => text.Equals(pattern, StringComparison.OrdinalIgnoreCase);
        var regex = GlobRegex(pattern, wordBoundary);
        return text => IsMatch(regex, text);
    }

    /// <summary>The glob as a regex, shared by every ruleset with the same pattern.</summary>
    private static Regex GlobRegex(string pattern, bool wordBoundary)
    {
        if (Globs.Count > 10_000)
            Globs.Clear();
        return Globs.GetOrAdd((pattern, wordBoundary), key =>
        {
            var body = Regex.Escape(key.Pattern).Replace("\\*", ".*?").Replace("\\?", ".");
            var anchored = key.WordBoundary ? $"(?<![A-Za-z0-9_]){body}(?![A-Za-z0-9_])" : $"^{body}$";
            return new Regex(anchored, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline, MatchTimeout);
        });
    }

    private static bool IsMatch(Regex regex, string value)
    {
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

    /// <summary>A <c>room_member_count</c> condition's <c>is</c> (<c>2</c>, <c>==2</c>, <c>&lt;2</c>, <c>&gt;=2</c>...) as a test of a count.</summary>
    private static Func<int, bool> CountComparison(string expression)
    {
        var op = expression.TakeWhile(c => c is '=' or '<' or '>').Count();
        if (!int.TryParse(expression[op..], out var number))
            return _ => false;
        return expression[..op] switch
        {
            "" or "==" => count => count == number,
            "<" => count => count < number,
            ">" => count => count > number,
            "<=" => count => count <= number,
            ">=" => count => count >= number,
            _ => _ => false,
        };
    }
}
