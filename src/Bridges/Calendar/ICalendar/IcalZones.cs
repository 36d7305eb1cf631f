using Ical.Net;
using NodaTime;
using NodaTime.TimeZones;

namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>
/// Ical.Net 5 looks every TZID up through one process-wide function (<see cref="TimeZoneResolvers.TimeZoneResolver"/>),
/// which knows no VTIMEZONE and refuses unknown names. While an object's occurrences are evaluated
/// (<see cref="Evaluate"/>), that function answers with the object's own <see cref="TimeZoneResolver"/> and, for a
/// TZID nothing resolves, the object's default zone (the room's), as floating times are read.
/// </summary>
internal static class IcalZones
{
    private static readonly AsyncLocal<(TimeZoneResolver Zones, TimeZoneInfo Default)?> Current = new();

    static IcalZones() => TimeZoneResolvers.TimeZoneResolver = Resolve;

    public static T Evaluate<T>(TimeZoneResolver zones, TimeZoneInfo defaultZone, Func<T> evaluate)
    {
        var outer = Current.Value;
        Current.Value = (zones, defaultZone);
        try
        {
            return evaluate();
        }
        finally
        {
            Current.Value = outer;
        }
    }

    private static DateTimeZone Resolve(string tzId)
    {
        var zone = Current.Value is { } current ? current.Zones.Resolve(tzId) ?? current.Default
            : TimeZoneResolver.System(tzId) ?? throw new ArgumentException($"unknown time zone {tzId}", nameof(tzId));
        return DateTimeZoneProviders.Tzdb.GetZoneOrNull(zone.Id) ?? BclDateTimeZone.FromTimeZoneInfo(zone);
    }
}
