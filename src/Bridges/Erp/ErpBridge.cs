using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>
/// The ERP hookup: webhooks from ERP systems (and GitHub, GitLab, Jira) posted into their rooms by one Matrix user per
/// system, webhooks room admins create, RSS/Atom feeds, room commands answered from the systems' REST APIs, and room
/// events matching a subscription posted to a system. Both
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
    private readonly ConfiguredRooms _rooms;
    private readonly Dictionary<string, (Template Text, Template? Html, Template? Mention)> _hookTemplates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (Template Text, Template? Html)> _replyTemplates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PayloadTransform> _hookTransforms = new(StringComparer.Ordinal);
    private readonly GenericWebhookStore _generic;
    private readonly List<FeedPoller> _feeds;
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
        _rooms = new ConfiguredRooms(config, service);
        _rooms.Problem += problem => Problem?.Invoke(problem);
        foreach (var hook in config.Hooks)
        {
            _hookTemplates[hook.Id] = (Template.Parse(hook.Template), hook.HtmlTemplate is null ? null : Template.Parse(hook.HtmlTemplate, html: true),
                hook.Mention is null ? null : Template.Parse(hook.Mention));
            if (hook.Transform is not null)
                _hookTransforms[hook.Id] = PayloadTransform.Parse(hook.Transform, config.Transforms.Limits);
        }
        _generic = new GenericWebhookStore(service.State);
        _feeds = config.Feeds.Select(f => new FeedPoller(f, http, service.State, clock)).ToList();
        foreach (var command in config.Commands)
            _replyTemplates[command.Name] = (Template.Parse(command.Reply), command.HtmlReply is null ? null : Template.Parse(command.HtmlReply, html: true));
        service.OnEvent = HandleEventAsync;
        service.OnMessage = HandleMessageAsync;
        service.OnInvite = HandleInviteAsync;
    }

    /// <summary>What went wrong (for the log): failed deliveries, refused webhooks, unusable rooms; what, and why.</summary>
    public event Action<string>? Problem;

    /// <summary>A signal that a delivery was queued, so the worker need not wait for its next tick.</summary>
    public event Action? Queued;

    /// <summary>The Matrix user that speaks for an ERP system.</summary>
    public string SystemUserId(string systemId) => _config.UserId(systemId);

    /// <summary>
    /// Sets up each system's user and prepares the configured rooms. A room that cannot be used yet is reported (by
    /// name, with the hooks, subscriptions and commands using it) and joined once its users are invited; its webhooks
    /// are still accepted and wait in the outbox, and every other room works meanwhile.
    /// </summary>
    public async Task StartAsync(CancellationToken ct)
    {
        foreach (var system in _config.Systems)
            await _service.Intent(SystemUserId(system.Id)).SetDisplayNameAsync(system.DisplayName.Length > 0 ? system.DisplayName : system.Id, ct);
        await _rooms.PrepareAllAsync(ct);
    }

    /// <summary>
    /// One of the bridge's users is invited. To a configured room, it joins (then the other users the room needs) and
    /// the deliveries waiting for that room go at once; the bridge's own user also joins any room a user of this
    /// homeserver invites it to, where room admins can then manage webhooks.
    /// </summary>
    private async Task HandleInviteAsync(RoomEvent invite, CancellationToken ct)
    {
        try
        {
            var configured = await _rooms.ConfiguredAsAsync(invite.RoomId, ct);
            var local = invite.Sender.EndsWith(":" + _config.Homeserver.ServerName, StringComparison.Ordinal);
            if (configured.Count == 0 && !(invite.StateKey == _service.Bot.UserId && local))
                return;
            await _service.Intent(invite.StateKey!).EnsureJoinedAsync(invite.RoomId, ct);
            foreach (var room in configured)
                if (await _rooms.PrepareAsync(room, ct))
                {
                    Problem?.Invoke($"room {room} ({_rooms.UsesOf(room)}) is usable now");
                    _outbox.RetryNow(item => item.Kind == ToMatrix && RoomOf(item) == room, _clock.GetUtcNow());
                    Queued?.Invoke();
                }
        }
        catch (Exception e) when (e is MatrixRequestException or HttpRequestException)
        {
            // Not rethrown: the homeserver would resend the transaction; the room is tried again at the next delivery.
            Problem?.Invoke($"{invite.RoomId}: accepting the invitation of {invite.StateKey} failed ({e.Message})");
        }
    }

    /// <summary>Room events matching a subscription are queued for their ERP system before the transaction is acknowledged.</summary>
    private Task HandleEventAsync(RoomEvent e, CancellationToken ct)
    {
        if (_service.Registration.IsInterestedInUser(e.Sender))
            return Task.CompletedTask;
        var queued = false;
        foreach (var (subscription, i) in _config.Subscriptions.Select((s, i) => (s, i)))
        {
            if (!_rooms.Names(subscription.Room, e.RoomId) || !subscription.EventTypes.Contains(e.Type))
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

    /// <summary>
    /// Tries every delivery that is due, in the order they arrived per lane (a room, or an ERP system): a delivery
    /// that failed holds back the later ones of its lane until it is through, so an outage never reorders a room.
    /// Failed ones wait exponentially longer; refused ones are set aside and no longer hold their lane.
    /// </summary>
    public async Task DeliverDueAsync(CancellationToken ct)
    {
        await _deliveryLock.WaitAsync(ct);
        try
        {
            var now = _clock.GetUtcNow();
            var held = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in _outbox.Waiting())
            {
                var lane = Lane(item);
                if (held.Contains(lane) || item.NextAttempt > now)
                {
                    held.Add(lane);
                    continue;
                }
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
                held.Add(lane);
                Problem?.Invoke($"delivery {item.Id} failed ({error.Message}); next attempt in {delay.TotalSeconds:0} s");
            }
        }
        finally
        {
            _deliveryLock.Release();
        }
    }

    private sealed record DeliveryError(string Message, bool Permanent);

    private string Lane(OutboxItem item) => item.Kind == ToMatrix
        ? "room " + RoomOf(item)
        : "system " + item.Payload["system"]?.GetValue<string>();

    /// <summary>A message waiting for a room: the room (ID or configured alias), who posts it and what.</summary>
    private static JsonObject Post(string room, string sender, JsonObject content) => new() { ["room"] = room, ["sender"] = sender, ["content"] = content };

    private string RoomOf(OutboxItem item) => PostOf(item)?["room"]?.GetValue<string>() ?? "";

    /// <summary>The message an item posts; outboxes written before messages were rendered on arrival hold the hook's payload instead.</summary>
    private JsonObject? PostOf(OutboxItem item)
    {
        if (item.Payload["hook"]?.GetValue<string>() is not { } hookId)
            return item.Payload;
        var hook = _config.Hooks.FirstOrDefault(h => h.Id == hookId);
        return hook is null ? null
            : Post(hook.Room, SystemUserId(hook.System), RenderTemplates(hook, item.Payload["body"], item.Payload["delivery"]?.GetValue<string>() ?? ""));
    }

    private async Task<DeliveryError?> PostToRoomAsync(OutboxItem item, CancellationToken ct)
    {
        var post = PostOf(item);
        var room = post?["room"]?.GetValue<string>() ?? "";
        if (post?["sender"]?.GetValue<string>() is not { } sender || post["content"] is not JsonObject content)
            return new DeliveryError("its hook is no longer configured", Permanent: true);
        var intent = _service.Intent(sender);
        try
        {
            if (await _rooms.ResolveAsync(room, ct) is not { } roomId)
                return new DeliveryError($"the alias {room} names no room", Permanent: false);
            await intent.EnsureJoinedAsync(roomId, ct);
            await intent.SendMessageAsync(roomId, (JsonObject)content.DeepClone(), TransactionId(item.Id), ct);
            return null;
        }
        catch (MatrixRequestException e)
        {
            // A room the user may not join or post in yet waits for an invitation or a power level, like an outage.
            var permanent = e.Status is >= 400 and < 500 and not (403 or 404 or 429);
            return new DeliveryError($"the homeserver answered {e.Status} {e.Errcode}: {e.Message} (room {room})", permanent);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new DeliveryError($"the homeserver is unreachable: {e.Message}", Permanent: false);
        }
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

    /// <summary>
    /// What a template inserts for a field the data lacks: the configured placeholder, logged (with where it was
    /// rendered) so a renamed field in the ERP's payload shows up instead of leaving a silent gap.
    /// </summary>
    private Func<string, string> MissingFields(string where) => field =>
    {
        Problem?.Invoke($"{where}: the template's field {{{{{field}}}}} is not in the data");
        return _config.Templates.MissingField.Replace("{field}", field);
    };

    private static string TransactionId(string itemId) => "erp-" + Hash(itemId);
    public static string IdempotencyKey(string itemId) => Hash(itemId);
    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..32];
}
