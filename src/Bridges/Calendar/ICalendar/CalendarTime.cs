using System.Globalization;

namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>
/// A DATE or DATE-TIME value (RFC 5545 sections 3.3.4, 3.3.5): a wall-clock time in a named zone (TZID), a UTC time,
/// a floating time (no zone: the reader's own), or a whole date (all-day).
/// </summary>
public readonly record struct CalendarTime(DateTime Local, bool IsDate, bool IsUtc, string? TzId)
{
    public static CalendarTime Utc(DateTimeOffset instant) => new(DateTime.SpecifyKind(instant.UtcDateTime, DateTimeKind.Unspecified), false, true, null);
    public static CalendarTime Date(DateOnly date) => new(date.ToDateTime(TimeOnly.MinValue), true, false, null);
    public static CalendarTime InZone(DateTime wallClock, string tzId) => new(DateTime.SpecifyKind(wallClock, DateTimeKind.Unspecified), false, false, tzId);

    public bool IsFloating => !IsDate && !IsUtc && TzId is null;

    public static CalendarTime From(CalendarProperty property) => Parse(property.Value.Trim(), property.Parameter("TZID"),
        property.Parameter("VALUE")?.Equals("DATE", StringComparison.OrdinalIgnoreCase) == true);

    /// <summary>Parses one value; a bare 8-digit value is a DATE even without <c>VALUE=DATE</c> (as clients write it).</summary>
    public static CalendarTime Parse(string value, string? tzId, bool isDate = false)
    {
        if (isDate || value.Length == 8)
            return DateOnly.TryParseExact(value, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
                ? Date(date)
                : throw new CalendarFormatException($"'{value}' is not a DATE");
        var utc = value.EndsWith('Z');
        if (!DateTime.TryParseExact(utc ? value[..^1] : value, "yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time))
            throw new CalendarFormatException($"'{value}' is not a DATE-TIME");
        return new CalendarTime(time, false, utc, utc ? null : tzId);
    }

    /// <summary>The instant, given how to resolve this value's zone; floating times and dates use <paramref name="defaultZone"/>.</summary>
    public DateTimeOffset ToInstant(TimeZoneResolver zones, TimeZoneInfo defaultZone)
    {
        if (IsUtc)
            return new DateTimeOffset(Local, TimeSpan.Zero);
        var zone = TzId is null ? defaultZone : zones.Resolve(TzId) ?? defaultZone;
        return ZoneTime.ToInstant(Local, zone);
    }

    /// <summary>The property value (without parameters).</summary>
    public string Value => IsDate ? Local.ToString("yyyyMMdd", CultureInfo.InvariantCulture)
        : Local.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture) + (IsUtc ? "Z" : "");

    /// <summary>Writes this value as the property <paramref name="name"/> of <paramref name="component"/>, with its TZID or VALUE=DATE.</summary>
    public CalendarProperty WriteTo(CalendarComponent component, string name)
    {
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (IsDate)
            parameters["VALUE"] = "DATE";
        else if (TzId is not null)
            parameters["TZID"] = TzId;
        return component.Set(name, Value, parameters)!;
    }
}

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
}

/// <summary>DURATION values (section 3.3.6): <c>P1W</c>, <c>P1DT2H</c>, <c>-PT15M</c>.</summary>
public static class CalendarDuration
{
    public static TimeSpan Parse(string value)
    {
        var text = value.Trim();
        var sign = 1;
        if (text.StartsWith('-') || text.StartsWith('+'))
        {
            sign = text[0] == '-' ? -1 : 1;
            text = text[1..];
        }
        if (!text.StartsWith('P') || text.Length < 3)
            throw new CalendarFormatException($"'{value}' is not a DURATION");
        var total = TimeSpan.Zero;
        var inTime = false;
        var number = 0L;
        var digits = 0;
        foreach (var c in text[1..])
        {
            if (char.IsAsciiDigit(c))
            {
                number = number * 10 + (c - '0');
                digits++;
                continue;
            }
            if (c == 'T')
            {
                inTime = true;
                continue;
            }
            if (digits == 0)
                throw new CalendarFormatException($"'{value}' is not a DURATION");
            total += (c, inTime) switch
            {
                ('W', false) => TimeSpan.FromDays(7 * number),
                ('D', false) => TimeSpan.FromDays(number),
                ('H', true) => TimeSpan.FromHours(number),
                ('M', true) => TimeSpan.FromMinutes(number),
                ('S', true) => TimeSpan.FromSeconds(number),
                _ => throw new CalendarFormatException($"'{value}' is not a DURATION"),
            };
            number = 0;
            digits = 0;
        }
        if (digits > 0)
            throw new CalendarFormatException($"'{value}' is not a DURATION");
        return sign * total;
    }

    public static string Format(TimeSpan duration)
    {
        var text = duration < TimeSpan.Zero ? "-P" : "P";
        var d = duration.Duration();
        if (d.Days > 0)
            text += $"{d.Days}D";
        if (d.Hours + d.Minutes + d.Seconds > 0 || d == TimeSpan.Zero)
            text += "T" + (d.Hours > 0 ? $"{d.Hours}H" : "") + (d.Minutes > 0 ? $"{d.Minutes}M" : "")
                + (d.Seconds > 0 || d == TimeSpan.Zero ? $"{d.Seconds}S" : "");
        return text;
    }
}
