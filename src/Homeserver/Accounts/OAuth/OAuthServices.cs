using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts.OAuth;

public static class OAuthServices
{
    /// <summary>
    /// The OAuth 2.0 API's services; its endpoints only with <c>oauth.enabled</c> (otherwise <c>auth_metadata</c> stays
    /// 404 M_UNRECOGNIZED, which tells clients to use the legacy API).
    /// </summary>
    public static void AddOAuth(this IServiceCollection services, HomeserverConfig config)
    {
        services.AddSingleton<OAuthClientStore>();
        services.AddSingleton<OAuthGrantStore>();
        services.AddSingleton<OAuthSessionStore>();
        services.AddSingleton<OAuthBrowserSessionStore>();
        services.AddSingleton<OAuthSigningKeyStore>();
        services.AddSingleton<OAuthPaths>();
        services.AddSingleton<OAuthBrowserSessions>();
        services.AddSingleton<OAuthSessions>();
        services.AddSingleton<IdTokens>();
        services.AddSingleton<Csrf>();
        services.AddSingleton<CrossSigningResets>();
        if (!config.Oauth.Enabled)
            return;
        services.AddHostedService<OAuthCleanup>();
        services.AddSingleton<IEndpoints, OAuthMetadataEndpoints>();
        services.AddSingleton<IEndpoints, ClientRegistrationEndpoints>();
        services.AddSingleton<IEndpoints, AuthorizationEndpoints>();
        services.AddSingleton<IEndpoints, ConsentPage>();
        services.AddSingleton<IEndpoints, LoginPage>();
        services.AddSingleton<IEndpoints, TokenEndpoints>();
        services.AddSingleton<IEndpoints, DeviceAuthorizationEndpoints>();
        services.AddSingleton<IEndpoints, AccountPage>();
        services.AddSingleton<IEndpoints, SignUpPage>();
    }
}
