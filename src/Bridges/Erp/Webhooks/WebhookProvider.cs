using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Matrix.Bridges.Erp;

/// <summary>What an authentic delivery says about itself: its ID (replays are refused), its event, and when it was signed if the scheme signs a time.</summary>
public sealed record WebhookDelivery(string Id, string Event, DateTimeOffset? SignedAt);

/// <summary>
/// One kind of webhook sender (a hook's <c>provider</c>): how its deliveries are authenticated and identified, and how
/// its common events read in a room when the hook has no template or transformation of its own.
/// </summary>
public abstract class WebhookProvider
{
    public static readonly IReadOnlyDictionary<string, WebhookProvider> ByName = new Dictionary<string, WebhookProvider>(StringComparer.Ordinal)
    {
        ["erp"] = new ErpWebhooks(),
        ["github"] = new GitHubWebhooks(),
        ["gitlab"] = new GitLabWebhooks(),
        ["jira"] = new JiraWebhooks(),
    };

    /// <summary>The header naming the delivery (logged with a refusal, as the sender claims it).</summary>
    public abstract string DeliveryIdHeader { get; }

    /// <summary>Whether hooks of this provider need a template (the provider renders no events itself).</summary>
    public virtual bool NeedsTemplate => false;

    /// <summary>Null when the delivery is authentic (and <paramref name="delivery"/> describes it); the rejection otherwise.</summary>
    public abstract WebhookRejection? Authenticate(string secret, IHeaderDictionary headers, byte[] body, out WebhookDelivery delivery);

    /// <summary>The message for an event; null for events not posted (pings, actions nobody needs to read).</summary>
    public abstract RenderedMessage? Render(WebhookDelivery delivery, JsonObject payload);

    /// <summary>Whether <c>sha256=&lt;hex HMAC-SHA256(secret, data)&gt;</c> is the signature given, compared in constant time.</summary>
    protected static bool HmacMatches(string secret, ReadOnlySpan<byte> data, string? given)
    {
        var expected = Encoding.ASCII.GetBytes("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), data)));
        return given is not null && CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(given.Trim().ToLowerInvariant()));
    }

    protected static string? Header(IHeaderDictionary headers, string name) => headers[name].ToString() is { Length: > 0 } value ? value : null;

    /// <summary>A delivery ID a sender chose, bounded: refused when missing or longer than 200 characters.</summary>
    protected static WebhookRejection? CheckDeliveryId(string? id, string header) =>
        string.IsNullOrEmpty(id) ? new WebhookRejection(400, $"{header} is required")
        : id.Length > 200 ? new WebhookRejection(400, $"{header} is longer than 200 characters")
        : null;

    protected static string Str(JsonNode? node, string path) => Template.Lookup(node, path) is JsonValue value
        ? value.TryGetValue<string>(out var text) ? text : value.ToJsonString()
        : "";

    protected static bool Bool(JsonNode? node, string path) => Template.Lookup(node, path) is JsonValue value && value.TryGetValue<bool>(out var b) && b;

    /// <summary>"<paramref name="actor"/> <paramref name="verb"/> <paramref name="what"/>" linking to <paramref name="url"/>, with an optional quote below.</summary>
    protected static RenderedMessage Say(string actor, string verb, string what, string url, string? quote = null)
    {
        static string e(string text) => WebUtility.HtmlEncode(text);
        var plain = $"{actor} {verb} {what}" + (url.Length > 0 ? $" {url}" : "");
        var html = $"{e(actor)} {e(verb)} " + (url.Length > 0 ? $"<a href=\"{e(url)}\">{e(what)}</a>" : e(what));
        if (quote is { Length: > 0 })
        {
            var shown = quote.Length > 500 ? quote[..500] + "…" : quote;
            plain += "\n> " + shown.Replace("\n", "\n> ");
            html += $"<blockquote>{e(shown).Replace("\n", "<br>")}</blockquote>";
        }
        return new RenderedMessage(plain, html);
    }

    /// <summary>"3 commits" / "1 commit".</summary>
    protected static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    /// <summary>The first line of a commit message.</summary>
    protected static string Headline(string message) => message.Split('\n')[0].Trim();
}
