using Matrix.AppServices.Sdk;
using Matrix.Bridges.Calendar;

// The calendar bridge: CalendarBridge --config calendar-bridge.yaml [--generate-registration]
//   --generate-registration  write the registration file the homeserver must list, and exit
// Otherwise it serves the application-service API and, every calendar.tick_seconds, syncs due calendars, posts
// reminders and agendas, until stopped (Ctrl+C / SIGTERM).
var (config, exitCode) = BridgeCommandLine.Prepare<CalendarBridgeConfig>(args, "calendar-bridge.yaml");
if (config is null)
    return exitCode;

await using var runtime = BridgeRuntime.Create(config);
using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
var bridge = new CalendarBridge(config, runtime.AppService, new LinkStore(runtime.AppService.State),
    new CredentialVault(config.Calendar.CredentialsKeyFile), TimeProvider.System, http);
bridge.Problem += problem => Console.Error.WriteLine($"{DateTimeOffset.UtcNow:u} {problem}");
using var stop = new CancellationTokenSource();
using var shutdown = BridgeRuntime.CancelOnShutdown(stop);

await runtime.StartAsync(stop.Token);
// Configured rooms it cannot link yet are reported (Problem) and retried; they do not stop the others.
await bridge.ApplyConfiguredLinksAsync(stop.Token);
Console.WriteLine($"calendar bridge running as {runtime.AppService.Bot.UserId}; invite it to a room and say !cal help");
using var timer = new PeriodicTimer(TimeSpan.FromSeconds(config.Calendar.TickSeconds));
try
{
    do
        await bridge.TickAsync(stop.Token);
    while (await timer.WaitForNextTickAsync(stop.Token));
}
catch (OperationCanceledException)
{
}
return 0;
