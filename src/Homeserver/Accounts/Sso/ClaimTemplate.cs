using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// The part of Jinja that Synapse's OIDC user mapping templates use: text with <c>{{ user.claim }}</c> expressions,
/// nested claims by dots (<c>user.address.locality</c>), and the filters <c>lower</c>, <c>upper</c>, <c>trim</c> and
/// Synapse's <c>localpart_from_email</c>. A missing claim renders as nothing, as in Jinja.
/// </summary>
public sealed partial class ClaimTemplate
{
    private static readonly Dictionary<string, Func<string, string>> Filters = new(StringComparer.Ordinal)
    {
        ["lower"] = value => value.ToLowerInvariant(),
        ["upper"] = value => value.ToUpperInvariant(),
        ["trim"] = value => value.Trim(),
        ["localpart_from_email"] = value => value.Contains('@') ? value[..value.LastIndexOf('@')] : value,
    };

    private readonly List<object> _parts; // literal strings and expressions

    private sealed record Expression(string[] Path, Func<string, string>[] Filters);

    [GeneratedRegex(@"\{\{(.*?)\}\}", RegexOptions.Singleline)]
    private static partial Regex ExpressionSyntax();

    [GeneratedRegex(@"^user(\.[A-Za-z_][A-Za-z0-9_\-]*)+$")]
    private static partial Regex ClaimPath();

    private ClaimTemplate(List<object> parts) => _parts = parts;

    /// <summary>The template, or an error saying what it cannot understand.</summary>
    public static ClaimTemplate Parse(string template)
    {
        var parts = new List<object>();
        var at = 0;
        foreach (Match match in ExpressionSyntax().Matches(template))
        {
            parts.Add(template[at..match.Index]);
            var pieces = match.Groups[1].Value.Split('|', StringSplitOptions.TrimEntries);
            if (!ClaimPath().IsMatch(pieces[0]))
                throw new FormatException($"'{{{{{match.Groups[1].Value}}}}}' is not user.<claim>");
            var filters = pieces[1..].Select(name => Filters.TryGetValue(name, out var filter)
                ? filter
                : throw new FormatException($"unknown filter '{name}' (known: {string.Join(", ", Filters.Keys)})")).ToArray();
            parts.Add(new Expression(pieces[0].Split('.')[1..], filters));
            at = match.Index + match.Length;
        }
        var rest = template[at..];
        if (rest.Contains("{{") || rest.Contains("{%"))
            throw new FormatException("unclosed or unsupported template syntax");
        parts.Add(rest);
        return new ClaimTemplate(parts);
    }

    public string Render(JsonObject claims)
    {
        var text = new StringBuilder();
        foreach (var part in _parts)
        {
            if (part is string literal)
            {
                text.Append(literal);
                continue;
            }
            var expression = (Expression)part;
            JsonNode? node = claims;
            foreach (var name in expression.Path)
                node = node is JsonObject obj ? obj[name] : null;
            var value = node switch
            {
                null => "",
                JsonValue scalar when scalar.TryGetValue<string>(out var s) => s,
                _ => node.ToJsonString(),
            };
            text.Append(expression.Filters.Aggregate(value, (current, filter) => filter(current)));
        }
        return text.ToString();
    }
}
