using System.Diagnostics;
using System.Runtime;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Bench.Load;

/// <summary>
/// A fan-out shape: <see cref="Users"/> users in <see cref="Rooms"/> rooms of <see cref="RoomSize"/> members (users take
/// part in several rooms when there are too few to fill them apart), every one long-polling <c>/sync</c>, and
/// <see cref="Senders"/> senders each posting in a closed loop, or together at <see cref="RatePerSecond"/> when it is given.
/// </summary>
public sealed record FanoutShape(int Users, int Rooms, int Senders, double? RatePerSecond = null, int RoomSize = FanoutShape.DefaultRoomSize)
{
    public const int DefaultRoomSize = 10;

    /// <summary><c>users/rooms/senders</c>, with <c>/size</c> for rooms of other than ten and <c>@rate</c> (messages per second in all) for paced senders.</summary>
    public static FanoutShape Parse(string text)
    {
        var (shape, rate) = text.Split('@') is [var s, var r] ? (s, double.Parse(r, System.Globalization.CultureInfo.InvariantCulture)) : (text, (double?)null);
        var parts = shape.Split('/');
        return new FanoutShape(int.Parse(parts[0]), int.Parse(parts[1]), int.Parse(parts[2]), rate, parts.Length > 3 ? int.Parse(parts[3]) : DefaultRoomSize);
    }

    public override string ToString() => $"{Users}/{Rooms}/{Senders}" + (RoomSize != DefaultRoomSize ? $"/{RoomSize}" : "")
        + (RatePerSecond is { } rate ? $" at {rate:F0}/s" : "");
}

/// <summary>What one run of a shape measured. Times in milliseconds.</summary>
public sealed record FanoutResult(
    FanoutShape Shape, int Sent, double MessagesPerSecond, double SendP50, double SendP99,
    int Delivered, int Expected, double DeliveryP50, double DeliveryP95, double DeliveryP99,
    double? ServerCpuMicrosecondsPerMessage, long? ServerPeakRssBytes, double? ServerAllocatedKbPerMessage, double? ServerGcPauseMs, int LimitedTimelines,
    double DriverCpuPercent, double DriverGcPauseMs, double DriverMaxSchedulingDelayMs,
    IReadOnlyDictionary<string, double> CpuMicrosecondsPerMessageByProcess, double SettleSeconds,
    int WarmUpSent, double WarmUpSendP50, double WarmUpSendP99)
{
    public JsonObject ToJson() => new()
    {
        ["users"] = Shape.Users, ["rooms"] = Shape.Rooms, ["room_size"] = Shape.RoomSize, ["senders"] = Shape.Senders, ["rate_per_s"] = Shape.RatePerSecond,
        ["sent"] = Sent, ["msgs_per_s"] = MessagesPerSecond, ["send_p50_ms"] = Number(SendP50), ["send_p99_ms"] = Number(SendP99),
        ["delivered"] = Delivered, ["expected"] = Expected, ["limited_timelines"] = LimitedTimelines,
        ["delivery_p50_ms"] = Number(DeliveryP50), ["delivery_p95_ms"] = Number(DeliveryP95), ["delivery_p99_ms"] = Number(DeliveryP99),
        ["server_cpu_us_per_msg"] = ServerCpuMicrosecondsPerMessage, ["server_peak_rss_mb"] = ServerPeakRssBytes >> 20,
        ["server_allocated_kb_per_msg"] = ServerAllocatedKbPerMessage, ["server_gc_pause_ms"] = ServerGcPauseMs,
        ["driver_cpu_percent"] = DriverCpuPercent, ["driver_gc_pause_ms"] = DriverGcPauseMs,
        ["driver_max_scheduling_delay_ms"] = DriverMaxSchedulingDelayMs,
        ["cpu_us_per_msg_by_process"] = new JsonObject(CpuMicrosecondsPerMessageByProcess.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        ["settle_s"] = SettleSeconds,
        ["warm_up_sent"] = WarmUpSent, ["warm_up_send_p50_ms"] = Number(WarmUpSendP50), ["warm_up_send_p99_ms"] = Number(WarmUpSendP99),
    };

    // A percentile of nothing (no message arrived) is NaN, which JSON cannot carry.
    private static double? Number(double value) => double.IsNaN(value) ? null : value;
}

/// <summary>
/// The fan-out workload: everyone long-polls with a lazy-loading filter (<c>timeline.limit</c> 50) as clients do, each
/// message carries its send time, and every arrival in another member's sync is one delivery. The driver reads the
/// responses without building node trees and prints its own CPU, garbage-collection pauses and scheduling delay, so a
/// driver that became the bottleneck shows.
/// </summary>
public sealed class FanoutWorkload(LoadClient http, ServerProbe? server, TimeSpan warmUp)
{
    private const string SentAtField = "bench_sent_at";
    private readonly Dictionary<string, string> _filters = [];
    private int _limitedTimelines;

    public async Task<FanoutResult> RunAsync(FanoutShape shape, IReadOnlyList<Account> users, TimeSpan duration)
    {
        var rooms = await CreateRoomsAsync(shape, users);
        var members = rooms.SelectMany(r => r.Members).Distinct().ToList();
        await Parallel.ForEachAsync(members.Where(m => !_filters.ContainsKey(m.UserId)).ToList(), new ParallelOptions { MaxDegreeOfParallelism = 20 },
            async (member, _) =>
            {
                var filter = new JsonObject
                {
                    ["room"] = new JsonObject
                    {
                        ["timeline"] = new JsonObject { ["limit"] = 50 },
                        ["state"] = new JsonObject { ["lazy_load_members"] = true },
                    },
                };
                var id = await http.CreateFilterAsync(member, filter);
                lock (_filters)
                    _filters[member.UserId] = id;
            });

        var sinceTokens = new Dictionary<string, string>();
        await Parallel.ForEachAsync(members, new ParallelOptions { MaxDegreeOfParallelism = 20 }, async (member, _) =>
        {
            using var initial = await http.SyncDocumentAsync(member, null, 0, _filters[member.UserId]);
            var since = initial.RootElement.GetProperty("next_batch").GetString()!;
            lock (sinceTokens)
                sinceTokens[member.UserId] = since;
        });

        using var stopPolling = new CancellationTokenSource();
        _pollAnswers = 0;
        var pollers = members.Select(member => PollAsync(member, sinceTokens[member.UserId], stopPolling.Token)).ToList();
        var settleSeconds = await SettleAsync(pollers.Count);
        // A fresh server runs each method unoptimised until it has been called often, then compiles it again with what
        // those calls showed (.NET's tiered compilation): the row's own sends, uncounted, warm it up first, so the row
        // measures a running server. Their answer times are printed beside it.
        var warmUpSends = (await SendAsync(shape, rooms, warmUp, measured: false)).Select(s => s.Milliseconds).Order().ToArray();
        // On stderr, for a profiler to start on: what follows is the measured part of the row.
        Console.Error.WriteLine($"fan-out {shape}: set up, measuring for {duration.TotalSeconds:F0} s");

        var gcHeldOff = HoldOffDriverGc();
        var gcPauseBefore = GC.GetTotalPauseDuration();
        var driverCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var serverCpuBefore = server?.CpuTime();
        var byProcessBefore = server?.CpuTimeByProcess() ?? [];
        var runtimeBefore = server is null ? null : await server.RuntimeAsync();
        using var stopWatching = new CancellationTokenSource();
        var watcher = Task.Run(() => WatchAsync(stopWatching.Token));
        _limitedTimelines = 0;
        var clock = Stopwatch.StartNew();
        var sendTimes = await SendAsync(shape, rooms, duration, measured: true);
        var sendingTime = clock.Elapsed;
        var serverCpu = server is null || serverCpuBefore is null ? (TimeSpan?)null : server.CpuTime() - serverCpuBefore.Value;
        var byProcessAfter = server?.CpuTimeByProcess() ?? [];
        var driverCpu = Process.GetCurrentProcess().TotalProcessorTime - driverCpuBefore;
        var runtimeAfter = server is null ? null : await server.RuntimeAsync();

        // Deliveries of the last messages may still be on their way.
        var expected = sendTimes.Sum(s => s.Members - 1);
        var grace = Stopwatch.StartNew();
        while (pollers.Count > 0 && DeliveredSoFar(pollers) < expected && grace.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(50);
        if (gcHeldOff && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
            GC.EndNoGCRegion();
        var gcPause = GC.GetTotalPauseDuration() - gcPauseBefore;
        stopWatching.Cancel();
        var (maxDelay, peakRss) = await watcher;
        stopPolling.Cancel();
        var delays = (await Task.WhenAll(pollers.Select(p => p.Task))).SelectMany(d => d).Order().ToArray();
        var sends = sendTimes.Select(s => s.Milliseconds).Order().ToArray();
        return new FanoutResult(shape, sends.Length, sends.Length / sendingTime.TotalSeconds, Percentile(sends, 0.5), Percentile(sends, 0.99),
            delays.Length, expected, Percentile(delays, 0.5), Percentile(delays, 0.95), Percentile(delays, 0.99),
            serverCpu is { } cpu && sends.Length > 0 ? cpu.TotalMicroseconds / sends.Length : null, peakRss,
            runtimeBefore is { } r0 && runtimeAfter is { } r1 && sends.Length > 0 ? (r1.AllocatedBytes - r0.AllocatedBytes) / 1024 / sends.Length : null,
            runtimeBefore is { } p0 && runtimeAfter is { } p1 ? (p1.GcPauseSeconds - p0.GcPauseSeconds) * 1000 : null,
            _limitedTimelines, 100 * driverCpu / sendingTime, gcPause.TotalMilliseconds, maxDelay,
            byProcessAfter.ToDictionary(p => p.Key, p => sends.Length > 0 ? (p.Value - byProcessBefore[p.Key]).TotalMicroseconds / sends.Length : 0),
            settleSeconds, warmUpSends.Length, Percentile(warmUpSends, 0.5), Percentile(warmUpSends, 0.99));
    }

    private int _pollAnswers;

    /// <summary>
    /// Waits until the new long-polls stop being answered at once and our server has calmed down (in one second at most
    /// 1% of the polls answered and under a quarter of a core used; three minutes at most): everyone's first polls see
    /// each other come online, which is the load of a restart, not the steady state the row measures. Returns how long
    /// that took (printed).
    /// </summary>
    private async Task<double> SettleAsync(int pollers)
    {
        var clock = Stopwatch.StartNew();
        await Task.Delay(500);
        for (var (answers, cpu) = (Volatile.Read(ref _pollAnswers), server?.CpuTime()); clock.Elapsed < TimeSpan.FromMinutes(3); )
        {
            await Task.Delay(1000);
            var (answersNow, cpuNow) = (Volatile.Read(ref _pollAnswers), server?.CpuTime());
            if (answersNow - answers <= Math.Max(1, pollers / 100) && (cpu is null || cpuNow - cpu < TimeSpan.FromMilliseconds(250)))
                break;
            (answers, cpu) = (answersNow, cpuNow);
        }
        return clock.Elapsed.TotalSeconds;
    }

    public static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private sealed record Room(string RoomId, Account[] Members);

    /// <summary>A long-poll loop and the delays it saw (milliseconds from a message's send to its arrival here).</summary>
    private sealed record Poller(Task<List<double>> Task, Func<int> Count);

    private static int DeliveredSoFar(List<Poller> pollers) => pollers.Sum(p => p.Count());

    // Room r's members are users r*stride .. r*stride+size-1 (modulo the user count): disjoint rooms when there are enough
    // users, overlapping ones otherwise.
    private async Task<List<Room>> CreateRoomsAsync(FanoutShape shape, IReadOnlyList<Account> users)
    {
        var size = Math.Min(shape.RoomSize, shape.Users);
        var stride = Math.Max(1, shape.Users / shape.Rooms);
        var rooms = new Room[shape.Rooms];
        await Parallel.ForEachAsync(Enumerable.Range(0, shape.Rooms), new ParallelOptions { MaxDegreeOfParallelism = 10 }, async (r, _) =>
        {
            var members = Enumerable.Range(0, size).Select(k => users[(r * stride + k) % shape.Users]).ToArray();
            var roomId = await http.CreateRoomAsync(members[0]);
            foreach (var member in members.Skip(1))
                await http.JoinAsync(member, roomId);
            rooms[r] = new Room(roomId, members);
        });
        return [.. rooms];
    }

    private Poller PollAsync(Account member, string since, CancellationToken stop)
    {
        var delays = new List<double>();
        async Task<List<double>> LoopAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                JsonDocument response;
                try
                {
                    response = await http.SyncDocumentAsync(member, since, 30_000, _filters[member.UserId], stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                var arrived = Stopwatch.GetTimestamp();
                Interlocked.Increment(ref _pollAnswers);
                using (response)
                {
                    since = response.RootElement.GetProperty("next_batch").GetString()!;
                    if (!response.RootElement.TryGetProperty("rooms", out var rooms) || !rooms.TryGetProperty("join", out var joined))
                        continue;
                    foreach (var room in joined.EnumerateObject())
                    {
                        if (!room.Value.TryGetProperty("timeline", out var timeline) || !timeline.TryGetProperty("events", out var events))
                            continue;
                        // More new events than the filter's limit: the client fills the gap with /messages, outside this count.
                        if (timeline.TryGetProperty("limited", out var limited) && limited.ValueKind == JsonValueKind.True)
                            Interlocked.Increment(ref _limitedTimelines);
                        foreach (var ev in events.EnumerateArray())
                            if (ev.TryGetProperty("content", out var content) && content.TryGetProperty(SentAtField, out var sentAt)
                                && ev.GetProperty("sender").GetString() != member.UserId)
                                lock (delays)
                                    delays.Add(Stopwatch.GetElapsedTime(sentAt.GetInt64(), arrived).TotalMilliseconds);
                    }
                }
            }
            return delays;
        }
        return new Poller(LoopAsync(), () => { lock (delays) return delays.Count; });
    }

    // Closed loop: each sender posts its next message when the server has answered the last, into a random room as one of
    // its members. With a rate, the senders together keep to it (a late answer makes the next message go at once). Only
    // measured messages carry their send time, so only their arrivals count as deliveries.
    private async Task<List<(double Milliseconds, int Members)>> SendAsync(FanoutShape shape, List<Room> rooms, TimeSpan duration, bool measured)
    {
        var sends = new List<(double, int)>();
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, shape.Senders).Select(async s =>
        {
            var random = new Random(s);
            for (var n = 0; Stopwatch.GetElapsedTime(start) < duration; n++)
            {
                if (shape.RatePerSecond is { } rate)
                {
                    var due = TimeSpan.FromSeconds((n * shape.Senders + s) / rate) - Stopwatch.GetElapsedTime(start);
                    if (due > TimeSpan.Zero)
                        await Task.Delay(due);
                }
                var room = rooms[random.Next(rooms.Count)];
                var sender = room.Members[random.Next(room.Members.Length)];
                var sentAt = Stopwatch.GetTimestamp();
                var content = new JsonObject { ["msgtype"] = "m.text", ["body"] = $"fan-out {s}/{n}" };
                if (measured)
                    content[SentAtField] = sentAt;
                await http.SendMessageAsync(sender, room.RoomId, content);
                lock (sends)
                    sends.Add((Stopwatch.GetElapsedTime(sentAt).TotalMilliseconds, room.Members.Length));
            }
        }));
        return sends;
    }

    // How late the driver's own timers fire (a busy or collecting driver delays every arrival it records), and the
    // server's peak memory.
    private async Task<(double MaxDelayMs, long? PeakRss)> WatchAsync(CancellationToken stop)
    {
        var maxDelay = 0.0;
        long? peakRss = server?.ResidentBytes();
        var tick = 0;
        while (!stop.IsCancellationRequested)
        {
            var before = Stopwatch.GetTimestamp();
            await Task.Delay(5, CancellationToken.None);
            maxDelay = Math.Max(maxDelay, Stopwatch.GetElapsedTime(before).TotalMilliseconds - 5);
            if (server is not null && ++tick % 50 == 0)
                peakRss = Math.Max(peakRss ?? 0, server.ResidentBytes());
        }
        return (maxDelay, peakRss);
    }

    // Asks the runtime for room to allocate without collecting, as much as it grants; false when it grants none. A
    // collection of a driver with thousands of polls in flight pauses it for 15-20 ms, which would count as the server's.
    private static bool HoldOffDriverGc()
    {
        foreach (var megabytes in new long[] { 240, 120, 60 })
            try
            {
                if (GC.TryStartNoGCRegion(megabytes << 20))
                    return true;
            }
            catch (ArgumentOutOfRangeException)
            {
            }
        return false;
    }
}
