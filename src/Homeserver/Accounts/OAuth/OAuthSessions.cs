using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// The sessions the OAuth API hands out: an approved grant becomes a device (named by the device scope, created with
/// the client's name if new) with an access and a refresh token, exactly the tokens a password login gets; refreshing
/// rotates them as <c>/refresh</c> does; revoking a token ends its device.
/// </summary>
public sealed class OAuthSessions(Database db, AccountService accounts, OAuthSessionStore sessions, TokenStore tokens, IdTokens idTokens,
    TimeProvider clock)
{
    public async Task<JsonObject> IssueAsync(OAuthGrantRow grant, OAuthClient client, CancellationToken ct)
    {
        var userId = grant.UserId!;
        var user = await accounts.GetActiveUserAsync(userId, ct);
        if (user.Locked != 0)
            throw OAuthException.InvalidGrant("The account is locked.");
        await db.WriteAsync(s => sessions.UpsertAsync(s, userId, grant.DeviceId, client.ClientId, grant.Scope, clock.GetUtcNow().ToUnixTimeMilliseconds()), ct);
        var session = await accounts.LoginAsync(userId, grant.DeviceId, client.DisplayName, wantsRefreshToken: true, ct);
        var answer = Answer(session, grant.Scope);
        if (grant.OpenId)
            answer["id_token"] = await idTokens.IssueAsync(userId, client.ClientId, grant.Nonce, grant.AuthTime ?? 0, ct);
        return answer;
    }

    public async Task<JsonObject> RefreshAsync(string refreshToken, OAuthClient client, CancellationToken ct)
    {
        var session = await db.ReadAsync(async s => await tokens.GetRefreshTokenAsync(s, Secrets.Hash(refreshToken)) is { } row
            ? await sessions.GetAsync(s, row.UserId, row.DeviceId) : null, ct);
        if (session is null || session.ClientId != client.ClientId)
            throw OAuthException.InvalidGrant("The refresh token is unknown, revoked or was issued to another client.");
        try
        {
            return Answer(await accounts.RefreshAsync(refreshToken, ct), session.Scope);
        }
        catch (MatrixException e) when (e is not OAuthException)
        {
            throw OAuthException.InvalidGrant(e.Message);
        }
    }

    /// <summary>Ends the session (device) of an access or refresh token; false when the token is unknown.</summary>
    public async Task<bool> RevokeAsync(string token, CancellationToken ct)
    {
        var hash = Secrets.Hash(token);
        var owner = await db.ReadAsync(async s => await tokens.GetAccessTokenWithUserAsync(s, hash) is var (access, _)
            ? (access.UserId, access.DeviceId)
            : await tokens.GetRefreshTokenAsync(s, hash) is { } refresh ? (refresh.UserId, refresh.DeviceId) : ((string, string)?)null, ct);
        if (owner is not var (userId, deviceId))
            return false;
        await accounts.DeleteDevicesAsync(userId, [deviceId], alsoInTransaction: null, ct);
        return true;
    }

    /// <summary>Ends the session a code was exchanged for, when the code is presented again (RFC 6749 §4.1.2).</summary>
    public async Task RevokeGrantAsync(OAuthGrantRow grant, CancellationToken ct)
    {
        if (grant.UserId is not null && await db.ReadAsync(s => sessions.GetAsync(s, grant.UserId, grant.DeviceId), ct) is { } session
            && session.ClientId == grant.ClientId)
            await accounts.DeleteDevicesAsync(grant.UserId, [grant.DeviceId], alsoInTransaction: null, ct);
    }

    private static JsonObject Answer(LoginSession session, string scope) => new()
    {
        ["access_token"] = session.AccessToken,
        ["token_type"] = "Bearer",
        ["expires_in"] = session.ExpiresInMs / 1000,
        ["refresh_token"] = session.RefreshToken,
        ["scope"] = scope,
    };
}
