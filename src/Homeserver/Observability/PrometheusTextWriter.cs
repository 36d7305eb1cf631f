using System.Globalization;
using System.Text;

namespace Matrix.Homeserver.Observability;

/// <summary>Prometheus' text exposition format (version 0.0.4): HELP and TYPE lines, then one line per sample.</summary>
public sealed class PrometheusTextWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly StringBuilder _text = new();

    public static string Write(IEnumerable<MetricFamily> families)
    {
        var writer = new PrometheusTextWriter();
        foreach (var family in families)
        {
            writer._text.Append("# HELP ").Append(family.Name).Append(' ').Append(EscapeHelp(family.Help)).Append('\n');
            writer._text.Append("# TYPE ").Append(family.Name).Append(' ').Append(family.Type).Append('\n');
            family.WriteSamples(writer);
        }
        return writer._text.ToString();
    }

    internal void Sample(string name, IReadOnlyList<string> labelNames, string[] labelValues, double value)
    {
        _text.Append(name);
        if (labelNames.Count > 0)
        {
            _text.Append('{');
            for (var i = 0; i < labelNames.Count; i++)
            {
                if (i > 0)
                    _text.Append(',');
                _text.Append(labelNames[i]).Append("=\"").Append(EscapeLabelValue(labelValues[i])).Append('"');
            }
            _text.Append('}');
        }
        _text.Append(' ').Append(FormatValue(value)).Append('\n');
    }

    public static string FormatValue(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        _ when double.IsNaN(value) => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string EscapeHelp(string help) => help.Replace("\\", "\\\\").Replace("\n", "\\n");

    private static string EscapeLabelValue(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
