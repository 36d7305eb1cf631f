using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Removes expired authorisation requests, codes, device codes and browser sessions, and clients that signed nobody in
/// within a day of registering, once a minute.
/// </summary>
public sealed class OAuthCleanup(
    Database db, OAuthGrantStore grants, OAuthBrowserSessionStore browserSessions, OAuthClientStore clients, TimeProvider clock,
    ILogger<OAuthCleanup> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan UnusedClientLifetime = TimeSpan.FromDays(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                await db.WriteAsync(async s =>
                {
                    await grants.DeleteExpiredAsync(s, now);
                    await browserSessions.DeleteExpiredAsync(s, now);
                    await clients.DeleteUnusedAsync(s, now - (long)UnusedClientLifetime.TotalMilliseconds);
                }, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "OAuth clean-up failed; retrying in {Interval}", Interval);
            }
        }
    }
}
