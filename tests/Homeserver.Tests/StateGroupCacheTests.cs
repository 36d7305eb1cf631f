using Matrix.Federation.Events;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Tests;

/// <summary>State groups kept in memory: read from the database when unknown, and as written when this process wrote them.</summary>
public sealed class StateGroupCacheTests(SqliteDatabase fixture) : IClassFixture<SqliteDatabase>
{
    [Fact]
    public async Task An_unknown_group_is_read_for_all_who_ask_at_once_and_a_written_one_is_answered_as_written()
    {
        var store = new StateGroupStore(new StreamPositions());
        var state = new Dictionary<StateKey, string> { [StateKey.Create] = "$create", [StateKey.Member("@a:test")] = "$join" };
        var groupId = await fixture.Database.WriteAsync(s => store.CreateAsync(s, "!r:test", null, new Dictionary<StateKey, string>(), state),
            CancellationToken.None);
        var cache = new StateGroupCache(fixture.Database, store, new HomeserverConfig());

        var read = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => cache.GetAsync(groupId, CancellationToken.None).AsTask()));
        Assert.Equal(state.OrderBy(e => e.Key.Key), read[0].OrderBy(e => e.Key.Key));
        Assert.All(read, r => Assert.Same(read[0], r));

        // A group remembered as written is never looked for in the database (this one is not there).
        var written = new Dictionary<StateKey, string> { [StateKey.Create] = "$other" };
        cache.Remember(groupId + 1_000, written);
        Assert.Same(written, await cache.GetAsync(groupId + 1_000, CancellationToken.None));
    }
}
