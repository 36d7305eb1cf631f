using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Spec: "Server metadata discovery" (<c>/v1/auth_metadata</c>, RFC 8414), with MSC2965's unstable paths and the OpenID
/// discovery document under the issuer (older matrix-js-sdk and Element builds discover that way), and the JWKS.
/// </summary>
public sealed class OAuthMetadataEndpoints(OAuthPaths paths, IdTokens idTokens, Config.HomeserverConfig config) : IEndpoints
{
    /// <summary>What the account page can do: the spec's action names and MAS's earlier ones, which clients still send.</summary>
    public static readonly string[] AccountActions =
    [
        "org.matrix.profile", "org.matrix.devices_list", "org.matrix.device_view", "org.matrix.device_delete",
        "org.matrix.sessions_list", "org.matrix.session_view", "org.matrix.session_end",
        "org.matrix.account_deactivate", "org.matrix.cross_signing_reset",
    ];

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV1("GET", "auth_metadata", WriteMetadataAsync);
        app.MapMethods($"{Routes.ClientPrefix}/unstable/org.matrix.msc2965/auth_metadata", ["GET"], WriteMetadataAsync);
        app.MapMethods("/.well-known/openid-configuration", ["GET"], WriteMetadataAsync);
        app.MapMethods($"{Routes.ClientPrefix}/unstable/org.matrix.msc2965/auth_issuer", ["GET"],
            context => context.WriteJsonAsync(new JsonObject { ["issuer"] = paths.Issuer }));
        app.MapOAuth("GET", OAuthPaths.Jwks, async context => await context.WriteJsonAsync(await idTokens.JwksAsync(context.RequestAborted)));
    }

    private Task WriteMetadataAsync(HttpContext context)
    {
        context.Response.Headers.CacheControl = "public, max-age=3600";
        var metadata = new JsonObject
        {
            ["issuer"] = paths.Issuer,
            ["authorization_endpoint"] = paths.Absolute(OAuthPaths.Authorize),
            ["token_endpoint"] = paths.Absolute(OAuthPaths.Token),
            ["registration_endpoint"] = paths.Absolute(OAuthPaths.Register),
            ["revocation_endpoint"] = paths.Absolute(OAuthPaths.Revoke),
            ["device_authorization_endpoint"] = paths.Absolute(OAuthPaths.DeviceAuthorization),
            ["jwks_uri"] = paths.Absolute(OAuthPaths.Jwks),
            ["userinfo_endpoint"] = paths.Absolute(OAuthPaths.UserInfo),
            ["account_management_uri"] = paths.Absolute(OAuthPaths.Account),
            ["account_management_actions_supported"] = Strings(AccountActions),
            ["response_types_supported"] = Strings("code"),
            ["response_modes_supported"] = Strings("query", "fragment"),
            ["grant_types_supported"] = Strings(OAuthClient.AuthorizationCodeGrant, OAuthClient.RefreshTokenGrant, OAuthClient.DeviceCodeGrant),
            ["code_challenge_methods_supported"] = Strings("S256"),
            ["token_endpoint_auth_methods_supported"] = Strings("none"),
            ["revocation_endpoint_auth_methods_supported"] = Strings("none"),
            ["scopes_supported"] = Strings("openid", "urn:matrix:client:api:*", "urn:matrix:client:device:*"),
            ["subject_types_supported"] = Strings("public"),
            ["id_token_signing_alg_values_supported"] = Strings(IdTokens.Algorithm),
            ["claims_supported"] = Strings("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce"),
        };
        if (SignUpPage.IsOpen(config))
            metadata["prompt_values_supported"] = Strings("create");
        return context.WriteJsonAsync(metadata);
    }

    private static JsonArray Strings(params string[] values) => new(values.Select(v => (JsonNode)v!).ToArray());
}
