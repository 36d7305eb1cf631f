using System.Diagnostics;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;
using Npgsql;

// Search benchmark: POST /search latency over a large message history on PostgreSQL (tsvector + GIN).
// A room gets 1,000 real messages through the client API; the database is then grown to --messages by copying them
// with fresh event IDs and bodies of random words from a 20,000-word vocabulary (SQL inside PostgreSQL: a million
// messages through the API would take most of an hour), and indexed as the server indexes. Searches of one or two
// words, ranked and newest first, are then timed through the HTTP API.
// Usage: dotnet run -c Release --project bench/Search [-- --messages 1000000 --queries 300]   (needs HS_TEST_POSTGRES)
//        (--smoke: 20,000 messages, 30 queries, as the test suite runs it so the benchmark cannot rot)
var messages = 1_000_000;
var queries = 300;
for (var i = 0; i < args.Length; i++)
    switch (args[i])
    {
        case "--messages": messages = int.Parse(args[++i]); break;
        case "--queries": queries = int.Parse(args[++i]); break;
        case "--smoke": (messages, queries) = (20_000, 30); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
await using var database = (PostgresTestDatabase)await TestDatabase.CreateAsync("postgres");
await using var server = new HomeserverProcess(database.Yaml);
await server.StartAsync();
var client = new MatrixClient(server.BaseUrl, server.ServerName);
var user = await client.RegisterAsync();
var roomId = (await client.PostAsync("/_matrix/client/v3/createRoom", new { name = "search bench" }, user.AccessToken)).Str("room_id");

var vocabulary = Vocabulary(20_000);
var random = new Random(42);
string Sentence(int words) => string.Join(' ', Enumerable.Range(0, words).Select(_ => vocabulary[random.Next(vocabulary.Length)]));
var seeding = Stopwatch.StartNew();
var seedCount = Math.Min(1000, messages);
for (var m = 0; m < seedCount; m++)
    await client.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/seed{m}",
        new { msgtype = "m.text", body = Sentence(8) }, user.AccessToken);
Console.WriteLine($"sent {seedCount} messages through the API in {seeding.Elapsed.TotalSeconds:F1} s");

var growing = Stopwatch.StartNew();
await using (var connection = new NpgsqlConnection(database.ConnectionString))
{
    await connection.OpenAsync();
    async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync();
    }
    await ExecuteAsync("""
        CREATE TEMP TABLE sources AS
        SELECT row_number() OVER (ORDER BY stream_ordering) - 1 AS n, * FROM events WHERE room_id = @room AND type = 'm.room.message'
        """, ("room", roomId));
    // Copies of the room's messages: new IDs and stream positions, bodies of eight random words.
    await ExecuteAsync("""
        CREATE TEMP TABLE grown AS
        SELECT base.max + g AS stream_ordering, '$bench' || g AS event_id, src.room_id, src.sender, src.depth, src.origin_server_ts,
               src.state_group, src.json,
               (SELECT string_agg((@words::text[])[1 + ((hashtext(g::text || ':' || k::text) & 2147483647) % @size)], ' ')
                  FROM generate_series(1, 8) k) AS body
        FROM generate_series(1, @count) g
        CROSS JOIN (SELECT MAX(stream_ordering) AS max FROM events) base
        JOIN sources src ON src.n = g % @seeds
        """, ("words", vocabulary), ("size", vocabulary.Length), ("count", messages - seedCount), ("seeds", seedCount));
    await ExecuteAsync("""
        INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth, origin_server_ts, state_group, json)
        SELECT stream_ordering, event_id, room_id, 'm.room.message', NULL, sender, depth, origin_server_ts, state_group,
               jsonb_set(json::jsonb, '{content,body}', to_jsonb(body))::text
        FROM grown
        """);
    await ExecuteAsync("""
        INSERT INTO event_search (event_id, room_id, sender, key, stream_ordering, body, vector)
        SELECT event_id, room_id, sender, 'content.body', stream_ordering, body, to_tsvector('english', body) FROM grown
        """);
    await ExecuteAsync("UPDATE stream_positions SET position = (SELECT MAX(stream_ordering) FROM events) WHERE stream = 'events'");
    await ExecuteAsync("ANALYZE events; ANALYZE event_search;");
}
Console.WriteLine($"grew the history to {messages:N0} indexed messages in {growing.Elapsed.TotalSeconds:F1} s");

using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", user.AccessToken);
// The cost of any authenticated request, to read the search figures against.
var baseline = new List<double>();
for (var q = 0; q < queries + 5; q++)
{
    var clock = Stopwatch.StartNew();
    using var response = await http.GetAsync($"{server.BaseUrl}/_matrix/client/v3/account/whoami");
    await response.Content.ReadAsStringAsync();
    if (q >= 5)
        baseline.Add(clock.Elapsed.TotalMilliseconds);
}
var rows = new List<(string Order, int Words, double[] Latencies, double Hits)>();
foreach (var order in new[] { "recent", "rank" })
    foreach (var words in new[] { 1, 2 })
    {
        var latencies = new List<double>();
        double hits = 0;
        for (var q = 0; q < queries + 5; q++)
        {
            var body = new JsonObject { ["search_categories"] = new JsonObject { ["room_events"] = new JsonObject
            {
                ["search_term"] = Sentence(words), ["order_by"] = order, ["filter"] = new JsonObject { ["limit"] = 10 },
            } } };
            var clock = Stopwatch.StartNew();
            using var response = await http.PostAsync($"{server.BaseUrl}/_matrix/client/v3/search",
                new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
            var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            clock.Stop();
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"search failed: {answer.ToJsonString()}");
            if (q < 5)
                continue; // warm-up
            latencies.Add(clock.Elapsed.TotalMilliseconds);
            hits += answer["search_categories"]!["room_events"]!["count"]!.GetValue<long>();
        }
        rows.Add((order, words, latencies.Order().ToArray(), hits / queries));
    }

static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

Console.WriteLine();
Console.WriteLine($"{messages:N0} messages, {queries} queries per row (limit 10), PostgreSQL");
Console.WriteLine($"{"order",-8} {"words",6} {"p50 ms",8} {"p95 ms",8} {"p99 ms",8} {"avg hits",10}");
var sortedBaseline = baseline.Order().ToArray();
Console.WriteLine($"{"(whoami)",-8} {"",6} {Percentile(sortedBaseline, 0.5),8:F1} {Percentile(sortedBaseline, 0.95),8:F1} {Percentile(sortedBaseline, 0.99),8:F1} {"",10}");
foreach (var (order, words, latencies, hits) in rows)
    Console.WriteLine($"{order,-8} {words,6} {Percentile(latencies, 0.5),8:F1} {Percentile(latencies, 0.95),8:F1} {Percentile(latencies, 0.99),8:F1} {hits,10:F0}");
Console.WriteLine("json: " + JsonSerializer.Serialize(new
{
    benchmark = "search", messages, queries,
    rows = rows.Select(r => new { order = r.Order, words = r.Words, p50_ms = Percentile(r.Latencies, 0.5), p95_ms = Percentile(r.Latencies, 0.95),
        p99_ms = Percentile(r.Latencies, 0.99), avg_hits = r.Hits }),
}));

// Pronounceable made-up words, so stemming and stop words play no part in what matches.
static string[] Vocabulary(int size)
{
    var random = new Random(7);
    const string consonants = "bcdfghklmnprstvz";
    const string vowels = "aeiou";
    var words = new HashSet<string>();
    while (words.Count < size)
        words.Add(string.Concat(Enumerable.Range(0, 3).Select(_ => $"{consonants[random.Next(consonants.Length)]}{vowels[random.Next(vowels.Length)]}")));
    return [.. words];
}
