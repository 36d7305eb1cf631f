using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Matrix.SpecTests.Harness;

public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

public sealed record PrometheusFamily(string Name, string Help, string Type, List<PrometheusSample> Samples);

/// <summary>
/// A strict reader of Prometheus' text exposition format 0.0.4, as a scraper reads it: every family announced by
/// exactly one HELP and one TYPE line before its samples, each sample belonging to the family it follows (with the
/// <c>_bucket</c>, <c>_sum</c> and <c>_count</c> suffixes of histograms), label values in double quotes with
/// <c>\\</c>, <c>\"</c> and <c>\n</c> escapes, no repeated label or series. Anything else throws.
/// </summary>
public static partial class PrometheusText
{
    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    public static Dictionary<string, PrometheusFamily> Parse(string text)
    {
        if (!text.EndsWith('\n'))
            throw new FormatException("the exposition must end with a line feed");
        var families = new Dictionary<string, PrometheusFamily>(StringComparer.Ordinal);
        var helps = new Dictionary<string, string>(StringComparer.Ordinal);
        var seenSeries = new HashSet<string>(StringComparer.Ordinal);
        PrometheusFamily? current = null;
        var lineNumber = 0;
        foreach (var line in text[..^1].Split('\n'))
        {
            lineNumber++;
            string Where() => $"line {lineNumber}: {line}";
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var (name, help) = SplitOnce(line["# HELP ".Length..]);
                if (!MetricName().IsMatch(name) || helps.ContainsKey(name) || families.ContainsKey(name))
                    throw new FormatException($"bad or repeated HELP, {Where()}");
                helps[name] = UnescapeHelp(help);
            }
            else if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var (name, type) = SplitOnce(line["# TYPE ".Length..]);
                if (!MetricName().IsMatch(name) || !Types.Contains(type) || families.ContainsKey(name) || !helps.TryGetValue(name, out var help))
                    throw new FormatException($"bad or repeated TYPE, or TYPE without HELP first, {Where()}");
                families[name] = current = new PrometheusFamily(name, help, type, []);
            }
            else if (line.StartsWith('#') || line.Length == 0)
            {
                throw new FormatException($"this server writes no comments or blank lines, {Where()}");
            }
            else
            {
                var sample = ParseSample(line, Where);
                if (current is null || !BelongsTo(sample.Name, current))
                    throw new FormatException($"sample outside its family, {Where()}");
                var series = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
                if (!seenSeries.Add(series))
                    throw new FormatException($"repeated series, {Where()}");
                current.Samples.Add(sample);
            }
        }
        return families;
    }

    private static bool BelongsTo(string sampleName, PrometheusFamily family) =>
        sampleName == family.Name
        || family.Type == "histogram" && (sampleName == family.Name + "_bucket" || sampleName == family.Name + "_sum" || sampleName == family.Name + "_count");

    private static PrometheusSample ParseSample(string line, Func<string> where)
    {
        char At(int index) => index < line.Length ? line[index] : '\0';
        var position = 0;
        while (position < line.Length && line[position] is not ('{' or ' '))
            position++;
        var name = line[..position];
        if (!MetricName().IsMatch(name))
            throw new FormatException($"bad metric name, {where()}");
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (position < line.Length && line[position] == '{')
        {
            position++;
            while (At(position) != '}')
            {
                var equals = line.IndexOf('=', position);
                var labelName = equals < 0 ? "" : line[position..equals];
                if (!LabelName().IsMatch(labelName) || At(equals + 1) != '"')
                    throw new FormatException($"bad label, {where()}");
                position = equals + 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (position >= line.Length)
                        throw new FormatException($"unterminated label value, {where()}");
                    var c = line[position++];
                    if (c == '"')
                        break;
                    if (c == '\\')
                    {
                        var escaped = position < line.Length ? line[position++] : ' ';
                        value.Append(escaped switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"bad escape in a label value, {where()}"),
                        });
                    }
                    else
                    {
                        value.Append(c);
                    }
                }
                if (!labels.TryAdd(labelName, value.ToString()))
                    throw new FormatException($"repeated label, {where()}");
                if (At(position) == ',')
                    position++;
                else if (At(position) != '}')
                    throw new FormatException($"labels not separated by commas, {where()}");
            }
            position++;
        }
        if (At(position) != ' ')
            throw new FormatException($"no space before the value, {where()}");
        var parts = line[(position + 1)..].Split(' ');
        if (parts.Length > 2 || parts.Length == 2 && !long.TryParse(parts[1], CultureInfo.InvariantCulture, out _))
            throw new FormatException($"bad value or timestamp, {where()}");
        return new PrometheusSample(name, labels, ParseValue(parts[0], where));
    }

    private static double ParseValue(string text, Func<string> where) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value
            : throw new FormatException($"bad value '{text}', {where()}"),
    };

    private static (string Head, string Tail) SplitOnce(string text)
    {
        var space = text.IndexOf(' ');
        return space < 0 ? (text, "") : (text[..space], text[(space + 1)..]);
    }

    private static string UnescapeHelp(string help)
    {
        var result = new StringBuilder();
        for (var i = 0; i < help.Length; i++)
        {
            if (help[i] != '\\')
            {
                result.Append(help[i]);
                continue;
            }
            result.Append(++i < help.Length ? help[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                _ => throw new FormatException($"bad escape in HELP: {help}"),
            } : throw new FormatException($"HELP ends in a backslash: {help}"));
        }
        return result.ToString();
    }

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Scrapes the server's metrics listener as Prometheus would, checking the content type, and parses the answer.</summary>
    public static async Task<Dictionary<string, PrometheusFamily>> ScrapeMetricsAsync(this HomeserverProcess server, string path = "/_synapse/metrics")
    {
        using var response = await Http.GetAsync($"http://127.0.0.1:{server.MetricsPort}{path}");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("0.0.4", response.Content.Headers.ContentType.Parameters.Single(p => p.Name == "version").Value);
        return Parse(await response.Content.ReadAsStringAsync());
    }

    /// <summary>The value of the one sample of <paramref name="name"/> with exactly these labels, or 0 when absent.</summary>
    public static double Value(this Dictionary<string, PrometheusFamily> families, string family, string name, params (string Label, string Value)[] labels) =>
        families.TryGetValue(family, out var found)
            ? found.Samples.Where(s => s.Name == name && s.Labels.Count == labels.Length && labels.All(l => s.Labels.GetValueOrDefault(l.Label) == l.Value))
                .Select(s => s.Value).SingleOrDefault()
            : 0;
}
