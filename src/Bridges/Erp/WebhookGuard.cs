using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Erp;

/// <summary>Why a webhook delivery was turned away: the HTTP status and a message for the sender.</summary>
public sealed record WebhookRejection(int Status, string Message, TimeSpan? RetryAfter = null);

/// <summary>
/// Checks webhook deliveries before anything is posted: the HMAC-SHA256 signature of
/// <c>{timestamp}.{delivery id}.{body}</c> with the hook's secret (header <c>X-Erp-Signature: sha256=&lt;hex&gt;</c>,
/// compared in constant time), the timestamp (<c>X-Erp-Timestamp</c>, Unix seconds) within the replay window, the
/// delivery ID (<c>X-Erp-Delivery</c>) not seen within that window, and the hook's rate limit. Seen delivery IDs are
/// kept in the state store (flushed), so a replay is caught across restarts too.
/// </summary>
public sealed class WebhookGuard(BridgeStateStore state, TimeProvider clock, TimeSpan replayWindow)
{
    private readonly Dictionary<string, (double Tokens, DateTimeOffset At)> _buckets = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public const string SignatureHeader = "X-Erp-Signature";
    public const string TimestampHeader = "X-Erp-Timestamp";
    public const string DeliveryHeader = "X-Erp-Delivery";

    /// <summary>The signature a sender puts in <see cref="SignatureHeader"/> (also what the tests' ERP simulator sends).</summary>
    public static string Sign(string secret, string timestamp, string deliveryId, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes($"{timestamp}.{deliveryId}.");
        var data = new byte[prefix.Length + body.Length];
        prefix.CopyTo(data, 0);
        body.CopyTo(data.AsSpan(prefix.Length));
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), data));
    }

    /// <summary>Null when the delivery is authentic, fresh and new; the rejection otherwise.</summary>
    public WebhookRejection? Check(ErpBridgeConfig.HookSection hook, string? signature, string? timestamp, string? deliveryId, byte[] body)
    {
        if (string.IsNullOrEmpty(signature) || string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(deliveryId))
            return new WebhookRejection(400, $"{SignatureHeader}, {TimestampHeader} and {DeliveryHeader} are required");
        if (deliveryId.Length > 200)
            return new WebhookRejection(400, $"{DeliveryHeader} is longer than 200 characters");
        var expected = Encoding.ASCII.GetBytes(Sign(hook.Secret, timestamp, deliveryId, body));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(signature.Trim().ToLowerInvariant())))
            return new WebhookRejection(401, "bad signature");
        var now = clock.GetUtcNow();
        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || Math.Abs((now - DateTimeOffset.FromUnixTimeSeconds(Math.Min(seconds, 253402300799))).TotalSeconds) > replayWindow.TotalSeconds)
            return new WebhookRejection(401, "the timestamp is outside the replay window; check the sender's clock");
        if (state.Get(SeenNs(hook.Id), deliveryId) is not null)
            return new WebhookRejection(409, "this delivery was already received");
        return TakeToken(hook, now);
    }

    /// <summary>Records a delivery as received (durably, before it is acknowledged), forgetting those past the window.</summary>
    public void MarkSeen(ErpBridgeConfig.HookSection hook, string deliveryId)
    {
        var now = clock.GetUtcNow();
        var ns = SeenNs(hook.Id);
        foreach (var (id, at) in state.All(ns))
            if (long.TryParse(at, out var seconds) && now - DateTimeOffset.FromUnixTimeSeconds(seconds) > 2 * replayWindow)
                state.Set(ns, id, null);
        state.Set(ns, deliveryId, now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        state.Flush();
    }

    /// <summary>A token bucket per hook: <c>rate_limit_per_minute</c> deliveries a minute, bursts up to that many.</summary>
    private WebhookRejection? TakeToken(ErpBridgeConfig.HookSection hook, DateTimeOffset now)
    {
        lock (_lock)
        {
            var capacity = (double)hook.RateLimitPerMinute;
            var (tokens, at) = _buckets.TryGetValue(hook.Id, out var bucket) ? bucket : (capacity, now);
            tokens = Math.Min(capacity, tokens + (now - at).TotalMinutes * capacity);
            if (tokens < 1)
            {
                _buckets[hook.Id] = (tokens, now);
                return new WebhookRejection(429, "rate limit exceeded", TimeSpan.FromMinutes((1 - tokens) / capacity));
            }
            _buckets[hook.Id] = (tokens - 1, now);
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
