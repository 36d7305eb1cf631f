using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.AppServices.Sdk;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Matrix.Bridges.Erp;

/// <summary>
/// The ERP hookup: webhooks from ERP systems posted into their rooms by one Matrix user per system, room commands
/// answered from the systems' REST APIs, and room events matching a subscription posted to a system. Both
/// directions go through the persisted <see cref="Outbox"/>: a webhook is answered 202 once stored, an event
/// subscription is stored before the homeserver's transaction is acknowledged, and each delivery is retried with
/// backoff until it arrives, under one idempotency key (a Matrix transaction ID, an <c>Idempotency-Key</c> header),
/// so an outage delays a delivery but never loses or duplicates it.
/// </summary>
public sealed partial class ErpBridge
{
    private const string ToMatrix = "matrix";
    private const string ToErp = "erp";

    private readonly ErpBridgeConfig _config;
    private readonly AppService _service;
    private readonly Outbox _outbox;
    private readonly WebhookGuard _guard;
    private readonly TimeProvider _clock;
    private readonly HttpClient _http;
    private readonly Dictionary<string, string> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (Template Text, Template? Html, Template? Mention)> _hookTemplates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (Template Text, Template? Html)> _replyTemplates = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _webhookLock = new(1, 1);
    private readonly SemaphoreSlim _deliveryLock = new(1, 1);

    public ErpBridge(ErpBridgeConfig config, AppService service, Outbox outbox, TimeProvider clock, HttpClient http)
    {
        _config = config;
        _service = service;
        _outbox = outbox;
        _clock = clock;
        _http = http;
        _guard = new WebhookGuard(service.State, clock, TimeSpan.FromSeconds(config.Webhooks.ReplayWindowSeconds));
        foreach (var hook in config.Hooks)
            _hookTemplates[hook.Id] = (Template.Parse(hook.Template), hook.HtmlTemplate is null ? null : Template.Parse(hook.HtmlTemplate, html: true),
                hook.Mention is null ? null : Template.Parse(hook.Mention));
        foreach (var command in config.Commands)
            _replyTemplates[command.Name] = (Template.Parse(command.Reply), command.HtmlReply is null ? null : Template.Parse(command.HtmlReply, html: true));
        service.OnEvent = HandleEventAsync;
        service.OnMessage = HandleMessageAsync;
    }

    /// <summary>Deliveries that failed (for the log): what, and why.</summary>
    public event Action<string>? Problem;

    /// <summary>A signal that a delivery was queued, so the worker need not wait for its next tick.</summary>
    public event Action? Queued;

    /// <summary>The Matrix user that speaks for an ERP system.</summary>
    public string SystemUserId(string systemId) => _config.UserId(systemId);

    /// <summary>Resolves the configured rooms, sets up each system's user and joins it to the rooms it posts in.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        foreach (var room in _config.Hooks.Select(h => h.Room).Concat(_config.Subscriptions.Select(s => s.Room)).Concat(_config.Commands.SelectMany(c => c.Rooms)).Distinct())
            _rooms[room] = room.StartsWith('#')
                ? await _service.Bot.ResolveAliasAsync(room, ct) ?? throw new BridgeConfigException($"the alias {room} names no room")
                : room;
        foreach (var system in _config.Systems)
        {
            var intent = _service.Intent(SystemUserId(system.Id));
            await intent.SetDisplayNameAsync(system.DisplayName.Length > 0 ? system.DisplayName : system.Id, ct);
            foreach (var room in _config.Hooks.Where(h => h.System == system.Id).Select(h => _rooms[h.Room]).Distinct())
                await intent.EnsureJoinedAsync(room, ct);
        }
        foreach (var room in _config.Subscriptions.Select(s => _rooms[s.Room]).Distinct())
            await _service.Bot.EnsureJoinedAsync(room, ct);
    }

    /// <summary>Maps <c>POST /hooks/{hookId}</c>.</summary>
    public void MapWebhooks(IEndpointRouteBuilder app) => app.MapPost("/hooks/{hookId}", HandleWebhookAsync);

    private async Task HandleWebhookAsync(HttpContext context)
    {
        var hookId = context.Request.RouteValues["hookId"] as string ?? "";
        var hook = _config.Hooks.FirstOrDefault(h => h.Id == hookId);
        if (hook is null)
        {
            await AnswerAsync(context, new WebhookRejection(404, "no such hook"));
            return;
        }
        var body = await ReadBodyAsync(context.Request, _config.Webhooks.MaxBodyBytes, context.RequestAborted);
        if (body is null)
        {
            await AnswerAsync(context, new WebhookRejection(413, $"the body is larger than {_config.Webhooks.MaxBodyBytes} bytes"));
            return;
        }
        var headers = context.Request.Headers;
        var deliveryId = headers[WebhookGuard.DeliveryHeader].ToString();
        await _webhookLock.WaitAsync(context.RequestAborted);
        try
        {
            var rejection = _guard.Check(hook, headers[WebhookGuard.SignatureHeader], headers[WebhookGuard.TimestampHeader], deliveryId, body);
            JsonNode? payload = null;
            if (rejection is null)
            {
                try
                {
                    payload = JsonNode.Parse(body);
                }
                catch (System.Text.Json.JsonException)
                {
                }
                if (payload is not JsonObject)
                    rejection = new WebhookRejection(400, "the body is not a JSON object");
            }
            if (rejection is not null)
            {
                await AnswerAsync(context, rejection);
                return;
            }
            var id = $"hook:{hook.Id}:{deliveryId}";
            _outbox.Enqueue(id, ToMatrix, new JsonObject { ["hook"] = hook.Id, ["delivery"] = deliveryId, ["body"] = payload }, _clock.GetUtcNow());
            _guard.MarkSeen(hook, deliveryId);
        }
        finally
        {
            _webhookLock.Release();
        }
        Queued?.Invoke();
        context.Response.StatusCode = 202;
        await context.Response.WriteAsJsonAsync(new { status = "accepted", delivery = deliveryId });
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken ct)
    {
        if (request.ContentLength > limit)
            return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit)
                return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static async Task AnswerAsync(HttpContext context, WebhookRejection rejection)
    {
        context.Response.StatusCode = rejection.Status;
        if (rejection.RetryAfter is { } retryAfter)
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await context.Response.WriteAsJsonAsync(new { error = rejection.Message });
    }

    /// <summary>Room events matching a subscription are queued for their ERP system before the transaction is acknowledged.</summary>
    private Task HandleEventAsync(RoomEvent e, CancellationToken ct)
    {
        if (_service.Registration.IsInterestedInUser(e.Sender))
            return Task.CompletedTask;
        var queued = false;
        foreach (var (subscription, i) in _config.Subscriptions.Select((s, i) => (s, i)))
        {
            if (!_rooms.TryGetValue(subscription.Room, out var roomId) || roomId != e.RoomId || !subscription.EventTypes.Contains(e.Type))
                continue;
            if (subscription.BodyPattern is { } pattern && !Regex.IsMatch(e.Message?.Body ?? "", pattern, RegexOptions.None, TimeSpan.FromSeconds(1)))
                continue;
            queued |= _outbox.Enqueue($"sub:{i}:{e.EventId}", ToErp, new JsonObject
            {
                ["system"] = subscription.System,
                ["method"] = subscription.Method,
                ["path"] = subscription.Path,
                ["event"] = e.Json.DeepClone(),
            }, _clock.GetUtcNow());
        }
        if (queued)
            Queued?.Invoke();
        return Task.CompletedTask;
    }

    /// <summary>Tries every delivery that is due; failed ones wait exponentially longer, refused ones are set aside.</summary>
    public async Task DeliverDueAsync(CancellationToken ct)
    {
        await _deliveryLock.WaitAsync(ct);
        try
        {
            foreach (var item in _outbox.Due(_clock.GetUtcNow()))
            {
                var error = item.Kind == ToMatrix ? await PostToRoomAsync(item, ct) : await SendToErpAsync(item, ct);
                if (error is null)
                {
                    _outbox.Complete(item);
                    continue;
                }
                if (error.Permanent)
                {
                    _outbox.Park(item, error.Message);
                    Problem?.Invoke($"delivery {item.Id} refused for good, set aside in outbox/failed: {error.Message}");
                    continue;
                }
                var delay = TimeSpan.FromSeconds(Math.Min(_config.Delivery.MaxBackoffSeconds, _config.Delivery.TickSeconds * Math.Pow(2, item.Attempts)));
                _outbox.Retry(item, error.Message, _clock.GetUtcNow(), delay);
                Problem?.Invoke($"delivery {item.Id} failed ({error.Message}); next attempt in {delay.TotalSeconds:0} s");
            }
        }
        finally
        {
            _deliveryLock.Release();
        }
    }

    private sealed record DeliveryError(string Message, bool Permanent);

    private async Task<DeliveryError?> PostToRoomAsync(OutboxItem item, CancellationToken ct)
    {
        var hook = _config.Hooks.FirstOrDefault(h => h.Id == item.Payload["hook"]?.GetValue<string>());
        if (hook is null)
            return new DeliveryError("its hook is no longer configured", Permanent: true);
        var content = RenderWebhook(hook, item.Payload["body"]);
        var intent = _service.Intent(SystemUserId(hook.System));
        try
        {
            await intent.EnsureJoinedAsync(_rooms[hook.Room], ct);
            await intent.SendMessageAsync(_rooms[hook.Room], content, TransactionId(item.Id), ct);
            return null;
        }
        catch (MatrixRequestException e)
        {
            return new DeliveryError($"the homeserver answered {e.Status} {e.Errcode}: {e.Message}", Permanent: e.Status is >= 400 and < 500 and not 429);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new DeliveryError($"the homeserver is unreachable: {e.Message}", Permanent: false);
        }
    }

    /// <summary>The message for a webhook: the templates applied to its body, the responsible user mentioned.</summary>
    public JsonObject RenderWebhook(ErpBridgeConfig.HookSection hook, JsonNode? body)
    {
        var (text, html, mention) = _hookTemplates[hook.Id];
        var plain = text.Render(body);
        var formatted = html?.Render(body) ?? WebUtility.HtmlEncode(plain).Replace("\n", "<br>");
        var content = new JsonObject { ["msgtype"] = "m.text" };
        var mentioned = mention is null ? null : MatrixUser(_config.System(hook.System), mention.Render(body).Trim());
        if (mentioned is not null)
        {
            plain = $"{mentioned}: {plain}";
            formatted = $"<a href=\"https://matrix.to/#/{Uri.EscapeDataString(mentioned)}\">{WebUtility.HtmlEncode(mentioned)}</a>: {formatted}";
        }
        content["body"] = plain;
        content["format"] = "org.matrix.custom.html";
        content["formatted_body"] = formatted;
        content["m.mentions"] = mentioned is null ? new JsonObject() : new JsonObject { ["user_ids"] = new JsonArray(mentioned) };
        return content;
    }

    /// <summary>
    /// The Matrix user an ERP names: from the system's <c>users</c> map, a Matrix ID as is, else a local user by the
    /// name (or an e-mail address's local part); null when nothing usable is named.
    /// </summary>
    private string? MatrixUser(ErpBridgeConfig.SystemSection system, string name)
    {
        if (name.Length == 0)
            return null;
        if (system.Users.TryGetValue(name, out var mapped))
            return mapped;
        if (name.StartsWith('@') && name.Contains(':'))
            return name;
        var localpart = (name.Contains('@') ? name[..name.IndexOf('@')] : name).ToLowerInvariant();
        return Regex.IsMatch(localpart, "^[a-z0-9._=/+-]+$") ? $"@{localpart}:{_config.Homeserver.ServerName}" : null;
    }

    private async Task<DeliveryError?> SendToErpAsync(OutboxItem item, CancellationToken ct)
    {
        var systemId = item.Payload["system"]?.GetValue<string>();
        var system = _config.Systems.FirstOrDefault(s => s.Id == systemId);
        if (system is null)
            return new DeliveryError("its system is no longer configured", Permanent: true);
        try
        {
            var answer = await new ErpClient(_http, system).SendAsync(item.Payload["method"]!.GetValue<string>(), item.Payload["path"]!.GetValue<string>(),
                item.Payload["event"], IdempotencyKey(item.Id), ct);
            if (answer.IsSuccess)
                return null;
            return new DeliveryError($"{system.Id} answered HTTP {answer.Status}", answer.IsPermanentFailure);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new DeliveryError($"{system.Id} is unreachable: {e.Message}", Permanent: false);
        }
    }

    private static string TransactionId(string itemId) => "erp-" + Hash(itemId);
    public static string IdempotencyKey(string itemId) => Hash(itemId);
    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..32];
}
