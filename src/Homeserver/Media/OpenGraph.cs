using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Matrix.Homeserver.Media;

/// <summary>
/// Reads a page's OpenGraph data for URL previews: <c>og:*</c> meta tags, with the page title, its description and first
/// image as fallbacks. A tolerant scanner over the markup rather than a DOM: previews need a handful of tags.
/// </summary>
public static partial class OpenGraph
{
    private const int MaxValueLength = 1000;

    [GeneratedRegex(@"<meta\b[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex MetaTag();

    [GeneratedRegex(@"<title\b[^>]*>(.*?)</title>", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex TitleTag();

    [GeneratedRegex(@"<img\b[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex ImageTag();

    [GeneratedRegex(@"([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:""([^""]*)""|'([^']*)'|([^\s""'>]+))")]
    private static partial Regex Attribute();

    [GeneratedRegex(@"<meta\b[^>]*charset\s*=\s*[""']?([a-zA-Z0-9_-]+)", RegexOptions.IgnoreCase)]
    private static partial Regex MetaCharset();

    static OpenGraph() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    /// <summary>Decodes the page with the charset of its header, else of its meta tag, else UTF-8.</summary>
    public static string Decode(byte[] body, string? headerCharset)
    {
        var name = headerCharset;
        if (name is null && MetaCharset().Match(Encoding.ASCII.GetString(body, 0, Math.Min(body.Length, 4096))) is { Success: true } meta)
            name = meta.Groups[1].Value;
        Encoding encoding;
        try
        {
            encoding = name is null ? Encoding.UTF8 : Encoding.GetEncoding(name.Trim('"'));
        }
        catch (ArgumentException)
        {
            encoding = Encoding.UTF8;
        }
        return encoding.GetString(body);
    }

    public static JsonObject Parse(string html, Uri pageUrl)
    {
        var og = new JsonObject();
        string? description = null;
        foreach (Match tag in MetaTag().Matches(html))
        {
            var attributes = Attributes(tag.Value);
            var key = attributes.GetValueOrDefault("property") ?? attributes.GetValueOrDefault("name");
            if (key is null || attributes.GetValueOrDefault("content") is not { } content)
                continue;
            key = key.ToLowerInvariant();
            if (key.StartsWith("og:", StringComparison.Ordinal) && !og.ContainsKey(key))
                og[key] = Clip(content);
            else if (key == "description")
                description ??= Clip(content);
        }
        if (!og.ContainsKey("og:title") && TitleTag().Match(html) is { Success: true } title)
            og["og:title"] = Clip(WebUtility.HtmlDecode(title.Groups[1].Value).Trim());
        if (!og.ContainsKey("og:description") && description is not null)
            og["og:description"] = description;
        if (!og.ContainsKey("og:image") && ImageTag().Match(html) is { Success: true } image
            && Attributes(image.Value).GetValueOrDefault("src") is { } src)
            og["og:image"] = src;
        if (og["og:image"]?.GetValue<string>() is { } imageUrl)
        {
            if (Uri.TryCreate(pageUrl, imageUrl, out var absolute) && absolute.Scheme is "http" or "https")
                og["og:image"] = absolute.ToString();
            else
                og.Remove("og:image");
        }
        return og;
    }

    private static Dictionary<string, string> Attributes(string tag)
    {
        var attributes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (Match attribute in Attribute().Matches(tag))
        {
            var value = attribute.Groups[2].Success ? attribute.Groups[2].Value
                : attribute.Groups[3].Success ? attribute.Groups[3].Value
                : attribute.Groups[4].Value;
            attributes.TryAdd(attribute.Groups[1].Value, WebUtility.HtmlDecode(value));
        }
        return attributes;
    }

    private static string Clip(string value) => value.Length <= MaxValueLength ? value : value[..MaxValueLength] + "…";
}
