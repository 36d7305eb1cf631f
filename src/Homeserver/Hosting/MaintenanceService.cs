using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// Periodic clean-up of expired short-lived records (UIA sessions, login and OpenID tokens, email validation sessions, old federation and
/// send-to-device transaction IDs, media IDs never uploaded into, stale URL previews, month-old notifications).
/// </summary>
public sealed class MaintenanceService(
    UserInteractiveAuth uia, Database db, TokenStore tokens, ThreepidStore threepids, Media.MediaRepository media, Media.MediaStore mediaStore, Push.PushActionStore pushActions,
    HomeserverConfig config, Observability.ServerMetrics metrics, TimeProvider clock, ILogger<MaintenanceService> logger)
    : PeriodicCleanup(metrics, clock, logger)
{
    protected override string Job => "maintenance";

    protected override async Task RunPassAsync(CancellationToken stoppingToken)
    {
        await uia.ExpireSessionsAsync(stoppingToken);
        var now = Clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(async s =>
        {
            await tokens.DeleteExpiredLoginTokensAsync(s, now);
            await s.ExecuteAsync("DELETE FROM openid_tokens WHERE expires_ts <= @now", new { now });
            await threepids.DeleteExpiredSessionsAsync(s, now);
            // A retried transaction comes back within minutes; a day of memory is plenty.
            var before = now - (long)TimeSpan.FromDays(1).TotalMilliseconds;
            await s.ExecuteAsync("DELETE FROM federation_inbound_txns WHERE received_ts <= @before", new { before });
            await s.ExecuteAsync("DELETE FROM to_device_txns WHERE created_ts <= @before", new { before });
            await mediaStore.DeleteStalePreviewsAsync(s, now - config.Media.UrlPreview.CacheMs);
            // Notifications are listed (GET /notifications) and counted for a month, as Synapse keeps them.
            await pushActions.DeleteOlderThanAsync(s, now - (long)TimeSpan.FromDays(30).TotalMilliseconds);
        }, stoppingToken);
        await media.ExpireUnusedAsync(stoppingToken);
    }
}
