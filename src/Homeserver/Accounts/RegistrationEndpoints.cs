using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>Spec: Account registration (<c>/register</c>, <c>/register/available</c>, registration token validity).</summary>
public sealed class RegistrationEndpoints(
    AccountService accounts, UserInteractiveAuth uia, RegistrationTokenService registrationTokens, JsonBody json, RateLimiter limiter,
    Authenticator authenticator, ApplicationServices.AppServiceRegistry appServices, ThreepidService threepids, HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("POST", "register", RegisterAsync);
        app.MapV3("GET", "register/available", AvailableAsync);
        app.MapV1("GET", "register/m.login.registration_token/validity", TokenValidityAsync);
    }

    /// <summary>
    /// With email on, an address may be proved at registration (and is then added to the account), as Synapse offers. A
    /// required captcha comes first in every flow (the dummy stage then keeps the flows distinct, as the spec advises).
    /// </summary>
    private IReadOnlyList<string[]> Flows
    {
        get
        {
            IReadOnlyList<string[]> flows = (config.Registration.RequiresToken, config.Email.Enabled) switch
            {
                (true, true) => [[AuthTypes.RegistrationToken], [AuthTypes.RegistrationToken, AuthTypes.EmailIdentity]],
                (true, false) => [[AuthTypes.RegistrationToken]],
                (false, true) => [[AuthTypes.Dummy], [AuthTypes.EmailIdentity]],
                _ => [[AuthTypes.Dummy]],
            };
            return config.Registration.Recaptcha.Required ? flows.Select(flow => (string[])[AuthTypes.Recaptcha, .. flow]).ToList() : flows;
        }
    }

    private async Task RegisterAsync(HttpContext context)
    {
        var kind = context.Query("kind");
        if (kind == "guest")
        {
            await RegisterGuestAsync(context);
            return;
        }
        if (kind is not ("" or "user"))
            throw MatrixException.InvalidParam("kind must be 'user' or 'guest'.");
        var body = await json.ReadObjectAsync(context);
        if (body.OptionalString("type") == AuthTypes.ApplicationService)
        {
            await RegisterForAppServiceAsync(context, body);
            return;
        }
        limiter.Check("register", context.ClientIp(), config.RateLimits.Registration);
        if (!config.Registration.Enabled)
            throw MatrixException.Forbidden("Registration has been disabled.");

        // A replay of a finished registration (a retry after a lost answer) logs the user it made in again.
        if (await uia.RegisteredUserOfAsync(body, context.RequestAborted) is { } registered)
        {
            var replayed = body.OptionalBool("inhibit_login") ?? false ? null : await accounts.LoginAsync(registered,
                body.OptionalString("device_id"), body.OptionalString("initial_device_display_name"), body.OptionalBool("refresh_token") ?? false,
                context.RequestAborted);
            await context.WriteJsonAsync(replayed?.ToJson(config) ?? new JsonObject { ["user_id"] = registered });
            return;
        }
        var remembered = await uia.RecallRegistrationAsync(body, context.RequestAborted);
        body = remembered?.Request ?? body;

        var username = body.OptionalString("username");
        var password = body.OptionalString("password");
        var deviceId = body.OptionalString("device_id");
        var displayName = body.OptionalString("initial_device_display_name");
        var inhibitLogin = body.OptionalBool("inhibit_login") ?? false;
        var wantsRefresh = body.OptionalBool("refresh_token") ?? false;
        AccountService.ValidatePassword(password);
        AccountService.ValidateDeviceId(deviceId);

        // Spec (Guest Access): a guest becomes a full account by registering its own user ID with its access token.
        var guestAccessToken = body.OptionalString("guest_access_token");
        if (guestAccessToken is not null && username is null)
            throw MatrixException.MissingParam("username");

        // The name is checked before authentication, so a client learns it is taken before the user completes any stage.
        var userId = guestAccessToken is null
            ? accounts.ValidateNewLocalpart(username ?? Secrets.NewSessionId().ToLowerInvariant())
            : UserId.Create(username!.ToLowerInvariant(), ServerName.Parse(config.ServerName));
        appServices.CheckUserIdFree(userId.Value, actor: null);
        if (guestAccessToken is not null)
            await accounts.EnsureGuestTokenOfAsync(userId, guestAccessToken, context.RequestAborted);
        else if (await accounts.IsUserIdTakenAsync(userId, context.RequestAborted))
            throw new MatrixException(400, "M_USER_IN_USE", "User ID already taken.");

        var authorisation = await uia.AuthenticateAsync(context, body, Flows, user: null, rememberRequest: true);
        async Task Finish(Storage.DbSession s)
        {
            await uia.FinishRegistrationAsync(s, authorisation, userId.Value);
            if (authorisation.Threepid is { } proved)
                await threepids.AddAsync(s, userId.Value, proved.Medium, proved.Address, proved.ValidatedTs);
        }
        var session = guestAccessToken is null
            ? await accounts.RegisterAsync(userId, password, isAdmin: false, deviceId, displayName, inhibitLogin, wantsRefresh, Finish,
                context.RequestAborted, remembered?.PasswordHash)
            : await accounts.UpgradeGuestAsync(userId, password, deviceId, displayName, inhibitLogin, wantsRefresh, Finish, context.RequestAborted);
        await context.WriteJsonAsync(session?.ToJson(config) ?? new JsonObject { ["user_id"] = userId.Value });
    }

    /// <summary>
    /// Spec (Guest Access): <c>kind=guest</c> ignores every parameter but <c>initial_device_display_name</c>, needs no
    /// user-interactive auth, and works whether or not registration is open, when guest access is on.
    /// </summary>
    private async Task RegisterGuestAsync(HttpContext context)
    {
        if (!config.Registration.AllowGuestAccess)
            throw GuestAccess.Forbidden("Guest access is disabled on this server.");
        limiter.Check("register", context.ClientIp(), config.RateLimits.Registration);
        var body = await json.ReadObjectAsync(context, optional: true);
        var session = await accounts.RegisterGuestAsync(body.OptionalString("initial_device_display_name"), context.RequestAborted);
        await context.WriteJsonAsync(session.ToJson(config));
    }

    /// <summary>
    /// <c>m.login.application_service</c>: an application service registers a user of its namespaces, with no
    /// user-interactive auth and whether or not registration is open.
    /// </summary>
    private async Task RegisterForAppServiceAsync(HttpContext context, System.Text.Json.JsonElement body)
    {
        var appService = authenticator.AppServiceOf(context, "register");
        if (appService.RateLimited)
            limiter.Check("register", context.ClientIp(), config.RateLimits.Registration);
        var userId = accounts.ValidateNewLocalpart(body.RequiredString("username"), forAppService: true);
        appServices.CheckUserIdFree(userId.Value, appService);
        var deviceId = body.OptionalString("device_id");
        if (await accounts.IsUserIdTakenAsync(userId, context.RequestAborted))
            throw new MatrixException(400, "M_USER_IN_USE", "User ID already taken.");
        var session = await accounts.RegisterAsync(userId, password: null, isAdmin: false, deviceId, body.OptionalString("initial_device_display_name"),
            body.OptionalBool("inhibit_login") ?? false, body.OptionalBool("refresh_token") ?? false, alsoInTransaction: null, context.RequestAborted);
        await context.WriteJsonAsync(session?.ToJson(config) ?? new JsonObject { ["user_id"] = userId.Value });
    }

    private async Task AvailableAsync(HttpContext context)
    {
        limiter.Check("register", context.ClientIp(), config.RateLimits.Registration);
        if (!config.Registration.Enabled)
            throw MatrixException.Forbidden("Registration has been disabled.");
        var username = context.Query("username");
        if (username.Length == 0)
            throw MatrixException.MissingParam("username");
        var userId = accounts.ValidateNewLocalpart(username);
        appServices.CheckUserIdFree(userId.Value, actor: null);
        if (await accounts.IsUserIdTakenAsync(userId, context.RequestAborted))
            throw new MatrixException(400, "M_USER_IN_USE", "User ID already taken.");
        await context.WriteJsonAsync(new JsonObject { ["available"] = true });
    }

    private async Task TokenValidityAsync(HttpContext context)
    {
        limiter.Check("register", context.ClientIp(), config.RateLimits.Registration);
        if (!config.Registration.Enabled || !config.Registration.RequiresToken)
            throw MatrixException.Forbidden("Registration tokens are not enabled.");
        var token = context.Query("token");
        if (token.Length == 0)
            throw MatrixException.MissingParam("token");
        var valid = await registrationTokens.IsUsableAsync(token, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["valid"] = valid });
    }
}
