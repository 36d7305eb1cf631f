using Matrix.AppServices.Sdk;
using Matrix.Bridges.Ldap;

const string usage = """
    LdapBridge: syncs an LDAP/AD directory into users, rooms and spaces.
    usage: LdapBridge [--config ldap-bridge.yaml] [--generate-registration] [--once] [--dry-run]
      --config <file>          the bridge's config (default ldap-bridge.yaml; every key is documented in ldap-bridge.sample.yaml)
      --generate-registration  write the registration file the homeserver must list, and exit
      --once                   one full run now (e.g. from cron), then exit: 0 when every item succeeded, 1 otherwise
      --dry-run                print the plan (users, rooms, what becomes a space) without changing anything
      --help                   print this and exit
    Without --once, a run every sync.interval_seconds, skipped while the directory is unchanged, and a full one every
    sync.full_sync_every runs (and at start).
    """;
var (config, exitCode) = BridgeCommandLine.Prepare<LdapSyncConfig>(args, "ldap-bridge.yaml", usage);
if (config is null)
    return exitCode;

await using var runtime = BridgeRuntime.Create(config);
var reconciler = new Reconciler(config, runtime.AppService, new DirectoryReader(config.Directory));
var dryRun = args.Contains("--dry-run");
using var stop = new CancellationTokenSource();
using var shutdown = BridgeRuntime.CancelOnShutdown(stop);
for (var run = 0; !stop.IsCancellationRequested; run++)
{
    var report = dryRun || run % config.Sync.FullSyncEvery == 0
        ? await reconciler.RunAsync(dryRun, stop.Token)
        : await reconciler.RunIfChangedAsync(stop.Token);
    Console.WriteLine($"{DateTimeOffset.UtcNow:u} {report.Summary()}");
    foreach (var action in report.Actions)
        Console.WriteLine($"  {(dryRun ? "would " : "")}{action}");
    foreach (var error in report.Errors)
        Console.WriteLine($"  error: {error}");
    if (args.Contains("--once"))
        return report.Errors.Count == 0 ? 0 : 1;
    try
    {
        await Task.Delay(TimeSpan.FromSeconds(config.Sync.IntervalSeconds), stop.Token);
    }
    catch (OperationCanceledException)
    {
    }
}
return 0;
