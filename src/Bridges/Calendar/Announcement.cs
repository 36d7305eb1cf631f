using Matrix.Bridges.Calendar.ICalendar;

namespace Matrix.Bridges.Calendar;

/// <summary>How a change made directly in the calendar is announced in its room: new, changed or cancelled, with time and place.</summary>
public static class Announcement
{
    /// <summary>The announcement (plain and HTML), or null for an event that is over in both versions: that is no news.</summary>
    public static (string Plain, string Html)? Of(CalendarChange change, TimeZoneInfo zone, DateTimeOffset now)
    {
        var before = change.Before is null ? null : Upcoming(change.Before, now);
        var after = change.After is null ? null : Upcoming(change.After, now);
        if (before is null && after is null)
            return null;
        var cancelled = change.After is null || (change.After.Master is { IsActive: false } && change.Before?.Master is { IsActive: true });
        var subject = cancelled ? change.Before! : change.After!;
        var summary = (subject.Master ?? subject.Events.First()).Summary ?? "";
        var shown = (cancelled ? before : after) ?? Latest(subject, now);
        var when = shown is null ? "no upcoming date" : EventText.When(shown, zone) + EventText.Repeats(subject);
        var where = shown is null ? "" : EventText.Where(shown);
        if (cancelled)
            return Text("Cancelled in the calendar: ", summary, $" ({when}{where})");
        if (change.Before is null)
            return Text("New in the calendar: ", summary, $", {when}{where}");
        var old = before ?? Latest(change.Before, now);
        var oldSummary = (change.Before.Master ?? change.Before.Events.First()).Summary ?? "";
        var oldWhen = old is null ? null : EventText.When(old, zone) + EventText.Repeats(change.Before);
        var oldLocation = old is null ? null : Location(old);
        var what = new List<string>();
        if (oldSummary != summary)
            what.Add($"renamed from \"{oldSummary}\"");
        var timeMoved = oldWhen is not null && oldWhen != when;
        var placeMoved = old is not null && oldLocation != (shown is null ? null : Location(shown));
        if (timeMoved)
            what.Add($"moved from {oldWhen}" + (placeMoved ? EventText.Where(old!) : ""));
        else if (placeMoved)
            what.Add(oldLocation is null ? "place added" : $"moved from {oldLocation}");
        var detail = what.Count > 0 ? string.Join(", ", what) : "details updated";
        return Text("Changed in the calendar: ", summary, $", {when}{where} ({detail})");
    }

    /// <summary>The first occurrence not over yet (one that started up to a month ago may still be running).</summary>
    private static Occurrence? Upcoming(CalendarObject calendarObject, DateTimeOffset now) =>
        calendarObject.Occurrences(now.AddDays(-32), now.AddYears(2)).FirstOrDefault(o => o.End > now || o.Start >= now);

    private static Occurrence? Latest(CalendarObject calendarObject, DateTimeOffset now) =>
        calendarObject.Occurrences(DateTimeOffset.MinValue.AddYears(1), now.AddYears(2)).LastOrDefault();

    private static string? Location(Occurrence occurrence) => occurrence.Event.Location is { Length: > 0 } location ? location : null;

    private static (string, string) Text(string lead, string summary, string rest) =>
        (lead + summary + rest, $"{lead}<b>{EventText.Html(summary)}</b>{EventText.Html(rest)}");
}
