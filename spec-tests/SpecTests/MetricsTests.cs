using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;

namespace Matrix.SpecTests;

public sealed class SqliteMetricsServer() : ServerFixture("sqlite", metricsListener: true);
public sealed class PostgresMetricsServer() : ServerFixture("postgres", metricsListener: true);

/// <summary>
/// Prometheus metrics on a <c>metrics</c> listener (Synapse's <c>/_synapse/metrics</c> and <c>/metrics</c>), read with a
/// strict text-format parser: the series an operator graphs exist, move with traffic, and name routes by template.
/// </summary>
public abstract class MetricsTests(ServerFixture fixture)
{
    private const string V3 = "/_matrix/client/v3";
    private const string SendRoute = "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}";
    private MatrixClient C => fixture.Client;
    private HomeserverProcess Server => fixture.Server;

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private Task<Dictionary<string, PrometheusFamily>> ScrapeAsync(string path = "/_synapse/metrics") => Server.ScrapeMetricsAsync(path);

    [Fact]
    public async Task Both_paths_serve_every_family_in_the_text_format()
    {
        var expected = new Dictionary<string, string>
        {
            ["homeserver_http_requests_total"] = "counter",
            ["homeserver_http_request_duration_seconds"] = "histogram",
            ["homeserver_long_polls_waiting"] = "gauge",
            ["homeserver_sync_wakeups_total"] = "counter",
            ["homeserver_events_persisted_total"] = "counter",
            ["homeserver_database_transaction_duration_seconds"] = "histogram",
            ["homeserver_database_connections_in_use"] = "gauge",
            ["homeserver_federation_queue_pending"] = "gauge",
            ["homeserver_appservice_queue_pending"] = "gauge",
            ["dotnet_gc_collections_total"] = "counter",
            ["dotnet_gc_pause_seconds_total"] = "counter",
            ["dotnet_gc_heap_size_bytes"] = "gauge",
            ["dotnet_gc_allocated_bytes_total"] = "counter",
            ["process_cpu_seconds_total"] = "counter",
            ["process_resident_memory_bytes"] = "gauge",
            ["process_start_time_seconds"] = "gauge",
        };
        foreach (var path in new[] { "/_synapse/metrics", "/metrics" })
        {
            var families = await ScrapeAsync(path);
            foreach (var (name, type) in expected)
            {
                Assert.True(families.ContainsKey(name), $"{name} missing from {path}");
                Assert.Equal(type, families[name].Type);
                Assert.NotEmpty(families[name].Help);
            }
            Assert.True(families.Value("process_cpu_seconds_total", "process_cpu_seconds_total") > 0);
            Assert.True(families.Value("process_resident_memory_bytes", "process_resident_memory_bytes") > 0);
            Assert.True(families.Value("dotnet_gc_heap_size_bytes", "dotnet_gc_heap_size_bytes") >= 0);
            Assert.True(families.Value("dotnet_gc_allocated_bytes_total", "dotnet_gc_allocated_bytes_total") > 0);
        }
    }

    [Fact]
    public async Task Counters_move_with_requests_and_routes_are_templates_not_paths()
    {
        var before = await ScrapeAsync();
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        await SendAsync(C, alice, roomId, "counted");

        double Sent(Dictionary<string, PrometheusFamily> f) => f.Value("homeserver_http_requests_total", "homeserver_http_requests_total",
            ("method", "PUT"), ("route", SendRoute), ("status", "200"));
        // A send answers before its request is counted (the answer goes out first, so its sender's syncs can wake).
        await Eventually.HoldsAsync(async () => Sent(await ScrapeAsync()) >= Sent(before) + 1, "the send counted");
        var after = await ScrapeAsync();
        Assert.Equal(Sent(before) + 1, Sent(after));
        double Events(Dictionary<string, PrometheusFamily> f) =>
            f.Value("homeserver_events_persisted_total", "homeserver_events_persisted_total", ("origin", "local"));
        // createRoom persists several events (create, member, power levels, ...), then the message.
        Assert.True(Events(after) >= Events(before) + 5, $"{Events(before)} -> {Events(after)}");
        double Writes(Dictionary<string, PrometheusFamily> f) => f.Value("homeserver_database_transaction_duration_seconds",
            "homeserver_database_transaction_duration_seconds_count", ("kind", "write"));
        Assert.True(Writes(after) > Writes(before));

        var requestSeries = after["homeserver_http_requests_total"].Samples;
        Assert.DoesNotContain(requestSeries, s => s.Labels["route"].Contains(roomId) || s.Labels["route"].Contains('!'));
        var latency = after["homeserver_http_request_duration_seconds"].Samples
            .Where(s => s.Labels.GetValueOrDefault("route") == SendRoute && s.Labels["method"] == "PUT").ToList();
        var buckets = latency.Where(s => s.Name.EndsWith("_bucket")).Select(s => s.Value).ToList();
        Assert.Equal(buckets.Order(), buckets);
        Assert.Equal(latency.Single(s => s.Name.EndsWith("_count")).Value, latency.Single(s => s.Labels.GetValueOrDefault("le") == "+Inf").Value);
    }

    [Fact]
    public async Task A_waiting_long_poll_is_counted_and_its_wake_up_too()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var since = (await SyncTests.SyncAsync(C, alice))["next_batch"]!.GetValue<string>();
        var wakeups = (await ScrapeAsync()).Value("homeserver_sync_wakeups_total", "homeserver_sync_wakeups_total");

        var poll = C.GetAsync($"{V3}/sync?since={since}&timeout=30000", alice.AccessToken);
        await Eventually.HoldsAsync(async () => (await ScrapeAsync()).Value("homeserver_long_polls_waiting", "homeserver_long_polls_waiting",
            ("kind", "sync")) >= 1, "the sync waiting");
        var bob = await C.RegisterAsync();
        await C.PostAsync($"{V3}/rooms/{Uri.EscapeDataString(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken);
        Assert.Equal(200, (await poll).Status);

        var after = await ScrapeAsync();
        Assert.True(after.Value("homeserver_sync_wakeups_total", "homeserver_sync_wakeups_total") > wakeups);
    }

    [Fact]
    public async Task Metrics_are_served_on_the_metrics_listener_only_and_it_serves_nothing_else()
    {
        foreach (var path in new[] { "/_synapse/metrics", "/metrics" })
            Assert.Equal(404, (await C.GetAsync(path)).Status);
        using var client = await Http.GetAsync($"http://127.0.0.1:{Server.MetricsPort}/_matrix/client/versions");
        Assert.Equal(404, (int)client.StatusCode);
        using var health = await Http.GetAsync($"http://127.0.0.1:{Server.MetricsPort}/health");
        Assert.Equal(200, (int)health.StatusCode);
    }
}

/// <summary>The test's Prometheus text parser is as strict as it claims (it is what holds the server to the format).</summary>
public sealed class PrometheusTextParserTests
{
    [Fact]
    public void The_parser_reads_escaped_label_values_and_refuses_malformed_text()
    {
        var families = PrometheusText.Parse("""
            # HELP x_total A \\ help\nline.
            # TYPE x_total counter
            x_total{a="q\"uote",b="back\\slash",c="new\nline"} 3
            x_total 1.5e3

            """.Replace("\r", ""));
        Assert.Equal("A \\ help\nline.", families["x_total"].Help);
        Assert.Equal(3, families.Value("x_total", "x_total", ("a", "q\"uote"), ("b", "back\\slash"), ("c", "new\nline")));
        Assert.Equal(1500, families.Value("x_total", "x_total"));
        foreach (var bad in new[]
                 {
                     "x_total 1\n",                                          // no HELP and TYPE
                     "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"v} 1\n",   // unterminated value
                     "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n", // unknown escape
                     "# HELP x_total h\n# TYPE x_total counter\nx_total 1\nx_total 2\n", // repeated series
                     "# HELP x_total h\n# TYPE x_total counter\ny_total 1\n",           // sample outside its family
                     "# HELP x_total h\n# TYPE x_total counter\nx_total one\n",         // bad value
                 })
            Assert.Throws<FormatException>(() => PrometheusText.Parse(bad));
    }
}

public sealed class MetricsTestsSqlite(SqliteMetricsServer f) : MetricsTests(f), IClassFixture<SqliteMetricsServer>;
public sealed class MetricsTestsPostgres(PostgresMetricsServer f) : MetricsTests(f), IClassFixture<PostgresMetricsServer>;
