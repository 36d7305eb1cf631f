using System.Net;
using System.Xml;

namespace Matrix.Bridges.Erp;

/// <summary>RSS/Atom feeds into rooms: each new entry queued once, posted by the bridge's user in arrival order.</summary>
public sealed partial class ErpBridge
{
    /// <summary>Polls the feeds that are due; a feed that fails is logged and tried at its next interval.</summary>
    public async Task PollFeedsAsync(CancellationToken ct)
    {
        foreach (var poller in _feeds.Where(p => p.IsDue))
        {
            var feed = poller.Feed;
            try
            {
                if (await poller.FetchAsync(ct) is not { } news)
                    continue;
                foreach (var item in news.NewItems)
                    _outbox.Enqueue($"feed:{feed.Id}:{Hash(item.Id)}", ToMatrix, Post(feed.Room, _service.Bot.UserId, FeedMessage(news.FeedTitle, item).ToContent()), _clock.GetUtcNow());
                poller.Remember(news);
                if (news.NewItems.Count > 0)
                    Queued?.Invoke();
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or XmlException)
            {
                Problem?.Invoke($"feed {feed.Id} ({feed.Url}): fetching failed ({e.Message}); next try in {feed.IntervalSeconds} s");
            }
        }
    }

    private static RenderedMessage FeedMessage(string feedTitle, FeedItem item)
    {
        static string e(string text) => WebUtility.HtmlEncode(text);
        return item.Link is { } link
            ? new RenderedMessage($"{feedTitle}: {item.Title} {link}", $"<b>{e(feedTitle)}</b>: <a href=\"{e(link)}\">{e(item.Title)}</a>")
            : new RenderedMessage($"{feedTitle}: {item.Title}", $"<b>{e(feedTitle)}</b>: {e(item.Title)}");
    }
}
