using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Tests;

/// <summary>Entries nobody used lately expire, and a read begun before an expiry never stores a value a write made stale.</summary>
public sealed class VersionedCacheTests
{
    [Fact]
    public void Entries_unused_since_the_cutoff_expire_and_used_ones_stay()
    {
        var cache = new VersionedCache<string, int>(100);
        cache.Store(cache.Begin("a"), 1);
        cache.Store(cache.Begin("b"), 2);
        var cutoff = EventCacheTests.Later();
        Assert.True(cache.TryGet("a", out _));

        Assert.Equal(1, cache.ExpireUnusedSince(cutoff));
        Assert.True(cache.TryGet("a", out var a));
        Assert.Equal(1, a);
        Assert.False(cache.TryGet("b", out _));
        cache.Store(cache.Begin("b"), 3);
        Assert.True(cache.TryGet("b", out var b));
        Assert.Equal(3, b);
    }

    [Fact]
    public void A_read_begun_before_an_expiry_does_not_store_what_a_write_since_made_stale()
    {
        var cache = new VersionedCache<string, int>(100);
        var stale = cache.Begin("a");
        cache.Invalidate("a");
        // The write's mark goes too, which would bring the key back to the version the read began at.
        Assert.Equal(1, cache.ExpireUnusedSince(EventCacheTests.Later()));
        cache.Store(stale, 1);
        Assert.False(cache.TryGet("a", out _));
    }
}
