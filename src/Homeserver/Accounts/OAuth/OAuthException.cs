using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>An OAuth 2.0 error (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 7009 §2.2.1, RFC 8628 §3.5): <c>{error, error_description}</c>.</summary>
public sealed class OAuthException(int status, string error, string description) : MatrixException(status, error, description)
{
    public string Error => Errcode;

    public override JsonObject ToJson() => new() { ["error"] = Errcode, ["error_description"] = Message };

    public static OAuthException InvalidRequest(string description) => new(400, "invalid_request", description);
    public static OAuthException InvalidClient(string description = "Unknown client.") => new(401, "invalid_client", description);
    public static OAuthException InvalidGrant(string description) => new(400, "invalid_grant", description);
    public static OAuthException UnauthorizedClient(string description) => new(400, "unauthorized_client", description);
    public static OAuthException InvalidScope(string description) => new(400, "invalid_scope", description);
    public static OAuthException InvalidToken() => new(401, "invalid_token", "The access token is invalid.");
}

/// <summary>Maps the OAuth endpoints: every refusal, also the shared helpers' Matrix errors, is answered in OAuth's shape.</summary>
public static class OAuthRoutes
{
    public const string Prefix = "/_matrix/oauth2";

    public static void MapOAuth(this IEndpointRouteBuilder app, string method, string path, RequestDelegate handler) =>
        app.MapMethods(path, [method], async context =>
        {
            try
            {
                await handler(context);
            }
            catch (MatrixException e) when (e is not OAuthException && e.Status < 500)
            {
                // A rate limit keeps its 429; other refusals are bad requests.
                throw new OAuthException(e.Status is 401 or 429 ? e.Status : 400, e.Status == 401 ? "invalid_token" : "invalid_request", e.Message);
            }
        });

    /// <summary>
    /// A form-encoded request's parameters (RFC 6749 §3.2: parameters without a value are omitted, none may repeat);
    /// any other body is refused.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>> ReadFormAsync(HttpContext context) =>
        Parameters(await Http.FormBody.ReadAsync(context, OAuthException.InvalidRequest));

    /// <summary>The query's parameters, with the rules of <see cref="ReadFormAsync"/>.</summary>
    public static IReadOnlyDictionary<string, string> QueryParameters(HttpContext context) => Parameters(context.Request.Query);

    private static Dictionary<string, string> Parameters(IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>> pairs)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, values) in pairs)
        {
            if (values.Count > 1)
                throw OAuthException.InvalidRequest($"Parameter {name} is given more than once.");
            if (values[0] is { Length: > 0 } value)
                parameters[name] = JsonFields.WithoutNul(value, name);
        }
        return parameters;
    }

    public static string Required(this IReadOnlyDictionary<string, string> parameters, string name) =>
        parameters.TryGetValue(name, out var value) ? value : throw OAuthException.InvalidRequest($"Missing parameter {name}.");

    public static string? Optional(this IReadOnlyDictionary<string, string> parameters, string name) => parameters.GetValueOrDefault(name);
}
