using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Push;

/// <summary>
/// Delivers notifications to push gateways (<c>POST /_matrix/push/v1/notify</c>). Each pusher has a durable position
/// in its user's notifying events, so nothing is lost across restarts: events are sent in order, a failing gateway is
/// retried with exponential backoff (other pushers go on meanwhile), pushkeys the gateway rejects lose their pushers,
/// and notifications older than a day are dropped rather than delivered late. After a read receipt, a user's gateways
/// get the new badge count in a notification of its own when it differs from the last one sent (as from Synapse).
/// An event wakes only the pushers of its room's local members; every pusher is looked at in a full pass at start,
/// when pushers change, and once a minute (a safety net for notifications written without an event here). In a
/// deployment with pushers (<c>worker.pusher_instances</c>) the main process delivers nothing: it tells each user's
/// pusher, chosen by a hash of the user ID, over Redis.
/// </summary>
public sealed class PushSender(
    Database db, PusherStore pushers, PushActionStore actions, RoomStore rooms, RemoteInviteStore remoteInvites, GuardedHttp guarded,
    TimeProvider clock, Config.HomeserverConfig config, Replication.ReplicationBus replication, ILogger<PushSender> logger)
    : BackgroundService, IEventListener
{
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FullPassInterval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan MaxAge = TimeSpan.FromDays(1);
    private const int BatchSize = 50;
    private const int Concurrency = 8;

    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly ConcurrentDictionary<(string, string, string), (int Failures, DateTimeOffset RetryAt)> _backoff = new();
    private readonly ConcurrentDictionary<(string, string, string), long> _lastBadge = new();
    private readonly ConcurrentDictionary<string, bool> _badgeChecks = new(StringComparer.Ordinal);
    // Users who may have new notifications since the last pass, and (as of the last full pass, plus any added since) the
    // users with pushers: an event in a room without them costs no query.
    private readonly ConcurrentDictionary<string, bool> _notified = new(StringComparer.Ordinal);
    private volatile IReadOnlySet<string> _usersWithPushers = new HashSet<string>();
    private volatile bool _fullPassDue = true;
    private DateTimeOffset _lastFullPass;

    private enum Outcome { Sent, Skipped, Rejected, Failed }

    /// <summary>Whether this process delivers notifications: it is a pusher, or the main process when there is none.</summary>
    public bool Pushes => config.Worker.TakesPart(config.Worker.PusherInstances);

    private bool PushesFor(string userId) => config.Worker.Handles(config.Worker.PusherInstances, userId);

    /// <summary>Every pusher is looked at soon: pushers were added or changed.</summary>
    public void Wake()
    {
        if (!Pushes)
        {
            replication.Publish(new Replication.ReplicationMessage.PushWake(All: true));
            return;
        }
        _fullPassDue = true;
        Signal();
    }

    /// <summary>The users' pushers are looked at soon: they may have new notifications.</summary>
    public void WakeFor(IEnumerable<string> userIds)
    {
        if (!Pushes)
        {
            replication.Publish(new Replication.ReplicationMessage.PushWake(Users: userIds.ToList()));
            return;
        }
        var any = false;
        foreach (var userId in userIds.Where(PushesFor))
        {
            _notified[userId] = true;
            any = true;
        }
        if (any)
            Signal();
    }

    /// <summary>Whether any user this process pushes for had pushers at the last full pass (one follows every pusher change).</summary>
    public bool AnyoneHasPushers => _usersWithPushers.Count > 0;

    /// <summary>Those an event in a room may notify: its members with pushers (fewer to look through than a big room's members), and an invitee.</summary>
    public void WakeForRoom(IReadOnlySet<string> members, string? invitee)
    {
        var withPushers = _usersWithPushers;
        WakeFor(withPushers.Where(members.Contains).Append(invitee).OfType<string>().Where(withPushers.Contains));
    }

    private void Signal()
    {
        if (_wake.CurrentCount == 0)
            try { _wake.Release(); } catch (SemaphoreFullException) { }
    }

    public void OnReadReceipt(string userId)
    {
        if (!Pushes)
        {
            replication.Publish(new Replication.ReplicationMessage.PushWake(Badge: userId));
            return;
        }
        if (!PushesFor(userId))
            return;
        _badgeChecks[userId] = true;
        Signal();
    }

    public Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore) => Task.CompletedTask;

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
        var invitee = pdu.Membership == "invite" ? pdu.StateKey : null;
        if (Pushes)
            WakeForRoom(roomAfter.JoinedMembers, invitee);
        else
            replication.Publish(new Replication.ReplicationMessage.PushWake(RoomId: roomAfter.RoomId, Users: invitee is null ? [] : [invitee]));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Pushes)
            return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(Tick, stoppingToken);
                await PassAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Push delivery pass failed; retrying");
            }
        }
    }

    private async Task PassAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        // Receipts of users without (due) pushers are dropped: as in Synapse, only the pushers there are get a badge.
        var badged = _badgeChecks.Keys.Where(userId => _badgeChecks.TryRemove(userId, out _)).ToHashSet(StringComparer.Ordinal);
        var notified = _notified.Keys.Where(userId => _notified.TryRemove(userId, out _)).ToHashSet(StringComparer.Ordinal);
        List<PusherRow> candidates;
        if (_fullPassDue || now - _lastFullPass >= FullPassInterval)
        {
            _fullPassDue = false;
            _lastFullPass = now;
            candidates = (await db.ReadAsync(s => pushers.AllAsync(s), ct)).Where(p => PushesFor(p.UserId)).ToList();
            _usersWithPushers = candidates.Select(p => p.UserId).ToHashSet(StringComparer.Ordinal);
        }
        else
        {
            // Pushers waiting for a retry that is now due are looked at again with those that may have news.
            var users = notified.Concat(badged).Concat(_backoff.Where(b => b.Value.RetryAt <= now).Select(b => b.Key.Item1))
                .Where(_usersWithPushers.Contains).Distinct().ToList();
            if (users.Count == 0)
                return;
            candidates = await db.ReadAsync(s => pushers.ForUsersAsync(s, users), ct);
        }
        var due = candidates.Where(p => !_backoff.TryGetValue(Key(p), out var b) || b.RetryAt <= now).ToList();
        await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = Concurrency, CancellationToken = ct },
            async (pusher, token) =>
            {
                await DeliverAsync(pusher, token);
                if (badged.Contains(pusher.UserId))
                    await SendBadgeAsync(pusher, token);
            });
    }

    /// <summary>A notification with only the counts (Synapse's shape: empty ID and sender, no type).</summary>
    private async Task SendBadgeAsync(PusherRow pusher, CancellationToken ct)
    {
        var unread = await db.ReadAsync(s => actions.UnreadTotalAsync(s, pusher.UserId), ct);
        if (_lastBadge.TryGetValue(Key(pusher), out var last) && last == unread)
            return;
        var (url, data) = Target(pusher);
        var body = new JsonObject
        {
            ["id"] = "", ["type"] = null, ["sender"] = "", ["counts"] = new JsonObject { ["unread"] = unread },
            ["devices"] = new JsonArray(Device(pusher, data)),
        };
        if (await PostAsync(pusher, url, body, ct) == Outcome.Sent)
            _lastBadge[Key(pusher)] = unread;
    }

    private async Task DeliverAsync(PusherRow pusher, CancellationToken ct)
    {
        var pending = await db.ReadAsync(s => actions.AfterAsync(s, pusher.UserId, pusher.LastStreamOrdering, BatchSize), ct);
        foreach (var notification in pending)
        {
            var outcome = clock.GetUtcNow().ToUnixTimeMilliseconds() - notification.Ts > MaxAge.TotalMilliseconds
                ? Outcome.Skipped
                : await SendAsync(pusher, notification, ct);
            switch (outcome)
            {
                case Outcome.Sent or Outcome.Skipped:
                    _backoff.TryRemove(Key(pusher), out _);
                    await db.WriteAsync(s => pushers.AdvanceAsync(s, pusher, notification.StreamOrdering), ct);
                    break;
                case Outcome.Rejected:
                    _backoff.TryRemove(Key(pusher), out _);
                    await db.WriteAsync(s => pushers.DeletePushkeyAsync(s, pusher.AppId, pusher.Pushkey), ct);
                    logger.LogInformation("Push gateway rejected a pushkey of app {AppId}: its pushers are removed", pusher.AppId);
                    return;
                case Outcome.Failed:
                    var failures = _backoff.TryGetValue(Key(pusher), out var previous) ? previous.Failures + 1 : 1;
                    var delay = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, Math.Pow(2, failures - 1)));
                    _backoff[Key(pusher)] = (failures, clock.GetUtcNow() + delay);
                    return;
            }
        }
        if (pending.Count == BatchSize)
            WakeFor([pusher.UserId]);
    }

    private async Task<Outcome> SendAsync(PusherRow pusher, PushActionRow notification, CancellationToken ct)
    {
        var (url, data) = Target(pusher);
        if (await EventAsync(pusher.UserId, notification, ct) is not { } found)
            return Outcome.Skipped;
        var (ev, inviteState) = found;
        var type = Text(ev["type"]);
        var tweaks = new JsonObject();
        foreach (var action in JsonNode.Parse(notification.Actions)!.AsArray().OfType<JsonObject>())
            if (action["set_tweak"]?.GetValue<string>() is { } tweak)
                tweaks[tweak] = action["value"]?.DeepClone() ?? (tweak == "highlight" ? true : null);
        var highPriority = type == "m.room.encrypted" || tweaks.ContainsKey("sound") || tweaks["highlight"] is JsonValue h && h.TryGetValue<bool>(out var on) && on;
        var unread = await db.ReadAsync(s => actions.UnreadTotalAsync(s, pusher.UserId), ct);
        var body = new JsonObject
        {
            ["event_id"] = notification.EventId,
            ["room_id"] = notification.RoomId,
            ["prio"] = highPriority ? "high" : "low",
            ["counts"] = new JsonObject { ["unread"] = unread },
            ["devices"] = new JsonArray(Device(pusher, data, tweaks)),
        };
        // Any other format (clients send some) gets the full one, as from Synapse.
        if (!(data["format"] is JsonValue format && format.TryGetValue<string>(out var name) && name == "event_id_only"))
            await AddEventDetailsAsync(body, ev, inviteState, pusher.UserId, ct);
        var outcome = await PostAsync(pusher, url, body, ct);
        if (outcome == Outcome.Sent)
            _lastBadge[Key(pusher)] = unread;
        return outcome;
    }

    /// <summary>The gateway's URL, and the pusher's data without it (what the gateway is sent).</summary>
    private static (string Url, JsonObject Data) Target(PusherRow pusher)
    {
        var data = JsonNode.Parse(pusher.DataJson)!.AsObject();
        var url = data["url"]!.GetValue<string>();
        data.Remove("url");
        return (url, data);
    }

    private static JsonObject Device(PusherRow pusher, JsonObject data, JsonObject? tweaks = null)
    {
        var device = new JsonObject
        {
            ["app_id"] = pusher.AppId, ["pushkey"] = pusher.Pushkey, ["pushkey_ts"] = pusher.CreatedTs / 1000, ["data"] = data.DeepClone(),
        };
        if (tweaks is not null)
            device["tweaks"] = tweaks;
        return device;
    }

    private async Task<Outcome> PostAsync(PusherRow pusher, string url, JsonObject body, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            using var response = await guarded.Client.PostAsJsonAsync(url, new JsonObject { ["notification"] = body }, timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                var answer = await response.Content.ReadFromJsonAsync<JsonObject>(timeout.Token);
                return answer?["rejected"] is JsonArray rejected && rejected.Any(k => k?.GetValue<string>() == pusher.Pushkey)
                    ? Outcome.Rejected
                    : Outcome.Sent;
            }
            var status = (int)response.StatusCode;
            if (status is 408 or 429 || status >= 500)
                return Outcome.Failed;
            logger.LogInformation("Push gateway for app {AppId} refused a notification with {Status}; skipped", pusher.AppId, status);
            return Outcome.Skipped;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException && !ct.IsCancellationRequested)
        {
            logger.LogInformation("Push gateway for app {AppId} unreachable: {Reason}", pusher.AppId,
                GuardedHttp.IsBlocked(e, out var reason) ? reason : e.Message);
            return Outcome.Failed;
        }
    }

    /// <summary>
    /// The notifying event: a stored one (none once redacted), or an invite from a room this server is not in, with
    /// the stripped state its server sent.
    /// </summary>
    private Task<(JsonObject Event, JsonArray? InviteState)?> EventAsync(string userId, PushActionRow notification, CancellationToken ct) =>
        db.ReadAsync<(JsonObject, JsonArray?)?>(async s =>
        {
            if (await rooms.GetEventAsync(s, notification.EventId) is { } stored)
                return stored.RedactedBy is null ? (JsonNode.Parse(stored.Json)!.AsObject(), null) : null;
            return await remoteInvites.GetAsync(s, notification.RoomId, userId) is { } invite && invite.EventId == notification.EventId
                ? (JsonNode.Parse(invite.EventJson)!.AsObject(), JsonNode.Parse(invite.InviteStateJson) as JsonArray ?? [])
                : null;
        }, ct);

    /// <summary>
    /// The full format: the event's type, sender and content, membership details, the sender's display name and the
    /// room's name, from the room's state or else from an invite's stripped state.
    /// </summary>
    private async Task AddEventDetailsAsync(JsonObject body, JsonObject ev, JsonArray? inviteState, string userId, CancellationToken ct)
    {
        var type = Text(ev["type"]);
        var sender = Text(ev["sender"]) ?? "";
        var roomId = Text(ev["room_id"]) ?? "";
        // Deprecated, but Synapse still sends it and SyTest checks it.
        body["id"] = body["event_id"]!.DeepClone();
        body["type"] = type;
        body["sender"] = sender;
        body["content"] = ev["content"]?.DeepClone();
        if (type == "m.room.member" && Text(ev["state_key"]) is { } stateKey)
        {
            body["membership"] = ev["content"]?["membership"]?.DeepClone();
            body["user_is_target"] = stateKey == userId;
        }
        var senderMember = inviteState is null ? await StateContentAsync(roomId, "m.room.member", sender, ct) : Stripped(inviteState, "m.room.member", sender);
        if (NonEmpty(senderMember?["displayname"]) is { } displayName)
            body["sender_display_name"] = displayName;
        if (await RoomNameAsync(roomId, inviteState, ct) is { } roomName)
            body["room_name"] = roomName;
    }

    /// <summary>
    /// The room's name as Synapse names it in pushes: its <c>m.room.name</c>, else its canonical alias (for an invite
    /// from a room this server is not in, only the name in its stripped state). Synapse's last resort, names from the
    /// members, is not served.
    /// </summary>
    private async Task<string?> RoomNameAsync(string roomId, JsonArray? inviteState, CancellationToken ct)
    {
        if (inviteState is not null)
            return NonEmpty(Stripped(inviteState, "m.room.name", "")?["name"]);
        return NonEmpty((await StateContentAsync(roomId, "m.room.name", "", ct))?["name"])
            ?? (NonEmpty((await StateContentAsync(roomId, "m.room.canonical_alias", "", ct))?["alias"]) is { } alias && LooksLikeAlias(alias) ? alias : null);
    }

    private static bool LooksLikeAlias(string alias) => alias.StartsWith('#') && alias.IndexOf(':') is var colon && colon > 0 && colon < alias.Length - 1;

    // Safe on whatever another server put in stripped state: a malformed field reads as absent.
    private static string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static string? NonEmpty(JsonNode? node) => Text(node) is { Length: > 0 } text ? text : null;

    private static JsonObject? Stripped(JsonArray state, string type, string stateKey) => state.OfType<JsonObject>()
        .FirstOrDefault(e => Text(e["type"]) == type && Text(e["state_key"]) == stateKey)?["content"] as JsonObject;

    private Task<JsonObject?> StateContentAsync(string roomId, string type, string stateKey, CancellationToken ct) => db.ReadAsync(async s =>
        await rooms.CurrentStateEventIdAsync(s, roomId, type, stateKey) is { } eventId && await rooms.GetEventAsync(s, eventId) is { } row
            ? JsonNode.Parse(row.Json)?["content"] as JsonObject
            : null, ct);

    private static (string, string, string) Key(PusherRow pusher) => (pusher.UserId, pusher.AppId, pusher.Pushkey);
}
