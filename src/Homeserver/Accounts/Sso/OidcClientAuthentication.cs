using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Matrix.Homeserver.Config;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// How this server proves itself to a provider's token endpoint (OpenID Connect Core §9): client_secret_basic,
/// client_secret_post, private_key_jwt (RFC 7523 assertion signed with the configured key) or none. A
/// <c>client_secret_jwt_key</c> with a secret method makes the secret a freshly signed JWT, as Synapse does for Apple.
/// </summary>
public sealed class OidcClientAuthentication(OidcProviderConfig config)
{
    private static readonly TimeSpan JwtLifetime = TimeSpan.FromMinutes(5);
    private readonly SigningCredentials? _jwtKey = config.ClientSecretJwtKey is { } key ? LoadKey(key) : null;

    public void Apply(HttpRequestMessage request, Dictionary<string, string> form, string tokenEndpoint)
    {
        switch (config.ClientAuthMethod)
        {
            case "client_secret_basic":
                // RFC 6749 §2.3.1: both parts form-encoded before base64.
                var pair = $"{Uri.EscapeDataString(config.ClientId)}:{Uri.EscapeDataString(Secret())}";
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(pair)));
                break;
            case "client_secret_post":
                form["client_id"] = config.ClientId;
                form["client_secret"] = Secret();
                break;
            case "private_key_jwt":
                form["client_id"] = config.ClientId;
                form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
                form["client_assertion"] = SignedJwt(new Dictionary<string, object>
                {
                    ["iss"] = config.ClientId,
                    ["sub"] = config.ClientId,
                    ["aud"] = tokenEndpoint,
                    ["jti"] = Guid.NewGuid().ToString("N"),
                });
                break;
            default:
                form["client_id"] = config.ClientId;
                break;
        }
    }

    private string Secret() => _jwtKey is null
        ? config.ClientSecret!
        : SignedJwt(config.ClientSecretJwtKey!.JwtPayload.ToDictionary(p => p.Key, p => (object)p.Value));

    private string SignedJwt(Dictionary<string, object> claims)
    {
        var now = DateTime.UtcNow;
        var header = config.ClientSecretJwtKey!.JwtHeader.Where(p => p.Key is not ("alg" or "kid"))
            .ToDictionary(p => p.Key, p => (object)p.Value);
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + JwtLifetime,
            SigningCredentials = _jwtKey,
            AdditionalHeaderClaims = header.Count > 0 ? header : null,
        });
    }

    /// <summary>The configured PEM key (RSA or EC) with its <c>alg</c> and <c>kid</c>; a config error names what is wrong.</summary>
    public static SigningCredentials LoadKey(ClientSecretJwtKeyConfig key)
    {
        var pem = key.Key ?? File.ReadAllText(key.KeyFile!);
        SecurityKey securityKey = TryImportEc(pem) is { } ec ? new ECDsaSecurityKey(ec) : ImportRsa(pem);
        if (key.JwtHeader.TryGetValue("kid", out var kid))
            securityKey.KeyId = kid;
        return new SigningCredentials(securityKey, key.JwtHeader["alg"]);
    }

    private static ECDsa? TryImportEc(string pem)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(pem);
            return ecdsa;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ecdsa.Dispose();
            return null;
        }
    }

    private static RsaSecurityKey ImportRsa(string pem)
    {
        var rsa = RSA.Create();
        rsa.ImportFromPem(pem);
        return new RsaSecurityKey(rsa);
    }
}
