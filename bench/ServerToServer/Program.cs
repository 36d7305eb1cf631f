using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

// Federation between two of our servers on loopback (each on its own fresh database):
//   events/s from one server to the other: messages sent into a room on A, timed until they arrive in a member's
//   long-polling /sync on B, with each message's send-to-arrival delay;
//   a remote join: a user of B joins a room on A whose state holds --members members (made through an application
//   service on A, which registers and joins its users without password hashing).
// Usage: dotnet run -c Release --project bench/ServerToServer [-- --engine sqlite|postgres] [--members 10000] [--messages 2000]
//        (--smoke: a few seconds, as the test suite runs it so the benchmark cannot rot)
var engine = "postgres";
var members = 10_000;
var messages = 2_000;
const int concurrency = 10;
for (var i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--engine": engine = args[++i]; break;
        case "--members": members = int.Parse(args[++i]); break;
        case "--messages": messages = int.Parse(args[++i]); break;
        case "--smoke": (members, messages) = (50, 50); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
const string limits = """
    rate_limits:
      login: { per_second: 100000, burst: 100000 }
      registration: { per_second: 100000, burst: 100000 }
      client_requests: { per_second: 100000, burst: 100000 }

    """;
await using var appService = new FakeAppService();
var registration = Path.Combine(Directory.CreateTempSubdirectory("bench-as-").FullName, "registration.yaml");
await File.WriteAllTextAsync(registration, appService.RegistrationYaml("@bench_.*", "#bench_.*"));
await using var databaseA = await TestDatabase.CreateAsync(engine);
await using var databaseB = await TestDatabase.CreateAsync(engine);
// The harness takes extra configuration as sections separated by blank lines.
await using var a = new HomeserverProcess(databaseA.Yaml,
    $"{FederationFixture.FederationYaml}\n{limits}\napp_service_config_files:\n  - {registration}\n", addressAsServerName: true);
await using var b = new HomeserverProcess(databaseB.Yaml, $"{FederationFixture.FederationYaml}\n{limits}", addressAsServerName: true);
await Task.WhenAll(a.StartAsync(), b.StartAsync());
Console.WriteLine($"servers: ours ({engine}) as {a.ServerName} and {b.ServerName}, plain HTTP on loopback");
var clientA = new MatrixClient(a.BaseUrl, a.ServerName);
var clientB = new MatrixClient(b.BaseUrl, b.ServerName);
const string v3 = "/_matrix/client/v3";

// 1. Events/s from A to B.
var alice = await clientA.RegisterAsync(MatrixClient.UniqueName("alice"));
var bob = await clientB.RegisterAsync(MatrixClient.UniqueName("bob"));
var roomId = await CreatePublicRoomAsync(clientA, alice.AccessToken);
await ExpectAsync(clientB.PostAsync($"{v3}/join/{Uri.EscapeDataString(roomId)}?server_name={a.ServerName}", new { }, bob.AccessToken), "bob's remote join");
var since = (await clientB.GetAsync($"{v3}/sync?timeout=0", bob.AccessToken)).Body!["next_batch"]!.GetValue<string>();
var sentAt = new ConcurrentDictionary<string, long>();
var delays = new ConcurrentBag<double>();
var arrived = 0;
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
var receiving = Task.Run(async () =>
{
    while (Volatile.Read(ref arrived) < messages && !stop.IsCancellationRequested)
    {
        var response = await clientB.GetAsync($"{v3}/sync?timeout=30000&since={Uri.EscapeDataString(since)}", bob.AccessToken);
        var at = Stopwatch.GetTimestamp();
        since = response.Body!["next_batch"]!.GetValue<string>();
        foreach (var ev in response.Body["rooms"]?["join"]?[roomId]?["timeline"]?["events"]?.AsArray() ?? [])
            if (ev?["content"]?["body"]?.GetValue<string>() is { } body && sentAt.TryGetValue(body, out var start))
            {
                delays.Add(Stopwatch.GetElapsedTime(start, at).TotalMilliseconds);
                Interlocked.Increment(ref arrived);
            }
    }
});
var clock = Stopwatch.StartNew();
await Parallel.ForEachAsync(Enumerable.Range(0, messages), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (m, _) =>
{
    var body = $"fed:{m}";
    sentAt[body] = Stopwatch.GetTimestamp();
    await ExpectAsync(clientA.PutAsync($"{v3}/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/t{m}", new { msgtype = "m.text", body }, alice.AccessToken),
        "a send");
});
var sendSeconds = clock.Elapsed.TotalSeconds;
await receiving;
var allSeconds = clock.Elapsed.TotalSeconds;
var sorted = delays.Order().ToArray();
static double Percentile(double[] values, double p) => values.Length == 0 ? double.NaN : values[Math.Min(values.Length - 1, (int)Math.Ceiling(p * values.Length) - 1)];
Console.WriteLine();
Console.WriteLine($"events from A to B: {messages} messages sent into one room at concurrency {concurrency}");
Console.WriteLine($"  sent at {messages / sendSeconds:F0}/s; all arrived in B's /sync after {allSeconds:F1} s: {sorted.Length / allSeconds:F0} events/s across");
Console.WriteLine($"  send-to-arrival on B: p50 {Percentile(sorted, 0.5):F1} ms, p95 {Percentile(sorted, 0.95):F1} ms, p99 {Percentile(sorted, 0.99):F1} ms ({sorted.Length} of {messages} arrived)");

// 2. A remote join of a room whose state holds `members` members.
var bigRoom = await CreatePublicRoomAsync(clientA, alice.AccessToken);
clock.Restart();
await Parallel.ForEachAsync(Enumerable.Range(0, members), new ParallelOptions { MaxDegreeOfParallelism = 20 }, async (i, _) =>
{
    var localpart = $"bench_{i}";
    await ExpectAsync(clientA.PostAsync($"{v3}/register", new { type = "m.login.application_service", username = localpart, inhibit_login = true }, appService.AsToken),
        "an appservice registration");
    await ExpectAsync(clientA.PostAsync($"{v3}/join/{Uri.EscapeDataString(bigRoom)}?user_id=@{localpart}:{a.ServerName}", new { }, appService.AsToken),
        "an appservice user's join");
});
Console.WriteLine();
Console.WriteLine($"remote join: the room on A filled with {members} members in {clock.Elapsed.TotalSeconds:F1} s");
var carol = await clientB.RegisterAsync(MatrixClient.UniqueName("carol"));
clock.Restart();
var join = await clientB.PostAsync($"{v3}/join/{Uri.EscapeDataString(bigRoom)}?server_name={a.ServerName}", new { }, carol.AccessToken);
var joinSeconds = clock.Elapsed.TotalSeconds;
var joined = join.Status == 200
    ? (await clientB.GetAsync($"{v3}/rooms/{Uri.EscapeDataString(bigRoom)}/joined_members", carol.AccessToken)).Body?["joined"]?.AsObject().Count
    : null;
Console.WriteLine(join.Status == 200
    ? $"  a user of B joined it in {joinSeconds:F2} s; B now lists {joined} joined members (expected {members + 2})"
    : $"  the join failed after {joinSeconds:F2} s: {join.Status} {join.Body?.ToJsonString()}");
Console.WriteLine();
Console.WriteLine("json: " + new JsonObject
{
    ["engine"] = engine, ["messages"] = messages, ["send_per_s"] = messages / sendSeconds, ["events_per_s_across"] = sorted.Length / allSeconds,
    ["p50_ms"] = Percentile(sorted, 0.5), ["p95_ms"] = Percentile(sorted, 0.95), ["p99_ms"] = Percentile(sorted, 0.99),
    ["members"] = members, ["remote_join_s"] = join.Status == 200 ? joinSeconds : null, ["joined_members_on_b"] = joined,
}.ToJsonString());
return join.Status == 200 && joined == members + 2 ? 0 : 1;

static async Task<string> CreatePublicRoomAsync(MatrixClient client, string token)
{
    var created = await ExpectAsync(client.PostAsync("/_matrix/client/v3/createRoom", new { preset = "public_chat" }, token), "createRoom");
    return created.Body!["room_id"]!.GetValue<string>();
}

static async Task<MatrixResponse> ExpectAsync(Task<MatrixResponse> request, string what)
{
    var response = await request;
    if (response.Status != 200)
        throw new InvalidOperationException($"{what}: {response.Status} {response.Body?.ToJsonString()}");
    return response;
}
