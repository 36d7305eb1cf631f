using System.Globalization;

namespace Matrix.Bridges.Calendar.ICalendar;

public enum Frequency { Secondly, Minutely, Hourly, Daily, Weekly, Monthly, Yearly }

/// <summary>
/// An RRULE (RFC 5545 section 3.3.10) and its expansion into wall-clock start times. Supported: FREQ DAILY, WEEKLY,
/// MONTHLY, YEARLY with INTERVAL, COUNT, UNTIL, BYDAY (with ordinals in monthly and yearly rules), BYMONTHDAY
/// (negative from the month's end), BYMONTH, BYHOUR, BYMINUTE, BYSETPOS and WKST. Sub-daily frequencies and
/// BYYEARDAY/BYWEEKNO are not: such a rule yields only DTSTART (<see cref="IsSupported"/> says so).
/// </summary>
public sealed record RecurrenceRule(
    Frequency Frequency, int Interval, int? Count, CalendarTime? Until,
    IReadOnlyList<(int Ordinal, DayOfWeek Day)> ByDay, IReadOnlyList<int> ByMonthDay, IReadOnlyList<int> ByMonth,
    IReadOnlyList<int> ByHour, IReadOnlyList<int> ByMinute, IReadOnlyList<int> BySetPos, DayOfWeek WeekStart, bool IsSupported)
{
    /// <summary>How many periods (days, weeks, months, years) an expansion looks at before giving up on a rule that matches nothing.</summary>
    private const int MaxPeriods = 50_000;

    private static readonly string[] DayNames = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

    public static RecurrenceRule Parse(string value)
    {
        var parts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in value.Trim().Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = part.IndexOf('=');
            if (equals <= 0)
                throw new CalendarFormatException($"RRULE part '{part}' is not NAME=value");
            parts[part[..equals].Trim()] = part[(equals + 1)..].Trim();
        }
        if (!parts.TryGetValue("FREQ", out var freq) || !Enum.TryParse<Frequency>(freq, ignoreCase: true, out var frequency))
            throw new CalendarFormatException($"RRULE '{value}' has no valid FREQ");
        var interval = parts.TryGetValue("INTERVAL", out var i) ? Number(i, 1, int.MaxValue) : 1;
        int? count = parts.TryGetValue("COUNT", out var c) ? Number(c, 1, int.MaxValue) : null;
        CalendarTime? until = parts.TryGetValue("UNTIL", out var u) ? CalendarTime.Parse(u, null) : null;
        var byDay = List(parts, "BYDAY", Day);
        var weekStart = parts.TryGetValue("WKST", out var w) ? Day(w).Day : DayOfWeek.Monday;
        var supported = frequency >= Frequency.Daily && !parts.ContainsKey("BYYEARDAY") && !parts.ContainsKey("BYWEEKNO");
        return new RecurrenceRule(frequency, interval, count, until, byDay,
            List(parts, "BYMONTHDAY", d => Number(d, -31, 31)), List(parts, "BYMONTH", m => Number(m, 1, 12)),
            List(parts, "BYHOUR", h => Number(h, 0, 23, zeroAllowed: true)), List(parts, "BYMINUTE", m => Number(m, 0, 59, zeroAllowed: true)),
            List(parts, "BYSETPOS", p => Number(p, -366, 366)), weekStart, supported);
    }

    private static List<T> List<T>(Dictionary<string, string> parts, string key, Func<string, T> parse) =>
        parts.TryGetValue(key, out var text) ? text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => parse(s.Trim())).ToList() : [];

    private static int Number(string text, int min, int max, bool zeroAllowed = false) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max && (n != 0 || zeroAllowed)
            ? n
            : throw new CalendarFormatException($"'{text}' is out of range in an RRULE");

    private static (int Ordinal, DayOfWeek Day) Day(string text)
    {
        var name = text.Length >= 2 ? text[^2..].ToUpperInvariant() : "";
        var index = Array.IndexOf(DayNames, name);
        if (index < 0)
            throw new CalendarFormatException($"'{text}' is not a weekday in an RRULE");
        var ordinal = text.Length > 2 ? Number(text[..^2], -53, 53) : 0;
        return (ordinal, (DayOfWeek)index);
    }

    public override string ToString()
    {
        var parts = new List<string> { "FREQ=" + Frequency.ToString().ToUpperInvariant() };
        if (Interval != 1)
            parts.Add($"INTERVAL={Interval}");
        if (Count is { } count)
            parts.Add($"COUNT={count}");
        if (Until is { } until)
            parts.Add("UNTIL=" + until.Value);
        if (ByMonth.Count > 0)
            parts.Add("BYMONTH=" + string.Join(',', ByMonth));
        if (ByMonthDay.Count > 0)
            parts.Add("BYMONTHDAY=" + string.Join(',', ByMonthDay));
        if (ByDay.Count > 0)
            parts.Add("BYDAY=" + string.Join(',', ByDay.Select(d => (d.Ordinal == 0 ? "" : d.Ordinal.ToString(CultureInfo.InvariantCulture)) + DayNames[(int)d.Day])));
        if (ByHour.Count > 0)
            parts.Add("BYHOUR=" + string.Join(',', ByHour));
        if (ByMinute.Count > 0)
            parts.Add("BYMINUTE=" + string.Join(',', ByMinute));
        if (BySetPos.Count > 0)
            parts.Add("BYSETPOS=" + string.Join(',', BySetPos));
        if (WeekStart != DayOfWeek.Monday)
            parts.Add("WKST=" + DayNames[(int)WeekStart]);
        return string.Join(';', parts);
    }

    /// <summary>
    /// The wall-clock starts of the recurrence set, in order, DTSTART first (it counts towards COUNT), up to UNTIL
    /// (compared as an instant through <paramref name="toInstant"/> when UNTIL is UTC), and no further than
    /// <paramref name="notAfter"/> when given.
    /// </summary>
    public IEnumerable<DateTime> Expand(DateTime start, bool isDate, Func<DateTime, DateTimeOffset> toInstant, DateTimeOffset? notAfter = null)
    {
        var emitted = 0;
        if (!WithinUntil(start, isDate, toInstant))
            yield break;
        yield return start;
        emitted++;
        if (!IsSupported)
            yield break;
        var emptyPeriods = 0;
        for (var period = 0; period < MaxPeriods; period++)
        {
            var candidates = Candidates(start, period, isDate);
            if (candidates.Count == 0 && ++emptyPeriods > MaxPeriods / 10)
                yield break;
            foreach (var candidate in candidates)
            {
                if (candidate <= start)
                    continue;
                if (Count is { } count && emitted >= count)
                    yield break;
                if (!WithinUntil(candidate, isDate, toInstant) || (notAfter is { } limit && toInstant(candidate) > limit))
                    yield break;
                yield return candidate;
                emitted++;
            }
        }
    }

    private bool WithinUntil(DateTime candidate, bool isDate, Func<DateTime, DateTimeOffset> toInstant)
    {
        if (Until is not { } until)
            return true;
        if (until.IsDate || isDate)
            return candidate.Date <= until.Local.Date;
        return until.IsUtc ? toInstant(candidate) <= new DateTimeOffset(until.Local, TimeSpan.Zero) : candidate <= until.Local;
    }

    /// <summary>The rule's matches in the <paramref name="period"/>-th period after the one holding DTSTART, sorted, BYSETPOS applied.</summary>
    private List<DateTime> Candidates(DateTime start, int period, bool isDate)
    {
        var step = period * Interval;
        IEnumerable<DateTime> days = Frequency switch
        {
            Frequency.Daily => [start.Date.AddDays(step)],
            Frequency.Weekly => WeekDays(WeekStartOf(start.Date).AddDays(7 * step), start),
            Frequency.Monthly => MonthDays(new DateTime(start.Year, start.Month, 1).AddMonths(step), start),
            _ => YearDays(start.Year + step, start),
        };
        var dates = days.Where(d => (ByMonth.Count == 0 || ByMonth.Contains(d.Month))
            && (Frequency != Frequency.Daily || ((ByMonthDay.Count == 0 || MatchesMonthDay(d)) && (ByDay.Count == 0 || ByDay.Any(b => b.Day == d.DayOfWeek)))));
        var times = isDate
            ? dates.Select(d => d.Date)
            : from d in dates
              from h in ByHour.Count > 0 ? ByHour : [start.Hour]
              from m in ByMinute.Count > 0 ? ByMinute : [start.Minute]
              select d.Date.AddHours(h).AddMinutes(m).AddSeconds(start.Second);
        var sorted = times.Distinct().Order().ToList();
        if (BySetPos.Count == 0)
            return sorted;
        return BySetPos.Select(p => p > 0 ? (p <= sorted.Count ? sorted[p - 1] : (DateTime?)null) : (-p <= sorted.Count ? sorted[sorted.Count + p] : null))
            .OfType<DateTime>().Distinct().Order().ToList();
    }

    private DateTime WeekStartOf(DateTime day) => day.AddDays(-(((int)day.DayOfWeek - (int)WeekStart + 7) % 7));

    private IEnumerable<DateTime> WeekDays(DateTime weekStart, DateTime start) =>
        Enumerable.Range(0, 7).Select(d => weekStart.AddDays(d))
            .Where(d => ByDay.Count > 0 ? ByDay.Any(b => b.Day == d.DayOfWeek) : d.DayOfWeek == start.DayOfWeek);

    private IEnumerable<DateTime> MonthDays(DateTime month, DateTime start)
    {
        var all = Enumerable.Range(0, DateTime.DaysInMonth(month.Year, month.Month)).Select(d => month.AddDays(d)).ToList();
        if (ByMonthDay.Count == 0 && ByDay.Count == 0)
            return all.Where(d => d.Day == start.Day);
        return all.Where(d => (ByMonthDay.Count == 0 || MatchesMonthDay(d)) && (ByDay.Count == 0 || MatchesOrdinalDay(d, all)));
    }

    private IEnumerable<DateTime> YearDays(int year, DateTime start)
    {
        if (year > 9998)
            return [];
        if (ByMonth.Count > 0)
            return ByMonth.Order().SelectMany(m => MonthDays(new DateTime(year, m, 1), start));
        if (ByMonthDay.Count > 0)
            return Enumerable.Range(1, 12).SelectMany(m => MonthDays(new DateTime(year, m, 1), start));
        if (ByDay.Count > 0)
        {
            var all = Enumerable.Range(0, DateTime.IsLeapYear(year) ? 366 : 365).Select(d => new DateTime(year, 1, 1).AddDays(d)).ToList();
            return all.Where(d => MatchesOrdinalDay(d, all));
        }
        return DateTime.DaysInMonth(year, start.Month) >= start.Day ? [new DateTime(year, start.Month, start.Day)] : [];
    }

    private bool MatchesMonthDay(DateTime day)
    {
        var daysInMonth = DateTime.DaysInMonth(day.Year, day.Month);
        return ByMonthDay.Any(n => n > 0 ? day.Day == n : day.Day == daysInMonth + n + 1);
    }

    /// <summary>BYDAY with ordinals counted within <paramref name="scope"/> (the month, or the year): 2TU, -1FR, or every MO.</summary>
    private bool MatchesOrdinalDay(DateTime day, List<DateTime> scope) => ByDay.Any(b =>
    {
        if (b.Day != day.DayOfWeek)
            return false;
        if (b.Ordinal == 0)
            return true;
        var sameWeekday = scope.Where(d => d.DayOfWeek == b.Day).ToList();
        var index = b.Ordinal > 0 ? b.Ordinal - 1 : sameWeekday.Count + b.Ordinal;
        return index >= 0 && index < sameWeekday.Count && sameWeekday[index] == day;
    });
}
