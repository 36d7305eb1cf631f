using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Matrix.Bridges.Erp;

/// <summary>
/// A small text template over a JSON document: <c>{{a.b.0.c}}</c> inserts a value (HTML-escaped in HTML templates),
/// <c>{{#each items}}...{{/each}}</c> repeats for each element (inside, paths start at the element and <c>{{.}}</c> is
/// the element itself), <c>{{#if path}}...{{else}}...{{/if}}</c> tests for a present, non-empty, non-false value.
/// Parsed once, when the config is read, so a broken template stops the bridge at start with its position.
/// </summary>
public sealed class Template
{
    private abstract record Node;
    private sealed record Text(string Value) : Node;
    private sealed record Value(string Path) : Node;
    private sealed record Each(string Path, List<Node> Body) : Node;
    private sealed record If(string Path, List<Node> Then, List<Node> Else) : Node;

    private readonly List<Node> _nodes;
    private readonly bool _html;

    public string Source { get; }

    private Template(string source, List<Node> nodes, bool html)
    {
        Source = source;
        _nodes = nodes;
        _html = html;
    }

    /// <param name="html">values are HTML-escaped (the template's own markup is not)</param>
    public static Template Parse(string source, bool html = false)
    {
        var position = 0;
        var nodes = ParseBlock(source, ref position, closing: null, out _);
        return new Template(source, nodes, html);
    }

    /// <param name="missing">
    /// what to insert for a <c>{{value}}</c> whose path the data lacks (given the path); nothing when null. A path
    /// present with a JSON <c>null</c> renders empty: that is the sender's statement, not a template mistake.
    /// </param>
    public string Render(JsonNode? data, Func<string, string>? missing = null)
    {
        var output = new StringBuilder();
        Render(_nodes, data, output, missing);
        return output.ToString();
    }

    private static List<Node> ParseBlock(string source, ref int position, string? closing, out bool sawElse)
    {
        var nodes = new List<Node>();
        sawElse = false;
        while (position < source.Length)
        {
            var open = source.IndexOf("{{", position, StringComparison.Ordinal);
            if (open < 0)
            {
                nodes.Add(new Text(source[position..]));
                position = source.Length;
                break;
            }
            if (open > position)
                nodes.Add(new Text(source[position..open]));
            var close = source.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0)
                throw new FormatException($"'{{{{' at {open} is never closed");
            var tag = source[(open + 2)..close].Trim();
            position = close + 2;
            if (tag.StartsWith('/'))
            {
                if (tag[1..] != closing)
                    throw new FormatException($"{{{{{tag}}}}} at {open} closes nothing open");
                return nodes;
            }
            if (tag == "else")
            {
                if (closing != "if")
                    throw new FormatException($"{{{{else}}}} at {open} is outside an {{{{#if}}}}");
                sawElse = true;
                return nodes;
            }
            if (tag.StartsWith("#each ", StringComparison.Ordinal))
            {
                var body = ParseBlock(source, ref position, "each", out _);
                nodes.Add(new Each(tag[6..].Trim(), body));
            }
            else if (tag.StartsWith("#if ", StringComparison.Ordinal))
            {
                var then = ParseBlock(source, ref position, "if", out var hasElse);
                var otherwise = hasElse ? ParseBlock(source, ref position, "if", out _) : [];
                nodes.Add(new If(tag[4..].Trim(), then, otherwise));
            }
            else if (tag.Length == 0 || tag.StartsWith('#'))
                throw new FormatException($"'{{{{{tag}}}}}' at {open} is not a value, #each or #if");
            else
                nodes.Add(new Value(tag));
        }
        if (closing is not null)
            throw new FormatException($"{{{{#{closing}}}}} is never closed");
        return nodes;
    }

    private void Render(List<Node> nodes, JsonNode? data, StringBuilder output, Func<string, string>? missing)
    {
        foreach (var node in nodes)
            switch (node)
            {
                case Text text:
                    output.Append(text.Value);
                    break;
                case Value value:
                    var rendered = TryLookup(data, value.Path, out var found) ? Scalar(found) : missing?.Invoke(value.Path) ?? "";
                    output.Append(_html ? WebUtility.HtmlEncode(rendered) : rendered);
                    break;
                case Each each:
                    foreach (var item in Lookup(data, each.Path) as JsonArray ?? [])
                        Render(each.Body, item, output, missing);
                    break;
                case If test:
                    Render(IsTrue(Lookup(data, test.Path)) ? test.Then : test.Else, data, output, missing);
                    break;
            }
    }

    /// <summary>A dotted path (<c>order.lines.0.sku</c>) into the data; <c>.</c> is the data itself.</summary>
    public static JsonNode? Lookup(JsonNode? data, string path) => TryLookup(data, path, out var found) ? found : null;

    /// <summary>Whether the data has the path (its value may be a JSON null), and its value.</summary>
    private static bool TryLookup(JsonNode? data, string path, out JsonNode? found)
    {
        found = data;
        if (path == ".")
            return true;
        foreach (var part in path.Split('.'))
        {
            switch (found)
            {
                case JsonObject obj when obj.TryGetPropertyValue(part, out var next):
                    found = next;
                    break;
                case JsonArray array when int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < array.Count:
                    found = array[i];
                    break;
                default:
                    found = null;
                    return false;
            }
        }
        return true;
    }

    private static string Scalar(JsonNode? node) => node switch
    {
        null => "",
        JsonValue value when value.TryGetValue<string>(out var s) => s,
        JsonValue value => value.ToJsonString(),
        _ => node.ToJsonString(),
    };

    private static bool IsTrue(JsonNode? node) => node switch
    {
        null => false,
        JsonValue value when value.TryGetValue<bool>(out var b) => b,
        JsonValue value when value.TryGetValue<string>(out var s) => s.Length > 0,
        JsonArray array => array.Count > 0,
        _ => true,
    };
}
