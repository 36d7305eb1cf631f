using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Spec: Push notifications, push rules: reading the ruleset (whole, one kind, one rule or one attribute), and every
/// change to user and server-default rules. One catch-all route per method parses the path as Synapse does, so that
/// malformed paths (no trailing slash, unknown scope, missing rule ID) answer 400 M_UNRECOGNIZED, not 404 or 405.
/// </summary>
public sealed class PushRulesEndpoints(Authenticator authenticator, PushRuleService rules, JsonBody json) : IEndpoints
{
    private const string Root = "/pushrules";
    private const string Path = "pushrules/{**path}";

    private readonly record struct RulePath(string Kind, string RuleId, string? Attribute);

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", Path, GetAsync);
        app.MapV3("PUT", Path, PutAsync);
        app.MapV3("DELETE", Path, DeleteAsync);
    }

    private async Task GetAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var parts = PathParts(context);
        var userId = requester.UserId.Value;
        var ruleset = (await rules.LoadAsync(userId, context.RequestAborted)).ToJson(userId);
        JsonNode result = parts switch
        {
            [""] => new JsonObject { ["global"] = ruleset },
            ["global", ""] => ruleset,
            ["global", var kind, ""] => ruleset[PushRuleValidation.Kind(kind)]!,
            ["global", var kind, var ruleId] => Find(ruleset, kind, ruleId),
            ["global", var kind, var ruleId, var attribute] => Find(ruleset, kind, ruleId)[attribute] is { } value
                ? new JsonObject { [attribute] = value.DeepClone() }
                : throw Unrecognized($"Push rules have no attribute '{attribute}'."),
            ["global"] or ["global", _] => throw Unrecognized("Unrecognised request: you probably wanted a trailing slash."),
            _ => throw Unrecognized("Unrecognised push rule path."),
        };
        await context.WriteJsonAsync(result);
    }

    private async Task PutAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var (kind, ruleId, attribute) = RuleOf(PathParts(context));
        var userId = requester.UserId.Value;
        var body = await json.ReadObjectAsync(context);
        Func<PushRuleSet, bool> change = attribute switch
        {
            null => NewRule(context, kind, ruleId, body),
            "enabled" => Enabled(userId, kind, ruleId, body),
            "actions" => Actions(userId, kind, ruleId, body),
            _ => throw Unrecognized($"Push rules have no settable attribute '{attribute}'."),
        };
        if (!await rules.ChangeAsync(userId, change, context.RequestAborted))
            throw NotFound();
        await context.WriteJsonAsync(new JsonObject());
    }

    private static Func<PushRuleSet, bool> NewRule(HttpContext context, string kind, string ruleId, JsonElement body)
    {
        var rule = PushRuleValidation.NewRule(kind, ruleId, body);
        var before = context.Query("before");
        var after = context.Query("after");
        return set =>
        {
            set.Put(kind, ruleId, rule, before, after);
            return true;
        };
    }

    private static Func<PushRuleSet, bool> Enabled(string userId, string kind, string ruleId, JsonElement body)
    {
        var enabled = body.TryGetProperty("enabled", out var value)
            ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw MatrixException.BadJson("'enabled' must be a boolean.")
            : throw MatrixException.MissingParam("enabled");
        return set => set.SetEnabled(userId, kind, ruleId, enabled);
    }

    private static Func<PushRuleSet, bool> Actions(string userId, string kind, string ruleId, JsonElement body)
    {
        var actions = PushRuleValidation.Actions(body.TryGetProperty("actions", out var value) ? value : throw MatrixException.MissingParam("actions"));
        return set => set.SetActions(userId, kind, ruleId, actions);
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var (kind, ruleId, attribute) = RuleOf(PathParts(context));
        if (attribute is not null)
            throw Unrecognized("Rule attributes cannot be deleted.");
        if (ruleId.StartsWith('.'))
            throw MatrixException.InvalidParam("Server-default rules cannot be deleted; disable them instead.");
        var userId = requester.UserId.Value;
        if (!await rules.ChangeAsync(userId, set => set.Delete(kind, ruleId), context.RequestAborted))
            throw NotFound();
        await context.WriteJsonAsync(new JsonObject());
    }

    /// <summary>
    /// The path after <c>pushrules/</c>, split at '/' (each part with <c>%2F</c> decoded, which ASP.NET Core leaves
    /// encoded); <c>pushrules</c> without a slash is no endpoint.
    /// </summary>
    private static string[] PathParts(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var end = path.IndexOf(Root, StringComparison.Ordinal) + Root.Length;
        if (end >= path.Length)
            throw MatrixException.Unrecognized();
        return path[(end + 1)..].Split('/')
            .Select(part => JsonFields.WithoutNul(part.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase), "path"))
            .ToArray();
    }

    /// <summary><c>global/{kind}/{ruleId}</c>, optionally followed by <c>/{attribute}</c>, as PUT and DELETE take it.</summary>
    private static RulePath RuleOf(string[] parts) => parts switch
    {
        ["global", var kind, { Length: > 0 } ruleId, .. var rest] when rest.Length <= 1 =>
            new(PushRuleValidation.Kind(kind), PushRuleValidation.RuleId(ruleId), rest is [{ Length: > 0 } attribute] ? attribute : null),
        _ => throw Unrecognized("A push rule path is global/{kind}/{ruleId}."),
    };

    private static JsonObject Find(JsonObject ruleset, string kind, string ruleId) =>
        (ruleset[PushRuleValidation.Kind(kind)] as JsonArray)!.OfType<JsonObject>().FirstOrDefault(r => r["rule_id"]?.GetValue<string>() == ruleId)
        ?? throw NotFound();

    private static MatrixException NotFound() => MatrixException.NotFound("The push rule was not found.");

    private static MatrixException Unrecognized(string message) => new(400, "M_UNRECOGNIZED", message);
}
