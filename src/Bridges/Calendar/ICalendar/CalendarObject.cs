using System.Runtime.Serialization;
using Ical.Net.CalendarComponents;
using Ical.Net.DataTypes;
using Ical.Net.Evaluation;
using Ical.Net.Serialization;
using IcalCalendar = Ical.Net.Calendar;

namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>One occurrence of an event: which (UID and its original start), when, and the VEVENT describing it.</summary>
public sealed record Occurrence(string Uid, CalDateTime RecurrenceId, DateTimeOffset Start, DateTimeOffset End, bool IsAllDay, CalendarEvent Event)
{
    /// <summary>Names the occurrence stably, also once moved: the UID, and for a series the original start in UTC (or the date).</summary>
    public string Key => $"{Uid}|{RecurrenceKey}";
    public string RecurrenceKey { get; init; } = "";
    public string Summary => Event.Summary ?? "";
}

/// <summary>Text that is not a valid iCalendar object.</summary>
public sealed class CalendarFormatException(string message) : Exception(message);

/// <summary>
/// A calendar object resource (RFC 4791 section 4.1): one VCALENDAR holding one event series: the master VEVENT
/// (with RRULE, RDATE, EXDATE) and its RECURRENCE-ID overrides, plus the VTIMEZONEs they use. Ical.Net reads and
/// writes it (keeping properties other clients put there) and expands the rules; this class turns occurrences into
/// instants (floating times and dates in the room's zone) and makes the edits the bridge offers (new event, move,
/// cancel, for one occurrence or all).
/// </summary>
public sealed class CalendarObject
{
    public IcalCalendar Calendar { get; }
    public TimeZoneResolver Zones { get; }
    /// <summary>The zone of floating times, dates and TZIDs nothing resolves (the room's zone).</summary>
    public TimeZoneInfo DefaultZone { get; }

    private CalendarObject(IcalCalendar calendar, TimeZoneInfo defaultZone)
    {
        Calendar = calendar;
        Zones = new TimeZoneResolver(calendar);
        DefaultZone = defaultZone;
    }

    public static CalendarObject Parse(string text, TimeZoneInfo defaultZone)
    {
        IcalCalendar? calendar;
        try
        {
            calendar = IcalCalendar.Load(text);
        }
        catch (Exception e) when (e is SerializationException or ArgumentException or FormatException or InvalidOperationException or OverflowException)
        {
            throw new CalendarFormatException(e.Message);
        }
        return new CalendarObject(calendar ?? throw new CalendarFormatException("no VCALENDAR component"), defaultZone);
    }

    public IEnumerable<CalendarEvent> Events => Calendar.Events;
    public CalendarEvent? Master => Events.FirstOrDefault(e => e.RecurrenceIdentifier is null);
    public string Uid => (Master ?? Events.FirstOrDefault())?.Uid ?? throw new CalendarFormatException("the object holds no VEVENT with a UID");
    public bool IsRecurring => Master is { } master && (master.RecurrenceRule is not null || master.RecurrenceDates.GetAllDates().Any());

    /// <summary>A new single event; times in UTC (or a date for all-day), which every client shows in its own zone.</summary>
    public static CalendarObject NewEvent(string uid, string summary, CalDateTime start, TimeSpan length, string? description, DateTimeOffset now, TimeZoneInfo defaultZone)
    {
        var calendar = new IcalCalendar { ProductId = "-//Matrix Homeserver//Calendar Bridge//EN" };
        var e = new CalendarEvent { Uid = uid, Summary = summary, Description = description };
        calendar.Events.Add(e);
        Stamp(e, now);
        Reschedule(e, start, length);
        return new CalendarObject(calendar, defaultZone);
    }

    /// <summary>
    /// The occurrences starting in [from, to): the master's (Ical.Net expands RRULE, RDATE and EXDATE) less those an
    /// override replaces, and the overrides themselves (at their new times); cancelled ones left out.
    /// </summary>
    public List<Occurrence> Occurrences(DateTimeOffset from, DateTimeOffset to) => IcalZones.Evaluate(Zones, DefaultZone, () =>
    {
        var result = new List<Occurrence>();
        var overrides = Events.Where(e => e.RecurrenceIdentifier is not null)
            .GroupBy(e => RecurrenceKey(e.RecurrenceIdentifier!.StartTime)).ToDictionary(g => g.Key, g => g.MaxBy(e => e.Sequence)!);
        if (Master is { IsActive: true } master)
        {
            // Floating times compare by wall clock: a day's margin covers any zone.
            foreach (var occurrence in Expand(master, ZoneTime.Utc(from.AddDays(-1))))
            {
                var start = Instant(occurrence.Period.StartTime);
                if (start >= to)
                    break;
                var key = RecurrenceKey(occurrence.Period.StartTime);
                if (start >= from && !overrides.ContainsKey(key))
                    result.Add(new Occurrence(master.Uid!, occurrence.Period.StartTime, start, End(occurrence.Period), master.IsAllDay, master)
                        { RecurrenceKey = IsRecurring ? key : "" });
            }
        }
        foreach (var (key, e) in overrides)
        {
            if (!e.IsActive || Expand(e, null).FirstOrDefault() is not { } only)
                continue;
            var start = Instant(only.Period.StartTime);
            if (start >= from && start < to)
                result.Add(new Occurrence(e.Uid!, e.RecurrenceIdentifier!.StartTime, start, End(only.Period), e.IsAllDay, e) { RecurrenceKey = key });
        }
        return result.OrderBy(o => o.Start).ToList();
    });

    /// <summary>The event's occurrences from <paramref name="start"/>; a rule Ical.Net cannot take further ends the list there.</summary>
    private static IEnumerable<Ical.Net.DataTypes.Occurrence> Expand(CalendarEvent e, CalDateTime? start)
    {
        using var occurrences = e.GetOccurrences(start).GetEnumerator();
        while (true)
        {
            try
            {
                if (!occurrences.MoveNext())
                    yield break;
            }
            catch (EvaluationException)
            {
                yield break;
            }
            yield return occurrences.Current;
        }
    }

    private DateTimeOffset End(Period period) => Instant(period.EffectiveEndTime ?? period.StartTime);

    /// <summary>The instant a value stands for: UTC as is, a TZID through <see cref="Zones"/>, floating times and dates in the default zone.</summary>
    public DateTimeOffset Instant(CalDateTime time)
    {
        if (time.IsUtc)
            return new DateTimeOffset(DateTime.SpecifyKind(time.Value, DateTimeKind.Unspecified), TimeSpan.Zero);
        var zone = time.HasTime && time.TzId is { } tzId ? Zones.Resolve(tzId) ?? DefaultZone : DefaultZone;
        return ZoneTime.ToInstant(time.Value, zone);
    }

    private string RecurrenceKey(CalDateTime time) =>
        time.HasTime ? Instant(time).UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture)
        : time.Date.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Moves a whole (non-recurring) event, or one occurrence of a series by adding or updating its override.</summary>
    public void Move(Occurrence occurrence, CalDateTime newStart, DateTimeOffset now)
    {
        var length = occurrence.End - occurrence.Start;
        var target = !IsRecurring ? Master ?? occurrence.Event
            : Events.FirstOrDefault(e => e.RecurrenceIdentifier is { } id && RecurrenceKey(id.StartTime) == occurrence.RecurrenceKey) ?? NewOverride(occurrence, now);
        Reschedule(target, newStart, length);
        Touch(target, now);
    }

    /// <summary>Cancels one occurrence of a series: an EXDATE in the master's form, and any override of it removed.</summary>
    public void CancelOccurrence(Occurrence occurrence, DateTimeOffset now)
    {
        var master = Master ?? throw new InvalidOperationException("only a series has occurrences to cancel");
        foreach (var replaced in Events.Where(e => e.RecurrenceIdentifier is { } id && RecurrenceKey(id.StartTime) == occurrence.RecurrenceKey).ToList())
            Calendar.Events.Remove(replaced);
        master.ExceptionDates.Add(occurrence.RecurrenceId);
        Touch(master, now);
    }

    private CalendarEvent NewOverride(Occurrence occurrence, DateTimeOffset now)
    {
        var copy = Master!.Copy<CalendarEvent>()!;
        copy.RecurrenceRule = null;
        copy.RecurrenceDates.Clear();
        copy.ExceptionDates.Clear();
        copy.RecurrenceIdentifier = new RecurrenceIdentifier(occurrence.RecurrenceId);
        Calendar.Events.Add(copy);
        Stamp(copy, now);
        return copy;
    }

    /// <summary>Sets start and length (DTEND written, DURATION dropped), keeping the start's form (zone, date).</summary>
    private static void Reschedule(CalendarEvent e, CalDateTime start, TimeSpan length)
    {
        e.DtStart = start;
        if (e.Duration is not null)
            e.Duration = null;
        e.DtEnd = start.HasTime ? new CalDateTime(start.Value + length, start.TzId)
            : new CalDateTime(start.Date.AddDays(Math.Max(1, (int)Math.Round(length.TotalDays))));
    }

    /// <summary>Marks a change the way other clients notice it: SEQUENCE up, DTSTAMP and LAST-MODIFIED now.</summary>
    private static void Touch(CalendarEvent e, DateTimeOffset now)
    {
        e.Sequence++;
        Stamp(e, now);
    }

    private static void Stamp(CalendarEvent e, DateTimeOffset now)
    {
        var stamp = ZoneTime.Utc(DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds()));
        e.DtStamp = stamp;
        e.LastModified = stamp;
    }

    public override string ToString() => new CalendarSerializer().SerializeToString(Calendar) ?? "";
}
