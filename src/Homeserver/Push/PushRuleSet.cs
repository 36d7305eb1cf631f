using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Push;

/// <summary>
/// A user's push rules: the server-default rules (their definitions always the current ones, with the user's
/// <c>enabled</c> and <c>actions</c>) and the user's own rules in priority order. User rules outrank the defaults of
/// their kind, except <c>.m.rule.master</c>, which outranks everything.
/// </summary>
public sealed class PushRuleSet
{
    public static readonly string[] Kinds = ["override", "content", "room", "sender", "underride"];
    private const string Master = ".m.rule.master";

    private readonly Dictionary<string, List<JsonObject>> _userRules = Kinds.ToDictionary(k => k, _ => new List<JsonObject>());
    private readonly Dictionary<string, (bool Enabled, JsonNode? Actions)> _defaultChanges = [];

    /// <summary>Reads the ruleset stored as the user's <c>m.push_rules</c> account data (its <c>global</c> object).</summary>
    public static PushRuleSet FromStored(JsonObject? global)
    {
        var set = new PushRuleSet();
        foreach (var kind in Kinds)
            foreach (var rule in (global?[kind] as JsonArray ?? []).OfType<JsonObject>())
            {
                var ruleId = rule["rule_id"]?.GetValue<string>();
                if (ruleId is null)
                    continue;
                if (ruleId.StartsWith('.'))
                    set._defaultChanges[ruleId] = (rule["enabled"]?.GetValue<bool>() ?? true, rule["actions"]?.DeepClone());
                else
                    set._userRules[kind].Add((JsonObject)rule.DeepClone());
            }
        return set;
    }

    /// <summary>The whole ruleset in priority order per kind, as <c>GET /pushrules/global/</c> serves it.</summary>
    public JsonObject ToJson(string userId)
    {
        var defaults = DefaultPushRules.For(userId);
        var result = new JsonObject();
        foreach (var kind in Kinds)
        {
            var serverRules = (defaults[kind] as JsonArray ?? []).OfType<JsonObject>().Select(r => WithChanges((JsonObject)r.DeepClone())).ToList();
            var list = new JsonArray();
            foreach (var master in serverRules.Where(r => IdOf(r) == Master))
                list.Add(master);
            foreach (var rule in _userRules[kind])
                list.Add(rule.DeepClone());
            foreach (var rule in serverRules.Where(r => IdOf(r) != Master))
                list.Add(rule);
            result[kind] = list;
        }
        return result;
    }

    public JsonObject? Find(string userId, string kind, string ruleId) =>
        (ToJson(userId)[kind] as JsonArray)!.OfType<JsonObject>().FirstOrDefault(r => IdOf(r) == ruleId);

    /// <summary>
    /// Adds or replaces a user rule: placed just before <paramref name="before"/> or just after <paramref name="after"/>
    /// (user rules of the same kind), else a new rule goes first and a changed one keeps its place.
    /// </summary>
    public void Put(string kind, string ruleId, JsonObject rule, string? before, string? after)
    {
        var rules = _userRules[kind];
        var existing = rules.FindIndex(r => IdOf(r) == ruleId);
        if (existing >= 0)
        {
            rule["enabled"] = rules[existing]["enabled"]?.DeepClone() ?? true;
            rules.RemoveAt(existing);
        }
        int position;
        if (before is { Length: > 0 })
            position = IndexOrThrow(rules, before);
        else if (after is { Length: > 0 })
            position = IndexOrThrow(rules, after) + 1;
        else
            position = existing >= 0 ? existing : 0;
        rules.Insert(position, rule);
    }

    /// <summary>False when no user rule of that kind has the ID (server-default rules cannot be deleted).</summary>
    public bool Delete(string kind, string ruleId) => _userRules[kind].RemoveAll(r => IdOf(r) == ruleId) > 0;

    public bool SetEnabled(string userId, string kind, string ruleId, bool enabled) => Change(userId, kind, ruleId, rule => rule["enabled"] = enabled);

    public bool SetActions(string userId, string kind, string ruleId, JsonArray actions) =>
        Change(userId, kind, ruleId, rule => rule["actions"] = actions.DeepClone());

    private bool Change(string userId, string kind, string ruleId, Action<JsonObject> change)
    {
        if (_userRules[kind].FirstOrDefault(r => IdOf(r) == ruleId) is { } userRule)
        {
            change(userRule);
            return true;
        }
        if (Find(userId, kind, ruleId) is not { } defaultRule)
            return false;
        change(defaultRule);
        _defaultChanges[ruleId] = (defaultRule["enabled"]!.GetValue<bool>(), defaultRule["actions"]!.DeepClone());
        return true;
    }

    private JsonObject WithChanges(JsonObject rule)
    {
        if (_defaultChanges.TryGetValue(IdOf(rule), out var changes))
        {
            rule["enabled"] = changes.Enabled;
            if (changes.Actions is not null)
                rule["actions"] = changes.Actions.DeepClone();
        }
        return rule;
    }

    private static int IndexOrThrow(List<JsonObject> rules, string ruleId)
    {
        var index = rules.FindIndex(r => IdOf(r) == ruleId);
        return index >= 0 ? index : throw new MatrixException(400, "M_UNKNOWN", $"before/after rule not found: {ruleId}");
    }

    private static string IdOf(JsonObject rule) => rule["rule_id"]!.GetValue<string>();
}
