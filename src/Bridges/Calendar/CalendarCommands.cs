using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Matrix.Bridges.Calendar;

public abstract record CalendarCommand;
public sealed record HelpCommand : CalendarCommand;
public sealed record LinkCommand(string Url) : CalendarCommand;
public sealed record UnlinkCommand : CalendarCommand;
public sealed record LeadCommand(int Minutes) : CalendarCommand;
public sealed record AgendaCommand(string Time) : CalendarCommand;
public sealed record TimeZoneCommand(TimeZoneInfo Zone) : CalendarCommand;
/// <summary>Start is a wall-clock time in the room's zone (a date at midnight when <paramref name="AllDay"/>).</summary>
public sealed record AddCommand(string Title, DateTime Start, TimeSpan Length, bool AllDay) : CalendarCommand;
public sealed record ListCommand(int Days) : CalendarCommand;
public sealed record MoveCommand(string Id, DateTime Start) : CalendarCommand;
public sealed record CancelCommand(string Id) : CalendarCommand;

/// <summary>A command the bridge could not read; the message says what was wrong and the right syntax.</summary>
public sealed class CommandException(string message) : Exception(message);

/// <summary>
/// Reads <c>!cal</c> commands. Times are in the room's zone: <c>today</c>, <c>tomorrow</c>, a weekday (the next one,
/// today included) or <c>YYYY-MM-DD</c>, then <c>HH:MM</c>; lengths like <c>1h</c>, <c>45m</c>, <c>1h30m</c>,
/// <c>2d</c>, or <c>all-day</c>.
/// </summary>
public static partial class CalendarCommands
{
    public const string Prefix = "!cal";

    public const string Help = """
        Calendar commands:
          !cal add "Title" <day> <HH:MM> [length]   add an event, e.g. !cal add "Design review" tomorrow 10:00 1h
          !cal add "Title" <day> all-day             add an all-day event
          !cal list [days]                           upcoming events (default 7 days), with their IDs
          !cal move <id> <day> <HH:MM>               move an event (one occurrence of a series)
          !cal cancel <id>                           cancel an event (one occurrence of a series)
        Room admins:
          !cal link <url>                            link this room to a CalDAV calendar (https://user:password@host/path/)
          !cal unlink                                remove the link
          !cal lead <minutes>                        remind this long before events (0: no reminders)
          !cal agenda <HH:MM|off>                    post the day's agenda at that time
          !cal timezone <zone>                       the room's time zone, e.g. Europe/Berlin
        <day> is today, tomorrow, a weekday (monday...) or YYYY-MM-DD; [length] like 1h, 45m, 1h30m, 2d (default 1h).
        """;

    private const string AddSyntax = "!cal add \"Title\" <day> <HH:MM> [length], e.g. !cal add \"Design review\" tomorrow 10:00 1h";
    private const string MoveSyntax = "!cal move <id> <day> <HH:MM>, e.g. !cal move 3f9a2c friday 14:00 (IDs are in !cal list)";

    /// <summary>The command in <paramref name="body"/>, or null when the message is not a calendar command.</summary>
    public static CalendarCommand? Parse(string body, DateTime localNow)
    {
        var text = body.Trim();
        if (!text.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) || (text.Length > Prefix.Length && !char.IsWhiteSpace(text[Prefix.Length])))
            return null;
        var words = Tokenize(text[Prefix.Length..]);
        if (words.Count == 0)
            return new HelpCommand();
        var args = words.Skip(1).ToList();
        return words[0].ToLowerInvariant() switch
        {
            "help" => new HelpCommand(),
            "link" => args.Count == 1 && Uri.TryCreate(args[0], UriKind.Absolute, out var url) && url.Scheme is "http" or "https"
                ? new LinkCommand(args[0]) : throw new CommandException("Usage: !cal link <url>, e.g. !cal link https://user:password@dav.example.org/user/calendar/"),
            "unlink" => new UnlinkCommand(),
            "lead" => args.Count == 1 && int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var lead) && lead <= 10080
                ? new LeadCommand(lead) : throw new CommandException("Usage: !cal lead <minutes>, 0 to 10080, e.g. !cal lead 10"),
            "agenda" => args.Count == 1 && (args[0].Equals("off", StringComparison.OrdinalIgnoreCase) || ParseTime(args[0]) is not null)
                ? new AgendaCommand(args[0].Equals("off", StringComparison.OrdinalIgnoreCase) ? "off" : ParseTime(args[0])!.Value.ToString("HH:mm", CultureInfo.InvariantCulture))
                : throw new CommandException("Usage: !cal agenda <HH:MM|off>, e.g. !cal agenda 08:30"),
            "timezone" => args.Count == 1 && ICalendar.TimeZoneResolver.System(args[0]) is { } zone
                ? new TimeZoneCommand(zone) : throw new CommandException("Usage: !cal timezone <zone>, e.g. !cal timezone Europe/Berlin"),
            "add" => ParseAdd(args, localNow),
            "list" => args.Count == 0 ? new ListCommand(7)
                : args.Count == 1 && int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var days) && days is >= 1 and <= 366
                    ? new ListCommand(days) : throw new CommandException("Usage: !cal list [days], 1 to 366, e.g. !cal list 14"),
            "move" => args.Count >= 3 && ParseWhen(args.Skip(1).ToList(), localNow) is { } moved
                ? new MoveCommand(args[0].TrimStart('#'), moved) : throw new CommandException("Usage: " + MoveSyntax),
            "cancel" => args.Count == 1 ? new CancelCommand(args[0].TrimStart('#')) : throw new CommandException("Usage: !cal cancel <id> (IDs are in !cal list)"),
            var other => throw new CommandException($"Unknown command '{other}'. {Help}"),
        };
    }

    private static AddCommand ParseAdd(List<string> args, DateTime localNow)
    {
        if (args.Count < 3 || args[0].Length == 0)
            throw new CommandException("Usage: " + AddSyntax);
        var title = args[0];
        if (args[^1].Equals("all-day", StringComparison.OrdinalIgnoreCase) && args.Count == 3)
            return ParseDay(args[1], localNow) is { } day
                ? new AddCommand(title, day, TimeSpan.FromDays(1), AllDay: true)
                : throw new CommandException($"'{args[1]}' is not a day. Usage: " + AddSyntax);
        if (args.Count > 4)
            throw new CommandException("Too many words; put the title in quotes. Usage: " + AddSyntax);
        var start = ParseWhen(args.Skip(1).Take(2).ToList(), localNow)
            ?? throw new CommandException($"'{args[1]} {args[2]}' is not a day and time. Usage: " + AddSyntax);
        var length = args.Count == 4 ? ParseLength(args[3]) ?? throw new CommandException($"'{args[3]}' is not a length like 1h, 45m, 1h30m or 2d. Usage: " + AddSyntax)
            : TimeSpan.FromHours(1);
        return new AddCommand(title, start, length, AllDay: false);
    }

    private static DateTime? ParseWhen(List<string> words, DateTime localNow) =>
        words.Count == 2 && ParseDay(words[0], localNow) is { } day && ParseTime(words[1]) is { } time ? day + time.ToTimeSpan() : null;

    private static DateTime? ParseDay(string word, DateTime localNow)
    {
        var today = localNow.Date;
        switch (word.ToLowerInvariant())
        {
            case "today":
                return today;
            case "tomorrow":
                return today.AddDays(1);
        }
        if (word.All(char.IsAsciiLetter) && Enum.TryParse<DayOfWeek>(word, ignoreCase: true, out var weekday))
            return today.AddDays(((int)weekday - (int)today.DayOfWeek + 7) % 7);
        return DateTime.TryParseExact(word, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date : null;
    }

    private static TimeOnly? ParseTime(string word) =>
        TimeOnly.TryParseExact(word, ["H:mm", "HH:mm"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var time) ? time : null;

    private static TimeSpan? ParseLength(string word)
    {
        var match = LengthPattern().Match(word.ToLowerInvariant());
        if (!match.Success || word.Length == 0)
            return null;
        var length = TimeSpan.FromDays(Number(match.Groups["d"])) + TimeSpan.FromHours(Number(match.Groups["h"])) + TimeSpan.FromMinutes(Number(match.Groups["m"]));
        return length > TimeSpan.Zero && length <= TimeSpan.FromDays(31) ? length : null;
    }

    private static int Number(Group group) => group.Success ? int.Parse(group.Value, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"^(?:(?<d>\d{1,2})d)?(?:(?<h>\d{1,3})h)?(?:(?<m>\d{1,4})m(?:in)?)?$")]
    private static partial Regex LengthPattern();

    /// <summary>Words separated by spaces; "double quotes" (also typographic ones, as phones type them) keep one together.</summary>
    private static List<string> Tokenize(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        var hasWord = false;
        foreach (var c in text)
        {
            if (c is '"' or '“' or '”')
            {
                quoted = !quoted;
                hasWord = true;
            }
            else if (char.IsWhiteSpace(c) && !quoted)
            {
                if (hasWord)
                    words.Add(current.ToString());
                current.Clear();
                hasWord = false;
            }
            else
            {
                current.Append(c);
                hasWord = true;
            }
        }
        if (quoted)
            throw new CommandException("A quote is not closed: put the title in \"double quotes\".");
        if (hasWord)
            words.Add(current.ToString());
        return words;
    }
}
