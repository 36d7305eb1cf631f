using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Ldap;
using Matrix.SpecTests.Harness;

// Directory-sync benchmark: a private slapd seeded with --users people in --groups groups (about one group in ten
// nested in another), our homeserver on a fresh database, and the LDAP bridge's full reconciliation timed: reading
// the directory, the first run (creating every user, room and membership), a second full run that finds nothing to do,
// and a periodic run that sees the directory's fingerprint unchanged and skips.
// Usage: dotnet run -c Release --project bench/LdapSync [-- --users 10000 --groups 500 --engine sqlite|postgres]
//        (--smoke: 40 users in 4 groups, as the test suite runs it so the benchmark cannot rot)
// Needs slapd and ldap-utils (the test command installs them); postgres needs HS_TEST_POSTGRES.
var users = 10_000;
var groups = 500;
var engine = "sqlite";
for (var i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--users": users = int.Parse(args[++i]); break;
        case "--groups": groups = int.Parse(args[++i]); break;
        case "--engine": engine = args[++i]; break;
        case "--smoke": (users, groups) = (40, 4); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
Console.WriteLine($"directory: {users:N0} people in {groups:N0} groups; homeserver database: {engine}");

var dir = Directory.CreateTempSubdirectory("bench-ldapsync-").FullName;
await using var ldap = await TestLdapServer.StartAsync();
var seeding = Stopwatch.StartNew();
await ldap.ModifyAsync(SeedLdif(users, groups), add: true);
Console.WriteLine($"seeded the directory in {seeding.Elapsed.TotalSeconds:F1} s");

await using var database = await TestDatabase.CreateAsync(engine);
var registration = Path.Combine(dir, "registration.yaml");
await using var server = new HomeserverProcess(database.Yaml, $"app_service_config_files:\n  - {registration}\n");
var configPath = Path.Combine(dir, "bridge.yaml");
var mappings = string.Concat(Enumerable.Range(0, groups).Select(g =>
    $"  - {{ group: \"cn=bench{g},ou=bench,{TestLdapServer.BaseDn}\", alias: bench{g}, power_level: {(g % 10 == 0 ? 50 : 0)} }}\n"));
await File.WriteAllTextAsync(configPath, $"""
    homeserver: {"{"} url: "{server.BaseUrl}", server_name: "{server.ServerName}" {"}"}
    appservice: {"{"} id: ldap-bench, port: 0, registration: registration.yaml, data_dir: ./data, sender_localpart: ldapbench {"}"}
    directory:
      uri: {ldap.Uri}
      bind_dn: {TestLdapServer.ReaderDn}
      bind_password: {TestLdapServer.ReaderPassword}
      user_base_dn: ou=bench,{TestLdapServer.BaseDn}
      group_base_dn: ou=bench,{TestLdapServer.BaseDn}
      timeout_ms: 60000
    groups:
    {mappings}
    """);
var config = BridgeConfig.Load<LdapSyncConfig>(configPath);
BridgeRuntime.WriteRegistration(config);
await server.StartAsync();
await using var bridge = BridgeRuntime.Create(config);
var reader = new DirectoryReader(config.Directory);
var reconciler = new Reconciler(config, bridge.AppService, reader);

var read = Stopwatch.StartNew();
var snapshot = reader.Read();
read.Stop();
var first = Stopwatch.StartNew();
var firstReport = await reconciler.RunAsync(dryRun: false, CancellationToken.None);
first.Stop();
var second = Stopwatch.StartNew();
var secondReport = await reconciler.RunAsync(dryRun: false, CancellationToken.None);
second.Stop();
var periodic = Stopwatch.StartNew();
var periodicReport = await reconciler.RunIfChangedAsync(CancellationToken.None);
periodic.Stop();

Console.WriteLine();
Console.WriteLine($"{"step",-34} {"seconds",9} {"changes",9} {"errors",7}");
Console.WriteLine($"{"read the directory (paged)",-34} {read.Elapsed.TotalSeconds,9:F2} {snapshot.PeopleByDn.Count,9} {0,7}");
Console.WriteLine($"{"first full sync",-34} {first.Elapsed.TotalSeconds,9:F2} {firstReport.Actions.Count,9} {firstReport.Errors.Count,7}");
Console.WriteLine($"{"second sync (no directory change)",-34} {second.Elapsed.TotalSeconds,9:F2} {secondReport.Actions.Count,9} {secondReport.Errors.Count,7}");
Console.WriteLine($"{"periodic run, unchanged (skipped)",-34} {periodic.Elapsed.TotalSeconds,9:F2} {periodicReport.Actions.Count,9} {periodicReport.Errors.Count,7}");
Console.WriteLine();
Console.WriteLine(firstReport.Summary());
foreach (var error in firstReport.Errors.Concat(secondReport.Errors).Take(5))
    Console.WriteLine($"error: {error}");
Directory.Delete(dir, recursive: true);
return firstReport.Errors.Count + secondReport.Errors.Count == 0 && secondReport.Actions.Count == 0 && periodicReport.Skipped ? 0 : 1;

// People bench0..N-1, each in group (i mod G); every tenth group also contains the next group.
static string SeedLdif(int users, int groups)
{
    var ldif = new StringBuilder($"dn: ou=bench,{TestLdapServer.BaseDn}\nobjectClass: organizationalUnit\nou: bench\n\n");
    for (var u = 0; u < users; u++)
        ldif.Append($"dn: uid=bench{u},ou=bench,{TestLdapServer.BaseDn}\nobjectClass: inetOrgPerson\nuid: bench{u}\ncn: Bench User {u}\nsn: User\n\n");
    for (var g = 0; g < groups; g++)
    {
        ldif.Append($"dn: cn=bench{g},ou=bench,{TestLdapServer.BaseDn}\nobjectClass: groupOfNames\ncn: bench{g}\n");
        for (var u = g; u < users; u += groups)
            ldif.Append($"member: uid=bench{u},ou=bench,{TestLdapServer.BaseDn}\n");
        if (g % 10 == 0 && g + 1 < groups)
            ldif.Append($"member: cn=bench{g + 1},ou=bench,{TestLdapServer.BaseDn}\n");
        if (users <= g)
            ldif.Append($"member: uid=bench0,ou=bench,{TestLdapServer.BaseDn}\n");
        ldif.Append('\n');
    }
    return ldif.ToString();
}
