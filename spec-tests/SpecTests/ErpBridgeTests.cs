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
        string Config(string room) => $"""
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
        await File.WriteAllTextAsync(configPath, Config("!placeholder:localhost"));
        BridgeRuntime.WriteRegistration(BridgeConfig.Load<ErpBridgeConfig>(configPath));
        await _server.StartAsync();
        _alice = await C.RegisterAsync();
        _roomId = (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "public_chat" }, _alice.AccessToken)).Str("room_id");
        await File.WriteAllTextAsync(configPath, Config(_roomId));
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
    }

    private async Task StopBridgeAsync()
    {
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

    private async Task<List<JsonObject>> MessagesFromAsync(string sender)
    {
        var chunk = (await C.GetAsync($"/_matrix/client/v3/rooms/{_roomId}/messages?dir=b&limit=200", _alice.AccessToken)).Body!["chunk"]!.AsArray();
        return chunk.OfType<JsonObject>().Where(e => e["sender"]?.GetValue<string>() == sender && e["type"]?.GetValue<string>() == "m.room.message").Reverse().ToList();
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
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
