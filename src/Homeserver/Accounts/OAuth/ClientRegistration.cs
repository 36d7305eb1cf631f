using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Checks dynamic client registration metadata (RFC 7591 as the spec restricts it: "Client metadata", "Redirect URI
/// validation") and returns what is registered: the values understood, unknown grant and response types left out.
/// </summary>
public static class ClientRegistration
{
    private const int MaxRedirectUris = 20;
    private const int MaxUriLength = 2048;
    private const int MaxNameLength = 256;
    private static readonly string[] LocalizableUris = ["logo_uri", "tos_uri", "policy_uri"];
    private static readonly string[] KnownGrantTypes = [OAuthClient.AuthorizationCodeGrant, OAuthClient.RefreshTokenGrant, OAuthClient.DeviceCodeGrant];

    public static JsonObject Validate(JsonElement body)
    {
        var registered = new JsonObject();
        var clientUriText = String(body, "client_uri") ?? throw Invalid("client_uri is required.");
        var clientUri = ParseUri(clientUriText, "client_uri");
        if (!IsSecureOrLoopback(clientUri))
            throw Invalid("client_uri must be an https URL (http only on localhost).");
        registered["client_uri"] = clientUriText;

        var applicationType = String(body, "application_type") ?? "web";
        if (applicationType is not ("web" or "native"))
            throw Invalid("application_type must be web or native.");
        registered["application_type"] = applicationType;

        var authMethod = String(body, "token_endpoint_auth_method") ?? "none";
        if (authMethod != "none")
            throw Invalid("Only public clients (token_endpoint_auth_method none) can register.");
        registered["token_endpoint_auth_method"] = authMethod;

        var grantTypes = Strings(body, "grant_types") ?? [OAuthClient.AuthorizationCodeGrant];
        registered["grant_types"] = new JsonArray(grantTypes.Where(KnownGrantTypes.Contains).Distinct().Select(g => (JsonNode)g!).ToArray());
        var responseTypes = (Strings(body, "response_types") ?? ["code"]).Where(t => t == "code").Distinct().ToList();
        var usesCodeGrant = grantTypes.Contains(OAuthClient.AuthorizationCodeGrant);
        if (usesCodeGrant && responseTypes.Count == 0)
            throw Invalid("response_types must include code for the authorization_code grant.");
        registered["response_types"] = new JsonArray(responseTypes.Select(t => (JsonNode)t!).ToArray());

        var redirectUris = Strings(body, "redirect_uris") ?? [];
        if (usesCodeGrant && redirectUris.Count == 0)
            throw InvalidRedirect("redirect_uris are required for the authorization_code grant.");
        if (redirectUris.Count > MaxRedirectUris)
            throw InvalidRedirect($"At most {MaxRedirectUris} redirect_uris can be registered.");
        foreach (var redirectUri in redirectUris)
            ValidateRedirectUri(redirectUri, clientUri, applicationType == "native");
        registered["redirect_uris"] = new JsonArray(redirectUris.Select(u => (JsonNode)u!).ToArray());

        foreach (var property in body.EnumerateObject())
        {
            var (name, _) = SplitLocale(property.Name);
            if (name == "client_name")
            {
                var value = String(body, property.Name)!;
                if (value.Length > MaxNameLength)
                    throw Invalid($"client_name may not be longer than {MaxNameLength} characters.");
                registered[property.Name] = value;
            }
            else if (LocalizableUris.Contains(name))
            {
                var value = String(body, property.Name)!;
                if (!IsSecureOrLoopback(ParseUri(value, property.Name)) || !IsOnHostOf(ParseUri(value, property.Name), clientUri))
                    throw Invalid($"{property.Name} must be an https URL on the host of client_uri or a subdomain of it.");
                registered[property.Name] = value;
            }
        }
        if (Strings(body, "contacts") is { } contacts)
            registered["contacts"] = new JsonArray(contacts.Select(c => (JsonNode)c!).ToArray());
        if (String(body, "id_token_signed_response_alg") is { } alg)
        {
            if (alg != IdTokens.Algorithm)
                throw Invalid($"ID tokens are signed with {IdTokens.Algorithm} only.");
            registered["id_token_signed_response_alg"] = alg;
        }
        return registered;
    }

    public static bool IsLoopback(string host) => host is "localhost" or "127.0.0.1" or "[::1]";

    private static void ValidateRedirectUri(string text, Uri clientUri, bool native)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || text.Length > MaxUriLength || text.Contains('#'))
            throw InvalidRedirect($"{text} is not an absolute URI without a fragment.");
        if (uri.Scheme is "https" || (uri.Scheme is "http" && !native))
        {
            if (!IsSecureOrLoopback(uri) || uri.UserInfo.Length > 0 || !IsOnHostOf(uri, clientUri))
                throw InvalidRedirect($"{text} must be an https URI on the host of client_uri or a subdomain of it.");
            return;
        }
        if (!native)
            throw InvalidRedirect($"{text}: a web client's redirect URIs use https.");
        if (uri.Scheme is "http")
        {
            // RFC 8252 §7.3: the loopback interface, with no port (any port is accepted when authorising).
            if (!IsLoopback(uri.Host) || !uri.IsDefaultPort || HasExplicitPort(text) || uri.UserInfo.Length > 0)
                throw InvalidRedirect($"{text}: an http redirect URI must be on localhost, 127.0.0.1 or [::1], without a port.");
            return;
        }
        // RFC 8252 §7.1: a private-use scheme, the client's host in reverse-DNS notation, and no authority.
        var reversed = string.Join('.', clientUri.Host.Split('.').Reverse());
        var afterScheme = text[(uri.Scheme.Length + 1)..];
        if (!(uri.Scheme == reversed || uri.Scheme.StartsWith(reversed + ".", StringComparison.Ordinal)) || !uri.Scheme.Contains('.')
            || afterScheme.StartsWith("//", StringComparison.Ordinal))
            throw InvalidRedirect($"{text}: a private-use scheme must be the client_uri host in reverse-DNS notation ({reversed}), without an authority.");
    }

    private static bool HasExplicitPort(string text)
    {
        var authority = text[(text.IndexOf("//", StringComparison.Ordinal) + 2)..].Split('/', '?')[0];
        return authority.LastIndexOf(':') > authority.LastIndexOf(']');
    }

    private static bool IsSecureOrLoopback(Uri uri) => uri.Scheme == "https" || (uri.Scheme == "http" && IsLoopback(uri.Host));

    /// <summary>The same host as the client URI, or a subdomain of it.</summary>
    private static bool IsOnHostOf(Uri uri, Uri clientUri) =>
        uri.Host == clientUri.Host || uri.Host.EndsWith("." + clientUri.Host, StringComparison.Ordinal);

    private static Uri ParseUri(string text, string name) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && text.Length <= MaxUriLength && uri.UserInfo.Length == 0 && !text.Contains('#')
            ? uri
            : throw Invalid($"{name} must be an absolute URL without user information or fragment.");

    private static (string Name, string? Locale) SplitLocale(string property) =>
        property.IndexOf('#') is var hash and > 0 ? (property[..hash], property[(hash + 1)..]) : (property, null);

    private static string? String(JsonElement body, string name) => !body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null
        ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()! : throw Invalid($"{name} must be a string.");

    private static List<string>? Strings(JsonElement body, string name)
    {
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
            throw Invalid($"{name} must be an array of strings.");
        return value.EnumerateArray().Select(v => v.GetString()!).ToList();
    }

    private static OAuthException Invalid(string description) => new(400, "invalid_client_metadata", description);
    private static OAuthException InvalidRedirect(string description) => new(400, "invalid_redirect_uri", description);
}
