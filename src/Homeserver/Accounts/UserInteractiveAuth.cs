using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

public static class AuthTypes
{
    public const string Dummy = "m.login.dummy";
    public const string Password = "m.login.password";
    public const string RegistrationToken = "m.login.registration_token";
    public const string Token = "m.login.token";
    public const string ApplicationService = "m.login.application_service";
    public const string EmailIdentity = "m.login.email.identity";
    public const string Sso = "m.login.sso";
    public const string Recaptcha = "m.login.recaptcha";
}

/// <summary>The 401 answer of user-interactive auth: the flows, the session, what is completed, and the error of a failed stage if any.</summary>
public sealed class UiaRequiredException(JsonObject body, string? errcode, string? error)
    : MatrixException(401, errcode ?? "M_FORBIDDEN", error ?? "User-interactive authentication required.", body)
{
    public override JsonObject ToJson()
    {
        var json = (JsonObject)Extra!.DeepClone();
        if (errcode is not null)
        {
            json["errcode"] = errcode;
            json["error"] = error;
        }
        return json;
    }
}

/// <summary>
/// A finished user-interactive auth session, to be closed in the transaction of the operation it authorised; with the
/// email address its <c>m.login.email.identity</c> stage proved, if it had one.
/// </summary>
public sealed record UiaResult(string SessionId, string? RegistrationToken, ProvedThreepid? Threepid);

/// <summary>An address a validation session proved during user-interactive auth, and that session (consumed with the UIA session).</summary>
public sealed record ProvedThreepid(string Medium, string Address, long ValidatedTs, string ValidationSessionId);

/// <summary>
/// What a registration's UIA session remembers: the request that opened it (its password as a hash) and, once the
/// registration is done, the user it made.
/// </summary>
public sealed record RememberedRegistration(JsonElement Request, string? PasswordHash, string? RegisteredUserId);

/// <summary>
/// User-interactive authentication (spec: client-server API, "User-interactive authentication API") for every endpoint that needs it.
/// Sessions are stored, bound to the method and path that started them, and expire.
/// </summary>
public sealed class UserInteractiveAuth(
    Database db, UiaStore sessions, UserStore users, RegistrationTokenStore registrationTokens, PasswordLogin passwords,
    PasswordHasher hasher, Email.EmailValidation emailValidation, ExternalIdStore externalIds, RecaptchaVerifier recaptcha, RateLimiter limiter,
    HomeserverConfig config, TimeProvider clock)
{
    /// <summary>
    /// Processes the <c>auth</c> field of <paramref name="body"/>. Returns when a flow is complete; otherwise throws the 401 answer.
    /// <paramref name="user"/> is the account the password stage must prove, when the request is made by a known user;
    /// <paramref name="emailPurpose"/> the kind of validation session the email stage accepts.
    /// </summary>
    /// <param name="rememberRequest">keep the request that opens the session (registration: see <see cref="RecallRegistrationAsync"/>)</param>
    public async Task<UiaResult> AuthenticateAsync(HttpContext context, JsonElement body, IReadOnlyList<string[]> flows, UserId? user,
        Email.ValidationPurpose emailPurpose = Email.ValidationPurpose.Registration, bool rememberRequest = false)
    {
        var ct = context.RequestAborted;
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var auth = body.OptionalObject("auth");
        var sessionId = auth?.OptionalString("session");

        UiaSessionRow session;
        if (sessionId is null)
        {
            session = new UiaSessionRow
            {
                SessionId = Secrets.NewSessionId(), Method = context.Request.Method, Path = context.Request.Path.Value ?? "",
                UserId = user?.Value, Completed = "[]", CreatedTs = now,
                RequestJson = rememberRequest ? RequestWithout(body, "auth", "password") : null,
                PasswordHash = rememberRequest && body.OptionalString("password") is { } password ? await hasher.HashAsync(password, ct) : null,
            };
            await db.WriteAsync(s => sessions.InsertAsync(s, session), ct);
        }
        else
        {
            session = await db.ReadAsync(s => sessions.GetAsync(s, sessionId), ct) ?? throw UnknownSession();
            if (session.CreatedTs + config.Auth.UiaSessionLifetimeMs < now)
                throw UnknownSession();
            if (session.Method != context.Request.Method || session.Path != context.Request.Path.Value || session.UserId != user?.Value)
                throw MatrixException.Forbidden("Requested operation has changed during the UI authentication session.");
            if (session.SsoUserId is not null && session.SsoUserId != session.UserId)
                throw MatrixException.Forbidden("The user authenticated by single sign-on is not the user making the request.");
        }

        var completed = JsonSerializer.Deserialize<List<string>>(session.Completed) ?? [];
        var registrationToken = session.RegistrationToken;
        var threepid = session.Threepid is null ? null : JsonSerializer.Deserialize<ProvedThreepid>(session.Threepid);
        var stageType = auth?.OptionalString("type");
        if (stageType is not null && !completed.Contains(stageType))
        {
            // A configured captcha is checked even where no flow needs it (as Synapse does); it completes no flow then.
            if (!flows.Any(flow => flow.Contains(stageType)) && !(stageType == AuthTypes.Recaptcha && config.Registration.Recaptcha.Enabled))
                throw Required(session.SessionId, flows, completed, "M_UNRECOGNIZED", $"Authentication type {stageType} is not offered here.");
            if (stageType == AuthTypes.EmailIdentity)
            {
                try
                {
                    threepid = await ProveEmailAsync(auth!.Value, emailPurpose, ct);
                }
                catch (MatrixException e) when (e.Errcode == "M_THREEPID_AUTH_FAILED")
                {
                    throw Required(session.SessionId, flows, completed, "M_UNAUTHORIZED", e.Message);
                }
            }
            else
            {
                var failure = await RunStageAsync(stageType, auth!.Value, user, context.Connection.RemoteIpAddress?.ToString(), now, ct);
                if (failure is not null)
                    throw Required(session.SessionId, flows, completed, failure.Value.Errcode, failure.Value.Error);
            }
            completed.Add(stageType);
            if (stageType == AuthTypes.RegistrationToken)
                registrationToken = auth.Value.OptionalString("token");
            await db.WriteAsync(s => sessions.UpdateAsync(s, session.SessionId, JsonSerializer.Serialize(completed), registrationToken,
                threepid is null ? null : JsonSerializer.Serialize(threepid)), ct);
        }

        if (flows.Any(flow => flow.All(completed.Contains)))
            return new UiaResult(session.SessionId, registrationToken, threepid);
        throw Required(session.SessionId, flows, completed, null, null);
    }

    /// <summary>
    /// Re-authentication of a logged-in user before a sensitive change: their password, or the dummy stage for an
    /// account that has none (created by an appservice or the shared-secret API).
    /// </summary>
    public async Task<UiaResult> ReauthenticateAsync(HttpContext context, JsonElement body, Requester requester)
    {
        var account = await db.ReadAsync(s => users.GetAsync(s, requester.UserId.Value), context.RequestAborted);
        if (account is null || account.Deactivated != 0)
            throw MatrixException.UnknownToken(softLogout: false);
        var hasPassword = account.PasswordHash is not null || await passwords.IsDirectoryAccountAsync(account.UserId, context.RequestAborted);
        // Single sign-on is offered to those who signed in through it (as Synapse does).
        var linked = await db.ReadAsync(s => externalIds.ListForUserAsync(s, account.UserId), context.RequestAborted);
        var hasSso = linked.Any(link => (link.AuthProvider == ExternalIdStore.Cas && config.Auth.Cas.Enabled)
            || config.OidcProviders.Any(provider => provider.EffectiveIdpId == link.AuthProvider));
        List<string[]> flows = [];
        if (hasPassword)
            flows.Add([AuthTypes.Password]);
        if (hasSso)
            flows.Add([AuthTypes.Sso]);
        if (flows.Count == 0)
            flows.Add([AuthTypes.Dummy]);
        return await AuthenticateAsync(context, body, flows, requester.UserId);
    }

    /// <summary>
    /// Records what single sign-on proved for a session (spec: UIA fallback): the stage is completed when it proved the
    /// session's user; anyone else fails the session's next request with 403. False when the session is unknown or expired.
    /// </summary>
    public async Task<bool> CompleteSsoStageAsync(string sessionId, string provedUserId, CancellationToken ct)
    {
        if (await LiveSessionAsync(sessionId, ct) is not { } session)
            return false;
        var completed = JsonSerializer.Deserialize<List<string>>(session.Completed) ?? [];
        if (provedUserId == session.UserId && !completed.Contains(AuthTypes.Sso))
            completed.Add(AuthTypes.Sso);
        await db.WriteAsync(s => sessions.SetSsoResultAsync(s, sessionId, JsonSerializer.Serialize(completed), provedUserId), ct);
        return true;
    }

    /// <summary>Records a stage completed on its fallback page (a solved captcha) for a live session.</summary>
    public async Task CompleteStageAsync(string sessionId, string stage, CancellationToken ct)
    {
        if (await LiveSessionAsync(sessionId, ct) is not { } session)
            return;
        var completed = JsonSerializer.Deserialize<List<string>>(session.Completed) ?? [];
        if (completed.Contains(stage))
            return;
        completed.Add(stage);
        await db.WriteAsync(s => sessions.UpdateAsync(s, sessionId, JsonSerializer.Serialize(completed), session.RegistrationToken, session.Threepid), ct);
    }

    /// <summary>The user a live session authenticates, for the single sign-on fallback page; null when unknown or expired.</summary>
    public async Task<UiaSessionRow?> LiveSessionAsync(string sessionId, CancellationToken ct)
    {
        var session = await db.ReadAsync(s => sessions.GetAsync(s, sessionId), ct);
        return session is null || session.CreatedTs + config.Auth.UiaSessionLifetimeMs < clock.GetUtcNow().ToUnixTimeMilliseconds() ? null : session;
    }

    /// <summary>
    /// A registration request that continues a session with nothing but <c>auth</c> is the request that opened it, as
    /// in Synapse (spec: clients need not repeat the parameters); null when the body says more, or names no session.
    /// </summary>
    public async Task<RememberedRegistration?> RecallRegistrationAsync(JsonElement body, CancellationToken ct)
    {
        if (body.EnumerateObject().Any(p => p.Name != "auth") || body.OptionalObject("auth")?.OptionalString("session") is not { } sessionId)
            return null;
        var session = await db.ReadAsync(s => sessions.GetAsync(s, sessionId), ct);
        if (session?.RequestJson is not { } request || session.CreatedTs + config.Auth.UiaSessionLifetimeMs < clock.GetUtcNow().ToUnixTimeMilliseconds())
            return null;
        var merged = JsonNode.Parse(request)!.AsObject();
        merged["auth"] = JsonNode.Parse(body.GetProperty("auth").GetRawText());
        return new RememberedRegistration(JsonDocument.Parse(merged.ToJsonString()).RootElement, session.PasswordHash, session.RegisteredUserId);
    }

    /// <summary>The user a finished registration session made, when a request replays it (a retry after a lost answer).</summary>
    public async Task<string?> RegisteredUserOfAsync(JsonElement body, CancellationToken ct) =>
        body.OptionalObject("auth")?.OptionalString("session") is { } sessionId
            && await db.ReadAsync(s => sessions.GetAsync(s, sessionId), ct) is { RegisteredUserId: { } userId } session
            && session.CreatedTs + config.Auth.UiaSessionLifetimeMs >= clock.GetUtcNow().ToUnixTimeMilliseconds()
            ? userId
            : null;

    /// <summary>Closes a finished registration session, remembering the user it made until it expires.</summary>
    public async Task FinishRegistrationAsync(DbSession s, UiaResult result, string userId)
    {
        await sessions.SetRegisteredUserAsync(s, result.SessionId, userId);
        await ConsumeAsync(s, result);
    }

    /// <summary>Closes a finished session inside the operation's transaction, consuming its registration token use and email validation.</summary>
    public async Task FinishAsync(DbSession s, UiaResult result)
    {
        await sessions.DeleteAsync(s, result.SessionId);
        await ConsumeAsync(s, result);
    }

    private async Task ConsumeAsync(DbSession s, UiaResult result)
    {
        if (result.Threepid is not null)
            await emailValidation.ConsumeAsync(s, result.Threepid.ValidationSessionId);
        if (result.RegistrationToken is not null)
            await registrationTokens.CompleteAsync(s, result.RegistrationToken);
    }

    /// <summary>Forgets expired sessions and gives back the registration token uses they held.</summary>
    public Task ExpireSessionsAsync(CancellationToken ct) => db.WriteAsync(async s =>
    {
        var cutoff = clock.GetUtcNow().ToUnixTimeMilliseconds() - config.Auth.UiaSessionLifetimeMs;
        foreach (var expired in await sessions.ListExpiredAsync(s, cutoff))
        {
            await sessions.DeleteAsync(s, expired.SessionId);
            if (expired.RegistrationToken is not null)
                await registrationTokens.ReleaseAsync(s, expired.RegistrationToken);
        }
    }, ct);

    private async Task<(string Errcode, string Error)?> RunStageAsync(string type, JsonElement auth, UserId? user, string? clientIp, long now,
        CancellationToken ct)
    {
        switch (type)
        {
            case AuthTypes.Dummy:
                return null;
            case AuthTypes.Password:
            {
                var claimed = LoginIdentifier.UserFromAuth(auth, config.ServerName);
                if (user is null)
                    return ("M_FORBIDDEN", "Invalid username or password.");
                // Proving to be someone else is no answer to "prove you are you" (403, as Synapse).
                if (claimed != user.Value.Value)
                    throw MatrixException.Forbidden("The user authenticated is not the user making the request.");
                limiter.Check("uia-password", user.Value.Value, config.RateLimits.Login);
                var password = auth.OptionalString("password") ?? throw MatrixException.MissingParam("password");
                return await passwords.VerifyAsync(user.Value, password, ct) ? null : ("M_FORBIDDEN", "Invalid username or password.");
            }
            case AuthTypes.RegistrationToken:
            {
                var token = auth.OptionalString("token") ?? throw MatrixException.MissingParam("token");
                var reserved = token.Length <= 64 && await db.WriteAsync(s => registrationTokens.ReserveAsync(s, token, now), ct);
                return reserved ? null : ("M_FORBIDDEN", "Invalid registration token.");
            }
            case AuthTypes.Recaptcha:
            {
                var response = auth.OptionalString("response") ?? throw MatrixException.MissingParam("response");
                return await recaptcha.VerifyAsync(response, clientIp, ct) ? null : ("M_UNAUTHORIZED", "Captcha verification failed.");
            }
            case AuthTypes.Sso:
                return ("M_FORBIDDEN", "Single sign-on has not been completed for this session: complete it on the fallback page first.");
            default:
                return ("M_UNRECOGNIZED", $"Authentication type {type} is not supported.");
        }
    }

    private static string RequestWithout(JsonElement body, params string[] fields)
    {
        var copy = JsonNode.Parse(body.GetRawText())!.AsObject();
        foreach (var field in fields)
            copy.Remove(field);
        return copy.ToJsonString();
    }

    /// <summary>
    /// <c>m.login.email.identity</c>: <c>threepid_creds</c> name a session this server validated (the stage is only offered
    /// with <c>email.enabled</c>). A session not (yet) validated leaves the stage open, so the client can retry.
    /// </summary>
    private async Task<ProvedThreepid> ProveEmailAsync(JsonElement auth, Email.ValidationPurpose purpose, CancellationToken ct)
    {
        var creds = auth.OptionalObject("threepid_creds") ?? auth.OptionalObject("threepidCreds") ?? throw MatrixException.MissingParam("threepid_creds");
        var sid = creds.RequiredString("sid");
        var clientSecret = creds.RequiredString("client_secret");
        var proved = await emailValidation.ValidatedAsync(sid, clientSecret, purpose, ct);
        return new ProvedThreepid(proved.Medium, proved.Address, proved.ValidatedTs, sid);
    }

    private static MatrixException UnknownSession() => new(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session.");

    private UiaRequiredException Required(string sessionId, IReadOnlyList<string[]> flows, List<string> completed, string? errcode, string? error)
    {
        var parameters = new JsonObject();
        if (flows.Any(flow => flow.Contains(AuthTypes.Recaptcha)))
            parameters[AuthTypes.Recaptcha] = recaptcha.Params;
        var body = new JsonObject
        {
            ["flows"] = new JsonArray(flows.Select(flow => (JsonNode)new JsonObject
            {
                ["stages"] = new JsonArray(flow.Select(stage => (JsonNode)JsonValue.Create(stage)!).ToArray()),
            }).ToArray()),
            ["params"] = parameters,
            ["session"] = sessionId,
            ["completed"] = new JsonArray(completed.Select(stage => (JsonNode)JsonValue.Create(stage)!).ToArray()),
        };
        return new UiaRequiredException(body, errcode, error);
    }
}
