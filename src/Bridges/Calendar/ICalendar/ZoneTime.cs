using Ical.Net.DataTypes;

namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>Wall-clock time in a zone to an instant, the way calendars resolve the DST gap and overlap.</summary>
public static class ZoneTime
{
    /// <summary>
    /// A time in the spring-forward gap moves forward by the gap (02:30 becomes 03:30); a time in the fall-back
    /// overlap is its first occurrence (the daylight one), as RFC 5545 section 3.3.5 says.
    /// </summary>
    public static DateTimeOffset ToInstant(DateTime wallClock, TimeZoneInfo zone)
    {
        var local = DateTime.SpecifyKind(wallClock, DateTimeKind.Unspecified);
        if (zone.IsInvalidTime(local))
        {
            var before = zone.GetUtcOffset(local.AddHours(-3));
            return new DateTimeOffset(local, before).ToOffset(zone.GetUtcOffset(local.AddHours(3)));
        }
        if (zone.IsAmbiguousTime(local))
            return new DateTimeOffset(local, zone.GetAmbiguousTimeOffsets(local).Max());
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    /// <summary>An instant as an iCalendar UTC DATE-TIME, which every client shows in its own zone.</summary>
    public static CalDateTime Utc(DateTimeOffset instant) => new(instant.UtcDateTime, CalDateTime.UtcTzId);
}
