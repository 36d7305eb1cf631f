using Matrix.Bridges.Calendar;

namespace Matrix.Bridges.Tests;

/// <summary>The <c>!cal</c> command reader: days and times in the room's zone, lengths, quotes, and the errors it explains.</summary>
public sealed class CalendarCommandTests
{
    // A Sunday afternoon.
    private static readonly DateTime Now = new(2026, 11, 22, 15, 30, 0);

    [Theory]
    [InlineData("!cal add \"Design review\" tomorrow 10:00 1h", "Design review", "2026-11-23 10:00", 60)]
    [InlineData("!cal add “Team lunch” today 12:30 1h30m", "Team lunch", "2026-11-22 12:30", 90)]
    [InlineData("!cal add \"Sprint planning\" monday 9:00 45m", "Sprint planning", "2026-11-23 09:00", 45)]
    [InlineData("!cal add \"Weekly\" sunday 18:00", "Weekly", "2026-11-22 18:00", 60)]
    [InlineData("!cal add Offsite 2026-12-03 08:00 2d", "Offsite", "2026-12-03 08:00", 2880)]
    public void Add_reads_title_day_time_and_length(string text, string title, string start, int minutes)
    {
        var add = Assert.IsType<AddCommand>(CalendarCommands.Parse(text, Now));
        Assert.Equal(title, add.Title);
        Assert.Equal(start, add.Start.ToString("yyyy-MM-dd HH:mm"));
        Assert.Equal(TimeSpan.FromMinutes(minutes), add.Length);
        Assert.False(add.AllDay);
    }

    [Fact]
    public void All_day_events_take_a_day_without_a_time()
    {
        var add = Assert.IsType<AddCommand>(CalendarCommands.Parse("!cal add \"Holiday\" 2026-12-24 all-day", Now));
        Assert.True(add.AllDay);
        Assert.Equal(new DateTime(2026, 12, 24), add.Start);
    }

    [Fact]
    public void Other_commands_are_read()
    {
        Assert.Equal(new ListCommand(7), CalendarCommands.Parse("!cal list", Now));
        Assert.Equal(new ListCommand(14), CalendarCommands.Parse("!CAL list 14", Now));
        Assert.Equal(new MoveCommand("3f9a2c", new DateTime(2026, 11, 27, 14, 0, 0)), CalendarCommands.Parse("!cal move #3f9a2c friday 14:00", Now));
        Assert.Equal(new CancelCommand("3f9a2c"), CalendarCommands.Parse("!cal cancel 3f9a2c", Now));
        Assert.Equal(new LeadCommand(10), CalendarCommands.Parse("!cal lead 10", Now));
        Assert.Equal(new AgendaCommand("08:30"), CalendarCommands.Parse("!cal agenda 8:30", Now));
        Assert.Equal(new AgendaCommand("off"), CalendarCommands.Parse("!cal agenda OFF", Now));
        Assert.Equal("Europe/Berlin", Assert.IsType<TimeZoneCommand>(CalendarCommands.Parse("!cal timezone Europe/Berlin", Now)).Zone.Id);
        Assert.IsType<HelpCommand>(CalendarCommands.Parse("!cal", Now));
        Assert.Equal(new LinkCommand("https://u:p@dav.example.org/u/cal/"), CalendarCommands.Parse("!cal link https://u:p@dav.example.org/u/cal/", Now));
    }

    [Theory]
    [InlineData("hello")]
    [InlineData("!calendar add")]
    [InlineData("please !cal list")]
    public void Other_messages_are_not_commands(string text) => Assert.Null(CalendarCommands.Parse(text, Now));

    [Theory]
    [InlineData("!cal add \"Design review\" tomorrow", "Usage: !cal add")]
    [InlineData("!cal add \"Design review\" someday 10:00", "is not a day and time")]
    [InlineData("!cal add \"Design review\" tomorrow 25:00", "is not a day and time")]
    [InlineData("!cal add \"Design review\" tomorrow 10:00 forever", "is not a length")]
    [InlineData("!cal add Design review tomorrow 10:00 1h", "put the title in quotes")]
    [InlineData("!cal add \"Design review tomorrow 10:00", "quote is not closed")]
    [InlineData("!cal move 3f9a2c", "Usage: !cal move")]
    [InlineData("!cal list forever", "Usage: !cal list")]
    [InlineData("!cal lead -5", "Usage: !cal lead")]
    [InlineData("!cal timezone Mars/Olympus", "Usage: !cal timezone")]
    [InlineData("!cal link ftp://example.org/", "Usage: !cal link")]
    [InlineData("!cal frobnicate", "Unknown command")]
    public void Wrong_commands_explain_the_right_syntax(string text, string expected) =>
        Assert.Contains(expected, Assert.Throws<CommandException>(() => CalendarCommands.Parse(text, Now)).Message);
}
