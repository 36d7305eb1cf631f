using Matrix.AppServices.Registration;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// A bridge process's application-service side, set up the way all our bridges share: the registration file named
/// in the config (written with fresh tokens on first start, and refreshed from the config on later starts with the
/// same tokens), the transaction log and state store in the data folder, and the homeserver-facing endpoints on
/// the configured address. The homeserver must list the registration file in its <c>app_service_config_files</c>.
/// </summary>
public sealed class BridgeRuntime : IAsyncDisposable
{
    private readonly WebApplication _web;

    public AppService AppService { get; }
    public BridgeConfig Config { get; }

    private BridgeRuntime(BridgeConfig config, AppService appService, WebApplication web)
    {
        Config = config;
        AppService = appService;
        _web = web;
    }

    /// <summary>Writes (or refreshes) the registration file the config asks for, for <c>--generate-registration</c>.</summary>
    public static AppServiceRegistration WriteRegistration(BridgeConfig config) =>
        RegistrationGenerator.WriteFile(config.AppService.Registration, config.RegistrationRequest(), config.Homeserver.ServerName);

    /// <summary>
    /// Creates the service; the bridge sets its handlers on <see cref="AppService"/> before <see cref="StartAsync"/>
    /// opens the listener.
    /// </summary>
    public static BridgeRuntime Create(BridgeConfig config)
    {
        var registration = WriteRegistration(config);
        Directory.CreateDirectory(config.AppService.DataDir);
        var appService = new AppService(registration, config.Homeserver.Url,
            new TransactionLog(Path.Combine(config.AppService.DataDir, "transactions.log")),
            new BridgeStateStore(Path.Combine(config.AppService.DataDir, "state.json")));
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://{config.AppService.BindAddress}:{config.AppService.Port}");
        var web = builder.Build();
        appService.Map(web);
        return new BridgeRuntime(config, appService, web);
    }

    /// <summary>
    /// Cancels <paramref name="stop"/> on Ctrl+C and SIGTERM (docker stop, systemd) instead of ending the process, so
    /// the bridge finishes what it is doing and shuts down cleanly. Dispose the result to unregister.
    /// </summary>
    public static IDisposable CancelOnShutdown(CancellationTokenSource stop)
    {
        void Handle(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
        var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Handle);
        var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Handle);
        return new Registrations(interrupt, terminate);
    }

    private sealed class Registrations(params IDisposable[] registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations)
                registration.Dispose();
        }
    }

    /// <summary>Opens the listener for the homeserver (none when <c>appservice.port</c> is 0).</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        if (Config.AppService.Port == 0)
            return;
        await _web.StartAsync(ct);
        _started = true;
    }

    private bool _started;

    public async ValueTask DisposeAsync()
    {
        if (_started)
            await _web.StopAsync();
        await _web.DisposeAsync();
        AppService.Dispose();
    }
}
