using System.Globalization;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>Why a webhook delivery was turned away: the HTTP status and a message for the sender.</summary>
public sealed record WebhookRejection(int Status, string Message, TimeSpan? RetryAfter = null);

/// <summary>
/// Checks authentic webhook deliveries before anything is posted: a signed timestamp (where the provider signs one)
/// within the replay window, the delivery ID not seen before, and the hook's rate limit. Seen delivery IDs are kept in
/// the state store (flushed) for twice the replay window, or a day for providers that sign no time (their redeliveries
/// keep the ID), so a replay is caught across restarts too.
/// </summary>
public sealed class WebhookGuard(BridgeStateStore state, TimeProvider clock, TimeSpan replayWindow)
{
    private static readonly TimeSpan UntimedRetention = TimeSpan.FromDays(1);
    private readonly Dictionary<string, (double Tokens, DateTimeOffset At)> _buckets = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Null when the delivery is fresh and new and the hook within its rate; the rejection otherwise.</summary>
    public WebhookRejection? Check(string hookId, WebhookDelivery delivery, int ratePerMinute)
    {
        var now = clock.GetUtcNow();
        if (delivery.SignedAt is { } signedAt && Math.Abs((now - signedAt).TotalSeconds) > replayWindow.TotalSeconds)
            return new WebhookRejection(401, "the timestamp is outside the replay window; check the sender's clock");
        if (state.Get(SeenNs(hookId), delivery.Id) is not null)
            return new WebhookRejection(409, "this delivery was already received");
        return TakeToken(hookId, ratePerMinute, now);
    }

    /// <summary>Records a delivery as received (durably, before it is acknowledged), forgetting those past their retention.</summary>
    public void MarkSeen(string hookId, WebhookDelivery delivery)
    {
        var now = clock.GetUtcNow();
        var ns = SeenNs(hookId);
        var retention = delivery.SignedAt is null ? UntimedRetention : 2 * replayWindow;
        foreach (var (id, at) in state.All(ns))
            if (long.TryParse(at, out var seconds) && now - DateTimeOffset.FromUnixTimeSeconds(seconds) > retention)
                state.Set(ns, id, null);
        state.Set(ns, delivery.Id, now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        state.Flush();
    }

    /// <summary>A token bucket per hook: <paramref name="ratePerMinute"/> deliveries a minute, bursts up to that many.</summary>
    public WebhookRejection? TakeToken(string hookId, int ratePerMinute, DateTimeOffset now)
    {
        lock (_lock)
        {
            var capacity = (double)ratePerMinute;
            var (tokens, at) = _buckets.TryGetValue(hookId, out var bucket) ? bucket : (capacity, now);
            tokens = Math.Min(capacity, tokens + (now - at).TotalMinutes * capacity);
            if (tokens < 1)
            {
                _buckets[hookId] = (tokens, now);
                return new WebhookRejection(429, "rate limit exceeded", TimeSpan.FromMinutes((1 - tokens) / capacity));
            }
            _buckets[hookId] = (tokens - 1, now);
            return null;
        }
    }

    /// <summary>A sender-chosen string made safe for a log line: control characters replaced, at most 200 characters.</summary>
    public static string Printable(string text)
    {
        var cut = text.Length > 200 ? text[..200] + "..." : text;
        return string.Create(cut.Length, cut, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
                span[i] = char.IsControl(source[i]) ? '?' : source[i];
        });
    }

    private static string SeenNs(string hookId) => "erp deliveries " + hookId;
}
