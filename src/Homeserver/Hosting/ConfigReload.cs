using System.Text.Json;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Observability;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// SIGHUP: reads the config file again and applies, in place, what can change while the server runs: logging (level,
/// format, access log) and rate limits. Every other change waits for a restart, and the log says which sections
/// changed. An invalid file changes nothing.
/// </summary>
public sealed class ConfigReload(HomeserverConfig config, LogSettings logSettings, ILogger<ConfigReload> logger)
{
    private static readonly HashSet<string> Reloadable = [nameof(HomeserverConfig.Logging), nameof(HomeserverConfig.RateLimits)];

    private readonly Lock _lock = new();

    public void Reload(string path)
    {
        lock (_lock)
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
            config.Logging = fresh.Logging;
            config.RateLimits = fresh.RateLimits;
            logSettings.Apply(fresh.Logging);
            logger.LogWarning("Reloaded {Path}: logging (level {Level}, format {Format}, access log {AccessLog}) and rate limits{Restart}",
                path, fresh.Logging.Level, fresh.Logging.Format, fresh.Logging.AccessLog ? "on" : "off",
                needRestart.Count == 0 ? "" : $"; changes to {string.Join(", ", needRestart)} take effect on restart");
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
