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
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-erp-").FullName;
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly List<string> _problems = [];
    private readonly ConcurrentQueue<(string Key, JsonNode Body, int Status)> _erpReceived = new();
    private volatile bool _erpDown;
    private LoopbackListener _erp = null!;
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
        async Task<string> CommandAsync(string body)
        {
            var eventId = (await C.PutAsync($"/_matrix/client/v3/rooms/{_roomId}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body }, _alice.AccessToken)).Str("event_id");
            JsonObject? reply = null;
            await WaitForAsync(async () => (reply = (await MessagesFromAsync(SapUser)).Concat(await MessagesFromAsync($"@erpbot:{_server.ServerName}"))
                .FirstOrDefault(m => m["content"]?["m.relates_to"]?["m.in_reply_to"]?["event_id"]?.GetValue<string>() == eventId)) is not null, $"a reply to {body}");
            Assert.Equal("m.thread", reply!["content"]!["m.relates_to"]!["rel_type"]!.GetValue<string>());
            return reply["content"]!["body"]!.GetValue<string>();
        }
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

    public async Task DisposeAsync()
    {
        await StopBridgeAsync();
        await _server.DisposeAsync();
        await _database.DisposeAsync();
        await _erp.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
