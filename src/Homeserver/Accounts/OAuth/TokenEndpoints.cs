using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// The token endpoint (RFC 6749 §3.2: the authorisation code grant with PKCE, the refresh token grant, RFC 8628's
/// device code grant), revocation (RFC 7009) and userinfo. Clients are public: they name themselves by client_id.
/// </summary>
public sealed class TokenEndpoints(Database db, OAuthClientStore clients, OAuthGrantStore grants, OAuthSessions sessions, Authenticator authenticator,
    HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapOAuth("POST", OAuthPaths.Token, TokenAsync);
        app.MapOAuth("POST", OAuthPaths.Revoke, RevokeAsync);
        app.MapOAuth("GET", OAuthPaths.UserInfo, UserInfoAsync);
    }

    private async Task TokenAsync(HttpContext context)
    {
        context.Response.Headers.CacheControl = "no-store";
        var form = await OAuthRoutes.ReadFormAsync(context);
        var grantType = form.Required("grant_type");
        var client = await ClientAsync(form.Optional("client_id") ?? throw OAuthException.InvalidClient("client_id is required."), context.RequestAborted);
        if (grantType is not (OAuthClient.AuthorizationCodeGrant or OAuthClient.RefreshTokenGrant or OAuthClient.DeviceCodeGrant))
            throw new OAuthException(400, "unsupported_grant_type", $"Grant type {grantType} is not supported.");
        if (!client.MayUse(grantType))
            throw OAuthException.UnauthorizedClient($"The client did not register for the {grantType} grant.");
        var ct = context.RequestAborted;
        var answer = grantType switch
        {
            OAuthClient.AuthorizationCodeGrant => await ExchangeCodeAsync(form, client, ct),
            OAuthClient.RefreshTokenGrant => await sessions.RefreshAsync(form.Required("refresh_token"), client, ct),
            _ => await ExchangeDeviceCodeAsync(form, client, ct),
        };
        await context.WriteJsonAsync(answer);
    }

    private async Task<JsonObject> ExchangeCodeAsync(IReadOnlyDictionary<string, string> form, OAuthClient client, CancellationToken ct)
    {
        var code = form.Required("code");
        var redirectUri = form.Required("redirect_uri");
        var verifier = form.Required("code_verifier");
        var grant = await db.ReadAsync(s => grants.ByCodeHashAsync(s, Secrets.Hash(code)), ct);
        if (grant is null || grant.Kind != OAuthGrantRow.Code)
            throw OAuthException.InvalidGrant("The code is unknown.");
        if (grant.Status == OAuthGrantRow.Exchanged)
        {
            await sessions.RevokeGrantAsync(grant, ct);
            throw OAuthException.InvalidGrant("The code has been used already; the session it gave has been ended.");
        }
        if (grant.Status != OAuthGrantRow.Approved || grant.ExpiresTs <= Now)
            throw OAuthException.InvalidGrant("The code has expired.");
        if (grant.ClientId != client.ClientId)
            throw OAuthException.InvalidGrant("The code was issued to another client.");
        if (grant.RedirectUri != redirectUri)
            throw OAuthException.InvalidGrant("redirect_uri differs from the authorisation request's.");
        if (!VerifierMatches(verifier, grant.CodeChallenge!))
            throw OAuthException.InvalidGrant("The code_verifier does not match the code_challenge.");
        if (!await db.WriteAsync(s => grants.MarkExchangedAsync(s, grant.GrantId), ct))
            throw OAuthException.InvalidGrant("The code has been used already.");
        return await sessions.IssueAsync(grant, client, ct);
    }

    /// <summary>RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, the verifier 43-128 unreserved characters.</summary>
    private static bool VerifierMatches(string verifier, string challenge)
    {
        if (verifier.Length is < 43 or > 128 || !verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~'))
            return false;
        var computed = UnpaddedBase64.EncodeUrlSafe(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(computed), Encoding.ASCII.GetBytes(challenge));
    }

    /// <summary>RFC 8628 §3.5: pending, polled too fast, denied, expired, or the tokens (once).</summary>
    private async Task<JsonObject> ExchangeDeviceCodeAsync(IReadOnlyDictionary<string, string> form, OAuthClient client, CancellationToken ct)
    {
        var grant = await db.ReadAsync(s => grants.ByCodeHashAsync(s, Secrets.Hash(form.Required("device_code"))), ct);
        if (grant is null || grant.Kind != OAuthGrantRow.Device || grant.ClientId != client.ClientId || grant.Status == OAuthGrantRow.Exchanged)
            throw OAuthException.InvalidGrant("The device code is unknown or has been used.");
        var now = Now;
        if (grant.ExpiresTs <= now)
            throw new OAuthException(400, "expired_token", "The device code has expired.");
        if (grant.Status == OAuthGrantRow.Denied)
            throw new OAuthException(400, "access_denied", "The user denied the request.");
        if (grant.Status == OAuthGrantRow.Approved)
            return await db.WriteAsync(s => grants.MarkExchangedAsync(s, grant.GrantId), ct)
                ? await sessions.IssueAsync(grant, client, ct)
                : throw OAuthException.InvalidGrant("The device code has been used.");
        await db.WriteAsync(s => grants.RecordPollAsync(s, grant.GrantId, now), ct);
        if (grant.LastPollTs is { } last && now - last < config.Oauth.DeviceCodePollIntervalSeconds * 1000L)
            throw new OAuthException(400, "slow_down", "Polling too fast: wait longer between requests.");
        throw new OAuthException(400, "authorization_pending", "The user has not answered yet.");
    }

    private async Task RevokeAsync(HttpContext context)
    {
        var form = await OAuthRoutes.ReadFormAsync(context);
        var token = form.Required("token");
        // Spec: a token is revoked whoever presents it (so secret scanners can), but a named client must exist.
        if (form.Optional("client_id") is { } clientId)
            await ClientAsync(clientId, context.RequestAborted);
        await sessions.RevokeAsync(token, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task UserInfoAsync(HttpContext context)
    {
        var requester = await authenticator.TryAuthenticateAsync(context) ?? throw OAuthException.InvalidToken();
        await context.WriteJsonAsync(new JsonObject { ["sub"] = requester.UserId.Value });
    }

    private async Task<OAuthClient> ClientAsync(string clientId, CancellationToken ct) =>
        await db.ReadAsync(s => clients.GetAsync(s, clientId), ct) ?? throw OAuthException.InvalidClient();
}
