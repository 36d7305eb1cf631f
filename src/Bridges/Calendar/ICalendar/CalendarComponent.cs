using System.Text;

namespace Matrix.Bridges.Calendar.ICalendar;

/// <summary>
/// One property line of an iCalendar object (RFC 5545 section 3.1): name, parameters and the raw value (still
/// escaped, as the value types differ in what they escape).
/// </summary>
public sealed class CalendarProperty(string name, string value, Dictionary<string, string>? parameters = null)
{
    public string Name { get; } = name.ToUpperInvariant();
    public string Value { get; set; } = value;
    public Dictionary<string, string> Parameters { get; } = parameters ?? new(StringComparer.OrdinalIgnoreCase);

    public string? Parameter(string name) => Parameters.TryGetValue(name, out var value) ? value : null;

    /// <summary>The value as TEXT (section 3.3.11), unescaped.</summary>
    public string Text => UnescapeText(Value);

    public static string EscapeText(string text) => text.Replace("\\", "\\\\").Replace(";", "\\;").Replace(",", "\\,")
        .Replace("\r\n", "\\n").Replace("\n", "\\n");

    public static string UnescapeText(string value)
    {
        if (!value.Contains('\\'))
            return value;
        var text = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] != '\\' || i + 1 == value.Length)
            {
                text.Append(value[i]);
                continue;
            }
            var next = value[++i];
            text.Append(next is 'n' or 'N' ? '\n' : next);
        }
        return text.ToString();
    }
}

/// <summary>
/// A component (VCALENDAR, VEVENT, VTIMEZONE, STANDARD, VALARM...) with its properties in order and its
/// sub-components. Parsing keeps everything, known or not, so an object read from a calendar server and written back
/// loses nothing another client put there.
/// </summary>
public sealed class CalendarComponent(string name)
{
    public string Name { get; } = name.ToUpperInvariant();
    public List<CalendarProperty> Properties { get; } = [];
    public List<CalendarComponent> Children { get; } = [];

    public CalendarProperty? Property(string name) => Properties.Find(p => p.Name == name);
    public IEnumerable<CalendarProperty> All(string name) => Properties.Where(p => p.Name == name);
    public IEnumerable<CalendarComponent> Components(string name) => Children.Where(c => c.Name == name);

    /// <summary>Replaces every property of that name with one (or removes them when <paramref name="value"/> is null).</summary>
    public CalendarProperty? Set(string name, string? value, Dictionary<string, string>? parameters = null)
    {
        Properties.RemoveAll(p => p.Name == name.ToUpperInvariant());
        if (value is null)
            return null;
        var property = new CalendarProperty(name, value, parameters);
        Properties.Add(property);
        return property;
    }

    public void SetText(string name, string? text) => Set(name, text is null ? null : CalendarProperty.EscapeText(text));

    /// <summary>Parses an iCalendar stream's text into its top-level components (usually one VCALENDAR).</summary>
    public static List<CalendarComponent> ParseAll(string text)
    {
        var roots = new List<CalendarComponent>();
        var open = new Stack<CalendarComponent>();
        var lineNumber = 0;
        foreach (var line in Unfold(text))
        {
            lineNumber++;
            if (line.Length == 0)
                continue;
            var property = ParseLine(line, lineNumber);
            if (property.Name == "BEGIN")
            {
                open.Push(new CalendarComponent(property.Value.Trim()));
                continue;
            }
            if (property.Name == "END")
            {
                if (open.Count == 0 || !open.Peek().Name.Equals(property.Value.Trim(), StringComparison.OrdinalIgnoreCase))
                    throw new CalendarFormatException($"line {lineNumber}: END:{property.Value} closes nothing open");
                var done = open.Pop();
                (open.Count > 0 ? open.Peek().Children : roots).Add(done);
                continue;
            }
            if (open.Count == 0)
                throw new CalendarFormatException($"line {lineNumber}: property {property.Name} outside any component");
            open.Peek().Properties.Add(property);
        }
        if (open.Count > 0)
            throw new CalendarFormatException($"{open.Peek().Name} is never closed");
        return roots;
    }

    /// <summary>The single VCALENDAR of a calendar object resource.</summary>
    public static CalendarComponent Parse(string text) =>
        ParseAll(text).Find(c => c.Name == "VCALENDAR") ?? throw new CalendarFormatException("no VCALENDAR component");

    private static IEnumerable<string> Unfold(string text)
    {
        var current = new StringBuilder();
        foreach (var raw in text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n'))
        {
            if (raw.Length > 0 && (raw[0] == ' ' || raw[0] == '\t'))
            {
                current.Append(raw, 1, raw.Length - 1);
                continue;
            }
            if (current.Length > 0)
                yield return current.ToString();
            current.Clear().Append(raw);
        }
        if (current.Length > 0)
            yield return current.ToString();
    }

    private static CalendarProperty ParseLine(string line, int lineNumber)
    {
        var nameEnd = line.IndexOfAny([';', ':']);
        if (nameEnd <= 0)
            throw new CalendarFormatException($"line {lineNumber}: not a NAME:value line");
        var name = line[..nameEnd];
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = nameEnd;
        while (i < line.Length && line[i] == ';')
        {
            var equals = line.IndexOf('=', i);
            if (equals < 0)
                throw new CalendarFormatException($"line {lineNumber}: parameter without '='");
            var parameterName = line[(i + 1)..equals];
            var value = new StringBuilder();
            i = equals + 1;
            var quoted = false;
            for (; i < line.Length; i++)
            {
                var c = line[i];
                if (c == '"')
                    quoted = !quoted;
                else if (!quoted && (c == ';' || c == ':'))
                    break;
                else
                    value.Append(c);
            }
            parameters[parameterName] = value.ToString();
        }
        if (i >= line.Length || line[i] != ':')
            throw new CalendarFormatException($"line {lineNumber}: property {name} has no value");
        return new CalendarProperty(name, line[(i + 1)..], parameters);
    }

    /// <summary>The component as iCalendar text: CRLF line ends, lines folded at 75 octets (section 3.1).</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        Write(text);
        return text.ToString();
    }

    private void Write(StringBuilder text)
    {
        WriteFolded(text, "BEGIN:" + Name);
        foreach (var property in Properties)
        {
            var line = new StringBuilder(property.Name);
            foreach (var (key, value) in property.Parameters)
                line.Append(';').Append(key.ToUpperInvariant()).Append('=')
                    .Append(value.IndexOfAny([';', ':', ',']) >= 0 ? $"\"{value}\"" : value);
            WriteFolded(text, line.Append(':').Append(property.Value).ToString());
        }
        foreach (var child in Children)
            child.Write(text);
        WriteFolded(text, "END:" + Name);
    }

    private static void WriteFolded(StringBuilder text, string line)
    {
        var octets = 0;
        var limit = 75;
        foreach (var rune in line.EnumerateRunes())
        {
            var size = rune.Utf8SequenceLength;
            if (octets + size > limit)
            {
                text.Append("\r\n ");
                octets = 1;
            }
            text.Append(rune.ToString());
            octets += size;
        }
        text.Append("\r\n");
    }
}

public sealed class CalendarFormatException(string message) : Exception(message);
