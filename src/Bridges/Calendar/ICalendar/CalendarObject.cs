namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>One occurrence of an event: which (UID and its original start), when, and the VEVENT describing it.</summary>
public sealed record Occurrence(string Uid, CalendarTime RecurrenceId, DateTimeOffset Start, DateTimeOffset End, bool IsAllDay, CalendarEvent Event)
{
    /// <summary>Names the occurrence stably, also once moved: the UID, and for a series the original start in UTC (or the date).</summary>
    public string Key => $"{Uid}|{RecurrenceKey}";
    public string RecurrenceKey { get; init; } = "";
    public string Summary => Event.Summary;
}

/// <summary>
/// A calendar object resource (RFC 4791 section 4.1): one VCALENDAR holding one event series: the master VEVENT
/// (with RRULE, RDATE, EXDATE) and its RECURRENCE-ID overrides, plus the VTIMEZONEs they use. Expands the series
/// into occurrences and makes the edits the bridge offers (new event, move, cancel, for one occurrence or all).
/// </summary>
public sealed class CalendarObject
{
    public CalendarComponent Calendar { get; }
    public TimeZoneResolver Zones { get; }
    /// <summary>The zone of floating times and of TZIDs nothing resolves (the room's zone).</summary>
    public TimeZoneInfo DefaultZone { get; }

    public CalendarObject(CalendarComponent calendar, TimeZoneInfo defaultZone)
    {
        Calendar = calendar;
        Zones = new TimeZoneResolver(calendar);
        DefaultZone = defaultZone;
    }

    public static CalendarObject Parse(string text, TimeZoneInfo defaultZone) => new(CalendarComponent.Parse(text), defaultZone);

    public IEnumerable<CalendarEvent> Events => Calendar.Components("VEVENT").Select(c => new CalendarEvent(c));
    public CalendarEvent? Master => Events.FirstOrDefault(e => e.RecurrenceId is null);
    public string Uid => (Master ?? Events.FirstOrDefault())?.Uid ?? throw new CalendarFormatException("the object holds no VEVENT");
    public bool IsRecurring => Master?.Rule is not null || Master?.Component.Property("RDATE") is not null;

    /// <summary>A new single event; times in UTC (or a date for all-day), which every client shows in its own zone.</summary>
    public static CalendarObject NewEvent(string uid, string summary, CalendarTime start, TimeSpan length, string? description, DateTimeOffset now, TimeZoneInfo defaultZone)
    {
        var calendar = new CalendarComponent("VCALENDAR");
        calendar.Set("VERSION", "2.0");
        calendar.Set("PRODID", "-//Matrix Homeserver//Calendar Bridge//EN");
        var vevent = new CalendarComponent("VEVENT");
        calendar.Children.Add(vevent);
        vevent.Set("UID", uid);
        var e = new CalendarEvent(vevent);
        e.Stamp(now);
        vevent.SetText("SUMMARY", summary);
        e.Reschedule(start, length);
        if (description is not null)
            vevent.SetText("DESCRIPTION", description);
        return new CalendarObject(calendar, defaultZone);
    }

    /// <summary>
    /// The occurrences starting in [<paramref name="from"/>, <paramref name="to"/>), in order: the master's
    /// recurrence set minus EXDATEs, each replaced by its override when one exists (an override can move an
    /// occurrence into or out of the window), cancelled ones left out.
    /// </summary>
    public List<Occurrence> Occurrences(DateTimeOffset from, DateTimeOffset to)
    {
        var result = new List<Occurrence>();
        var overrides = Events.Where(e => e.RecurrenceId is not null).ToDictionary(e => RecurrenceKey(e.RecurrenceId!.Value), e => e);
        if (Master is { } master)
        {
            var start = master.Start;
            var length = master.Length(Zones, DefaultZone);
            var zone = start.IsUtc ? TimeZoneInfo.Utc : start.TzId is { } tz ? Zones.Resolve(tz) ?? DefaultZone : DefaultZone;
            DateTimeOffset ToInstant(DateTime wallClock) => start.IsUtc ? new DateTimeOffset(wallClock, TimeSpan.Zero) : ZoneTime.ToInstant(wallClock, zone);
            var excluded = master.ExceptionDates.Select(x => RecurrenceKey(x)).ToHashSet(StringComparer.Ordinal);
            var starts = master.Rule is { } rule ? rule.Expand(start.Local, start.IsDate, ToInstant, to) : [start.Local];
            DateTime ToWallClock(CalendarTime extraDate) => start.IsDate ? extraDate.Local.Date
                : TimeZoneInfo.ConvertTime(extraDate.ToInstant(Zones, DefaultZone), zone).DateTime;
            var extra = master.ExtraDates.Select(ToWallClock);
            foreach (var wallClock in starts.Concat(extra).Distinct().Order())
            {
                var recurrenceId = start with { Local = wallClock };
                var key = RecurrenceKey(recurrenceId);
                if (excluded.Contains(key) || overrides.ContainsKey(key))
                    continue;
                var instant = ToInstant(wallClock);
                if (instant >= from && instant < to)
                    result.Add(new Occurrence(master.Uid, recurrenceId, instant, instant + length, start.IsDate, master) { RecurrenceKey = IsRecurring ? key : "" });
            }
        }
        foreach (var (key, e) in overrides)
        {
            if (e.IsCancelled)
                continue;
            var instant = e.Start.ToInstant(Zones, DefaultZone);
            if (instant >= from && instant < to)
                result.Add(new Occurrence(e.Uid, e.RecurrenceId!.Value, instant, instant + e.Length(Zones, DefaultZone), e.IsAllDay, e) { RecurrenceKey = key });
        }
        if (Master is { IsCancelled: true })
            result.RemoveAll(o => o.Event == Master);
        return result.OrderBy(o => o.Start).ToList();
    }

    private string RecurrenceKey(CalendarTime time) =>
        time.IsDate ? time.Value : CalendarTime.Utc(time.ToInstant(Zones, DefaultZone)).Value;

    /// <summary>Moves a whole (non-recurring) event, or one occurrence of a series by adding or updating its override.</summary>
    public void Move(Occurrence occurrence, CalendarTime newStart, DateTimeOffset now)
    {
        var length = occurrence.End - occurrence.Start;
        if (!IsRecurring)
        {
            var single = Master ?? occurrence.Event;
            single.Reschedule(newStart, length);
            single.Touch(now);
            return;
        }
        var existing = Events.FirstOrDefault(e => e.RecurrenceId is { } id && RecurrenceKey(id) == occurrence.RecurrenceKey);
        var target = existing ?? NewOverride(occurrence, now);
        target.Reschedule(newStart, length);
        target.Touch(now);
    }

    /// <summary>Cancels one occurrence of a series: an EXDATE in the master's form, and any override of it removed.</summary>
    public void CancelOccurrence(Occurrence occurrence, DateTimeOffset now)
    {
        var master = Master ?? throw new InvalidOperationException("only a series has occurrences to cancel");
        Calendar.Children.RemoveAll(c => c.Name == "VEVENT" && new CalendarEvent(c).RecurrenceId is { } id
            && RecurrenceKey(id) == occurrence.RecurrenceKey);
        var exdate = occurrence.RecurrenceId;
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (exdate.IsDate)
            parameters["VALUE"] = "DATE";
        else if (exdate.TzId is not null)
            parameters["TZID"] = exdate.TzId;
        master.Component.Properties.Add(new CalendarProperty("EXDATE", exdate.Value, parameters));
        master.Touch(now);
    }

    private CalendarEvent NewOverride(Occurrence occurrence, DateTimeOffset now)
    {
        var master = Master!;
        var copy = new CalendarComponent("VEVENT");
        foreach (var property in master.Component.Properties.Where(p => p.Name is not ("RRULE" or "RDATE" or "EXDATE" or "DTSTART" or "DTEND" or "DURATION")))
            copy.Properties.Add(new CalendarProperty(property.Name, property.Value, new(property.Parameters, StringComparer.OrdinalIgnoreCase)));
        occurrence.RecurrenceId.WriteTo(copy, "RECURRENCE-ID");
        Calendar.Children.Add(copy);
        var e = new CalendarEvent(copy);
        e.Stamp(now);
        return e;
    }

    public override string ToString() => Calendar.ToString();
}
