using Ical.Net.DataTypes;
using Matrix.Bridges.Calendar.ICalendar;

namespace Matrix.Bridges.Tests;

/// <summary>
/// iCalendar as the bridge reads and writes it (Ical.Net and our layer on it): lines, escapes, time zones, recurrence
/// expansion, overrides and edits.
/// </summary>
public sealed class ICalendarTests
{
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
    private static readonly TimeZoneInfo NewYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");

    private static string Calendar(string events, string zones = "") =>
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + zones + events + "END:VCALENDAR\r\n";

    private static CalendarObject Object(string vevent, string zones = "", TimeZoneInfo? zone = null) =>
        CalendarObject.Parse(Calendar(vevent, zones), zone ?? TimeZoneInfo.Utc);

    private static DateTimeOffset At(string iso) => DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture);

    private static List<string> Starts(CalendarObject o, string from, string to) =>
        o.Occurrences(At(from), At(to)).Select(x => x.Start.UtcDateTime.ToString("yyyy-MM-dd HH:mm")).ToList();

    [Fact]
    public void Folded_lines_parameters_and_escapes_are_read_and_written_back_unchanged()
    {
        var text = Calendar("BEGIN:VEVENT\r\nUID:a@b\r\nDTSTART:20261201T100000Z\r\n"
            + "SUMMARY:Design review\\, with \\\"all\\\"\\; bring\\nnotes\r\n"
            + "DESCRIPTION:A long description that goes on and on beyond the seventy-five oc\r\n tet line limit of iCalendar\r\n"
            + "ATTENDEE;CN=\"Doe, Jane\";ROLE=REQ-PARTICIPANT:mailto:jane@example.org\r\n"
            + "X-CUSTOM;X-PARAM=1:kept as is\r\nEND:VEVENT\r\n");
        var e = CalendarObject.Parse(text, TimeZoneInfo.Utc).Master!;
        Assert.Equal("Design review, with \"all\"; bring\nnotes", e.Summary);
        Assert.Equal("A long description that goes on and on beyond the seventy-five octet line limit of iCalendar", e.Description);
        Assert.Equal("Doe, Jane", e.Attendees.Single().CommonName);
        var written = CalendarObject.Parse(text, TimeZoneInfo.Utc).ToString();
        Assert.All(written.Split("\r\n"), line => Assert.True(System.Text.Encoding.UTF8.GetByteCount(line) <= 75, line));
        var again = CalendarObject.Parse(written, TimeZoneInfo.Utc).Master!;
        Assert.Equal(e.Summary, again.Summary);
        Assert.Equal(e.Description, again.Description);
        Assert.Equal("kept as is", again.Properties["X-CUSTOM"].Value);
        Assert.Equal("1", again.Properties["X-CUSTOM"].Parameters.Get("X-PARAM"));
        Assert.Equal("Doe, Jane", again.Attendees.Single().CommonName);
    }

    [Fact]
    public void Multibyte_text_is_folded_between_characters()
    {
        var summary = string.Concat(Enumerable.Repeat("Zürich–München 🚆 ", 12));
        var written = CalendarObject.NewEvent("m@b", summary, ZoneTime.Utc(At("2026-12-02T09:00:00Z")), TimeSpan.FromHours(1), null, At("2026-12-01T00:00:00Z"), TimeZoneInfo.Utc).ToString();
        Assert.All(written.Split("\r\n"), line => Assert.True(System.Text.Encoding.UTF8.GetByteCount(line) <= 75));
        // What goes over the wire is UTF-8: no line may end inside a character.
        var wire = System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(written));
        Assert.Equal(summary, CalendarObject.Parse(wire, TimeZoneInfo.Utc).Master!.Summary);
    }

    [Theory]
    [InlineData("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n")]
    [InlineData("BEGIN:VCALENDAR\r\nSUMMARY\r\nEND:VCALENDAR\r\n")]
    [InlineData("UID:x\r\n")]
    public void Malformed_objects_are_refused_with_a_format_error(string text) =>
        Assert.Throws<CalendarFormatException>(() => CalendarObject.Parse(text, TimeZoneInfo.Utc));

    /// <summary>When the only occurrence of an event with this DTSTART line starts.</summary>
    private static DateTimeOffset StartOf(string dtstart, TimeZoneInfo defaultZone) =>
        Object($"BEGIN:VEVENT\r\nUID:t\r\n{dtstart}\r\nEND:VEVENT\r\n", zone: defaultZone).Occurrences(At("2020-01-01T00:00:00Z"), At("2030-01-01T00:00:00Z")).Single().Start;

    [Fact]
    public void Times_in_a_named_zone_utc_floating_and_all_day_resolve_to_the_right_instants()
    {
        Assert.Equal(At("2026-07-01T08:00:00Z"), StartOf("DTSTART;TZID=Europe/Berlin:20260701T100000", TimeZoneInfo.Utc));
        Assert.Equal(At("2026-01-15T09:00:00Z"), StartOf("DTSTART;TZID=W. Europe Standard Time:20260115T100000", TimeZoneInfo.Utc));
        Assert.Equal(At("2026-01-15T09:00:00Z"), StartOf("DTSTART;TZID=/mozilla.org/20050126_1/Europe/Berlin:20260115T100000", TimeZoneInfo.Utc));
        Assert.Equal(At("2026-01-15T10:00:00Z"), StartOf("DTSTART:20260115T100000Z", Berlin));
        Assert.Equal(At("2026-01-15T15:00:00Z"), StartOf("DTSTART:20260115T100000", NewYork));
        // A TZID nothing knows is read in the default zone, as a floating time is.
        Assert.Equal(At("2026-01-15T15:00:00Z"), StartOf("DTSTART;TZID=Nowhere/Land:20260115T100000", NewYork));
        var allDay = Object("BEGIN:VEVENT\r\nUID:t\r\nDTSTART;VALUE=DATE:20260115\r\nEND:VEVENT\r\n", zone: Berlin).Occurrences(At("2020-01-01T00:00:00Z"), At("2030-01-01T00:00:00Z")).Single();
        Assert.True(allDay.IsAllDay);
        Assert.Equal(At("2026-01-14T23:00:00Z"), allDay.Start);
        // The spring-forward gap moves on by the gap's length; the fall-back overlap takes the first (daylight) one.
        Assert.Equal(At("2026-03-29T01:30:00Z"), StartOf("DTSTART;TZID=Europe/Berlin:20260329T023000", TimeZoneInfo.Utc));
        Assert.Equal(At("2026-10-25T00:30:00Z"), StartOf("DTSTART;TZID=Europe/Berlin:20261025T023000", TimeZoneInfo.Utc));
    }

    [Fact]
    public void A_custom_vtimezone_is_built_from_its_standard_and_daylight_rules()
    {
        const string zone = "BEGIN:VTIMEZONE\r\nTZID:Custom Central\r\n"
            + "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
            + "BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
            + "END:VTIMEZONE\r\n";
        var o = Object("BEGIN:VEVENT\r\nUID:w\r\nDTSTART;TZID=Custom Central:20260323T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n", zone);
        // 09:00 local: before the last Sunday of March +01:00, after it +02:00.
        Assert.Equal(["2026-03-23 08:00", "2026-03-30 07:00", "2026-04-06 07:00"], Starts(o, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"));
    }

    [Theory]
    [InlineData("FREQ=DAILY;COUNT=4", "20261230T090000", new[] { "2026-12-30 09:00", "2026-12-31 09:00", "2027-01-01 09:00", "2027-01-02 09:00" })]
    [InlineData("FREQ=DAILY;INTERVAL=2;UNTIL=20260107T090000Z", "20260101T090000", new[] { "2026-01-01 09:00", "2026-01-03 09:00", "2026-01-05 09:00", "2026-01-07 09:00" })]
    [InlineData("FREQ=WEEKLY;BYDAY=TU,TH;COUNT=5", "20260106T090000", new[] { "2026-01-06 09:00", "2026-01-08 09:00", "2026-01-13 09:00", "2026-01-15 09:00", "2026-01-20 09:00" })]
    [InlineData("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;COUNT=3", "20260105T090000", new[] { "2026-01-05 09:00", "2026-01-19 09:00", "2026-02-02 09:00" })]
    [InlineData("FREQ=MONTHLY;BYDAY=-1FR;COUNT=3", "20260130T090000", new[] { "2026-01-30 09:00", "2026-02-27 09:00", "2026-03-27 09:00" })]
    [InlineData("FREQ=MONTHLY;BYDAY=2TU;COUNT=2", "20260113T090000", new[] { "2026-01-13 09:00", "2026-02-10 09:00" })]
    [InlineData("FREQ=MONTHLY;COUNT=4", "20260131T090000", new[] { "2026-01-31 09:00", "2026-03-31 09:00", "2026-05-31 09:00", "2026-07-31 09:00" })]
    [InlineData("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3", "20260131T090000", new[] { "2026-01-31 09:00", "2026-02-28 09:00", "2026-03-31 09:00" })]
    [InlineData("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3", "20260130T090000", new[] { "2026-01-30 09:00", "2026-02-27 09:00", "2026-03-31 09:00" })]
    [InlineData("FREQ=YEARLY;COUNT=3", "20240229T090000", new[] { "2024-02-29 09:00", "2028-02-29 09:00", "2032-02-29 09:00" })]
    [InlineData("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=2", "20261126T090000", new[] { "2026-11-26 09:00", "2027-11-25 09:00" })]
    // Rules the hand-written expansion gave up on (it yielded only DTSTART).
    [InlineData("FREQ=HOURLY;INTERVAL=2;COUNT=4", "20260105T090000", new[] { "2026-01-05 09:00", "2026-01-05 11:00", "2026-01-05 13:00", "2026-01-05 15:00" })]
    [InlineData("FREQ=HOURLY;BYHOUR=9,17;BYDAY=MO,TU;COUNT=4", "20260105T090000", new[] { "2026-01-05 09:00", "2026-01-05 17:00", "2026-01-06 09:00", "2026-01-06 17:00" })]
    [InlineData("FREQ=MINUTELY;INTERVAL=15;COUNT=3", "20260105T090000", new[] { "2026-01-05 09:00", "2026-01-05 09:15", "2026-01-05 09:30" })]
    [InlineData("FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO;COUNT=3", "20260511T090000", new[] { "2026-05-11 09:00", "2027-05-17 09:00", "2028-05-15 09:00" })]
    [InlineData("FREQ=YEARLY;BYWEEKNO=1,-1;BYDAY=FR;COUNT=3", "20260102T090000", new[] { "2026-01-02 09:00", "2027-01-01 09:00", "2027-01-08 09:00" })]
    [InlineData("FREQ=YEARLY;BYYEARDAY=1,100,-1;COUNT=4", "20260101T090000", new[] { "2026-01-01 09:00", "2026-04-10 09:00", "2026-12-31 09:00", "2027-01-01 09:00" })]
    public void Recurrence_rules_expand_as_rfc_5545_says(string rule, string start, string[] expected)
    {
        var o = Object($"BEGIN:VEVENT\r\nUID:r\r\nDTSTART:{start}Z\r\nRRULE:{rule}\r\nEND:VEVENT\r\n");
        Assert.Equal(expected, Starts(o, "2020-01-01T00:00:00Z", "2040-01-01T00:00:00Z"));
    }

    [Fact]
    public void A_weekly_series_keeps_its_wall_clock_time_across_daylight_saving()
    {
        var o = Object("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;TZID=America/New_York:20261026T090000\r\nDTEND;TZID=America/New_York:20261026T100000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n");
        Assert.Equal(["2026-10-26 13:00", "2026-11-02 14:00", "2026-11-09 14:00"], Starts(o, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"));
        Assert.All(o.Occurrences(At("2026-01-01T00:00:00Z"), At("2027-01-01T00:00:00Z")), x => Assert.Equal(TimeSpan.FromHours(1), x.End - x.Start));
    }

    [Fact]
    public void Exdates_and_recurrence_id_overrides_change_single_occurrences()
    {
        var o = Object("BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Standup\r\nDTSTART;TZID=Europe/Berlin:20261207T090000\r\nDURATION:PT15M\r\n"
            + "RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR\r\nEXDATE;TZID=Europe/Berlin:20261209T090000\r\nEND:VEVENT\r\n"
            + "BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261210T090000\r\nSUMMARY:Standup (late)\r\nDTSTART;TZID=Europe/Berlin:20261210T113000\r\nDURATION:PT15M\r\nEND:VEVENT\r\n"
            + "BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261211T090000\r\nSTATUS:CANCELLED\r\nDTSTART;TZID=Europe/Berlin:20261211T090000\r\nEND:VEVENT\r\n",
            zone: Berlin);
        var week = o.Occurrences(At("2026-12-07T00:00:00Z"), At("2026-12-14T00:00:00Z"));
        Assert.Equal(["2026-12-07 08:00", "2026-12-08 08:00", "2026-12-10 10:30"], week.Select(x => x.Start.UtcDateTime.ToString("yyyy-MM-dd HH:mm")));
        Assert.Equal("Standup (late)", week[2].Summary);
        Assert.Equal("s|20261210T080000Z", week[2].Key);
        // An override moving an occurrence out of the window takes it out.
        Assert.DoesNotContain(o.Occurrences(At("2026-12-10T07:00:00Z"), At("2026-12-10T09:00:00Z")), x => x.RecurrenceKey == "20261210T080000Z");
    }

    [Fact]
    public void All_day_events_last_whole_days_in_the_default_zone()
    {
        var o = Object("BEGIN:VEVENT\r\nUID:h\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\nRRULE:FREQ=YEARLY;COUNT=2\r\nEND:VEVENT\r\n", zone: Berlin);
        var all = o.Occurrences(At("2026-01-01T00:00:00Z"), At("2030-01-01T00:00:00Z"));
        Assert.Equal(2, all.Count);
        Assert.True(all[0].IsAllDay);
        Assert.Equal(At("2026-12-23T23:00:00Z"), all[0].Start);
        Assert.Equal(TimeSpan.FromDays(3), all[0].End - all[0].Start);
        Assert.Equal("20271224", all[1].RecurrenceKey);
    }

    [Fact]
    public void Moving_an_occurrence_adds_an_override_and_cancelling_one_adds_an_exdate()
    {
        var o = Object("BEGIN:VEVENT\r\nUID:m\r\nSUMMARY:Sync\r\nDTSTART;TZID=Europe/Berlin:20261207T090000\r\nDTEND;TZID=Europe/Berlin:20261207T100000\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEND:VEVENT\r\n", zone: Berlin);
        var now = At("2026-12-01T00:00:00Z");
        var all = o.Occurrences(At("2026-12-01T00:00:00Z"), At("2027-01-01T00:00:00Z"));
        o.Move(all[1], new CalDateTime(new DateTime(2026, 12, 8, 15, 0, 0), "Europe/Berlin"), now);
        o.CancelOccurrence(all[3], now);
        var again = CalendarObject.Parse(o.ToString(), Berlin);
        Assert.Equal(["2026-12-07 08:00", "2026-12-08 14:00", "2026-12-09 08:00", "2026-12-11 08:00"], Starts(again, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"));
        var moved = again.Occurrences(At("2026-12-08T00:00:00Z"), At("2026-12-09T00:00:00Z")).Single();
        Assert.Equal("Sync", moved.Summary);
        Assert.Equal(TimeSpan.FromHours(1), moved.End - moved.Start);
        Assert.Equal(1, again.Master!.Sequence);
    }

    [Fact]
    public void A_new_event_round_trips_and_a_single_event_moves_whole()
    {
        var now = At("2026-12-01T12:00:00Z");
        var o = CalendarObject.NewEvent("n@bridge", "Design review", ZoneTime.Utc(At("2026-12-02T09:00:00Z")), TimeSpan.FromHours(1), "from chat", now, Berlin);
        var text = o.ToString();
        Assert.Contains("DTSTART:20261202T090000Z\r\n", text);
        Assert.Contains("DTEND:20261202T100000Z\r\n", text);
        var again = CalendarObject.Parse(text, Berlin);
        var only = again.Occurrences(now, now.AddDays(7)).Single();
        again.Move(only, ZoneTime.Utc(At("2026-12-03T14:00:00Z")), now);
        Assert.Equal(["2026-12-03 14:00"], Starts(again, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"));
        Assert.Equal(1, again.Master!.Sequence);
    }

    [Theory]
    [InlineData("PT1H30M", 90)]
    [InlineData("P1D", 1440)]
    [InlineData("P1W", 10080)]
    [InlineData("P1DT2H", 1560)]
    [InlineData("PT0S", 0)]
    public void Durations_give_each_occurrence_its_length(string duration, int minutes)
    {
        var o = Object($"BEGIN:VEVENT\r\nUID:l\r\nDTSTART:20260105T090000Z\r\nDURATION:{duration}\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n");
        Assert.All(o.Occurrences(At("2026-01-01T00:00:00Z"), At("2027-01-01T00:00:00Z")), x => Assert.Equal(TimeSpan.FromMinutes(minutes), x.End - x.Start));
    }

    [Fact]
    public void A_bad_rule_refuses_the_object_and_a_bad_duration_is_left_out()
    {
        Assert.Throws<CalendarFormatException>(() => Object("BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260105T090000Z\r\nRRULE:FREQ=SOMETIMES\r\nEND:VEVENT\r\n"));
        var o = Object("BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260105T090000Z\r\nDURATION:1H\r\nEND:VEVENT\r\n");
        var only = o.Occurrences(At("2026-01-01T00:00:00Z"), At("2027-01-01T00:00:00Z")).Single();
        Assert.Equal(only.Start, only.End);
    }
}
