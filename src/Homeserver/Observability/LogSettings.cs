using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Observability;

/// <summary>
/// The <c>logging</c> settings that decide, for every entry, whether it is written and how: read on each entry, so a
/// reload (SIGHUP) changes them in place.
/// </summary>
public sealed class LogSettings
{
    public const string AccessLogCategory = "Matrix.Homeserver.AccessLog";

    private volatile Snapshot _current;

    private sealed record Snapshot(LogLevel Level, bool Json, bool AccessLog);

    public LogSettings(LoggingConfig config) => _current = Read(config);

    public bool Json => _current.Json;
    public bool AccessLog => _current.AccessLog;

    public void Apply(LoggingConfig config) => _current = Read(config);

    public bool IsEnabled(string? category, LogLevel level)
    {
        var current = _current;
        if (category is null)
            return level >= current.Level;
        if (category == AccessLogCategory)
            return current.AccessLog;
        // Start-up and shutdown lines ("Now listening on", what was loaded, "Application is shutting down") whatever the level.
        if (category is "Microsoft.Hosting.Lifetime" or Hosting.StartupReport.Category)
            return level >= LogLevel.Information;
        // ASP.NET Core logs request URLs at Information, and a URL can carry an access_token query parameter.
        if (category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal))
            return level >= LogLevel.Warning && level >= current.Level;
        return level >= current.Level;
    }

    private static Snapshot Read(LoggingConfig config) =>
        new(Enum.Parse<LogLevel>(config.Level, ignoreCase: true), config.Format == "json", config.AccessLog);
}
