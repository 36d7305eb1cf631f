using System.Text.Json.Nodes;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Spec: push rules, reading. Every user has the spec's server-default rules (override and underride lists from the
/// "Push rules" module, embedded as default-push-rules.json); user-defined rules are not supported yet.
/// </summary>
public sealed class PushRulesEndpoints(Authenticator authenticator) : IEndpoints
{
    private const string UserPlaceholder = "[the user's Matrix ID]";

    private static readonly string DefaultRules = LoadDefaults();

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "pushrules/", GetAllAsync);
        app.MapV3("GET", "pushrules/global/", GetGlobalAsync);
    }

    private async Task GetAllAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["global"] = RulesFor(requester.UserId.Value) });
    }

    private async Task GetGlobalAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(RulesFor(requester.UserId.Value));
    }

    public static JsonObject RulesFor(string userId) =>
        JsonNode.Parse(DefaultRules.Replace(UserPlaceholder, userId, StringComparison.Ordinal))!.AsObject();

    private static string LoadDefaults()
    {
        using var stream = typeof(PushRulesEndpoints).Assembly.GetManifestResourceStream("default-push-rules.json")
            ?? throw new InvalidOperationException("default-push-rules.json is not embedded");
        return new StreamReader(stream).ReadToEnd();
    }
}
