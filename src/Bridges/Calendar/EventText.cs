using System.Globalization;
using System.Net;
using FrequencyType = Ical.Net.FrequencyType;
using Matrix.Bridges.Calendar.ICalendar;

namespace Matrix.Bridges.Calendar;

/// <summary>How the bridge writes events in messages: times in the room's zone, plain and HTML.</summary>
public static class EventText
{
    private static readonly CultureInfo English = CultureInfo.GetCultureInfo("en-GB");

    /// <summary>"Tue 2 Dec 10:00–11:00", "Wed 24 Dec (all day)", "Wed 24 Dec – Fri 26 Dec (all day)".</summary>
    public static string When(Occurrence occurrence, TimeZoneInfo zone)
    {
        if (occurrence.IsAllDay)
        {
            var first = TimeZoneInfo.ConvertTime(occurrence.Start, zone).Date;
            var days = Math.Max(1, (int)Math.Round((occurrence.End - occurrence.Start).TotalDays));
            return days == 1 ? $"{Day(first)} (all day)" : $"{Day(first)} – {Day(first.AddDays(days - 1))} (all day)";
        }
        var start = TimeZoneInfo.ConvertTime(occurrence.Start, zone);
        var end = TimeZoneInfo.ConvertTime(occurrence.End, zone);
        var endText = end.Date == start.Date ? end.ToString("HH:mm", English) : $"{Day(end.DateTime)} {end.ToString("HH:mm", English)}";
        return occurrence.End > occurrence.Start ? $"{Day(start.DateTime)} {start.ToString("HH:mm", English)}–{endText}" : $"{Day(start.DateTime)} {start.ToString("HH:mm", English)}";
    }

    /// <summary>" at Room 4" for an occurrence with a location, empty otherwise.</summary>
    public static string Where(Occurrence occurrence) => occurrence.Event.Location is { Length: > 0 } location ? $" at {location}" : "";

    public static string Time(DateTimeOffset instant, TimeZoneInfo zone) => TimeZoneInfo.ConvertTime(instant, zone).ToString("HH:mm", English);

    private static string Day(DateTime date) => date.ToString("ddd d MMM", English);

    /// <summary>"repeats weekly" and the like for a series, empty otherwise.</summary>
    public static string Repeats(CalendarObject calendarObject) => calendarObject.Master?.RecurrenceRule is { } rule
        ? ", repeats " + (rule.Interval <= 1 ? rule.Frequency.ToString().ToLowerInvariant() : $"every {rule.Interval} {Unit(rule.Frequency)}")
        : "";

    private static string Unit(FrequencyType frequency) => frequency switch
    {
        FrequencyType.Secondly => "seconds",
        FrequencyType.Minutely => "minutes",
        FrequencyType.Hourly => "hours",
        FrequencyType.Daily => "days",
        FrequencyType.Weekly => "weeks",
        FrequencyType.Monthly => "months",
        _ => "years",
    };

    /// <summary>A short ID for an occurrence, to name it in move and cancel: stable while the occurrence exists.</summary>
    public static string ShortId(Occurrence occurrence) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(occurrence.Key)))[..6];

    public static string Html(string text) => WebUtility.HtmlEncode(text);
}
