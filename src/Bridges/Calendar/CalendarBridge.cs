using System.Net;
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
    /// Links the rooms the config names (joining them) with the config's settings, keeping what an earlier run learnt
    /// of each calendar; rooms no longer in the config are unlinked.
    /// </summary>
    public async Task ApplyConfiguredLinksAsync(CancellationToken ct)
    {
        var linked = new HashSet<string>(StringComparer.Ordinal);
        foreach (var configured in _config.Calendars)
        {
            var roomId = configured.Room.StartsWith('#') ? await Bot.ResolveAliasAsync(configured.Room, ct)
                ?? throw new BridgeConfigException($"calendars: the alias {configured.Room} names no room") : configured.Room;
            await Bot.EnsureJoinedAsync(roomId, ct);
            var credential = configured.Username is null ? null : _vault.Protect(new NetworkCredential(configured.Username, configured.Password ?? ""));
            var existing = _store.Link(roomId);
            var sameCalendar = existing is not null && existing.Url == configured.Url;
            if (!sameCalendar && existing is not null)
                _store.Remove(roomId);
            _store.Save(new CalendarLink
            {
                RoomId = roomId,
                Url = configured.Url,
                Credential = credential,
                LeadMinutes = configured.ReminderLeadMinutes ?? _config.Calendar.ReminderLeadMinutes,
                AgendaTime = configured.AgendaTime ?? _config.Calendar.AgendaTime,
                TimeZone = configured.TimeZone ?? _config.Calendar.TimeZone,
                FromConfig = true,
                SyncToken = sameCalendar ? existing!.SyncToken : null,
                CTag = sameCalendar ? existing!.CTag : null,
                Baselined = sameCalendar && existing!.Baselined,
                LastAgenda = existing?.LastAgenda,
            });
            linked.Add(roomId);
        }
        foreach (var dropped in _store.Links().Where(l => l.FromConfig && !linked.Contains(l.RoomId)))
            _store.Remove(dropped.RoomId);
    }

    /// <summary>One round: sync what is due, then reminders and agendas for every linked room.</summary>
    public async Task TickAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var now = _clock.GetUtcNow();
            foreach (var link in _store.Links())
            {
                if (!_schedule.TryGetValue(link.RoomId, out var due) || due.Next <= now)
                    await SyncDueAsync(link, due.Failures, now, ct);
                if (_store.Link(link.RoomId) is not { } current)
                    continue;
                await RemindAsync(current, now, ct);
                await PostAgendaAsync(current, now, ct);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task SyncDueAsync(CalendarLink link, int failures, DateTimeOffset now, CancellationToken ct)
    {
        var interval = TimeSpan.FromSeconds(_config.Calendar.SyncIntervalSeconds);
        try
        {
            await SyncAndAnnounceAsync(link, ct);
            _schedule[link.RoomId] = (now + interval, 0);
        }
        catch (Exception e) when (IsCalendarFailure(e))
        {
            var backoff = TimeSpan.FromSeconds(Math.Min(_config.Calendar.MaxBackoffSeconds, interval.TotalSeconds * Math.Pow(2, failures)));
            _schedule[link.RoomId] = (now + backoff, failures + 1);
            Problem?.Invoke($"{link.RoomId}: calendar sync failed ({e.GetBaseException().Message}); next attempt in {backoff.TotalSeconds:0} s");
        }
    }

    private static bool IsCalendarFailure(Exception e) => e is CalDavException or HttpRequestException or TaskCanceledException or IOException;

    private async Task SyncAndAnnounceAsync(CalendarLink link, CancellationToken ct)
    {
        var zone = ZoneOf(link);
        var result = await _sync.SyncAsync(link, Client(link), zone, ct);
        var now = _clock.GetUtcNow();
        foreach (var change in result.Changes)
        {
            var (plain, html) = Describe(change, zone, now);
            await PostAsync(link.RoomId, plain, html, TransactionId("change", link.RoomId, change.Id), ct);
        }
        result.Commit(_store);
    }

    private static (string Plain, string Html) Describe(CalendarChange change, TimeZoneInfo zone, DateTimeOffset now)
    {
        var subject = change.After ?? change.Before!;
        var summary = (subject.Master ?? subject.Events.First()).Summary;
        var when = NextOccurrence(subject, now) is { } next ? EventText.When(next, zone) + EventText.Repeats(subject) : "no upcoming date";
        if (change.After is null || (change.After.Master is { IsCancelled: true } && change.Before?.Master is { IsCancelled: false }))
            return ($"Cancelled in the calendar: {summary} ({when})", $"Cancelled in the calendar: <b>{EventText.Html(summary)}</b> ({EventText.Html(when)})");
        if (change.Before is null)
            return ($"New in the calendar: {summary}, {when}", $"New in the calendar: <b>{EventText.Html(summary)}</b>, {EventText.Html(when)}");
        var oldSummary = (change.Before.Master ?? change.Before.Events.First()).Summary;
        var oldWhen = NextOccurrence(change.Before, now) is { } previous ? EventText.When(previous, zone) + EventText.Repeats(change.Before) : null;
        var what = new List<string>();
        if (oldSummary != summary)
            what.Add($"renamed from \"{oldSummary}\"");
        if (oldWhen is not null && oldWhen != when)
            what.Add($"moved from {oldWhen}");
        var detail = what.Count > 0 ? string.Join(", ", what) : "details updated";
        return ($"Changed in the calendar: {summary}, {when} ({detail})",
            $"Changed in the calendar: <b>{EventText.Html(summary)}</b>, {EventText.Html(when)} ({EventText.Html(detail)})");
    }

    private static Occurrence? NextOccurrence(CalendarObject calendarObject, DateTimeOffset now) =>
        calendarObject.Occurrences(now.AddHours(-12), now.AddYears(2)).FirstOrDefault()
        ?? calendarObject.Occurrences(DateTimeOffset.MinValue.AddYears(1), now.AddYears(2)).LastOrDefault();

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
            var where = occurrence.Event.Location is { Length: > 0 } location ? $" at {location}" : "";
            var plain = $"Reminder: {occurrence.Summary} starts in {minutes} min ({EventText.When(occurrence, zone)}){where}";
            var html = $"Reminder: <b>{EventText.Html(occurrence.Summary)}</b> starts in {minutes} min ({EventText.Html(EventText.When(occurrence, zone))}){EventText.Html(where)}";
            await PostAsync(link.RoomId, plain, html, TransactionId("reminder", link.RoomId, reminderKey), ct);
            _store.MarkReminded(link.RoomId, reminderKey, occurrence.Start);
        }
        _store.PruneReminded(link.RoomId, now.AddDays(-2));
    }

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
        var events = Occurrences(link, dayStart, ZoneTime.ToInstant(local.Date.AddDays(1), zone));
        if (events.Count > 0)
        {
            var heading = $"Today, {local:dddd d MMMM}";
            var plain = heading + ":\n" + string.Join("\n", events.Select(o => $"• {Slot(o, zone)} {o.Summary}"));
            var html = $"<p>{EventText.Html(heading)}:</p><ul>" + string.Concat(events.Select(o => $"<li>{EventText.Html(Slot(o, zone))} <b>{EventText.Html(o.Summary)}</b></li>")) + "</ul>";
            await PostAsync(link.RoomId, plain, html, TransactionId("agenda", link.RoomId, today.ToString("O")), ct);
        }
        _store.Save(link with { LastAgenda = today });
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

    private async Task HandleInviteAsync(RoomEvent invite, CancellationToken ct)
    {
        if (invite.StateKey == Bot.UserId)
            await Bot.EnsureJoinedAsync(invite.RoomId, ct);
    }
}
