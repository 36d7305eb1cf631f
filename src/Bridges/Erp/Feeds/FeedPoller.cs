using System.Net;
using System.Net.Http.Headers;
using System.ServiceModel.Syndication;
using System.Text.Json;
using System.Xml;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>An entry of a feed: its ID (the entry's id, else its link, else its title), title, link and date.</summary>
public sealed record FeedItem(string Id, string Title, string? Link, DateTimeOffset? Published);

/// <summary>What a fetch found: the feed's title, the entries not seen before (oldest first), and what to remember once they are queued.</summary>
public sealed record FeedNews(string FeedTitle, IReadOnlyList<FeedItem> NewItems, IReadOnlyList<string> CurrentIds, string? ETag, string? LastModified);

/// <summary>
/// Polls one RSS or Atom feed (<c>feeds:</c>) every <c>interval_seconds</c>, conditionally (<c>If-None-Match</c> with the
/// last ETag, <c>If-Modified-Since</c> with the last <c>Last-Modified</c>), and tells which entries are new. The IDs of
/// the entries in the feed, the ETag and Last-Modified are kept in the state store (flushed), so a restart posts
/// nothing twice; the first fetch only records what is there. Bodies are bounded and DTDs refused.
/// </summary>
public sealed class FeedPoller(ErpBridgeConfig.FeedSection feed, HttpClient http, BridgeStateStore state, TimeProvider clock)
{
    private const int MaxBytes = 5 * 1024 * 1024;
    private DateTimeOffset _next = DateTimeOffset.MinValue;

    public ErpBridgeConfig.FeedSection Feed => feed;

    private string Namespace => "erp feed " + feed.Id;

    public bool IsDue => clock.GetUtcNow() >= _next;

    /// <summary>Fetches the feed; null when it did not change. Failures throw (HTTP, XML) and wait for the next interval.</summary>
    public async Task<FeedNews?> FetchAsync(CancellationToken ct)
    {
        _next = clock.GetUtcNow().AddSeconds(feed.IntervalSeconds);
        using var request = new HttpRequestMessage(HttpMethod.Get, feed.Url);
        if (state.Get(Namespace, "etag") is { } etag && EntityTagHeaderValue.TryParse(etag, out var tag))
            request.Headers.IfNoneMatch.Add(tag);
        if (state.Get(Namespace, "last_modified") is { } modified && DateTimeOffset.TryParse(modified, out var since))
            request.Headers.IfModifiedSince = since;
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (response.StatusCode == HttpStatusCode.NotModified)
            return null;
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"HTTP {(int)response.StatusCode}");
        if (response.Content.Headers.ContentLength > MaxBytes)
            throw new HttpRequestException($"the feed is larger than {MaxBytes} bytes");
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = MaxBytes };
        using var reader = XmlReader.Create(body, settings);
        var document = SyndicationFeed.Load(reader);
        var items = document.Items.Select(Item).ToList();
        var seen = state.Get(Namespace, "items") is { } json ? JsonSerializer.Deserialize<List<string>>(json)!.ToHashSet(StringComparer.Ordinal) : null;
        var fresh = seen is null ? [] : items
            .Select((item, index) => (item, index))
            .Where(x => !seen.Contains(x.item.Id))
            .OrderBy(x => x.item.Published ?? DateTimeOffset.MinValue).ThenByDescending(x => x.index)
            .Select(x => x.item).ToList();
        return new FeedNews(document.Title?.Text ?? feed.Id, fresh, items.Select(i => i.Id).ToList(),
            response.Headers.ETag?.ToString(), response.Content.Headers.LastModified?.ToString("R"));
    }

    /// <summary>Remembers a fetch once its new entries are queued: the entries now in the feed, its ETag and Last-Modified.</summary>
    public void Remember(FeedNews news)
    {
        state.Set(Namespace, "items", JsonSerializer.Serialize(news.CurrentIds));
        state.Set(Namespace, "etag", news.ETag);
        state.Set(Namespace, "last_modified", news.LastModified);
        state.Flush();
    }

    private static FeedItem Item(SyndicationItem item)
    {
        var link = (item.Links.FirstOrDefault(l => l.RelationshipType is null or "alternate") ?? item.Links.FirstOrDefault())?.Uri?.ToString();
        var title = item.Title?.Text ?? "(untitled)";
        var published = item.PublishDate != default ? item.PublishDate : item.LastUpdatedTime != default ? item.LastUpdatedTime : (DateTimeOffset?)null;
        return new FeedItem(item.Id ?? link ?? title, title, link, published);
    }
}
