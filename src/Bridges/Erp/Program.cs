using Matrix.AppServices.Sdk;
using Matrix.Bridges.Erp;

// The ERP hookup bridge: ErpBridge --config erp-bridge.yaml [--generate-registration]
//   --generate-registration  write the registration file the homeserver must list, and exit
// Otherwise it serves the application-service API, the webhooks (POST /hooks/{id} and /webhook/{token} on
// webhooks.bind_address:port), polls the feeds and delivers the outbox, until stopped (Ctrl+C / SIGTERM).
var (config, exitCode) = BridgeCommandLine.Prepare<ErpBridgeConfig>(args, "erp-bridge.yaml");
if (config is null)
    return exitCode;

await using var runtime = BridgeRuntime.Create(config);
using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(config.Delivery.TimeoutSeconds) };
var outbox = new Outbox(Path.Combine(config.AppService.DataDir, "outbox"));
var bridge = new ErpBridge(config, runtime.AppService, outbox, TimeProvider.System, http);
bridge.Problem += problem => Console.Error.WriteLine($"{DateTimeOffset.UtcNow:u} {problem}");
using var wake = new SemaphoreSlim(0);
bridge.Queued += () => wake.Release();
using var stop = new CancellationTokenSource();
using var shutdown = BridgeRuntime.CancelOnShutdown(stop);

await runtime.StartAsync(stop.Token);
try
{
    await bridge.StartAsync(stop.Token);
}
catch (Exception e) when (e is MatrixRequestException or HttpRequestException)
{
    Console.Error.WriteLine($"could not set up the bridge's users and rooms: {e.Message}");
    return 1;
}
await using var webhooks = await WebhookServer.StartAsync(bridge, config.Webhooks, stop.Token);
Console.WriteLine($"ERP bridge running: webhooks on {config.Webhooks.BindAddress}:{config.Webhooks.Port}, {outbox.Count} deliveries waiting");

try
{
    while (!stop.IsCancellationRequested)
    {
        await bridge.PollFeedsAsync(stop.Token);
        await bridge.DeliverDueAsync(stop.Token);
        await wake.WaitAsync(TimeSpan.FromSeconds(config.Delivery.TickSeconds), stop.Token);
    }
}
catch (OperationCanceledException)
{
}
await webhooks.StopAsync();
return 0;
