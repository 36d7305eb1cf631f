using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>Where the OAuth endpoints and pages are, relative to the server and as the absolute URLs the metadata gives.</summary>
public sealed class OAuthPaths(HomeserverConfig config)
{
    public const string Authorize = OAuthRoutes.Prefix + "/authorize";
    public const string Token = OAuthRoutes.Prefix + "/token";
    public const string Register = OAuthRoutes.Prefix + "/register";
    public const string Revoke = OAuthRoutes.Prefix + "/revoke";
    public const string DeviceAuthorization = OAuthRoutes.Prefix + "/device";
    public const string Link = OAuthRoutes.Prefix + "/link";
    public const string Jwks = OAuthRoutes.Prefix + "/keys.json";
    public const string UserInfo = OAuthRoutes.Prefix + "/userinfo";
    public const string Account = OAuthRoutes.Prefix + "/account";
    public const string Login = OAuthRoutes.Prefix + "/login";
    public const string Logout = OAuthRoutes.Prefix + "/logout";
    public const string Consent = OAuthRoutes.Prefix + "/consent";
    /// <summary>Signing in through an upstream provider (<c>/upstream/{idpId}</c>), coming back to <c>return_to</c>.</summary>
    public const string Upstream = OAuthRoutes.Prefix + "/upstream";

    public string Issuer => config.EffectivePublicBaseurl;

    public string Absolute(string path) => config.EffectivePublicBaseurl + path.TrimStart('/');

    /// <summary>
    /// Where the sign-in page may send the browser afterwards: this server's own OAuth pages only, so the page cannot be
    /// used to redirect anywhere else.
    /// </summary>
    public static bool IsSafeReturnTo(string? path) =>
        path is not null && path.StartsWith(OAuthRoutes.Prefix + "/", StringComparison.Ordinal)
        && !path.Contains('\\') && !path.Contains("/../", StringComparison.Ordinal) && !path.Contains("//", StringComparison.Ordinal)
        && path.All(c => c > ' ' && c < 0x7f);

    public static string LoginUrl(string returnTo) => $"{Login}?return_to={Uri.EscapeDataString(returnTo)}";

    /// <summary>The path and query of this request, to come back to after signing in.</summary>
    public static string Here(HttpContext context) => context.Request.Path.Value + context.Request.QueryString.Value;
}
