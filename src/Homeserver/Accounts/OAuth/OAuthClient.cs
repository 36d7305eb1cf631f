using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>A registered client: its ID and the metadata it was registered with (as answered at registration).</summary>
public sealed record OAuthClient(string ClientId, JsonObject Metadata)
{
    public const string AuthorizationCodeGrant = "authorization_code";
    public const string RefreshTokenGrant = "refresh_token";
    public const string DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

    public string ClientUri => (string)Metadata["client_uri"]!;
    public string? Name => (string?)Metadata["client_name"];
    public string DisplayName => Name ?? new Uri(ClientUri).Host;
    public bool IsNative => (string?)Metadata["application_type"] == "native";
    public IEnumerable<string> RedirectUris => Strings("redirect_uris");
    public bool MayUse(string grantType) => Strings("grant_types").Contains(grantType);

    /// <summary>
    /// Whether <paramref name="redirectUri"/> is one registered, exactly; a native client's loopback URI on any port
    /// (RFC 8252 §7.3, as the spec requires).
    /// </summary>
    public bool IsRegisteredRedirect(string redirectUri)
    {
        if (RedirectUris.Contains(redirectUri, StringComparer.Ordinal))
            return true;
        if (!IsNative || !Uri.TryCreate(redirectUri, UriKind.Absolute, out var uri) || uri.Scheme != "http" || !ClientRegistration.IsLoopback(uri.Host)
            || uri.IsDefaultPort)
            return false;
        var withoutPort = new UriBuilder(uri) { Port = -1 }.Uri.GetComponents(UriComponents.AbsoluteUri, UriFormat.UriEscaped);
        return RedirectUris.Any(registered => Uri.TryCreate(registered, UriKind.Absolute, out var r)
            && r.GetComponents(UriComponents.AbsoluteUri, UriFormat.UriEscaped) == withoutPort);
    }

    private IEnumerable<string> Strings(string name) =>
        Metadata[name] is JsonArray values ? values.Select(v => (string)v!) : [];
}
