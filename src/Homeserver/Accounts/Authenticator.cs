using System.Collections.Concurrent;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>Who made a request: the user and device an access token belongs to.</summary>
public sealed record Requester(UserId UserId, string DeviceId, bool IsAdmin, string TokenHash);

/// <summary>Resolves access tokens (Authorization: Bearer, or the access_token query parameter the spec still requires).</summary>
public sealed class Authenticator(
    Database db, TokenStore tokens, UserStore users, DeviceStore devices, RateLimiter limiter, HomeserverConfig config, TimeProvider clock)
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
        var tokenHash = Secrets.Hash(token);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var (row, user) = await db.ReadAsync(async s =>
        {
            var row = await tokens.GetAccessTokenAsync(s, tokenHash);
            return (row, row is null ? null : await users.GetAsync(s, row.UserId));
        }, ct);
        if (row is null || user is null || user.Deactivated != 0)
            throw MatrixException.UnknownToken(softLogout: false);
        if (row.ExpiresTs is { } expires && expires <= now)
            throw MatrixException.UnknownToken(softLogout: true);

        limiter.Check("client", row.UserId, config.RateLimits.ClientRequests);
        if (row.Used == 0 && row.RefreshTokenHash is not null)
            // The first use of a refreshed access token retires the refresh token it replaced.
            await db.WriteAsync(async s =>
            {
                await tokens.RevokePredecessorAsync(s, row.RefreshTokenHash);
                await tokens.MarkAccessTokenUsedAsync(s, tokenHash);
            }, ct);
        await RecordLastSeenAsync(row, context, now, ct);

        UserId.TryParse(row.UserId, out var userId);
        var requester = new Requester(userId, row.DeviceId, user.IsAdmin != 0, tokenHash);
        context.Items[typeof(Requester)] = requester;
        return requester;
    }

    private async Task RecordLastSeenAsync(AccessTokenRow row, HttpContext context, long now, CancellationToken ct)
    {
        var key = (row.UserId, row.DeviceId);
        if (_lastSeenWritten.TryGetValue(key, out var written) && now - written < LastSeenInterval.TotalMilliseconds)
            return;
        _lastSeenWritten[key] = now;
        var ip = context.Connection.RemoteIpAddress?.ToString();
        await db.WriteAsync(s => devices.UpdateLastSeenAsync(s, row.UserId, row.DeviceId, ip, now), ct);
    }
}
