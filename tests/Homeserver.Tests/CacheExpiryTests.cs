using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Hosting;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Matrix.Homeserver.Tests;

/// <summary>The caches keyed by token and by state group drop what nobody used since the cutoff, and keep the rest.</summary>
public sealed class CacheExpiryTests
{
    [Fact]
    public void Access_tokens_unused_since_the_cutoff_expire()
    {
        var cache = new AccessTokenCache(new HomeserverConfig(), SingleProcess.Bus);
        foreach (var token in new[] { "used", "unused" })
            cache.Store(Secrets.Hash(token), cache.Generation, new AccessTokenRow { TokenHash = Secrets.Hash(token), UserId = "@a:local.test", DeviceId = "D" },
                new UserRow());
        var cutoff = EventCacheTests.Later();
        Assert.NotNull(cache.GetByToken("used"));

        Assert.Equal(1, Expiry(cache).ExpireUnusedSince(cutoff));
        Assert.NotNull(cache.GetByToken("used"));
        Assert.Null(cache.GetByToken("unused"));
    }

    [Fact]
    public async Task State_groups_unused_since_the_cutoff_expire()
    {
        var cache = new StateGroupCache(null!, null!, new HomeserverConfig());
        var state = new Dictionary<StateKey, string> { [StateKey.Member("@a:local.test")] = "$join" };
        cache.Remember(1, state);
        cache.Remember(2, state);
        var cutoff = EventCacheTests.Later();
        Assert.Same(state, await cache.GetAsync(2, CancellationToken.None));

        Assert.Equal(1, cache.ExpireUnusedSince(cutoff));
        Assert.Same(state, await cache.GetAsync(2, CancellationToken.None));
        Assert.Equal(0, cache.ExpireUnusedSince(cutoff));
    }

    private static CacheExpiry Expiry(params IExpiringCache[] caches) =>
        new(caches, new IdleMemoryTrimmer(TimeProvider.System, NullLogger<IdleMemoryTrimmer>.Instance), new HomeserverConfig(),
            TimeProvider.System, NullLogger<CacheExpiry>.Instance);
}
