using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// One upstream OpenID Connect provider, as a relying party (OpenID Connect Core 1.0, authorization code flow): where
/// to send the browser, the back-channel exchange of the code it brings back, and the checks of what comes back (the
/// ID token's signature against the provider's published keys, its issuer, audience, expiry and nonce). The provider is
/// the operator's, so no outbound address guard applies, as for CAS.
/// </summary>
public sealed class OidcProvider
{
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(2);
    private readonly HttpClient _http;
    private readonly ConfigurationManager<OpenIdConnectConfiguration> _metadata;
    private readonly OidcClientAuthentication _clientAuth;
    private readonly ILogger _logger;

    public OidcProviderConfig Config { get; }
    public string IdpId => Config.EffectiveIdpId;
    public ClaimTemplate Localpart { get; }
    public ClaimTemplate? DisplayName { get; }
    public ClaimTemplate? Email { get; }

    public OidcProvider(OidcProviderConfig config, HttpClient http, ILogger logger)
    {
        Config = config;
        _http = http;
        _logger = logger;
        _clientAuth = new OidcClientAuthentication(config);
        var mapping = config.UserMappingProvider.Config;
        Localpart = ClaimTemplate.Parse(mapping.LocalpartTemplate);
        DisplayName = mapping.DisplayNameTemplate is { } displayName ? ClaimTemplate.Parse(displayName) : null;
        Email = mapping.EmailTemplate is { } email ? ClaimTemplate.Parse(email) : null;
        var documents = new HttpDocumentRetriever(http) { RequireHttps = !config.SkipVerification };
        _metadata = config.Discover
            ? new ConfigurationManager<OpenIdConnectConfiguration>(
                config.Issuer.TrimEnd('/') + "/.well-known/openid-configuration", new OpenIdConnectConfigurationRetriever(), documents)
            : new ConfigurationManager<OpenIdConnectConfiguration>(config.Issuer, new ConfiguredMetadata(config), documents);
    }

    private bool AsksOpenId => Config.Scopes.Contains("openid");

    /// <summary>The provider's authorization endpoint for a sign-in coming back to <paramref name="redirectUri"/>.</summary>
    public async Task<string> AuthorizationUrlAsync(string redirectUri, string state, string nonce, string? codeVerifier, CancellationToken ct)
    {
        var metadata = await MetadataAsync(ct);
        var query = new List<KeyValuePair<string, string>>
        {
            new("response_type", "code"),
            new("client_id", Config.ClientId),
            new("redirect_uri", redirectUri),
            new("scope", string.Join(' ', Config.Scopes)),
            new("state", state),
            new("nonce", nonce),
        };
        if (codeVerifier is not null)
        {
            query.Add(new("code_challenge", Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(codeVerifier)))));
            query.Add(new("code_challenge_method", "S256"));
        }
        var endpoint = metadata.AuthorizationEndpoint;
        return endpoint + (endpoint.Contains('?') ? "&" : "?")
            + string.Join('&', query.Select(p => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(p.Value)}"));
    }

    /// <summary>Whether this sign-in uses PKCE: always, never, or (auto) when the provider advertises S256.</summary>
    public async Task<bool> UsesPkceAsync(CancellationToken ct) => Config.PkceMethod switch
    {
        "always" => true,
        "never" => false,
        _ => (await MetadataAsync(ct)).CodeChallengeMethodsSupported.Contains("S256"),
    };

    /// <summary>
    /// Exchanges the code and returns the user's claims: the checked ID token's, or the userinfo endpoint's when the
    /// configuration says so (Synapse's <c>user_profile_method</c>).
    /// </summary>
    public async Task<JsonObject> ClaimsForCodeAsync(string code, string redirectUri, string? codeVerifier, string nonce, CancellationToken ct)
    {
        var metadata = await MetadataAsync(ct);
        var form = new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = redirectUri };
        if (codeVerifier is not null)
            form["code_verifier"] = codeVerifier;
        using var request = new HttpRequestMessage(HttpMethod.Post, metadata.TokenEndpoint);
        _clientAuth.Apply(request, form, metadata.TokenEndpoint);
        request.Content = new FormUrlEncodedContent(form);
        var tokens = await SendForJsonAsync(request, "token endpoint", ct);
        if (tokens["error"] is { } error)
            throw Refused($"the provider refused the sign-in: {error} {tokens["error_description"]}".TrimEnd());

        JsonObject? idClaims = null;
        if (AsksOpenId)
        {
            if (tokens["id_token"]?.GetValue<string>() is not { } idToken)
                throw Refused("the provider sent no ID token");
            idClaims = await ValidateIdTokenAsync(idToken, nonce, ct);
        }
        if (Config.UserProfileMethod != "userinfo_endpoint" && idClaims is not null)
            return idClaims;
        if (tokens["access_token"]?.GetValue<string>() is not { } accessToken)
            throw Refused("the provider sent no access token");
        var userinfo = await UserinfoAsync(metadata, accessToken, ct);
        if (idClaims is not null && userinfo["sub"]?.ToString() != idClaims["sub"]?.ToString())
            throw Refused("the provider's userinfo is about another user than its ID token");
        return userinfo;
    }

    private async Task<JsonObject> ValidateIdTokenAsync(string idToken, string nonce, CancellationToken ct)
    {
        var handler = new JsonWebTokenHandler();
        for (var attempt = 0; ; attempt++)
        {
            var metadata = await MetadataAsync(ct);
            var result = await handler.ValidateTokenAsync(idToken, new TokenValidationParameters
            {
                ValidIssuer = metadata.Issuer,
                ValidAudience = Config.ClientId,
                IssuerSigningKeys = metadata.SigningKeys,
                RequireSignedTokens = true,
                RequireExpirationTime = true,
                ValidateLifetime = true,
                ClockSkew = ClockSkew,
            });
            // A key the provider rotated in since its keys were read: read them again, once.
            if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException && attempt == 0)
            {
                _metadata.RequestRefresh();
                continue;
            }
            if (!result.IsValid)
            {
                _logger.LogWarning("ID token from {Idp} refused: {Reason}", IdpId, result.Exception?.Message);
                throw Refused($"the provider's ID token is not valid ({Describe(result.Exception)})");
            }
            var token = (JsonWebToken)result.SecurityToken;
            var claims = JsonNode.Parse(Base64UrlEncoder.Decode(token.EncodedPayload))!.AsObject();
            if (claims["nonce"]?.ToString() != nonce)
                throw Refused("the provider's ID token is not for this sign-in (nonce)");
            return claims;
        }
    }

    private static string Describe(Exception? e) => e switch
    {
        SecurityTokenInvalidAudienceException => "audience",
        SecurityTokenInvalidIssuerException => "issuer",
        SecurityTokenExpiredException => "expired",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "signature",
        _ => "malformed",
    };

    private async Task<JsonObject> UserinfoAsync(OpenIdConnectConfiguration metadata, string accessToken, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(metadata.UserInfoEndpoint))
            throw Refused("the provider has no userinfo endpoint");
        using var request = new HttpRequestMessage(HttpMethod.Get, metadata.UserInfoEndpoint);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        var userinfo = await SendForJsonAsync(request, "userinfo endpoint", ct);
        if (userinfo["error"] is { } error)
            throw Refused($"the provider's userinfo endpoint refused: {error}");
        return userinfo;
    }

    private async Task<JsonObject> SendForJsonAsync(HttpRequestMessage request, string what, CancellationToken ct)
    {
        try
        {
            using var response = await _http.SendAsync(request, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode && (int)response.StatusCode is not (400 or 401))
                throw new HttpRequestException($"HTTP {(int)response.StatusCode}");
            return JsonNode.Parse(body) as JsonObject ?? throw new System.Text.Json.JsonException("not an object");
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            _logger.LogWarning("OIDC {What} of {Idp} failed: {Reason}", what, IdpId, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", $"The sign-in provider's {what} could not be used.");
        }
    }

    private async Task<OpenIdConnectConfiguration> MetadataAsync(CancellationToken ct)
    {
        OpenIdConnectConfiguration metadata;
        try
        {
            metadata = await _metadata.GetConfigurationAsync(ct);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or HttpRequestException && !ct.IsCancellationRequested)
        {
            _logger.LogWarning("OIDC metadata of {Idp} could not be read: {Reason}", IdpId, e.Message);
            throw new MatrixException(502, "M_UNKNOWN", "The sign-in provider could not be reached.");
        }
        if (!Config.SkipVerification && OidcMetadataRules.Broken(metadata, Config) is { } broken)
        {
            _logger.LogWarning("OIDC metadata of {Idp} refused: {Reason}", IdpId, broken);
            throw new MatrixException(502, "M_UNKNOWN", $"The sign-in provider's configuration is not usable: {broken}.");
        }
        return metadata;
    }

    private static MatrixException Refused(string why) => new(401, "M_UNAUTHORIZED", $"Single sign-on failed: {why}.");

    /// <summary>The provider's endpoints as configured (<c>discover: false</c>), with its keys read from <c>jwks_uri</c>.</summary>
    private sealed class ConfiguredMetadata(OidcProviderConfig config) : IConfigurationRetriever<OpenIdConnectConfiguration>
    {
        public async Task<OpenIdConnectConfiguration> GetConfigurationAsync(string address, IDocumentRetriever retriever, CancellationToken cancel)
        {
            var metadata = new OpenIdConnectConfiguration
            {
                Issuer = config.Issuer,
                AuthorizationEndpoint = config.AuthorizationEndpoint,
                TokenEndpoint = config.TokenEndpoint,
                UserInfoEndpoint = config.UserinfoEndpoint,
                JwksUri = config.JwksUri,
            };
            metadata.ResponseTypesSupported.Add("code");
            if (config.JwksUri is not null)
            {
                metadata.JsonWebKeySet = new JsonWebKeySet(await retriever.GetDocumentAsync(config.JwksUri, cancel));
                foreach (var key in metadata.JsonWebKeySet.GetSigningKeys())
                    metadata.SigningKeys.Add(key);
            }
            return metadata;
        }
    }
}
