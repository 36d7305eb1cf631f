using Ical.Net;
using Ical.Net.CalendarComponents;
using Ical.Net.DataTypes;
using IcalCalendar = Ical.Net.Calendar;

namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>
/// Maps an object's TZIDs to .NET time zones: an IANA name (<c>Europe/Berlin</c>), a Windows name (<c>W. Europe
/// Standard Time</c>, as Outlook writes) or a prefixed IANA name (<c>/mozilla.org/20050126_1/Europe/Berlin</c>)
/// becomes the system zone; any other TZID is built from the object's VTIMEZONE definition (its standard and
/// daylight offsets and yearly transition rules), which Ical.Net 5 does not do. Null when neither works: the caller
/// falls back to its default zone.
/// </summary>
public sealed class TimeZoneResolver
{
    private readonly Dictionary<string, VTimeZone> _definitions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TimeZoneInfo?> _resolved = new(StringComparer.Ordinal);

    public TimeZoneResolver(IcalCalendar? calendar = null)
    {
        foreach (var zone in calendar?.TimeZones ?? Enumerable.Empty<VTimeZone>())
            if (zone.TzId is { } id)
                _definitions[id] = zone;
    }

    public TimeZoneInfo? Resolve(string tzId)
    {
        if (!_resolved.TryGetValue(tzId, out var zone))
            _resolved[tzId] = zone = System(tzId) ?? (_definitions.TryGetValue(tzId, out var definition) ? FromDefinition(tzId, definition) : null);
        return zone;
    }

    /// <summary>A system zone by IANA or Windows name, also when the IANA name ends a longer path.</summary>
    public static TimeZoneInfo? System(string tzId)
    {
        var name = tzId.Trim().Trim('"');
        if (TimeZoneInfo.TryFindSystemTimeZoneById(name, out var zone))
            return zone;
        if (TimeZoneInfo.TryConvertWindowsIdToIanaId(name, out var iana) && TimeZoneInfo.TryFindSystemTimeZoneById(iana, out zone))
            return zone;
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var take = Math.Min(3, parts.Length - 1); take >= 1; take--)
            if (TimeZoneInfo.TryFindSystemTimeZoneById(string.Join('/', parts[^take..]), out zone))
                return zone;
        return null;
    }

    /// <summary>
    /// A zone from a VTIMEZONE: the latest STANDARD offset as the base, and, when a DAYLIGHT part with a yearly rule
    /// exists, one adjustment rule for its transitions (the rules calendars use today; historical changes are not kept).
    /// </summary>
    private static TimeZoneInfo? FromDefinition(string tzId, VTimeZone definition)
    {
        var standard = Latest(definition, "STANDARD");
        var daylight = Latest(definition, "DAYLIGHT");
        if ((standard ?? daylight)?.OffsetTo is not { } baseOffset)
            return null;
        try
        {
            if (standard is null || daylight?.OffsetTo is not { } daylightOffset
                || Transition(daylight) is not { } toDaylight || Transition(standard) is not { } toStandard)
                return TimeZoneInfo.CreateCustomTimeZone(tzId, baseOffset.Offset, tzId, tzId);
            var rule = TimeZoneInfo.AdjustmentRule.CreateAdjustmentRule(DateTime.MinValue.Date, DateTime.MaxValue.Date,
                daylightOffset.Offset - baseOffset.Offset, toDaylight, toStandard);
            return TimeZoneInfo.CreateCustomTimeZone(tzId, baseOffset.Offset, tzId, tzId, tzId + " (daylight)", [rule]);
        }
        catch (Exception e) when (e is ArgumentException or InvalidTimeZoneException)
        {
            return null;
        }
    }

    private static VTimeZoneInfo? Latest(VTimeZone definition, string part) =>
        definition.TimeZoneInfos.Where(i => i.Name == part && i.DtStart is not null).MaxBy(i => i.DtStart!.Value);

    /// <summary>A yearly transition (<c>FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU</c> or a fixed BYMONTHDAY) as .NET's TransitionTime.</summary>
    private static TimeZoneInfo.TransitionTime? Transition(VTimeZoneInfo part)
    {
        var start = part.DtStart!.Value;
        // .NET states transition times in the wall clock before the change; DTSTART is already that.
        var timeOfDay = new DateTime(1, 1, 1, start.Hour, start.Minute, start.Second);
        if (part.RecurrenceRule is not { Frequency: FrequencyType.Yearly } rule)
            return null;
        var month = rule.ByMonth.Count > 0 ? rule.ByMonth[0] : start.Month;
        if (rule.ByDay.Count == 1)
        {
            var ordinal = rule.ByDay[0].Offset ?? 0;
            var week = ordinal switch { < 0 => 5, 0 => 1, > 4 => 5, _ => ordinal };
            if (ordinal == 0 && rule.ByMonthDay.Count > 0)
            {
                // "the first Sunday on or after the 8th": BYMONTHDAY=8,9..14 with BYDAY=SU; .NET counts weeks from day 1.
                week = (rule.ByMonthDay.Min() + 6) / 7;
            }
            return TimeZoneInfo.TransitionTime.CreateFloatingDateRule(timeOfDay, month, week, rule.ByDay[0].DayOfWeek);
        }
        var monthDay = rule.ByMonthDay.Count > 0 ? rule.ByMonthDay[0] : start.Day;
        return TimeZoneInfo.TransitionTime.CreateFixedDateRule(timeOfDay, month, monthDay);
    }
}
