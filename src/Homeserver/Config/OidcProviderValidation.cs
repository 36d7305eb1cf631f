using System.Text.RegularExpressions;
using Matrix.Homeserver.Accounts.Sso;

namespace Matrix.Homeserver.Config;

/// <summary>Checks <c>oidc_providers</c> at start-up, so a mistake names its key instead of failing someone's sign-in.</summary>
public static partial class OidcProviderValidation
{
    [GeneratedRegex("^[A-Za-z0-9._~-]{1,250}$")]
    private static partial Regex IdpIdSyntax();

    public static void Validate(List<OidcProviderConfig> providers)
    {
        var seen = new HashSet<string>();
        for (var i = 0; i < providers.Count; i++)
        {
            var p = providers[i];
            var key = $"oidc_providers[{i}]";
            if (!IdpIdSyntax().IsMatch(p.IdpId))
                throw new ConfigException($"config key '{key}.idp_id' must be 1-250 of A-Z a-z 0-9 . _ ~ -");
            if (!seen.Add(p.EffectiveIdpId))
                throw new ConfigException($"config key '{key}.idp_id': '{p.IdpId}' is used twice");
            if (!IsHttpUrl(p.Issuer))
                throw new ConfigException($"config key '{key}.issuer' must be an absolute http(s) URL");
            if (string.IsNullOrEmpty(p.ClientId))
                throw new ConfigException($"config key '{key}.client_id' is required");
            if (p.IdpIcon is { } icon && !icon.StartsWith("mxc://", StringComparison.Ordinal))
                throw new ConfigException($"config key '{key}.idp_icon' must be an mxc:// URI");
            switch (p.ClientAuthMethod)
            {
                case "client_secret_basic" or "client_secret_post" when p.ClientSecret is null && p.ClientSecretJwtKey is null:
                    throw new ConfigException($"config key '{key}.client_auth_method' {p.ClientAuthMethod} needs client_secret or client_secret_jwt_key");
                case "private_key_jwt" when p.ClientSecretJwtKey is null:
                    throw new ConfigException($"config key '{key}.client_auth_method' private_key_jwt needs client_secret_jwt_key");
                case "client_secret_basic" or "client_secret_post" or "private_key_jwt" or "none":
                    break;
                default:
                    throw new ConfigException($"config key '{key}.client_auth_method' must be client_secret_basic, client_secret_post, private_key_jwt or none");
            }
            if (p.ClientSecretJwtKey is { } jwtKey)
                ValidateJwtKey(jwtKey, $"{key}.client_secret_jwt_key");
            if (p.PkceMethod is not ("auto" or "always" or "never"))
                throw new ConfigException($"config key '{key}.pkce_method' must be auto, always or never");
            if (p.UserProfileMethod is not ("auto" or "userinfo_endpoint"))
                throw new ConfigException($"config key '{key}.user_profile_method' must be auto or userinfo_endpoint");
            if (p.Scopes.Count == 0)
                throw new ConfigException($"config key '{key}.scopes' must name at least one scope");
            if (!p.Discover)
            {
                var openid = p.Scopes.Contains("openid");
                foreach (var (name, url, needed) in new[]
                {
                    ("authorization_endpoint", p.AuthorizationEndpoint, true),
                    ("token_endpoint", p.TokenEndpoint, true),
                    ("jwks_uri", p.JwksUri, openid),
                    ("userinfo_endpoint", p.UserinfoEndpoint, !openid || p.UserProfileMethod == "userinfo_endpoint"),
                })
                    if ((needed || url is not null) && !IsHttpUrl(url))
                        throw new ConfigException($"config key '{key}.{name}' must be an absolute http(s) URL when discover is false");
            }
            var templates = p.UserMappingProvider.Config;
            foreach (var (name, template) in new[] { ("localpart_template", templates.LocalpartTemplate), ("display_name_template", templates.DisplayNameTemplate), ("email_template", templates.EmailTemplate) })
            {
                try
                {
                    if (template is not null)
                        ClaimTemplate.Parse(template);
                }
                catch (FormatException e)
                {
                    throw new ConfigException($"config key '{key}.user_mapping_provider.config.{name}': {e.Message}");
                }
            }
            for (var j = 0; j < p.AttributeRequirements.Count; j++)
            {
                var requirement = p.AttributeRequirements[j];
                if (requirement.Attribute.Length == 0 || (requirement.Value is null) == (requirement.OneOf is null))
                    throw new ConfigException($"config key '{key}.attribute_requirements[{j}]' needs an attribute and either value or one_of");
            }
        }
    }

    private static void ValidateJwtKey(ClientSecretJwtKeyConfig jwtKey, string key)
    {
        if ((jwtKey.Key is null) == (jwtKey.KeyFile is null))
            throw new ConfigException($"config key '{key}' needs key or key_file");
        if (!jwtKey.JwtHeader.ContainsKey("alg"))
            throw new ConfigException($"config key '{key}.jwt_header.alg' is required");
        if (jwtKey.Key is not null)
            LoadKey(jwtKey, key);
    }

    /// <summary>Reads the key files (relative to the config file's folder), so an unreadable key stops the start.</summary>
    public static void LoadKeyFiles(List<OidcProviderConfig> providers, string baseDir)
    {
        for (var i = 0; i < providers.Count; i++)
            if (providers[i].ClientSecretJwtKey is { KeyFile: { } keyFile } jwtKey)
            {
                jwtKey.KeyFile = Path.GetFullPath(keyFile, baseDir);
                LoadKey(jwtKey, $"oidc_providers[{i}].client_secret_jwt_key");
            }
    }

    private static void LoadKey(ClientSecretJwtKeyConfig jwtKey, string key)
    {
        try
        {
            OidcClientAuthentication.LoadKey(jwtKey);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            throw new ConfigException($"config key '{key}': the key cannot be read as a PEM RSA or EC private key ({e.Message})");
        }
    }

    private static bool IsHttpUrl(string? url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";
}
