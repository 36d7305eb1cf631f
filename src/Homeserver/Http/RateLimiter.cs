using System.Collections.Concurrent;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Http;

/// <summary>In-memory token buckets, one per (action, key); a refused request gets 429 M_LIMIT_EXCEEDED with retry_after_ms.</summary>
public sealed class RateLimiter(TimeProvider clock)
{
    private const int SweepThreshold = 100_000;
    private readonly ConcurrentDictionary<(string Action, string Key), Bucket> _buckets = new();

    public void Check(string action, string key, RateLimitConfig limit)
    {
        var now = clock.GetTimestamp() / (double)clock.TimestampFrequency;
        if (!_buckets.TryGetValue((action, key), out var bucket))
        {
            // Counting takes every lock of the dictionary: done only when a key is new.
            if (_buckets.Count > SweepThreshold)
                Sweep(now);
            bucket = _buckets.GetOrAdd((action, key), _ => new Bucket(limit, now));
        }
        double waitSeconds;
        lock (bucket)
        {
            bucket.Tokens = Math.Min(limit.Burst, bucket.Tokens + (now - bucket.UpdatedAt) * limit.PerSecond);
            bucket.UpdatedAt = now;
            if (bucket.Tokens >= 1)
            {
                bucket.Tokens -= 1;
                waitSeconds = 0;
            }
            else
            {
                waitSeconds = (1 - bucket.Tokens) / limit.PerSecond;
            }
        }
        if (waitSeconds > 0)
            throw MatrixException.LimitExceeded((long)Math.Ceiling(waitSeconds * 1000));
    }

    // Full buckets carry no information, so forgetting them bounds memory under many distinct keys.
    private void Sweep(double now)
    {
        foreach (var (key, bucket) in _buckets)
            if (bucket.Tokens + (now - bucket.UpdatedAt) * bucket.Limit.PerSecond >= bucket.Limit.Burst)
                _buckets.TryRemove(key, out _);
    }

    private sealed class Bucket(RateLimitConfig limit, double updatedAt)
    {
        public readonly RateLimitConfig Limit = limit;
        public double Tokens = limit.Burst;
        public double UpdatedAt = updatedAt;
    }
}
