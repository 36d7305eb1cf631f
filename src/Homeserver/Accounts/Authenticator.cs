using System.Collections.Concurrent;
using Matrix.AppServices.Registration;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.ApplicationServices;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Who made a request: the user and device an access token belongs to, or the user (and device) an application
/// service acts as. An application service acting without a device has the empty device ID.
/// </summary>
public sealed record Requester(UserId UserId, string DeviceId, bool IsAdmin, string TokenHash, AppServiceRegistration? AppService = null,
    bool IsSuspended = false, bool IsGuest = false, bool IsShadowBanned = false)
{
    /// <summary>
    /// What a shadow-banned user is told a send made (Synapse's answer): an event ID of no event, so their client shows
    /// the message as sent while nobody receives it.
    /// </summary>
    public static string FakeEventId() => "$" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))
        .TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Spec (account suspension): what a suspended account may not do answers 403 <c>M_USER_SUSPENDED</c>.</summary>
    public void EnsureNotSuspended()
    {
        if (IsSuspended)
            throw new MatrixException(403, "M_USER_SUSPENDED", "Your account is suspended.");
    }
}

/// <summary>Resolves access tokens (Authorization: Bearer, or the access_token query parameter the spec still requires).</summary>
public sealed class Authenticator(
    Database db, TokenStore tokens, AccessTokenCache tokenCache, UserStore users, DeviceStore devices, RateLimiter limiter,
    AppServiceRegistry appServices, HomeserverConfig config, TimeProvider clock)
{
    private static readonly TimeSpan LastSeenInterval = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<(string, string), long> _lastSeenWritten = new();

    public static string? ExtractToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.Length > 0)
            return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        var query = request.Query["access_token"];
        return query.Count > 0 ? query[0] : null;
    }

    /// <summary>
    /// The application service whose as_token the request carries, without identity assertion: for its
    /// <c>m.login.application_service</c> registration and login, where the user does not exist yet or is named in
    /// the body (frameworks send their usual <c>user_id</c> parameter there too).
    /// </summary>
    public AppServiceRegistration AppServiceOf(HttpContext context, string action) =>
        ExtractToken(context.Request) is not { Length: > 0 } token ? throw MatrixException.MissingToken()
        : appServices.ByAsToken(token) ?? throw MatrixException.Forbidden($"Only an application service can {action} with m.login.application_service.");

    public async Task<Requester> AuthenticateAsync(HttpContext context) =>
        await TryAuthenticateAsync(context) ?? throw MatrixException.MissingToken();

    /// <summary>The requester, or null when the request carries no token; an invalid token is always an error.</summary>
    public async Task<Requester?> TryAuthenticateAsync(HttpContext context)
    {
        if (context.Items.TryGetValue(typeof(Requester), out var cached))
            return (Requester)cached!;
        var token = ExtractToken(context.Request);
        if (string.IsNullOrEmpty(token))
            return null;

        var ct = context.RequestAborted;
        if (appServices.ByAsToken(token) is { } appService)
        {
            return Remember(context, await AppServiceRequesterAsync(context, appService, ct));
        }
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if ((tokenCache.GetByToken(token) ?? await ReadTokenAsync(Secrets.Hash(token), ct)) is not { User.Deactivated: 0 } entry)
            throw MatrixException.UnknownToken(softLogout: false);
        var (tokenHash, row, user) = (entry.TokenHash, entry.Token, entry.User);
        if (row.ExpiresTs is { } expires && expires <= now)
            throw MatrixException.UnknownToken(softLogout: true);
        EnsureNotLocked(user, context);
        if (user.IsGuest != 0 && !GuestAccess.Allows(context))
            throw GuestAccess.Forbidden();

        if (user.RequestLimit(config.RateLimits.ClientRequests) is { } limit)
            limiter.Check("client", row.UserId, limit);
        if (row.Used == 0 && row.RefreshTokenHash is not null)
            // The first use of a refreshed access token retires the refresh token it replaced.
            await db.WriteAsync(async s =>
            {
                await tokens.RevokePredecessorAsync(s, row.RefreshTokenHash);
                await tokens.MarkAccessTokenUsedAsync(s, tokenHash);
            }, ct);
        await RecordLastSeenAsync(row, context, now, ct);

        if (entry.Requester is null)
        {
            UserId.TryParse(row.UserId, out var userId);
            entry.Requester = new Requester(userId, row.DeviceId, user.IsAdmin != 0, tokenHash, IsSuspended: user.Suspended != 0,
                IsGuest: user.IsGuest != 0, IsShadowBanned: user.ShadowBanned != 0);
        }
        return Remember(context, entry.Requester);
    }

    /// <summary>Keeps the requester for the rest of the request, and names its user in the request's log entries.</summary>
    private static Requester Remember(HttpContext context, Requester requester)
    {
        context.Items[typeof(Requester)] = requester;
        if (Observability.RequestLogContext.Current is { } log)
            log.UserId = requester.UserId.Value;
        return requester;
    }

    private async Task<AccessTokenCache.Entry?> ReadTokenAsync(string tokenHash, CancellationToken ct)
    {
        var generation = tokenCache.Generation;
        return await db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, tokenHash), ct) is var (token, user)
            ? tokenCache.Store(tokenHash, generation, token, user)
            : null;
    }

    /// <summary>
    /// Identity assertion: the application service acts as <c>user_id</c> (default: its sender), which must be in its
    /// user namespaces and registered, optionally with one of that user's devices (<c>device_id</c>, v1.17).
    /// </summary>
    private async Task<Requester> AppServiceRequesterAsync(HttpContext context, AppServiceRegistration appService, CancellationToken ct)
    {
        var userIdText = context.Query("user_id") is { Length: > 0 } asserted ? asserted : appService.SenderUserId;
        if (!UserId.TryParse(userIdText, out var userId) || userId.Server.Value != config.ServerName || !appService.IsInterestedInUser(userIdText))
            throw MatrixException.Forbidden("The application service cannot act as this user.");
        var deviceId = context.Query("device_id");
        var (user, deviceKnown) = await db.ReadAsync(async s => (await users.GetAsync(s, userIdText),
            deviceId.Length == 0 || await devices.GetAsync(s, userIdText, deviceId) is not null), ct);
        if (user is null || user.Deactivated != 0)
            throw MatrixException.Forbidden("The application service has not registered this user.");
        if (!deviceKnown)
            throw new MatrixException(400, "M_UNKNOWN_DEVICE", "The device does not belong to the user.");
        EnsureNotLocked(user, context);
        if (appService.RateLimited)
            limiter.Check("client", userIdText, config.RateLimits.ClientRequests);
        return new Requester(userId, deviceId, user.IsAdmin != 0, Secrets.Hash(appService.AsToken), appService, user.Suspended != 0);
    }

    /// <summary>Spec (account locking): a locked account may only log out; its sessions stay (soft logout) for when it is unlocked.</summary>
    private static void EnsureNotLocked(UserRow user, HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        if (user.Locked != 0 && !path.EndsWith("/logout", StringComparison.Ordinal) && !path.EndsWith("/logout/all", StringComparison.Ordinal))
            throw LockedError();
    }

    public static MatrixException LockedError() =>
        new(401, "M_USER_LOCKED", "This account has been locked.", new System.Text.Json.Nodes.JsonObject { ["soft_logout"] = true });

    private const int MaxUserAgentLength = 512;

    private async Task RecordLastSeenAsync(AccessTokenRow row, HttpContext context, long now, CancellationToken ct)
    {
        var key = (row.UserId, row.DeviceId);
        if (_lastSeenWritten.TryGetValue(key, out var written) && now - written < LastSeenInterval.TotalMilliseconds)
            return;
        _lastSeenWritten[key] = now;
        var ip = context.Connection.RemoteIpAddress?.ToString();
        var userAgent = context.Request.Headers.UserAgent.ToString() is { Length: > 0 } agent ? agent[..Math.Min(agent.Length, MaxUserAgentLength)] : null;
        await db.WriteAsync(s => devices.UpdateLastSeenAsync(s, row.UserId, row.DeviceId, ip, userAgent, now), ct);
    }
}
