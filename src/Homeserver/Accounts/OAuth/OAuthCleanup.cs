using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Removes expired authorisation requests, codes, device codes and browser sessions, and clients that signed nobody in
/// within a day of registering.
/// </summary>
public sealed class OAuthCleanup(
    Database db, OAuthGrantStore grants, OAuthBrowserSessionStore browserSessions, OAuthClientStore clients, Observability.ServerMetrics metrics,
    TimeProvider clock, ILogger<OAuthCleanup> logger) : Hosting.PeriodicCleanup(metrics, clock, logger)
{
    private static readonly TimeSpan UnusedClientLifetime = TimeSpan.FromDays(1);

    protected override string Job => "oauth_cleanup";

    protected override async Task RunPassAsync(CancellationToken stoppingToken)
    {
        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(async s =>
        {
            await grants.DeleteExpiredAsync(s, now);
            await browserSessions.DeleteExpiredAsync(s, now);
            await clients.DeleteUnusedAsync(s, now - (long)UnusedClientLifetime.TotalMilliseconds);
        }, stoppingToken);
    }
}
