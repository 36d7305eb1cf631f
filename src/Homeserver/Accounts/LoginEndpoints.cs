using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>Spec: Login, token-based login (<c>/v1/login/get_token</c>), refresh, logout and whoami.</summary>
public sealed class LoginEndpoints(
    AccountService accounts, PasswordLogin passwordLogin, Authenticator authenticator, UserInteractiveAuth uia, Sso.SsoEndpoints sso, Database db,
    TokenStore tokens, JsonBody json, RateLimiter limiter, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "login", GetFlowsAsync);
        app.MapV3("POST", "login", LoginAsync);
        app.MapV1("POST", "login/get_token", GetLoginTokenAsync);
        app.MapV3("POST", "refresh", RefreshAsync);
        app.MapV3("POST", "logout", LogoutAsync);
        app.MapV3("POST", "logout/all", LogoutAllAsync);
        app.MapV3("GET", "account/whoami", WhoamiAsync);
    }

    private Task GetFlowsAsync(HttpContext context)
    {
        var flows = new JsonArray(new JsonObject { ["type"] = AuthTypes.ApplicationService });
        if (config.PasswordConfig.Enabled)
            flows.Insert(0, new JsonObject { ["type"] = AuthTypes.Password });
        foreach (var flow in sso.LoginFlows())
            flows.Add(flow);
        // Login tokens come from single sign-on, or from an existing session (get_login_token).
        if (config.Auth.LoginViaExistingSession || sso.Enabled)
            flows.Add(new JsonObject { ["type"] = AuthTypes.Token, ["get_login_token"] = config.Auth.LoginViaExistingSession });
        return context.WriteJsonAsync(new JsonObject { ["flows"] = flows });
    }

    private async Task LoginAsync(HttpContext context)
    {
        limiter.Check("login", context.ClientIp(), config.RateLimits.Login);
        var body = await json.ReadObjectAsync(context);
        var ct = context.RequestAborted;
        var type = body.RequiredString("type");
        string userId;
        switch (type)
        {
            case AuthTypes.Password:
            {
                if (!config.PasswordConfig.Enabled)
                    throw new MatrixException(400, "M_UNKNOWN", "Password login has been disabled.");
                var password = body.RequiredString("password");
                userId = await passwordLogin.LoginAsync(body, password, ct) ?? throw MatrixException.Forbidden("Invalid username or password.");
                break;
            }
            case AuthTypes.Token:
            {
                var token = body.RequiredString("token");
                var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                var owner = await db.WriteAsync(s => tokens.TakeLoginTokenAsync(s, Secrets.Hash(token), now), ct)
                    ?? throw MatrixException.Forbidden("Invalid or expired login token.");
                userId = (await accounts.GetActiveUserAsync(owner, ct)).UserId;
                break;
            }
            case AuthTypes.ApplicationService:
            {
                // The application service logs in one of its users, proving itself with its as_token.
                var appService = authenticator.AppServiceOf(context, "log in");
                userId = LoginIdentifier.UserFromAuth(body, config.ServerName) ?? throw MatrixException.MissingParam("identifier");
                if (!appService.IsInterestedInUser(userId))
                    throw MatrixException.Forbidden("The user is outside the application service's namespaces.");
                userId = (await accounts.GetActiveUserAsync(userId, ct)).UserId;
                break;
            }
            default:
                throw new MatrixException(400, "M_UNKNOWN", $"Unknown login type {type}.");
        }

        var session = await accounts.LoginAsync(userId, body.OptionalString("device_id"), body.OptionalString("initial_device_display_name"),
            body.OptionalBool("refresh_token") ?? false, ct);
        var response = session.ToJson(config);
        response["well_known"] = new JsonObject
        {
            ["m.homeserver"] = new JsonObject { ["base_url"] = config.WellKnown.ClientBaseUrl ?? config.EffectivePublicBaseurl },
        };
        await context.WriteJsonAsync(response);
    }

    private async Task GetLoginTokenAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        if (!config.Auth.LoginViaExistingSession)
            throw new MatrixException(400, "M_FORBIDDEN", "Logging in from an existing session is disabled on this server.");
        limiter.Check("login", requester.UserId.Value, config.RateLimits.Login);
        var body = await json.ReadObjectAsync(context, optional: true);
        var authorisation = await uia.ReauthenticateAsync(context, body, requester);

        var loginToken = Secrets.NewToken("mal_");
        var lifetime = config.Auth.LoginTokenLifetimeMs;
        var expires = clock.GetUtcNow().ToUnixTimeMilliseconds() + lifetime;
        await db.WriteAsync(async s =>
        {
            await uia.FinishAsync(s, authorisation);
            await tokens.InsertLoginTokenAsync(s, Secrets.Hash(loginToken), requester.UserId.Value, expires);
        }, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["login_token"] = loginToken, ["expires_in_ms"] = lifetime });
    }

    private async Task RefreshAsync(HttpContext context)
    {
        var body = await json.ReadObjectAsync(context);
        var session = await accounts.RefreshAsync(body.RequiredString("refresh_token"), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject
        {
            ["access_token"] = session.AccessToken,
            ["refresh_token"] = session.RefreshToken,
            ["expires_in_ms"] = session.ExpiresInMs,
        });
    }

    private async Task LogoutAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await accounts.DeleteDevicesAsync(requester.UserId.Value, [requester.DeviceId], alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task LogoutAllAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await accounts.LogoutAllAsync(requester.UserId.Value, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task WhoamiAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(new JsonObject
        {
            ["user_id"] = requester.UserId.Value,
            ["device_id"] = requester.DeviceId,
            ["is_guest"] = requester.IsGuest,
        });
    }
}
