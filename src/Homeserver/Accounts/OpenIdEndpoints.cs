using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Spec: OpenID — a client gets a short-lived token (<c>POST /user/{userId}/openid/request_token</c>) that a third party
/// (an integration manager, say) checks with <c>GET /_matrix/federation/v1/openid/userinfo</c> to learn who it is.
/// </summary>
public sealed class OpenIdEndpoints(Authenticator authenticator, JsonBody json, Database db, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "user/{userId}/openid/request_token", RequestTokenAsync);
        app.MapGet("/_matrix/federation/v1/openid/userinfo", UserInfoAsync);
    }

    private async Task RequestTokenAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (context.Route("userId") != requester.UserId.Value)
            throw MatrixException.Forbidden("You may only request tokens for yourself.");
        await json.ReadObjectAsync(context, optional: true);
        var token = Secrets.NewToken("mao_");
        var expires = clock.GetUtcNow().Add(Lifetime).ToUnixTimeMilliseconds();
        await db.WriteAsync(s => s.ExecuteAsync("INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES (@hash, @user, @expires)",
            new { hash = Secrets.Hash(token), user = requester.UserId.Value, expires }), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["access_token"] = token,
            ["token_type"] = "Bearer",
            ["matrix_server_name"] = config.ServerName,
            ["expires_in"] = (long)Lifetime.TotalSeconds,
        });
    }

    private async Task UserInfoAsync(HttpContext context)
    {
        var token = context.Query("access_token");
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var userId = token.Length == 0 ? null : await db.ReadAsync(s => s.QuerySingleOrDefaultAsync<string>(
            "SELECT user_id FROM openid_tokens WHERE token_hash = @hash AND expires_ts > @now", new { hash = Secrets.Hash(token), now }), context.RequestAborted);
        if (userId is null)
            throw new MatrixException(401, "M_UNKNOWN_TOKEN", "The OpenID token is unknown or expired.");
        await context.WriteJsonAsync(new JsonObject { ["sub"] = userId });
    }
}
