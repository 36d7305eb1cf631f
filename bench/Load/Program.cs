using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Matrix.Bench.Load;
using Matrix.SpecTests.Harness;

// The load driver: workloads that talk to a homeserver only through spec endpoints, so the same run measures ours
// (started here on a fresh SQLite or PostgreSQL database) or any other server at a URL.
//   registration and login rate; message throughput into 1/10/100 rooms at concurrency 1/10/100; send-to-sync
//   delivery latency with many clients long-polling; fan-out (everyone long-polling, closed-loop senders) for ours and
//   another server side by side; initial /sync of a user in many rooms and incremental /sync; sliding sync (MSC4186)
//   of a user in many rooms: a room list's first page and an incremental response, and the server's memory per open
//   connection; memory (our server only): RSS after start-up, with the syncing clients, after the throughput run, idle after it all.
// Usage: dotnet run -c Release --project bench/Load [-- --engine sqlite|postgres] [--clients 1000] [--seconds 5]
//        [--url http://other:8008]   (another server: open m.login.dummy registration and generous rate limits)
//        [--only throughput,latency,fanout,sync,sliding]   (some of the workloads; registration always runs, it makes the accounts)
//        [--fanout 10/1/1,100/10/20@20,1000/1/2/1000@10] [--fanout-seconds 10]   (users/rooms/senders[/room size, 10 if not given] per row,
//                                                                 @ messages/s in all for paced senders)
//        [--warm-up-seconds 5]   (each latency and fan-out row first sends as it will for this long, uncounted: a fresh
//                                 server's code is still being compiled; the warm-up sends' answer times are printed)
//        [--compare-url http://synapse:8008 [--compare-pids 123,456]]   (the fan-out rows for another server too, with
//        its processes' CPU and memory when their PIDs are given)
//        [--workers]   (the fan-out rows also against a deployment of several processes, README "Scaling out": the spec
//                       tests' ScaleOutDeployment, a main process and workers of every role on PostgreSQL, Redis and HAProxy;
//                       CPU per message of each process; needs HS_TEST_POSTGRES as the spec tests do)
//        [--sync-workers-only]   (with --workers: only the main process and two sync workers, what replication itself costs)
//        [--server-env NAME=VALUE]   (repeatable: set in our server processes' environment only, e.g. DOTNET_GCgen0size=0x2000000)
//        [--idle-seconds 60]   (how long the server is left idle after the workloads before its RSS is read again)
//        [--server-yaml "caches: { events: 5000 }"]   (repeatable: added to our server's config, e.g. to measure a setting)
//        [--cheap-passwords]   (our server hashes passwords at a low cost, so the accounts of a big run register quickly)
//        (--smoke: a few seconds of each, as the test suite runs it so the driver cannot rot)
var engine = "sqlite";
string? url = null;
var clients = 1000;
var cellSeconds = 5.0;
var registrations = 200;
var latencyMessages = 300;
int[] syncRoomCounts = [100, 1000];
var slidingConnections = 100;
FanoutShape[] fanoutShapes = [new(10, 1, 1), new(20, 10, 10), new(100, 10, 20), new(1000, 100, 20)];
var fanoutSeconds = 10.0;
var warmUpSeconds = 5.0;
string? compareUrl = null;
int[]? comparePids = null;
var workers = false;
var syncWorkersOnly = false;
string[]? only = null;
var cheapPasswords = false;
var idleSeconds = 60;
var serverYaml = "";
for (var i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--engine": engine = args[++i]; break;
        case "--url": url = args[++i].TrimEnd('/'); break;
        case "--clients": clients = int.Parse(args[++i]); break;
        case "--seconds": cellSeconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--only": only = args[++i].Split(','); break;
        case "--fanout": fanoutShapes = args[++i].Split(',').Select(FanoutShape.Parse).ToArray(); break;
        case "--fanout-seconds": fanoutSeconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--warm-up-seconds": warmUpSeconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--compare-url": compareUrl = args[++i].TrimEnd('/'); break;
        case "--cheap-passwords": cheapPasswords = true; break;
        case "--idle-seconds": idleSeconds = int.Parse(args[++i]); break;
        case "--server-yaml": serverYaml += args[++i] + "\n"; break;
        case "--workers": workers = true; break;
        case "--sync-workers-only": syncWorkersOnly = true; break;
        case "--server-env":
            var setting = args[++i].Split('=', 2);
            HomeserverProcess.ServerEnvironment[setting[0]] = setting[1];
            break;
        case "--compare-pids": comparePids = args[++i].Split(',').Select(int.Parse).ToArray(); break;
        case "--smoke":
            (clients, cellSeconds, registrations, latencyMessages, syncRoomCounts, slidingConnections) = (20, 0.3, 10, 20, [5, 10], 5);
            (fanoutShapes, fanoutSeconds, idleSeconds, warmUpSeconds) = ([new(10, 1, 1), new(20, 2, 2)], 1, 1, 0.5);
            break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }

bool Runs(string workload) => only is null || only.Contains(workload);
var results = new JsonObject();
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
TestDatabase? database = null;
HomeserverProcess? server = null;
ScaleOutDeployment? deployment = null;
if (url is null)
{
    database = await TestDatabase.CreateAsync(engine);
    server = new HomeserverProcess(database.Yaml, $$"""
        rate_limits:
          login: { per_second: 100000, burst: 100000 }
          registration: { per_second: 100000, burst: 100000 }
          client_requests: { per_second: 100000, burst: 100000 }

        auth:
          password_hashing:
            ops_limit: {{(cheapPasswords ? 1 : 2)}}
            mem_limit_kib: {{(cheapPasswords ? 8192 : 65536)}}

        {{serverYaml}}
        """, metricsListener: true);
    await server.StartAsync();
    url = server.BaseUrl;
    Console.WriteLine($"server: ours ({engine}), Argon2id " + (cheapPasswords ? "ops_limit 1, mem_limit 8 MiB (--cheap-passwords: registration figures are not the defaults)" : "ops_limit 2, mem_limit 64 MiB (the defaults)"));
    if (HomeserverProcess.ServerEnvironment.Count > 0)
        Console.WriteLine($"server environment: {string.Join(", ", HomeserverProcess.ServerEnvironment.Select(e => $"{e.Key}={e.Value}"))}");
    if (serverYaml.Length > 0)
        Console.WriteLine($"server config added: {serverYaml.ReplaceLineEndings(" ").Trim()}");
    results["rss_after_start_mb"] = server.ResidentBytes() >> 20;
}
else
    Console.WriteLine($"server: {url}");
var ourServer = server is null ? null : new ServerProbe([server.ProcessId], server);
using var http = new LoadClient(url);
var version = await http.SendAsync(HttpMethod.Get, "/_matrix/client/versions", null, null);
Console.WriteLine($"spec versions advertised: {version["versions"]!.AsArray().Count}");
var run = Guid.NewGuid().ToString("N")[..6];
const string password = "load test password";

try
{
    // Registration and login rate.
    var accounts = new ConcurrentBag<Account>();
    var clock = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, registrations), new ParallelOptions { MaxDegreeOfParallelism = 10 },
        async (i, _) => accounts.Add(await http.RegisterAsync($"load{run}r{i}", password)));
    var registrationRate = registrations / clock.Elapsed.TotalSeconds;
    clock.Restart();
    await Parallel.ForEachAsync(accounts.Take(registrations), new ParallelOptions { MaxDegreeOfParallelism = 10 },
        async (a, _) => await http.LoginAsync(a.UserId, password));
    var loginRate = registrations / clock.Elapsed.TotalSeconds;
    Console.WriteLine();
    Console.WriteLine($"registration: {registrationRate:F0}/s, login: {loginRate:F0}/s ({registrations} accounts, concurrency 10)");
    results["registrations_per_s"] = registrationRate;
    results["logins_per_s"] = loginRate;

    if (Runs("throughput"))
    {
        // 1. Message throughput: senders spread over the rooms, each sending as fast as the server answers.
        var senders = accounts.Take(Math.Min(100, registrations)).ToList();
        while (senders.Count < 100)
            senders.Add(await http.RegisterAsync($"load{run}s{senders.Count}", password));
        Console.WriteLine();
        Console.WriteLine($"message throughput (events/s, {cellSeconds:F1} s per cell)");
        Console.WriteLine($"{"rooms",6} {"conc 1",9} {"conc 10",9} {"conc 100",9}" + (server is null ? "" : "   (server CPU per event, µs)"));
        var throughput = new JsonArray();
        foreach (var roomCount in new[] { 1, 10, 100 })
        {
            var rooms = new List<string>();
            for (var r = 0; r < roomCount; r++)
                rooms.Add(await http.CreateRoomAsync(senders[0]));
            var joined = new HashSet<(int, int)>();
            var line = $"{roomCount,6}";
            var cpuLine = "";
            foreach (var concurrency in new[] { 1, 10, 100 })
            {
                List<int> RoomsOf(int sender) => roomCount >= concurrency
                    ? Enumerable.Range(0, roomCount).Where(r => r % concurrency == sender).ToList()
                    : [sender % roomCount];
                for (var s = 1; s < concurrency; s++)
                    foreach (var r in RoomsOf(s))
                        if (joined.Add((s, r)))
                            await http.JoinAsync(senders[s], rooms[r]);
                var sent = 0L;
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(cellSeconds));
                var cpuBefore = server?.CpuTime();
                var cell = Stopwatch.StartNew();
                await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async s =>
                {
                    var mine = RoomsOf(s);
                    for (var n = 0; !stop.IsCancellationRequested; n++)
                    {
                        await http.SendTextAsync(senders[s], rooms[mine[n % mine.Count]], $"throughput {n}");
                        Interlocked.Increment(ref sent);
                    }
                }));
                var rate = sent / cell.Elapsed.TotalSeconds;
                line += $" {rate,9:F0}";
                var result = new JsonObject { ["rooms"] = roomCount, ["concurrency"] = concurrency, ["events_per_s"] = rate };
                if (server is not null && cpuBefore is { } before && sent > 0)
                {
                    var cpuPerEvent = (server.CpuTime() - before).TotalMicroseconds / sent;
                    cpuLine += $" {cpuPerEvent,6:F0}";
                    result["server_cpu_us_per_event"] = cpuPerEvent;
                }
                throughput.Add(result);
            }
            Console.WriteLine(line + (cpuLine.Length > 0 ? "   " + cpuLine : ""));
        }
        results["throughput"] = throughput;
        if (server is not null)
            results["rss_after_throughput_mb"] = server.ResidentBytes() >> 20;
    }

    if (Runs("latency"))
    {
        // 2. Delivery latency: rooms of ten, every member long-polling /sync; messages sent into random rooms at ~20/s.
        var syncers = await UsersAsync(http, accounts, clients, "c");
        var workload = new FanoutWorkload(http, ourServer, TimeSpan.FromSeconds(warmUpSeconds));
        var result = await workload.RunAsync(new FanoutShape(clients, Math.Max(1, clients / FanoutShape.DefaultRoomSize), 1, 20), syncers,
            TimeSpan.FromSeconds(latencyMessages / 20.0));
        Console.WriteLine();
        Console.WriteLine($"send-to-sync latency, {clients} clients long-polling in rooms of 10, {result.Sent} messages at ~20/s:");
        Console.WriteLine($"  p50 {result.DeliveryP50:F1} ms, p95 {result.DeliveryP95:F1} ms, p99 {result.DeliveryP99:F1} ms ({result.Delivered} of {result.Expected} deliveries)");
        // The sends' own answers: a late commit delays all of a message's deliveries at once.
        Console.WriteLine($"  the sends themselves: p50 {result.SendP50:F1} ms, p99 {result.SendP99:F1} ms");
        Console.WriteLine($"  the driver: {DriverLine(result)}");
        results["latency"] = result.ToJson();
        if (result.ServerPeakRssBytes is { } rss)
            results["rss_with_syncing_clients_mb"] = rss >> 20;
    }

    if (Runs("fanout"))
    {
        // 3. Fan-out: every member long-polling, senders in a closed loop; ours and, when given, another server.
        Console.WriteLine();
        Console.WriteLine($"fan-out: every user long-polling /sync (lazy-loading filter, timeline.limit 50), rooms of 10 unless the row says, senders in a closed loop, {fanoutSeconds:F0} s per row");
        Console.WriteLine($"{"server",-8} {"users/rooms/senders",19} {"msgs/s",7} {"send p50/p99 ms",16} {"delivery p50/p95/p99 ms",24} {"delivered",10} {"CPU µs/msg",10} {"KB/msg",7} {"GC ms",6} {"peak RSS",9}  driver");
        var fanout = new JsonArray();
        var targets = new List<(string Name, LoadClient Client, ServerProbe? Probe, List<Account> Accounts)> { ("ours", http, ourServer, accounts.ToList()) };
        if (compareUrl is not null)
            targets.Add(("other", new LoadClient(compareUrl), comparePids is null ? null : new ServerProbe(comparePids), []));
        if (workers)
        {
            deployment = new ScaleOutDeployment { SyncWorkersOnly = syncWorkersOnly };
            await deployment.InitializeAsync();
            var processes = deployment.ProcessIds();
            Console.WriteLine($"workers: {string.Join(", ", processes.Keys)} on {deployment.Balancer.BaseUrl}");
            targets.Add(("workers", new LoadClient(deployment.Balancer.BaseUrl), new ServerProbe(processes.Values.ToList(), named: processes), []));
        }
        foreach (var (name, client, probe, known) in targets)
        {
            var users = await UsersAsync(client, known, fanoutShapes.Max(s => s.Users), "f");
            var workload = new FanoutWorkload(client, probe, TimeSpan.FromSeconds(warmUpSeconds));
            foreach (var shape in fanoutShapes)
            {
                var result = await workload.RunAsync(shape, users, TimeSpan.FromSeconds(fanoutSeconds));
                Console.WriteLine($"{name,-8} {shape,19} {result.MessagesPerSecond,7:F0} {$"{result.SendP50:F0} / {result.SendP99:F0}",16} "
                    + $"{$"{result.DeliveryP50:F0} / {result.DeliveryP95:F0} / {result.DeliveryP99:F0}",24} {$"{100.0 * result.Delivered / Math.Max(1, result.Expected):F1}%" + (result.LimitedTimelines > 0 ? $" ({result.LimitedTimelines} gaps)" : ""),10} "
                    + $"{(result.ServerCpuMicrosecondsPerMessage is { } cpu ? $"{cpu:F0}" : "-"),10} {(result.ServerAllocatedKbPerMessage is { } kb ? $"{kb:F0}" : "-"),7} "
                    + $"{(result.ServerGcPauseMs is { } gc ? $"{gc:F0}" : "-"),6} {(result.ServerPeakRssBytes is { } rss ? $"{rss >> 20} MB" : "-"),9}  {DriverLine(result)}");
                if (result.CpuMicrosecondsPerMessageByProcess.Count > 0)
                    Console.WriteLine($"{"",8} CPU µs/msg by process: "
                        + string.Join(", ", result.CpuMicrosecondsPerMessageByProcess.Select(p => $"{p.Key} {p.Value:F0}")));
                var json = result.ToJson();
                json["server"] = name;
                fanout.Add(json);
            }
        }
        results["fanout"] = fanout;
    }

    if (Runs("sync"))
    {
        // 4. Initial /sync of a user in many rooms, and incremental /sync.
        Console.WriteLine();
        Console.WriteLine("initial /sync");
        var initial = new JsonArray();
        foreach (var roomCount in syncRoomCounts)
        {
            var member = await http.RegisterAsync($"load{run}i{roomCount}", password);
            await Parallel.ForEachAsync(Enumerable.Range(0, roomCount), new ParallelOptions { MaxDegreeOfParallelism = 10 },
                async (r, _) =>
                {
                    var roomId = await http.CreateRoomAsync(member);
                    await http.SendTextAsync(member, roomId, "hello");
                });
            var timings = new List<double>();
            string since = "";
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var timer = Stopwatch.StartNew();
                since = (await http.SyncAsync(member, null, 0))["next_batch"]!.GetValue<string>();
                timings.Add(timer.Elapsed.TotalMilliseconds);
            }
            var incremental = new List<double>();
            for (var attempt = 0; attempt < 10; attempt++)
            {
                var timer = Stopwatch.StartNew();
                since = (await http.SyncAsync(member, since, 0))["next_batch"]!.GetValue<string>();
                incremental.Add(timer.Elapsed.TotalMilliseconds);
            }
            var median = timings.Order().ElementAt(1);
            var incrementalMedian = incremental.Order().ElementAt(incremental.Count / 2);
            Console.WriteLine($"  {roomCount,5} rooms: initial {median:F0} ms (median of 3), incremental {incrementalMedian:F1} ms (median of 10)");
            initial.Add(new JsonObject { ["rooms"] = roomCount, ["initial_ms"] = median, ["incremental_ms"] = incrementalMedian });
        }
        results["initial_sync"] = initial;
    }

    if (Runs("sliding"))
    {
        // 5. Sliding sync of a user in many rooms: the first response of a room list (its top 20 rooms, one event each)
        // on a new connection, an incremental one after a message, and what each open connection costs the server.
        Console.WriteLine();
        Console.WriteLine("sliding sync (MSC4186), list range 0-19, timeline_limit 1");
        var roomCount = syncRoomCounts.Max();
        var member = await http.RegisterAsync($"load{run}sliding", password);
        var roomIds = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, roomCount), new ParallelOptions { MaxDegreeOfParallelism = 10 },
            async (r, _) =>
            {
                var roomId = await http.CreateRoomAsync(member);
                await http.SendTextAsync(member, roomId, "hello");
                roomIds.Add(roomId);
            });
        JsonObject RoomList(string connId) => new()
        {
            ["conn_id"] = connId,
            ["lists"] = new JsonObject
            {
                ["all"] = new JsonObject
                {
                    ["ranges"] = new JsonArray(new JsonArray(0, 19)),
                    ["timeline_limit"] = 1,
                    ["required_state"] = new JsonArray(new JsonArray("m.room.name", ""), new JsonArray("m.room.avatar", ""),
                        new JsonArray("m.room.encryption", ""), new JsonArray("m.room.member", "$LAZY"), new JsonArray("m.room.member", "$ME")),
                },
            },
            ["extensions"] = new JsonObject { ["e2ee"] = new JsonObject { ["enabled"] = true } },
        };
        var first = new List<double>();
        string pos = "";
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var timer = Stopwatch.StartNew();
            pos = (await http.SlidingSyncAsync(member, RoomList($"first{attempt}"), null))["pos"]!.GetValue<string>();
            first.Add(timer.Elapsed.TotalMilliseconds);
        }
        var incremental = new List<double>();
        var someRooms = roomIds.Take(10).ToList();
        for (var attempt = 0; attempt < 10; attempt++)
        {
            await http.SendTextAsync(member, someRooms[attempt], "news");
            var timer = Stopwatch.StartNew();
            pos = (await http.SlidingSyncAsync(member, RoomList("first2"), pos))["pos"]!.GetValue<string>();
            incremental.Add(timer.Elapsed.TotalMilliseconds);
        }
        var firstMedian = first.Order().ElementAt(1);
        var incrementalMedian = incremental.Order().ElementAt(incremental.Count / 2);
        Console.WriteLine($"  {roomCount,5} rooms: first response {firstMedian:F0} ms (median of 3), incremental {incrementalMedian:F1} ms (median of 10)");
        var sliding = new JsonObject { ["rooms"] = roomCount, ["first_ms"] = firstMedian, ["incremental_ms"] = incrementalMedian };
        if (server is not null)
        {
            // Each connection (one per device: a device keeps a few) holds what it sent of every room of the list (the
            // whole list: a client that paged to the end). A first batch grows the heap to what building the responses
            // takes; the second's growth is what the connections keep.
            async Task OpenConnectionsAsync(string prefix)
            {
                for (var c = 0; c < slidingConnections; c++)
                {
                    var device = await http.LoginAsync(member.UserId, password);
                    var body = RoomList(prefix);
                    body["lists"]!["all"]!["ranges"] = new JsonArray(new JsonArray(0, roomCount - 1));
                    var opened = (await http.SlidingSyncAsync(device, body, null))["pos"]!.GetValue<string>();
                    await http.SlidingSyncAsync(device, body, opened);
                }
            }
            await OpenConnectionsAsync("warm-up");
            var before = server.ResidentBytes();
            await OpenConnectionsAsync("memory");
            var perConnection = (server.ResidentBytes() - before) / slidingConnections;
            Console.WriteLine($"  server memory per open connection holding {roomCount} rooms: {perConnection >> 10} KiB (RSS growth over {slidingConnections} connections)");
            sliding["kib_per_connection"] = perConnection >> 10;
        }
        results["sliding_sync"] = sliding;
    }

    if (server is not null)
    {
        await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
        results["rss_idle_after_load_mb"] = server.ResidentBytes() >> 20;
        Console.WriteLine();
        Console.WriteLine($"memory (RSS): after start-up {results["rss_after_start_mb"]} MB"
            + (results["rss_after_throughput_mb"] is { } afterThroughput ? $", after the throughput run {afterThroughput} MB" : "")
            + (results["rss_with_syncing_clients_mb"] is { } withClients ? $", with {results["latency"]!["users"]} clients syncing {withClients} MB" : "")
            + $", idle {idleSeconds} s after the load {results["rss_idle_after_load_mb"]} MB");
    }
    Console.WriteLine();
    Console.WriteLine("json: " + results.ToJsonString());
}
finally
{
    if (deployment is not null)
        await deployment.DisposeAsync();
    if (server is not null)
        await server.DisposeAsync();
    if (database is not null)
        await database.DisposeAsync();
}

// The first count accounts of those known, registering more on the server when there are fewer.
async Task<List<Account>> UsersAsync(LoadClient client, IEnumerable<Account> known, int count, string prefix)
{
    var users = known.Take(count).ToList();
    var more = new ConcurrentBag<Account>();
    await Parallel.ForEachAsync(Enumerable.Range(users.Count, count - users.Count), new ParallelOptions { MaxDegreeOfParallelism = 10 },
        async (i, _) => more.Add(await client.RegisterAsync($"load{run}{prefix}{i}", password)));
    return [.. users, .. more];
}

static string DriverLine(FanoutResult result) =>
    $"CPU {result.DriverCpuPercent:F0}% of a core, GC pauses {result.DriverGcPauseMs:F0} ms, timers up to {result.DriverMaxSchedulingDelayMs:F0} ms late"
    + $" (measured once the first polls settled, {result.SettleSeconds:F1} s after they began, and {result.WarmUpSent} warm-up messages"
    + $" had been sent, answered in p50 / p99 {result.WarmUpSendP50:F0} / {result.WarmUpSendP99:F0} ms)";
