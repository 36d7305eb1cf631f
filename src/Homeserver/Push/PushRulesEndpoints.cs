using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Push;

/// <summary>Spec: Push notifications, push rules: reading the ruleset, and every change to user and server-default rules.</summary>
public sealed class PushRulesEndpoints(Authenticator authenticator, PushRuleService rules, JsonBody json) : IEndpoints
{
    private const string RulePath = "pushrules/{scope}/{kind}/{ruleId}";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "pushrules/", GetAllAsync);
        app.MapV3("GET", "pushrules/global/", GetGlobalAsync);
        app.MapV3("GET", RulePath, GetRuleAsync);
        app.MapV3("PUT", RulePath, PutRuleAsync);
        app.MapV3("DELETE", RulePath, DeleteRuleAsync);
        app.MapV3("GET", RulePath + "/enabled", context => GetAttributeAsync(context, "enabled"));
        app.MapV3("PUT", RulePath + "/enabled", PutEnabledAsync);
        app.MapV3("GET", RulePath + "/actions", context => GetAttributeAsync(context, "actions"));
        app.MapV3("PUT", RulePath + "/actions", PutActionsAsync);
    }

    private async Task GetAllAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var set = await rules.LoadAsync(requester.UserId.Value, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["global"] = set.ToJson(requester.UserId.Value) });
    }

    private async Task GetGlobalAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync((await rules.LoadAsync(requester.UserId.Value, context.RequestAborted)).ToJson(requester.UserId.Value));
    }

    private async Task GetRuleAsync(HttpContext context)
    {
        var (userId, kind, ruleId) = await RuleOfAsync(context);
        await context.WriteJsonAsync(await FindAsync(context, userId, kind, ruleId));
    }

    private async Task GetAttributeAsync(HttpContext context, string attribute)
    {
        var (userId, kind, ruleId) = await RuleOfAsync(context);
        var rule = await FindAsync(context, userId, kind, ruleId);
        await context.WriteJsonAsync(new JsonObject { [attribute] = rule[attribute]?.DeepClone() });
    }

    private async Task PutRuleAsync(HttpContext context)
    {
        var (userId, kind, ruleId) = await RuleOfAsync(context);
        var rule = PushRuleValidation.NewRule(kind, ruleId, await json.ReadObjectAsync(context));
        var before = context.Query("before");
        var after = context.Query("after");
        await rules.ChangeAsync(userId, set =>
        {
            set.Put(kind, ruleId, rule, before, after);
            return true;
        }, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task DeleteRuleAsync(HttpContext context)
    {
        var (userId, kind, ruleId) = await RuleOfAsync(context);
        if (ruleId.StartsWith('.'))
            throw MatrixException.InvalidParam("Server-default rules cannot be deleted; disable them instead.");
        if (!await rules.ChangeAsync(userId, set => set.Delete(kind, ruleId), context.RequestAborted))
            throw NotFound();
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task PutEnabledAsync(HttpContext context)
    {
        var (userId, kind, ruleId) = await RuleOfAsync(context);
        var body = await json.ReadObjectAsync(context);
        var enabled = body.TryGetProperty("enabled", out var value)
            ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw MatrixException.BadJson("'enabled' must be a boolean.")
            : throw MatrixException.MissingParam("enabled");
        if (!await rules.ChangeAsync(userId, set => set.SetEnabled(userId, kind, ruleId, enabled), context.RequestAborted))
            throw NotFound();
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task PutActionsAsync(HttpContext context)
    {
        var (userId, kind, ruleId) = await RuleOfAsync(context);
        var body = await json.ReadObjectAsync(context);
        var actions = PushRuleValidation.Actions(body.TryGetProperty("actions", out var value) ? value : throw MatrixException.MissingParam("actions"));
        if (!await rules.ChangeAsync(userId, set => set.SetActions(userId, kind, ruleId, actions), context.RequestAborted))
            throw NotFound();
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task<(string UserId, string Kind, string RuleId)> RuleOfAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        PushRuleValidation.Scope(context.Route("scope"));
        return (requester.UserId.Value, PushRuleValidation.Kind(context.Route("kind")), context.Route("ruleId"));
    }

    private async Task<JsonObject> FindAsync(HttpContext context, string userId, string kind, string ruleId) =>
        (await rules.LoadAsync(userId, context.RequestAborted)).Find(userId, kind, ruleId) ?? throw NotFound();

    private static MatrixException NotFound() => MatrixException.NotFound("The push rule was not found.");
}
