namespace Matrix.AppServices.Sdk;

/// <summary>
/// What every bridge's command line shares: <c>--config &lt;file&gt;</c> (a default name otherwise) and
/// <c>--generate-registration</c>, which writes the registration file the homeserver must list and ends the process,
/// and <c>--help</c> (or <c>-h</c>), which prints the bridge's usage and ends it.
/// </summary>
public static class BridgeCommandLine
{
    public static string? Option(string[] args, string name) =>
        Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

    /// <summary>
    /// The bridge's config, or null with the exit code to end with: 2 for a config error (printed), 0 once the
    /// registration or the usage is written.
    /// </summary>
    public static (T? Config, int ExitCode) Prepare<T>(string[] args, string defaultConfigPath, string? usage = null) where T : BridgeConfig, new()
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine(usage ?? $"usage: --config <file> (default {defaultConfigPath}) [--generate-registration]");
            return (null, 0);
        }
        T config;
        try
        {
            config = BridgeConfig.Load<T>(Option(args, "--config") ?? defaultConfigPath);
        }
        catch (BridgeConfigException e)
        {
            Console.Error.WriteLine($"config error: {e.Message}");
            return (null, 2);
        }
        if (!args.Contains("--generate-registration"))
            return (config, 0);
        BridgeRuntime.WriteRegistration(config);
        Console.WriteLine($"wrote {config.AppService.Registration}: add it to the homeserver's app_service_config_files");
        return (null, 0);
    }
}
