using Matrix.Homeserver.Config;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// What a provider's metadata must satisfy before anyone is sent to it (OpenID Connect Discovery 1.0 §3 and §4.3, as
/// Synapse checks it unless <c>skip_verification</c>): the issuer it was configured with, https endpoints, the code flow.
/// </summary>
public static class OidcMetadataRules
{
    /// <summary>The first rule the metadata breaks, or null.</summary>
    public static string? Broken(OpenIdConnectConfiguration metadata, OidcProviderConfig config)
    {
        if (metadata.Issuer?.TrimEnd('/') != config.Issuer.TrimEnd('/'))
            return $"its issuer is '{metadata.Issuer}', not '{config.Issuer}'";
        foreach (var (name, url) in new[] { ("issuer", metadata.Issuer), ("authorization_endpoint", metadata.AuthorizationEndpoint), ("token_endpoint", metadata.TokenEndpoint) })
            if (!IsHttps(url))
                return $"{name} is not an https URL";
        if (!metadata.ResponseTypesSupported.Contains("code"))
            return "it does not support the authorization code flow";
        if (config.Scopes.Contains("openid") && !IsHttps(metadata.JwksUri))
            return "jwks_uri is not an https URL";
        if ((config.UserProfileMethod == "userinfo_endpoint" || !config.Scopes.Contains("openid")) && !IsHttps(metadata.UserInfoEndpoint))
            return "userinfo_endpoint is not an https URL";
        return null;
    }

    private static bool IsHttps(string? url) => Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps;
}
