using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Calendar.CalDav;
using Matrix.Bridges.Calendar.ICalendar;

namespace Matrix.Bridges.Calendar;

/// <summary>
/// The calendar bridge: rooms linked to CalDAV calendars. Each tick (driven by the injected clock) it syncs the
/// calendars that are due (backing off exponentially from a failing server) and announces changes made directly in
/// them, posts reminders before events and the daily agenda, all from the local copy, so they keep working while the
/// calendar server is down. Every message it posts on its own has a transaction ID derived from what it is about,
/// and is recorded only once posted, so a crash or a retry never posts it twice. Commands come in as room messages
/// (<see cref="CalendarCommands"/>); their replies go into the command's thread.
/// </summary>
public sealed partial class CalendarBridge
{
    private readonly CalendarBridgeConfig _config;
    private readonly AppService _service;
    private readonly LinkStore _store;
    private readonly CredentialVault _vault;
    private readonly TimeProvider _clock;
    private readonly HttpClient _http;
    private readonly CalendarSync _sync;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<string, (DateTimeOffset Next, int Failures)> _schedule = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Room, string Href), (string Data, CalendarObject? Parsed)> _parsed = [];

    public CalendarBridge(CalendarBridgeConfig config, AppService service, LinkStore store, CredentialVault vault, TimeProvider clock, HttpClient http)
    {
        _config = config;
        _service = service;
        _store = store;
        _vault = vault;
        _clock = clock;
        _http = http;
        _sync = new CalendarSync(store);
        service.OnMessage = HandleMessageAsync;
        service.OnInvite = HandleInviteAsync;
    }

    /// <summary>What went wrong in the last ticks (unreachable servers), for the log.</summary>
    public event Action<string>? Problem;

    private Intent Bot => _service.Bot;

    /// <summary>
    /// One round: retry the configured rooms not linked yet (once per sync interval), then for every linked room sync
    /// its calendar when due, reminders and the agenda. A room whose messages the homeserver does not take is named and
    /// left for the next tick; the other rooms go on.
    /// </summary>
    public async Task TickAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var now = _clock.GetUtcNow();
            if (_waitingRooms.Count > 0 && now >= _nextRoomRetry)
            {
                _nextRoomRetry = now + SyncInterval;
                await RetryWaitingRoomsAsync(ct);
            }
            foreach (var link in _store.Links())
            {
                try
                {
                    if (!_schedule.TryGetValue(link.RoomId, out var due) || due.Next <= now)
                        await SyncDueAsync(link, due.Failures, now, ct);
                    if (_store.Link(link.RoomId) is not { } current)
                        continue;
                    await RemindAsync(current, now, ct);
                    await PostAgendaAsync(current, now, ct);
                }
                catch (Exception e) when (IsHomeserverFailure(e, ct))
                {
                    Problem?.Invoke($"room {link.RoomId}: {HomeserverFailed(e)}; its calendar's news, reminders and agenda are posted once it takes them");
                }
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private TimeSpan SyncInterval => TimeSpan.FromSeconds(_config.Calendar.SyncIntervalSeconds);

    private async Task SyncDueAsync(CalendarLink link, int failures, DateTimeOffset now, CancellationToken ct)
    {
        try
        {
            await SyncAndAnnounceAsync(link, ct);
            _schedule[link.RoomId] = (now + SyncInterval, 0);
        }
        catch (CalDavException e)
        {
            var backoff = TimeSpan.FromSeconds(Math.Min(_config.Calendar.MaxBackoffSeconds, SyncInterval.TotalSeconds * Math.Pow(2, failures)));
            _schedule[link.RoomId] = (now + backoff, failures + 1);
            Problem?.Invoke($"room {link.RoomId}, calendar {link.Url}: the calendar server failed: {e.Message}; next attempt in {backoff.TotalSeconds:0} s");
        }
        catch (Exception e) when (IsHomeserverFailure(e, ct))
        {
            // The calendar answered: no backoff; the changes stay unannounced and are found again at the next sync.
            _schedule[link.RoomId] = (now + SyncInterval, failures);
            throw;
        }
    }

    /// <summary>What the homeserver's failures look like; the CalDAV client reports its own as <see cref="CalDavException"/>.</summary>
    private static bool IsHomeserverFailure(Exception e, CancellationToken ct) =>
        e is MatrixRequestException or HttpRequestException || (e is TaskCanceledException && !ct.IsCancellationRequested);

    private string HomeserverFailed(Exception e) => e is MatrixRequestException refused
        ? $"the homeserver {_config.Homeserver.Url} refused a request ({refused.Errcode ?? refused.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)}: {refused.Message})"
        : $"the homeserver {_config.Homeserver.Url} is unreachable ({e.GetBaseException().Message})";

    private async Task SyncAndAnnounceAsync(CalendarLink link, CancellationToken ct)
    {
        var zone = ZoneOf(link);
        var result = await _sync.SyncAsync(link, Client(link), zone, ct);
        var now = _clock.GetUtcNow();
        foreach (var change in result.Changes)
            if (Announcement.Of(change, zone, now) is var (plain, html))
                await PostAsync(link.RoomId, plain, html, TransactionId("change", link.RoomId, change.Id), ct);
        result.Commit(_store);
    }

    private async Task RemindAsync(CalendarLink link, DateTimeOffset now, CancellationToken ct)
    {
        if (link.LeadMinutes <= 0)
            return;
        var zone = ZoneOf(link);
        // The window includes its end: an event exactly the lead time away is due now.
        foreach (var occurrence in Occurrences(link, now, now.AddMinutes(link.LeadMinutes).AddTicks(1)))
        {
            // Keyed by the start too, so a moved event is reminded again at its new time.
            var reminderKey = $"{occurrence.Key}@{occurrence.Start.ToUnixTimeSeconds()}";
            if (occurrence.IsAllDay || _store.WasReminded(link.RoomId, reminderKey))
                continue;
            var minutes = (int)Math.Ceiling((occurrence.Start - now).TotalMinutes);
            var where = EventText.Where(occurrence);
            var plain = $"Reminder: {occurrence.Summary} starts in {minutes} min ({EventText.When(occurrence, zone)}){where}";
            var html = $"Reminder: <b>{EventText.Html(occurrence.Summary)}</b> starts in {minutes} min ({EventText.Html(EventText.When(occurrence, zone))}){EventText.Html(where)}";
            await PostAsync(link.RoomId, plain, html, TransactionId("reminder", link.RoomId, reminderKey), ct);
            _store.MarkReminded(link.RoomId, reminderKey, occurrence.Start);
        }
        _store.PruneReminded(link.RoomId, now.AddDays(-2));
    }

    /// <summary>
    /// The day's agenda, once a day at the room's agenda time (later, after an outage), of what is not over yet.
    /// <see cref="CalendarLink.LastAgenda"/> is the last day done; <see cref="WithAgendaDay"/> sets it when the link or its time changes.
    /// </summary>
    private async Task PostAgendaAsync(CalendarLink link, DateTimeOffset now, CancellationToken ct)
    {
        if (CalendarBridgeConfig.AgendaTimeOf(link.AgendaTime, "agenda_time") is not { } at)
            return;
        var zone = ZoneOf(link);
        var local = TimeZoneInfo.ConvertTime(now, zone);
        var today = DateOnly.FromDateTime(local.DateTime);
        if (TimeOnly.FromDateTime(local.DateTime) < at || link.LastAgenda >= today)
            return;
        var dayStart = ZoneTime.ToInstant(local.Date, zone);
        var events = Occurrences(link, dayStart, ZoneTime.ToInstant(local.Date.AddDays(1), zone)).Where(o => o.End > now || o.Start >= now).ToList();
        if (events.Count > 0)
        {
            var heading = $"Today, {local:dddd d MMMM}";
            var plain = heading + ":\n" + string.Join("\n", events.Select(o => $"• {Slot(o, zone)} {o.Summary}{EventText.Where(o)}"));
            var html = $"<p>{EventText.Html(heading)}:</p><ul>" + string.Concat(events.Select(o =>
                $"<li>{EventText.Html(Slot(o, zone))} <b>{EventText.Html(o.Summary)}</b>{EventText.Html(EventText.Where(o))}</li>")) + "</ul>";
            await PostAsync(link.RoomId, plain, html, TransactionId("agenda", link.RoomId, today.ToString("O")), ct);
        }
        _store.Save(link with { LastAgenda = today });
    }

    /// <summary>
    /// The link with today's agenda counted as done when its time has passed in the room's zone, and as still to come
    /// when it is ahead: a new link, a new agenda time or zone never brings a late agenda, and a later time still fires today.
    /// </summary>
    private CalendarLink WithAgendaDay(CalendarLink link, DateTimeOffset now)
    {
        if (CalendarBridgeConfig.AgendaTimeOf(link.AgendaTime, "agenda_time") is not { } at)
            return link;
        var local = TimeZoneInfo.ConvertTime(now, ZoneOf(link)).DateTime;
        var today = DateOnly.FromDateTime(local);
        return link with { LastAgenda = TimeOnly.FromDateTime(local) >= at ? today : today.AddDays(-1) };
    }

    private static string Slot(Occurrence occurrence, TimeZoneInfo zone) => occurrence.IsAllDay ? "all day"
        : $"{EventText.Time(occurrence.Start, zone)}–{EventText.Time(occurrence.End, zone)}";

    /// <summary>The occurrences starting in [from, to) of every object in the room's local copy of its calendar.</summary>
    private List<Occurrence> Occurrences(CalendarLink link, DateTimeOffset from, DateTimeOffset to) =>
        Objects(link).SelectMany(o => o.Object.Occurrences(from, to)).OrderBy(o => o.Start).ToList();

    private IEnumerable<(string Href, CachedObject Cached, CalendarObject Object)> Objects(CalendarLink link)
    {
        var zone = ZoneOf(link);
        foreach (var (href, cached) in _store.Objects(link.RoomId))
        {
            if (!_parsed.TryGetValue((link.RoomId, href), out var parsed) || parsed.Data != cached.Data || parsed.Parsed?.DefaultZone != zone)
                _parsed[(link.RoomId, href)] = parsed = (cached.Data, CalendarSync.Parse(cached.Data, zone));
            if (parsed.Parsed is { } calendarObject)
                yield return (href, cached, calendarObject);
        }
    }

    private CalDavClient Client(CalendarLink link) =>
        new(_http, new Uri(link.Url), link.Credential is null ? null : _vault.Unprotect(link.Credential));

    private TimeZoneInfo ZoneOf(CalendarLink link) => TimeZoneResolver.System(link.TimeZone) ?? TimeZoneInfo.Utc;

    /// <summary>Posts a notice as the bridge's user; with <paramref name="replyTo"/> into that message's thread.</summary>
    private Task<string> PostAsync(string roomId, string plain, string html, string transactionId, CancellationToken ct, RoomEvent? replyTo = null)
    {
        var content = new JsonObject { ["msgtype"] = "m.notice", ["body"] = plain, ["format"] = "org.matrix.custom.html", ["formatted_body"] = html };
        if (replyTo is not null)
            content["m.relates_to"] = new JsonObject
            {
                ["rel_type"] = "m.thread",
                ["event_id"] = replyTo.Message?.ThreadRoot ?? replyTo.EventId,
                ["is_falling_back"] = true,
                ["m.in_reply_to"] = new JsonObject { ["event_id"] = replyTo.EventId },
            };
        return Bot.SendMessageAsync(roomId, content, transactionId, ct);
    }

    private static string TransactionId(string kind, string roomId, string subject) =>
        $"cal-{kind}-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(roomId + "\n" + subject)))[..32];
}
