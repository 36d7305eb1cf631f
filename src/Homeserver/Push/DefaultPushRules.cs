using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Push;

/// <summary>The spec's server-default rules ("Predefined Rules"), embedded as default-push-rules.json.</summary>
public static class DefaultPushRules
{
    private const string UserPlaceholder = "[the user's Matrix ID]";

    private static readonly string Json = Load();

    public static JsonObject For(string userId) =>
        JsonNode.Parse(Json.Replace(UserPlaceholder, userId, StringComparison.Ordinal))!.AsObject();

    private static string Load()
    {
        using var stream = typeof(DefaultPushRules).Assembly.GetManifestResourceStream("default-push-rules.json")
            ?? throw new InvalidOperationException("default-push-rules.json is not embedded");
        return new StreamReader(stream).ReadToEnd();
    }
}
