using System.Text.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Observability;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// SIGHUP: reads the config file again and applies, in place, what can change while the server runs: logging (level,
/// format, access log), rate limits, the application services (the files of <c>app_service_config_files</c>, read
/// again) and the TLS listeners' certificates (their files, read again). Every other change waits for a restart, and
/// the log says which sections changed. An invalid file changes nothing.
/// </summary>
public sealed class ConfigReload(
    HomeserverConfig config, LogSettings logSettings, ApplicationServices.AppServiceRegistry appServices,
    ApplicationServices.AppServiceSender appServiceSender, TlsCertificates certificates, ILogger<ConfigReload> logger)
{
    private static readonly HashSet<string> Reloadable =
        [nameof(HomeserverConfig.Logging), nameof(HomeserverConfig.RateLimits), nameof(HomeserverConfig.AppServiceConfigFiles)];

    private readonly SemaphoreSlim _one = new(1, 1);

    public async Task ReloadAsync(string path)
    {
        await _one.WaitAsync();
        try
        {
            HomeserverConfig fresh;
            try
            {
                fresh = ConfigLoader.LoadFile(path);
            }
            catch (ConfigException e)
            {
                logger.LogError("Reload: {Path} is invalid, nothing was changed: {Error}", path, e.Message);
                return;
            }
            var needRestart = ChangedSections(config, fresh).Where(section => !Reloadable.Contains(section)).Select(SnakeCase).ToList();
            // The loader checked the registration files; one changed since fails here, before anything is applied.
            try
            {
                appServices.Reload(fresh);
            }
            catch (AppServices.Registration.RegistrationException e)
            {
                logger.LogError("Reload: {Path} is invalid, nothing was changed: {Error}", path, e.Message);
                return;
            }
            config.AppServiceConfigFiles = fresh.AppServiceConfigFiles;
            config.Logging = fresh.Logging;
            config.RateLimits = fresh.RateLimits;
            logSettings.Apply(fresh.Logging);
            await appServiceSender.CreateOwnUsersAsync(CancellationToken.None);
            foreach (var error in certificates.Reload())
                logger.LogError("Reload: a TLS certificate could not be read, the old one stays: {Error}", error);
            logger.LogWarning("Reloaded {Path}: logging (level {Level}, format {Format}, access log {AccessLog}), rate limits, " +
                "application services ({AppServices}) and TLS certificates{Restart}",
                path, fresh.Logging.Level, fresh.Logging.Format, fresh.Logging.AccessLog ? "on" : "off",
                string.Join(", ", appServices.All.Select(a => a.Id)),
                needRestart.Count == 0 ? "" : $"; changes to {string.Join(", ", needRestart)} take effect on restart");
        }
        catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException)
        {
            logger.LogError("Reload: the application services' own users could not be created (database: {Error}); retry with another SIGHUP", e.Message);
        }
        finally
        {
            _one.Release();
        }
    }

    /// <summary>The top-level sections whose values differ (compared as JSON, so nested lists and maps count).</summary>
    private static IEnumerable<string> ChangedSections(HomeserverConfig running, HomeserverConfig fresh) =>
        typeof(HomeserverConfig).GetProperties()
            .Where(property => property.CanWrite)
            .Where(property => JsonSerializer.Serialize(property.GetValue(running)) != JsonSerializer.Serialize(property.GetValue(fresh)))
            .Select(property => property.Name);

    private static string SnakeCase(string name) => JsonNamingPolicy.SnakeCaseLower.ConvertName(name);
}
