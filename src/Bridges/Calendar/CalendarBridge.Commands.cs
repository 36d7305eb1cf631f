using System.Net;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Calendar.CalDav;
using Matrix.Bridges.Calendar.ICalendar;
using CalDateTime = Ical.Net.DataTypes.CalDateTime;

namespace Matrix.Bridges.Calendar;

/// <summary>The <c>!cal</c> commands: each answered in the command's thread, with the right syntax when it was wrong.</summary>
public sealed partial class CalendarBridge
{
    private async Task HandleMessageAsync(RoomEvent message, MessageContent content, CancellationToken ct)
    {
        var link = _store.Link(message.RoomId);
        var zone = link is null ? CalendarBridgeConfig.ZoneOf(_config.Calendar.TimeZone, "calendar.time_zone") : ZoneOf(link);
        var localNow = TimeZoneInfo.ConvertTime(_clock.GetUtcNow(), zone).DateTime;
        CalendarCommand? command;
        try
        {
            command = CalendarCommands.Parse(content.Body, localNow);
        }
        catch (CommandException e)
        {
            await ReplyAsync(message, e.Message, ct);
            return;
        }
        if (command is null)
            return;
        await _lock.WaitAsync(ct);
        try
        {
            var answer = await RunAsync(command, message, link, zone, ct);
            await ReplyAsync(message, answer, ct);
        }
        catch (CommandException e)
        {
            await ReplyAsync(message, e.Message, ct);
        }
        catch (CalDavConflictException)
        {
            await ReplyAsync(message, "The event changed in the calendar meanwhile; nothing was changed. Look at !cal list and try again.", ct);
        }
        catch (CalDavException e)
        {
            await ReplyAsync(message, $"The calendar server could not be reached or refused the change ({e.Message}); nothing was changed.", ct);
        }
        catch (Exception e) when (IsHomeserverFailure(e, ct))
        {
            // Not rethrown: the homeserver would send the transaction again and the command would run twice.
            Problem?.Invoke($"room {message.RoomId}: a command failed or its reply was not posted: {HomeserverFailed(e)}");
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<string> RunAsync(CalendarCommand command, RoomEvent message, CalendarLink? link, TimeZoneInfo zone, CancellationToken ct)
    {
        switch (command)
        {
            case HelpCommand:
                return CalendarCommands.Help;
            case LinkCommand link1:
                await RequireAdminAsync(message, ct);
                return await LinkAsync(message, link1.Url, ct);
        }
        if (link is null)
            throw new CommandException("This room is not linked to a calendar. A room admin links one with !cal link <url>.");
        var now = _clock.GetUtcNow();
        switch (command)
        {
            case UnlinkCommand:
                await RequireAdminAsync(message, ct);
                if (link.FromConfig)
                    throw new CommandException("This room's calendar is linked in the bridge's config; the operator unlinks it there.");
                _store.Remove(link.RoomId);
                _schedule.Remove(link.RoomId);
                return "Unlinked: no more reminders, agendas or announcements here.";
            case LeadCommand lead:
                await RequireAdminAsync(message, ct);
                _store.Save(link with { LeadMinutes = lead.Minutes });
                return lead.Minutes == 0 ? "Reminders are off." : $"Reminders now come {lead.Minutes} min before each event.";
            case AgendaCommand agenda:
                await RequireAdminAsync(message, ct);
                _store.Save(WithAgendaDay(link with { AgendaTime = agenda.Time }, now));
                return agenda.Time == "off" ? "The daily agenda is off." : $"The agenda is posted daily at {agenda.Time} ({link.TimeZone}).";
            case TimeZoneCommand timeZone:
                await RequireAdminAsync(message, ct);
                _store.Save(WithAgendaDay(link with { TimeZone = timeZone.Zone.Id }, now));
                return $"This room's time zone is now {timeZone.Zone.Id}.";
            case ListCommand list:
                var upcoming = Occurrences(link, now, now.AddDays(list.Days));
                return upcoming.Count == 0 ? $"Nothing in the next {list.Days} days."
                    : $"Next {list.Days} days ({link.TimeZone}):\n" + string.Join("\n", upcoming.Select(o => $"• {EventText.When(o, zone)} {o.Summary} (id {EventText.ShortId(o)})"));
            case AddCommand add:
                return await AddAsync(link, add, message.Sender, zone, now, ct);
            case MoveCommand move:
                return await MoveAsync(link, move, zone, now, ct);
            case CancelCommand cancel:
                return await CancelAsync(link, cancel, zone, now, ct);
            default:
                throw new CommandException(CalendarCommands.Help);
        }
    }

    private async Task<string> LinkAsync(RoomEvent message, string url, CancellationToken ct)
    {
        var uri = new Uri(url);
        NetworkCredential? credential = null;
        var warning = "";
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            credential = new NetworkCredential(Uri.UnescapeDataString(parts[0]), parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "");
            uri = new UriBuilder(uri) { UserName = "", Password = "" }.Uri;
            // The password must not stay readable in the room's history.
            try
            {
                await Bot.RedactAsync(message.RoomId, message.EventId, "held calendar credentials", ct);
            }
            catch (MatrixRequestException)
            {
                warning = " Your message holds the calendar password and I may not remove it (I need the power to redact): delete it yourself.";
            }
        }
        var existing = _store.Link(message.RoomId);
        if (existing is { FromConfig: true })
            throw new CommandException("This room's calendar is linked in the bridge's config; the operator changes it there.");
        var state = await new CalDavClient(_http, uri, credential).GetStateAsync(ct);
        if (!state.IsCalendar)
            throw new CommandException($"{uri} is not a calendar collection (look for the calendar's CalDAV URL in its settings).");
        _store.Remove(message.RoomId);
        // A room linked again keeps its settings.
        var link = WithAgendaDay(new CalendarLink
        {
            RoomId = message.RoomId,
            Url = uri.AbsoluteUri,
            Credential = credential is null ? null : _vault.Protect(credential),
            LeadMinutes = existing?.LeadMinutes ?? _config.Calendar.ReminderLeadMinutes,
            AgendaTime = existing?.AgendaTime ?? _config.Calendar.AgendaTime,
            TimeZone = existing?.TimeZone ?? _config.Calendar.TimeZone,
        }, _clock.GetUtcNow());
        _store.Save(link);
        _schedule.Remove(message.RoomId);
        await SyncAndAnnounceAsync(link, ct);
        var count = _store.Objects(message.RoomId).Count;
        _schedule[message.RoomId] = (_clock.GetUtcNow() + TimeSpan.FromSeconds(_config.Calendar.SyncIntervalSeconds), 0);
        return $"Linked to {state.DisplayName ?? uri.AbsolutePath} ({count} events). "
            + (link.LeadMinutes == 0 ? "No reminders; " : $"Reminders {link.LeadMinutes} min before events; ")
            + (link.AgendaTime == "off" ? "no daily agenda" : $"agenda daily at {link.AgendaTime}") + $" ({link.TimeZone}). !cal help lists the commands." + warning;
    }

    private async Task<string> AddAsync(CalendarLink link, AddCommand add, string sender, TimeZoneInfo zone, DateTimeOffset now, CancellationToken ct)
    {
        if (!add.AllDay && ZoneTime.ToInstant(add.Start, zone) < now)
            throw new CommandException("That time has passed; give a time to come.");
        var start = add.AllDay ? new CalDateTime(DateOnly.FromDateTime(add.Start)) : ZoneTime.Utc(ZoneTime.ToInstant(add.Start, zone));
        var uid = $"{Guid.NewGuid():N}@{_config.Homeserver.ServerName}";
        var calendarObject = CalendarObject.NewEvent(uid, add.Title, start, add.Length, $"Added from Matrix by {sender}", now, zone);
        var text = calendarObject.ToString();
        var created = await Client(link).CreateAsync(uid, text, ct);
        _store.SetObject(link.RoomId, created.Href, new CachedObject(created.ETag, text));
        _store.Flush();
        var occurrence = calendarObject.Occurrences(DateTimeOffset.MinValue.AddYears(1), DateTimeOffset.MaxValue.AddYears(-1)).Single();
        return $"Added {add.Title}, {EventText.When(occurrence, zone)} (id {EventText.ShortId(occurrence)}).";
    }

    private async Task<string> MoveAsync(CalendarLink link, MoveCommand move, TimeZoneInfo zone, DateTimeOffset now, CancellationToken ct)
    {
        var (href, cached, calendarObject, occurrence) = Find(link, move.Id, now);
        var wallClock = move.Start;
        CalDateTime newStart;
        if (occurrence.IsAllDay)
            newStart = new CalDateTime(DateOnly.FromDateTime(wallClock));
        else if (occurrence.RecurrenceId is { IsUtc: false, TzId: { } tzId } && calendarObject.Zones.Resolve(tzId) is { } eventZone)
            newStart = new CalDateTime(TimeZoneInfo.ConvertTime(ZoneTime.ToInstant(wallClock, zone), eventZone).DateTime, tzId);
        else
            newStart = ZoneTime.Utc(ZoneTime.ToInstant(wallClock, zone));
        var was = EventText.When(occurrence, zone);
        calendarObject.Move(occurrence, newStart, now);
        var text = calendarObject.ToString();
        var etag = await Client(link).UpdateAsync(href, text, cached.ETag, ct);
        _store.SetObject(link.RoomId, href, new CachedObject(etag, text));
        _store.Flush();
        var moved = Occurrences(link, now.AddYears(-1), now.AddYears(5)).FirstOrDefault(o => o.Key == occurrence.Key);
        return $"Moved {occurrence.Summary} from {was} to {(moved is null ? wallClock.ToString("g") : EventText.When(moved, zone))}.";
    }

    private async Task<string> CancelAsync(CalendarLink link, CancelCommand cancel, TimeZoneInfo zone, DateTimeOffset now, CancellationToken ct)
    {
        var (href, cached, calendarObject, occurrence) = Find(link, cancel.Id, now);
        var client = Client(link);
        if (calendarObject.IsRecurring)
        {
            calendarObject.CancelOccurrence(occurrence, now);
            var text = calendarObject.ToString();
            var etag = await client.UpdateAsync(href, text, cached.ETag, ct);
            _store.SetObject(link.RoomId, href, new CachedObject(etag, text));
        }
        else
        {
            await client.DeleteAsync(href, cached.ETag, ct);
            _store.SetObject(link.RoomId, href, null);
        }
        _store.Flush();
        return $"Cancelled {occurrence.Summary}, {EventText.When(occurrence, zone)}" + (calendarObject.IsRecurring ? " (this occurrence only)." : ".");
    }

    /// <summary>The occurrence a short ID from <c>!cal list</c> names, in the coming year (or the past day).</summary>
    private (string Href, CachedObject Cached, CalendarObject Object, Occurrence Occurrence) Find(CalendarLink link, string id, DateTimeOffset now)
    {
        foreach (var (href, cached, calendarObject) in Objects(link))
            foreach (var occurrence in calendarObject.Occurrences(now.AddDays(-1), now.AddYears(1)))
                if (EventText.ShortId(occurrence).Equals(id, StringComparison.OrdinalIgnoreCase))
                    return (href, cached, calendarObject, occurrence);
        throw new CommandException($"No event with id {id} in the coming year; !cal list shows the IDs.");
    }

    /// <summary>Room admins (those who may change the room's power levels) link calendars and change settings.</summary>
    private async Task RequireAdminAsync(RoomEvent message, CancellationToken ct)
    {
        var powers = await RoomPowers.ReadAsync(Bot, message.RoomId, ct);
        if (!powers.IsAdmin(message.Sender))
            throw new CommandException($"Only room admins (power level {powers.StateLevel("m.room.power_levels")}) can do that.");
    }

    private Task ReplyAsync(RoomEvent message, string text, CancellationToken ct) =>
        PostAsync(message.RoomId, text, EventText.Html(text).Replace("\n", "<br>"), TransactionId("reply", message.RoomId, message.EventId), ct, message);
}
