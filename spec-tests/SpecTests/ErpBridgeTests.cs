using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Erp;
using Matrix.SpecTests.Harness;
using Microsoft.AspNetCore.Builder;

namespace Matrix.SpecTests;

/// <summary>
/// The ERP hookup bridge (src/Bridges/Erp) against a real homeserver and an ERP simulator (a small JSON REST service
/// in the test): signed webhooks are posted into the room by the system's user, mentioning the responsible user;
/// bad signatures, stale timestamps, replays and floods are turned away with nothing posted; room commands call the
/// ERP and answer in the thread; subscribed room events reach the ERP once, after an outage and a restart.
/// </summary>
public sealed class ErpBridgeTests : IAsyncLifetime
{
    private const string Secret = "orders-hook-secret-0123456789";
    private const string Token = "erp-api-token";
    private const string GitSecret = "git-and-jira-hook-secret-0123";
    private const string TransformJs = "result = { plain: \"Order \" + data.order.id + \" total \" + data.lines.reduce(function (s, l) { return s + l.qty * l.price; }, 0), html: \"<b>Order \" + data.order.id + \"</b>\" };";
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-erp-").FullName;
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly List<string> _problems = [];
    private readonly ConcurrentQueue<(string Key, JsonNode Body, int Status)> _erpReceived = new();
    private volatile bool _erpDown;
    private LoopbackListener _erp = null!;
    private LoopbackListener _feedServer = null!;
    private volatile int _feedVersion = 1;
    private volatile bool _feedIgnoresETag;
    private readonly ConcurrentQueue<(string Path, string? IfNoneMatch, int Status)> _feedRequests = new();
    private TestDatabase _database = null!;
    private HomeserverProcess _server = null!;
    private BridgeRuntime _runtime = null!;
    private ErpBridge _bridge = null!;
    private WebApplication _webhooks = null!;
    private ErpBridgeConfig _config = null!;
    private Func<string, string> _configYaml = null!;
    private bool _bridgeRunning;
    private LoggedInUser _alice = null!;
    private string _roomId = "";
    private MatrixClient C => new(_server.BaseUrl, _server.ServerName);
    private string SapUser => $"@erp_sap:{_server.ServerName}";

    public async Task InitializeAsync()
    {
        _erp = new LoopbackListener(ServeErpAsync);
        _feedServer = new LoopbackListener(ServeFeedAsync);
        _database = await TestDatabase.CreateAsync("sqlite");
        var registration = Path.Combine(_dir, "erp-registration.yaml");
        _server = new HomeserverProcess(_database.Yaml, $"""
            app_service_config_files:
              - {registration}
            """);
        var configPath = Path.Combine(_dir, "erp-bridge.yaml");
        var (appServicePort, webhookPort) = (FreePorts.Next(), FreePorts.Next());
        _configYaml = room => $"""
            homeserver:
              url: {_server.BaseUrl}
              server_name: {_server.ServerName}
            appservice:
              id: erp
              port: {appServicePort}
              registration: erp-registration.yaml
              data_dir: ./data
              sender_localpart: erpbot
              user_prefix: erp_
            webhooks:
              port: {webhookPort}
              replay_window_seconds: 300
            delivery:
              tick_seconds: 5
              max_backoff_seconds: 60
            systems:
              - id: sap
                display_name: SAP
                base_url: {_erp.BaseUrl}
                bearer_token: {Token}
            hooks:
              - id: orders
                system: sap
                secret: {Secret}
                room: "{room}"
                template: "Order {"{{"}order.id{"}}"} for {"{{"}order.customer{"}}"} is now {"{{"}order.status{"}}"}"
                html_template: "Order <b>{"{{"}order.id{"}}"}</b> for {"{{"}order.customer{"}}"}"
                mention: "{"{{"}order.owner{"}}"}"
              - id: limited
                system: sap
                secret: {Secret}
                room: "{room}"
                template: "{"{{"}text{"}}"}"
                rate_limit_per_minute: 2
              - id: seq
                system: sap
                secret: {Secret}
                room: "{room}"
                template: "{"{{"}n{"}}"}"
              - id: github
                system: sap
                provider: github
                secret: {GitSecret}
                room: "{room}"
              - id: gitlab
                system: sap
                provider: gitlab
                secret: {GitSecret}
                room: "{room}"
              - id: jira
                system: sap
                provider: jira
                secret: {GitSecret}
                room: "{room}"
              - id: transformed
                system: sap
                secret: {Secret}
                room: "{room}"
                transform: '{TransformJs}'
              - id: runaway
                system: sap
                secret: {Secret}
                room: "{room}"
                transform: 'while (true) {"{"} {"}"}'
            transforms:
              timeout_ms: 500
            feeds:
              - id: news
                url: {_feedServer.BaseUrl}/feed.atom
                room: "{room}"
                interval_seconds: 60
              - id: blog
                url: {_feedServer.BaseUrl}/feed.rss
                room: "{room}"
                interval_seconds: 60
            commands:
              - name: order
                system: sap
                path: /orders/{"{0}"}
                argument_pattern: "^[0-9]{"{1,10}"}$"
                usage: "<order number>"
                reply: "Order {"{{"}id{"}}"}: {"{{"}status{"}}"}, {"{{"}total{"}}"} {"{{"}currency{"}}"}{"{{"}#each lines{"}}"} [{"{{"}sku{"}}"}]{"{{"}/each{"}}"}"
            subscriptions:
              - room: "{room}"
                system: sap
                path: /matrix/events
                body_pattern: "(?i)invoice"
            """;
        // The room must exist before the config names it: a first config only to write the registration.
        await File.WriteAllTextAsync(configPath, _configYaml("!placeholder:localhost"));
        BridgeRuntime.WriteRegistration(BridgeConfig.Load<ErpBridgeConfig>(configPath));
        await _server.StartAsync();
        _alice = await C.RegisterAsync();
        _roomId = (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "public_chat" }, _alice.AccessToken)).Str("room_id");
        await File.WriteAllTextAsync(configPath, _configYaml(_roomId));
        _config = BridgeConfig.Load<ErpBridgeConfig>(configPath);
        await StartBridgeAsync();
    }

    private async Task StartBridgeAsync()
    {
        _runtime = BridgeRuntime.Create(_config);
        _bridge = new ErpBridge(_config, _runtime.AppService, new Outbox(Path.Combine(_config.AppService.DataDir, "outbox")), _clock, _http);
        _bridge.Problem += p => { lock (_problems) _problems.Add(p); };
        await _runtime.StartAsync();
        await _bridge.StartAsync(CancellationToken.None);
        _webhooks = await WebhookServer.StartAsync(_bridge, _config.Webhooks, CancellationToken.None);
        _bridgeRunning = true;
    }

    private async Task StopBridgeAsync()
    {
        if (!_bridgeRunning)
            return;
        _bridgeRunning = false;
        await _webhooks.DisposeAsync();
        await _runtime.DisposeAsync();
    }

    /// <summary>The ERP simulator: orders to read (with the API token), and an endpoint for subscribed events that can be down.</summary>
    private async Task ServeErpAsync(HttpListenerContext context)
    {
        var path = context.Request.Url!.AbsolutePath;
        if (context.Request.Headers["Authorization"] != $"Bearer {Token}")
        {
            await LoopbackListener.RespondAsync(context, 401, new JsonObject { ["error"] = "no token" });
            return;
        }
        if (context.Request.HttpMethod == "GET" && path == "/orders/4711")
            await LoopbackListener.RespondAsync(context, 200, JsonNode.Parse("""{"id":"4711","status":"shipped","total":129.5,"currency":"EUR","lines":[{"sku":"A-1"},{"sku":"B-2"}]}""")!);
        else if (context.Request.HttpMethod == "POST" && path == "/matrix/events")
        {
            var body = JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync())!;
            var status = _erpDown ? 503 : 200;
            _erpReceived.Enqueue((context.Request.Headers["Idempotency-Key"] ?? "", body, status));
            await LoopbackListener.RespondAsync(context, status, new JsonObject());
        }
        else
            await LoopbackListener.RespondAsync(context, 404, new JsonObject { ["error"] = "not found" });
    }

    /// <summary>
    /// A feed server: an Atom feed (RFC 4287) and an RSS 2.0 feed whose version 2 adds an entry, each version with its
    /// ETag, answering 304 to a request that already has it (unless told to ignore it, as some servers do).
    /// </summary>
    private async Task ServeFeedAsync(HttpListenerContext context)
    {
        var version = _feedVersion;
        var etag = $"\"v{version}\"";
        var ifNoneMatch = context.Request.Headers["If-None-Match"];
        var path = context.Request.Url!.AbsolutePath;
        var notModified = ifNoneMatch == etag && !_feedIgnoresETag;
        _feedRequests.Enqueue((path, ifNoneMatch, notModified ? 304 : 200));
        if (notModified)
        {
            context.Response.StatusCode = 304;
            context.Response.Close();
            return;
        }
        var atomEntries = new[]
        {
            ("urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", "Atom-Powered Robots Run Amok", "http://example.org/2003/12/13/atom03", "2003-12-13T18:30:02Z"),
            ("urn:uuid:4c1e4b5a-7a2e-4c7e-9a1d-3f4b2c1d0e9f", "Robots Return Home", "http://example.org/2003/12/14/robots", "2003-12-14T09:00:00Z"),
            ("urn:uuid:9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f", "Robots Form a Union", "http://example.org/2003/12/15/union", "2003-12-15T10:00:00Z"),
        }.Take(version + 1);
        var rssItems = new[]
        {
            ("http://liftoff.msfc.nasa.gov/2003/06/03.html#item573", "Star City", "http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp", "Tue, 03 Jun 2003 09:39:21 GMT"),
            ("http://liftoff.msfc.nasa.gov/2003/06/04.html#item574", "Space Exploration", "http://liftoff.msfc.nasa.gov/news/2003/news-space.asp", "Wed, 04 Jun 2003 08:00:00 GMT"),
        }.Take(version);
        var xml = path.EndsWith(".atom")
            ? $"""
              <?xml version="1.0" encoding="utf-8"?>
              <feed xmlns="http://www.w3.org/2005/Atom">
                <title>Example Feed</title>
                <link href="http://example.org/"/>
                <updated>2003-12-15T10:00:00Z</updated>
                <author><name>John Doe</name></author>
                <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
                {string.Concat(atomEntries.Reverse().Select(e => $"<entry><title>{e.Item2}</title><link href='{e.Item3}'/><id>{e.Item1}</id><updated>{e.Item4}</updated><summary>Some text.</summary></entry>"))}
              </feed>
              """
            : $"""
              <?xml version="1.0"?>
              <rss version="2.0">
                <channel>
                  <title>Liftoff News</title>
                  <link>http://liftoff.msfc.nasa.gov/</link>
                  <description>Liftoff to Space Exploration.</description>
                  {string.Concat(rssItems.Reverse().Select(i => $"<item><title>{i.Item2}</title><link>{i.Item3}</link><pubDate>{i.Item4}</pubDate><guid>{i.Item1}</guid></item>"))}
                </channel>
              </rss>
              """;
        context.Response.StatusCode = 200;
        context.Response.ContentType = path.EndsWith(".atom") ? "application/atom+xml" : "application/rss+xml";
        context.Response.Headers["ETag"] = etag;
        await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(xml));
        context.Response.Close();
    }

    /// <summary>Sends a webhook as an ERP system does; the signature is computed here, independently of the bridge.</summary>
    private async Task<HttpResponseMessage> WebhookAsync(string hook, string body, string? delivery = null, DateTimeOffset? at = null, string secret = Secret,
        bool sign = true)
    {
        delivery ??= Guid.NewGuid().ToString();
        var timestamp = (at ?? _clock.Now).ToUnixTimeSeconds().ToString();
        var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{_config.Webhooks.Port}/hooks/{hook}")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Erp-Timestamp", timestamp);
        request.Headers.Add("X-Erp-Delivery", delivery);
        if (sign)
            request.Headers.Add("X-Erp-Signature", "sha256=" + Convert.ToHexStringLower(
                HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{delivery}.{body}"))));
        return await _http.SendAsync(request);
    }

    private async Task<List<JsonObject>> MessagesFromAsync(string sender, string? roomId = null)
    {
        var chunk = (await C.GetAsync($"/_matrix/client/v3/rooms/{roomId ?? _roomId}/messages?dir=b&limit=200", _alice.AccessToken)).Body!["chunk"]!.AsArray();
        return chunk.OfType<JsonObject>().Where(e => e["sender"]?.GetValue<string>() == sender && e["type"]?.GetValue<string>() == "m.room.message").Reverse().ToList();
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting: {what}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_signed_webhook_is_posted_by_the_systems_user_and_bad_deliveries_are_turned_away()
    {
        var localpart = _alice.UserId[1.._alice.UserId.IndexOf(':')];
        var order = new JsonObject
        {
            ["order"] = new JsonObject { ["id"] = "17", ["customer"] = "ACME <Ltd>", ["status"] = "shipped", ["owner"] = $"{localpart}@corp.example" },
        }.ToJsonString();
        var accepted = await WebhookAsync("orders", order, delivery: "d-1");
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        var posted = Assert.Single(await MessagesFromAsync(SapUser))["content"]!;
        Assert.Equal($"{_alice.UserId}: Order 17 for ACME <Ltd> is now shipped", posted["body"]!.GetValue<string>());
        Assert.Contains("Order <b>17</b> for ACME &lt;Ltd&gt;", posted["formatted_body"]!.GetValue<string>());
        Assert.Equal(_alice.UserId, posted["m.mentions"]!["user_ids"]![0]!.GetValue<string>());
        Assert.Equal("SAP", (await C.GetAsync($"/_matrix/client/v3/profile/{SapUser}/displayname")).Body!["displayname"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.Conflict, (await WebhookAsync("orders", order, delivery: "d-1")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebhookAsync("orders", order, secret: "not-the-secret-at-all")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebhookAsync("orders", order, at: _clock.Now.AddMinutes(-6))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await WebhookAsync("orders", order, sign: false)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await WebhookAsync("orders", "[1,2]")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await WebhookAsync("nope", order)).StatusCode);
        // A body changed on the way fails the signature.
        var tampered = await WebhookAsync("orders", order.Replace("shipped", "cancelled"), secret: "x".PadLeft(20, 'x'));
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);

        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("limited", """{"text":"one"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("limited", """{"text":"two"}""")).StatusCode);
        var limited = await WebhookAsync("limited", """{"text":"three"}""");
        Assert.Equal((HttpStatusCode)429, limited.StatusCode);
        Assert.NotNull(limited.Headers.RetryAfter);

        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(["Order 17", "one", "two"], (await MessagesFromAsync(SapUser)).Select(m => m["content"]!["body"]!.GetValue<string>())
            .Select(b => b.Contains("Order 17") ? "Order 17" : b));
    }

    [Fact]
    public async Task A_room_command_calls_the_erp_and_answers_in_the_thread()
    {
        Assert.Equal("Order 4711: shipped, 129.5 EUR [A-1] [B-2]", await CommandAsync("!erp order 4711"));
        Assert.Equal("SAP has no such record (999).", await CommandAsync("!erp order 999"));
        Assert.Equal("Usage: !erp order <order number>", await CommandAsync("!erp order ../admin"));
        Assert.Equal("Usage: !erp order <order number>", await CommandAsync("!erp order"));
        Assert.Contains("!erp order <order number>", await CommandAsync("!erp"));
    }

    [Fact]
    public async Task Subscribed_events_reach_the_erp_once_after_an_outage_and_a_restart()
    {
        _erpDown = true;
        foreach (var body in new[] { "invoice 17 approved", "lunch?" })
            await C.PutAsync($"/_matrix/client/v3/rooms/{_roomId}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body }, _alice.AccessToken);
        var outbox = Path.Combine(_config.AppService.DataDir, "outbox");
        await WaitForAsync(() => Task.FromResult(Directory.GetFiles(outbox, "*.json").Length == 1), "the matching event queued");

        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Single(_erpReceived);
        Assert.Contains(_problems, p => p.Contains("HTTP 503"));
        // Not due again before its backoff.
        _clock.Advance(TimeSpan.FromSeconds(2));
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Single(_erpReceived);

        // The bridge restarts while the ERP comes back: the stored delivery goes out once, with the same key.
        await StopBridgeAsync();
        _erpDown = false;
        await StartBridgeAsync();
        _clock.Advance(TimeSpan.FromSeconds(10));
        await _bridge.DeliverDueAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(5));
        await _bridge.DeliverDueAsync(CancellationToken.None);
        var attempts = _erpReceived.ToList();
        Assert.Equal([503, 200], attempts.Select(a => a.Status));
        Assert.Single(attempts.Select(a => a.Key).Distinct());
        Assert.Equal("invoice 17 approved", attempts[1].Body["content"]!["body"]!.GetValue<string>());
        Assert.Empty(Directory.GetFiles(outbox, "*.json"));
    }

    private async Task<List<string>> BodiesFromAsync(string sender, string? roomId = null) =>
        (await MessagesFromAsync(sender, roomId)).Select(m => m["content"]!["body"]!.GetValue<string>()).ToList();

    private async Task SendSequenceAsync(int from, int to)
    {
        for (var n = from; n <= to; n++)
            Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("seq", $$"""{"n":"{{n}}"}""")).StatusCode);
    }

    private static IEnumerable<string> Numbers(int from, int to) => Enumerable.Range(from, to - from + 1).Select(n => n.ToString());

    [Fact]
    public async Task Webhooks_keep_their_arrival_order_in_the_room_across_a_homeserver_outage()
    {
        await SendSequenceAsync(1, 10);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(Numbers(1, 10), await BodiesFromAsync(SapUser));

        await _server.KillAsync();
        await SendSequenceAsync(11, 20);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        await _server.StartAsync();
        // Arriving after the recovery, while 11-20 wait for their next attempt: they must not overtake them.
        await SendSequenceAsync(21, 30);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(Numbers(1, 10), await BodiesFromAsync(SapUser));

        _clock.Advance(TimeSpan.FromMinutes(5));
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(Numbers(1, 30), await BodiesFromAsync(SapUser));
    }

    [Fact]
    public async Task Events_out_keep_their_order_per_system_across_an_erp_outage()
    {
        _erpDown = true;
        await C.PutAsync($"/_matrix/client/v3/rooms/{_roomId}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body = "invoice 1" }, _alice.AccessToken);
        var outbox = Path.Combine(_config.AppService.DataDir, "outbox");
        await WaitForAsync(() => Task.FromResult(Directory.GetFiles(outbox, "*.json").Length == 1), "invoice 1 queued");
        await _bridge.DeliverDueAsync(CancellationToken.None);
        _erpDown = false;
        await C.PutAsync($"/_matrix/client/v3/rooms/{_roomId}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body = "invoice 2" }, _alice.AccessToken);
        await WaitForAsync(() => Task.FromResult(Directory.GetFiles(outbox, "*.json").Length == 2), "invoice 2 queued");
        await _bridge.DeliverDueAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(5));
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(["invoice 1", "invoice 1", "invoice 2"], _erpReceived.Select(r => r.Body["content"]!["body"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_killed_bridge_or_homeserver_loses_no_acknowledged_webhook_and_keeps_the_order()
    {
        // The bridge as operators run it, a process of its own, killed with SIGKILL (no chance to flush anything).
        await StopBridgeAsync();
        var configPath = Path.Combine(_dir, "erp-bridge-process.yaml");
        await File.WriteAllTextAsync(configPath, _configYaml(_roomId).Replace("tick_seconds: 5", "tick_seconds: 1").Replace("max_backoff_seconds: 60", "max_backoff_seconds: 2"));
        var output = new StringBuilder();
        var starts = 0;
        async Task<System.Diagnostics.Process> StartAsync()
        {
            var started = ++starts;
            var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dotnet", [typeof(ErpBridge).Assembly.Location, "--config", configPath])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            int Running()
            {
                lock (output)
                    return output.ToString().Split("ERP bridge running").Length - 1;
            }
            await WaitForAsync(() => Task.FromResult(Running() == started || process.HasExited), "the bridge process started");
            Assert.False(process.HasExited, output.ToString());
            return process;
        }
        var bridge = await StartAsync();
        try
        {
            await SendSequenceAsync(1, 10);
            bridge.Kill();
            await bridge.WaitForExitAsync();
            bridge = await StartAsync();
            await SendSequenceAsync(11, 20);
            await _server.KillAsync();
            await SendSequenceAsync(21, 30);
            await _server.StartAsync();
            bridge.Kill();
            await bridge.WaitForExitAsync();
            bridge = await StartAsync();
            await SendSequenceAsync(31, 40);
            await WaitForAsync(async () => (await BodiesFromAsync(SapUser)).Count >= 40, "all 40 acknowledged webhooks posted");
            Assert.Equal(Numbers(1, 40), await BodiesFromAsync(SapUser));
        }
        finally
        {
            if (!bridge.HasExited)
                bridge.Kill();
            await bridge.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Unusable_rooms_are_reported_by_name_joined_when_invited_and_the_other_hooks_keep_serving()
    {
        var privateRoom = (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "private_chat" }, _alice.AccessToken)).Str("room_id");
        var typo = $"#no-such-room:{_server.ServerName}";
        var extraHooks = $"""
            hooks:
              - id: private
                system: sap
                secret: {Secret}
                room: "{privateRoom}"
                template: "{"{{"}text{"}}"}"
              - id: typo
                system: sap
                secret: {Secret}
                room: "{typo}"
                template: "{"{{"}text{"}}"}"

            """;
        await StopBridgeAsync();
        var configPath = Path.Combine(_dir, "erp-bridge.yaml");
        await File.WriteAllTextAsync(configPath, _configYaml(_roomId).Replace("\nhooks:\n", "\n" + extraHooks));
        _config = BridgeConfig.Load<ErpBridgeConfig>(configPath);
        await StartBridgeAsync();
        lock (_problems)
        {
            Assert.Contains(_problems, p => p.Contains(typo) && p.Contains("hook typo") && p.Contains("names no room"));
            Assert.Contains(_problems, p => p.Contains(privateRoom) && p.Contains("hook private") && p.Contains($"invite @erpbot:{_server.ServerName}"));
        }

        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("private", """{"text":"for the private room"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("typo", """{"text":"for a room that is not there"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("seq", """{"n":"still serving"}""")).StatusCode);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(["still serving"], await BodiesFromAsync(SapUser));

        await C.PostAsync($"/_matrix/client/v3/rooms/{privateRoom}/invite", new { user_id = $"@erpbot:{_server.ServerName}" }, _alice.AccessToken);
        await WaitForAsync(async () =>
        {
            await _bridge.DeliverDueAsync(CancellationToken.None);
            return (await BodiesFromAsync(SapUser, privateRoom)).Contains("for the private room");
        }, "the webhook posted once the bridge was invited");
        lock (_problems)
            Assert.Contains(_problems, p => p.Contains(privateRoom) && p.Contains("usable now"));
    }

    [Fact]
    public async Task Refused_webhooks_are_logged_with_hook_delivery_and_reason_but_never_the_secret_or_body()
    {
        const string body = """{"text":"confidential-body-marker"}""";
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebhookAsync("limited", body, delivery: "bad-signature-1", secret: "wrong-secret-wrong-secret")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("limited", body, delivery: "replayed-1")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await WebhookAsync("limited", body, delivery: "replayed-1")).StatusCode);
        var huge = $$"""{"text":"{{new string('x', 1_100_000)}}"}""";
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await WebhookAsync("limited", huge, delivery: "too-large-1")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("limited", body, delivery: "second-1")).StatusCode);
        Assert.Equal((HttpStatusCode)429, (await WebhookAsync("limited", body, delivery: "flood-1")).StatusCode);
        lock (_problems)
        {
            foreach (var (delivery, status) in new[] { ("bad-signature-1", "401"), ("replayed-1", "409"), ("too-large-1", "413"), ("flood-1", "429") })
                Assert.Contains(_problems, p => p.Contains("hook limited") && p.Contains($"delivery {delivery}") && p.Contains($": {status} "));
            Assert.DoesNotContain(_problems, p => p.Contains(Secret) || p.Contains("confidential-body-marker") || p.Contains("wrong-secret") || p.Contains("xxxx"));
        }
    }

    [Fact]
    public async Task A_template_field_missing_from_the_payload_shows_a_placeholder_and_is_logged()
    {
        var order = """{"order":{"id":"18","status":"open"}}""";
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("orders", order, delivery: "no-customer")).StatusCode);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(["Order 18 for [missing order.customer] is now open"], await BodiesFromAsync(SapUser));
        lock (_problems)
            Assert.Contains(_problems, p => p.Contains("hook orders, delivery no-customer") && p.Contains("order.customer"));
    }

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Erp", name));

    private static string Changed(string json, Action<JsonObject> change)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    /// <summary>Sends a webhook as GitHub, GitLab or Jira do; signatures are computed here, independently of the bridge.</summary>
    private async Task<HttpResponseMessage> ProviderHookAsync(string hook, string body, Dictionary<string, string> headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{_config.Webhooks.Port}/hooks/{hook}")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        foreach (var (name, value) in headers)
            request.Headers.Add(name, value);
        return await _http.SendAsync(request);
    }

    private static string HubSignature(string secret, string body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(body)));

    private Task<HttpResponseMessage> GitHubAsync(string @event, string body, string? delivery = null, string secret = GitSecret) =>
        ProviderHookAsync("github", body, new()
        {
            ["X-GitHub-Event"] = @event,
            ["X-GitHub-Delivery"] = delivery ?? Guid.NewGuid().ToString(),
            ["X-Hub-Signature-256"] = HubSignature(secret, body),
        });

    private Task<HttpResponseMessage> GitLabAsync(string @event, string body, string token = GitSecret) =>
        ProviderHookAsync("gitlab", body, new()
        {
            ["X-Gitlab-Event"] = @event,
            ["X-Gitlab-Event-UUID"] = Guid.NewGuid().ToString(),
            ["X-Gitlab-Token"] = token,
        });

    private Task<HttpResponseMessage> JiraAsync(string body, string secret = GitSecret) =>
        ProviderHookAsync("jira", body, new()
        {
            ["X-Atlassian-Webhook-Identifier"] = Guid.NewGuid().ToString(),
            ["X-Hub-Signature"] = HubSignature(secret, body),
        });

    [Fact]
    public async Task GitHub_GitLab_and_Jira_webhooks_are_verified_and_their_common_events_rendered()
    {
        var push = Fixture("github-push.json");
        var pull = Fixture("github-pull_request.json");
        var issue = Fixture("github-issues.json");
        Assert.Equal(HttpStatusCode.Accepted, (await GitHubAsync("push", push, delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitHubAsync("pull_request", pull)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitHubAsync("pull_request", Changed(pull, p => { p["action"] = "closed"; p["pull_request"]!["merged"] = true; }))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitHubAsync("issues", issue)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitHubAsync("issues", Changed(issue, i => i["action"] = "closed"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitHubAsync("issue_comment", Fixture("github-issue_comment.json"))).StatusCode);
        var ping = await GitHubAsync("ping", """{"zen":"Keep it logically awesome.","hook_id":1}""");
        Assert.Equal(HttpStatusCode.Accepted, ping.StatusCode);
        Assert.Equal("ignored", JsonNode.Parse(await ping.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
        var mergeRequest = Fixture("gitlab-merge_request.json");
        Assert.Equal(HttpStatusCode.Accepted, (await GitLabAsync("Push Hook", Fixture("gitlab-push.json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitLabAsync("Merge Request Hook", mergeRequest)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitLabAsync("Merge Request Hook", Changed(mergeRequest, m => m["object_attributes"]!["action"] = "merge"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitLabAsync("Issue Hook", Fixture("gitlab-issue.json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await GitLabAsync("Note Hook", Fixture("gitlab-note.json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await JiraAsync(Fixture("jira-issue_created.json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await JiraAsync(Fixture("jira-issue_updated.json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await JiraAsync(Fixture("jira-comment_created.json"))).StatusCode);

        // Forged, tampered, replayed: refused, logged, nothing posted.
        Assert.Equal(HttpStatusCode.Unauthorized, (await GitHubAsync("push", push, secret: "not-the-secret-0123456789")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ProviderHookAsync("github", push.Replace("Codertocat", "Mallory"), new()
        {
            ["X-GitHub-Event"] = "push", ["X-GitHub-Delivery"] = Guid.NewGuid().ToString(), ["X-Hub-Signature-256"] = HubSignature(GitSecret, push),
        })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await GitHubAsync("push", push, delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await GitLabAsync("Push Hook", Fixture("gitlab-push.json"), token: "wrong-token")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await JiraAsync(Fixture("jira-issue_created.json"), secret: "not-the-secret-0123456789")).StatusCode);
        lock (_problems)
        {
            Assert.Contains(_problems, p => p.Contains("hook github, delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958") && p.Contains(": 409 "));
            Assert.DoesNotContain(_problems, p => p.Contains(GitSecret) || p.Contains("wrong-token"));
        }

        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(
        [
            "Codertocat pushed 1 commit to Codertocat/Hello-World main https://github.com/Codertocat/Hello-World/compare/6113728f27ae...0d1a26e67d8f\n> 0d1a26e Update README.md",
            "Codertocat opened pull request #2 Update the README with new information. in Codertocat/Hello-World https://github.com/Codertocat/Hello-World/pull/2",
            "Codertocat merged pull request #2 Update the README with new information. in Codertocat/Hello-World https://github.com/Codertocat/Hello-World/pull/2",
            "Codertocat opened issue #1 Spelling error in the README file in Codertocat/Hello-World https://github.com/Codertocat/Hello-World/issues/1",
            "Codertocat closed issue #1 Spelling error in the README file in Codertocat/Hello-World https://github.com/Codertocat/Hello-World/issues/1",
            "Codertocat commented on issue #1 Spelling error in the README file in Codertocat/Hello-World https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400\n> You are totally right! I'll get this fixed right away.",
            "jsmith pushed 4 commits to mike/diaspora master http://example.com/mike/diaspora\n> b6568db1 Update Catalan translation to e38cb41.\n> da156088 fixed readme",
            "root opened merge request !1 MS-Viewport in gitlabhq/gitlab-test http://example.com/diaspora/merge_requests/1",
            "root merged merge request !1 MS-Viewport in gitlabhq/gitlab-test http://example.com/diaspora/merge_requests/1",
            "root opened issue #23 New API: create/update/delete file in gitlabhq/gitlab-test http://example.com/diaspora/issues/23",
            "root commented on issue #17 test in gitlabhq/gitlab-test http://example.com/gitlab-org/gitlab-test/issues/17#note_1241\n> Hello world",
            "Mia Krystof created ED-1 Fix the login timeout https://your-domain.atlassian.net/browse/ED-1",
            "Mia Krystof updated ED-1 Fix the login timeout https://your-domain.atlassian.net/browse/ED-1\n> status: To Do → In Progress",
            "Mia Krystof commented on ED-1 Fix the login timeout https://your-domain.atlassian.net/browse/ED-1\n> I can reproduce this on staging.",
        ], await BodiesFromAsync(SapUser));
        var html = (await MessagesFromAsync(SapUser))[1]["content"]!["formatted_body"]!.GetValue<string>();
        Assert.Equal("Codertocat opened pull request <a href=\"https://github.com/Codertocat/Hello-World/pull/2\">#2 Update the README with new information. in Codertocat/Hello-World</a>", html);
    }

    [Fact]
    public async Task A_hooks_transformation_function_renders_its_payload_and_a_runaway_one_is_refused_and_logged()
    {
        var order = """{"order":{"id":"42"},"lines":[{"qty":2,"price":10},{"qty":1,"price":5}]}""";
        Assert.Equal(HttpStatusCode.Accepted, (await WebhookAsync("transformed", order)).StatusCode);
        Assert.Equal((HttpStatusCode)422, (await WebhookAsync("runaway", order, delivery: "runaway-1")).StatusCode);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        var posted = Assert.Single(await MessagesFromAsync(SapUser))["content"]!;
        Assert.Equal(("Order 42 total 25", "<b>Order 42</b>"), (posted["body"]!.GetValue<string>(), posted["formatted_body"]!.GetValue<string>()));
        lock (_problems)
            Assert.Contains(_problems, p => p.Contains("hook runaway, delivery runaway-1") && p.Contains(": 422 the hook's transformation function failed: "));
    }

    /// <summary>Sends a room message as <paramref name="user"/> and returns the bridge's answer in its thread.</summary>
    private async Task<string> CommandAsync(string body, LoggedInUser? user = null)
    {
        user ??= _alice;
        var eventId = (await C.PutAsync($"/_matrix/client/v3/rooms/{_roomId}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body }, user.AccessToken)).Str("event_id");
        JsonObject? reply = null;
        await WaitForAsync(async () => (reply = (await MessagesFromAsync(SapUser)).Concat(await MessagesFromAsync($"@erpbot:{_server.ServerName}"))
            .FirstOrDefault(m => m["content"]?["m.relates_to"]?["m.in_reply_to"]?["event_id"]?.GetValue<string>() == eventId)) is not null, $"a reply to {body}");
        return reply!["content"]!["body"]!.GetValue<string>();
    }

    private async Task<HttpResponseMessage> PostAsync(string url, string body) =>
        await _http.PostAsync(url, new StringContent(body, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task Room_admins_create_list_transform_and_remove_webhooks_that_survive_a_restart()
    {
        var bob = await C.RegisterAsync();
        await C.PostAsync($"/_matrix/client/v3/join/{_roomId}", new { }, bob.AccessToken);
        Assert.Equal("Managing webhooks here needs power level 50.", await CommandAsync("!erp webhook create sneaky", bob));

        Assert.Equal("Created the webhook deploys; its URL was sent to you in a direct message.", await CommandAsync("!erp webhook create deploys"));
        Assert.Equal("This room already has a webhook named deploys.", await CommandAsync("!erp webhook create deploys"));
        string? url = null;
        await WaitForAsync(async () =>
        {
            var sync = (await C.GetAsync("/_matrix/client/v3/sync", _alice.AccessToken)).Body!;
            foreach (var (roomId, _) in sync["rooms"]?["invite"]?.AsObject() ?? [])
                await C.PostAsync($"/_matrix/client/v3/join/{roomId}", new { }, _alice.AccessToken);
            foreach (var (roomId, _) in sync["rooms"]?["join"]?.AsObject() ?? [])
                if (roomId != _roomId)
                    url = (await BodiesFromAsync($"@erpbot:{_server.ServerName}", roomId)).Select(b => System.Text.RegularExpressions.Regex.Match(b, @"http://\S+/webhook/\S+"))
                        .FirstOrDefault(m => m.Success)?.Value ?? url;
            return url is not null;
        }, "the webhook's URL in a direct message");
        Assert.DoesNotContain(await BodiesFromAsync($"@erpbot:{_server.ServerName}"), b => b.Contains("/webhook/"));

        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(url!, """{"text":"deployed v1.2"}""")).StatusCode);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        await StopBridgeAsync();
        await StartBridgeAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(url!, """{"text":"still here after a restart"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync(url!, new StringContent("plain text works too", Encoding.UTF8, "text/plain"))).StatusCode);

        Assert.Equal("The webhook deploys now runs its payloads through the function.",
            await CommandAsync("!erp webhook transform deploys\n```js\nresult = 'Deploy of ' + data.version + ' finished';\n```"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostAsync(url!, """{"version":"2.0"}""")).StatusCode);
        Assert.Equal($"Webhooks here:\ndeploys (created by {_alice.UserId}, with a transformation function)", await CommandAsync("!erp webhook list"));
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(["deployed v1.2", "still here after a restart", "plain text works too", "Deploy of 2.0 finished"],
            (await BodiesFromAsync($"@erpbot:{_server.ServerName}")).Where(b => !b.Contains("ebhook")));

        Assert.Equal("Removed the webhook deploys; its URL no longer works.", await CommandAsync("!erp webhook remove deploys"));
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(url!, """{"text":"too late"}""")).StatusCode);
        lock (_problems)
            Assert.DoesNotContain(_problems, p => p.Contains(url!.Split('/').Last()));
    }

    [Fact]
    public async Task Feeds_post_each_new_entry_once_with_conditional_requests_across_restarts()
    {
        await _bridge.PollFeedsAsync(CancellationToken.None);
        await _bridge.PollFeedsAsync(CancellationToken.None);
        Assert.Equal(2, _feedRequests.Count);
        _clock.Advance(TimeSpan.FromSeconds(61));
        await _bridge.PollFeedsAsync(CancellationToken.None);
        Assert.Equal([(null, 200), (null, 200), ("\"v1\"", 304), ("\"v1\"", 304)], _feedRequests.Select(r => (r.IfNoneMatch, r.Status)).Order());

        _feedVersion = 2;
        _clock.Advance(TimeSpan.FromSeconds(61));
        await _bridge.PollFeedsAsync(CancellationToken.None);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        var bot = $"@erpbot:{_server.ServerName}";
        var expected = new[]
        {
            "Example Feed: Robots Form a Union http://example.org/2003/12/15/union",
            "Liftoff News: Space Exploration http://liftoff.msfc.nasa.gov/news/2003/news-space.asp",
        };
        Assert.Equal(expected.Order(), (await BodiesFromAsync(bot)).Order());

        // After a restart the stored ETags are sent again; a server ignoring them still gets nothing posted twice.
        await StopBridgeAsync();
        await StartBridgeAsync();
        _feedRequests.Clear();
        await _bridge.PollFeedsAsync(CancellationToken.None);
        Assert.All(_feedRequests, r => Assert.Equal(("\"v2\"", 304), (r.IfNoneMatch, r.Status)));
        _feedIgnoresETag = true;
        _clock.Advance(TimeSpan.FromSeconds(61));
        await _bridge.PollFeedsAsync(CancellationToken.None);
        await _bridge.DeliverDueAsync(CancellationToken.None);
        Assert.Equal(expected.Order(), (await BodiesFromAsync(bot)).Order());
    }

    [Fact]
    public async Task A_config_error_names_the_yaml_key_and_the_bridge_exits_2()
    {
        var configPath = Path.Combine(_dir, "erp-bridge-bad.yaml");
        await File.WriteAllTextAsync(configPath, _configYaml(_roomId).Replace("rate_limit_per_minute: 2", "rate_limit_per_minute: ten"));
        using var bridge = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dotnet", [typeof(ErpBridge).Assembly.Location, "--config", configPath])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var error = await bridge.StandardError.ReadToEndAsync();
        await bridge.WaitForExitAsync();
        Assert.Equal(2, bridge.ExitCode);
        Assert.Contains("hooks[1].rate_limit_per_minute: 'ten' is not a whole number", error);
        Assert.DoesNotContain("System.", error);
        Assert.DoesNotContain("Matrix.", error);
    }

    public async Task DisposeAsync()
    {
        await StopBridgeAsync();
        await _server.DisposeAsync();
        await _database.DisposeAsync();
        await _erp.DisposeAsync();
        await _feedServer.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
