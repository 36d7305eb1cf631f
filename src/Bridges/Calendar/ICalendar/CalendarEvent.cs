namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>A typed view of one VEVENT; changes go straight into the component, so everything else in it is kept.</summary>
public sealed class CalendarEvent(CalendarComponent component)
{
    public CalendarComponent Component { get; } = component;

    public string Uid => Component.Property("UID")?.Value.Trim() ?? throw new CalendarFormatException("a VEVENT has no UID");
    public string Summary => Component.Property("SUMMARY")?.Text ?? "";
    public string? Location => Component.Property("LOCATION")?.Text;
    public string? Description => Component.Property("DESCRIPTION")?.Text;
    public bool IsCancelled => Component.Property("STATUS")?.Value.Trim().Equals("CANCELLED", StringComparison.OrdinalIgnoreCase) == true;
    public int Sequence => int.TryParse(Component.Property("SEQUENCE")?.Value, out var n) ? n : 0;

    public CalendarTime Start => Component.Property("DTSTART") is { } p ? CalendarTime.From(p) : throw new CalendarFormatException($"VEVENT {Uid} has no DTSTART");
    public bool IsAllDay => Start.IsDate;
    public CalendarTime? RecurrenceId => Component.Property("RECURRENCE-ID") is { } p ? CalendarTime.From(p) : null;
    public RecurrenceRule? Rule => Component.Property("RRULE") is { } p ? RecurrenceRule.Parse(p.Value) : null;

    /// <summary>EXDATE values; one property may list several (section 3.8.5.1).</summary>
    public IEnumerable<CalendarTime> ExceptionDates => Component.All("EXDATE").SelectMany(p => p.Value.Split(',', StringSplitOptions.RemoveEmptyEntries)
        .Select(v => CalendarTime.Parse(v.Trim(), p.Parameter("TZID"), p.Parameter("VALUE")?.Equals("DATE", StringComparison.OrdinalIgnoreCase) == true)));

    /// <summary>RDATE date(-time) values (periods are not supported and are skipped).</summary>
    public IEnumerable<CalendarTime> ExtraDates => Component.All("RDATE").Where(p => p.Parameter("VALUE")?.Equals("PERIOD", StringComparison.OrdinalIgnoreCase) != true)
        .SelectMany(p => p.Value.Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(v => CalendarTime.Parse(v.Trim(), p.Parameter("TZID"), p.Parameter("VALUE")?.Equals("DATE", StringComparison.OrdinalIgnoreCase) == true)));

    /// <summary>
    /// How long each occurrence lasts: DTEND minus DTSTART (as instants, or whole days), else DURATION, else the
    /// section 3.6.1 defaults (one day for an all-day event, zero otherwise).
    /// </summary>
    public TimeSpan Length(TimeZoneResolver zones, TimeZoneInfo defaultZone)
    {
        if (Component.Property("DTEND") is { } end)
        {
            var finish = CalendarTime.From(end);
            return IsAllDay ? finish.Local.Date - Start.Local.Date : finish.ToInstant(zones, defaultZone) - Start.ToInstant(zones, defaultZone);
        }
        if (Component.Property("DURATION") is { } duration)
            return CalendarDuration.Parse(duration.Value);
        return IsAllDay ? TimeSpan.FromDays(1) : TimeSpan.Zero;
    }

    /// <summary>Sets start and length (DTEND written, DURATION dropped), keeping the start's form (zone, date).</summary>
    public void Reschedule(CalendarTime start, TimeSpan length)
    {
        start.WriteTo(Component, "DTSTART");
        Component.Set("DURATION", null);
        var end = start.IsDate ? CalendarTime.Date(DateOnly.FromDateTime(start.Local.AddDays(Math.Max(1, length.Days))))
            : start with { Local = start.Local + length };
        end.WriteTo(Component, "DTEND");
    }

    /// <summary>Marks a change the way other clients notice it: SEQUENCE up, DTSTAMP and LAST-MODIFIED now.</summary>
    public void Touch(DateTimeOffset now)
    {
        Component.Set("SEQUENCE", (Sequence + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Stamp(now);
    }

    public void Stamp(DateTimeOffset now)
    {
        var stamp = CalendarTime.Utc(now).Value;
        Component.Set("DTSTAMP", stamp);
        Component.Set("LAST-MODIFIED", stamp);
    }
}
