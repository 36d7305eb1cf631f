using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.Tests;

/// <summary>
/// The event cache's two tiers: the most recently used tenth parsed, the rest kept as UTF-8 and parsed again when asked
/// for. Only cached events are asked for here, so the database behind it is never read.
/// </summary>
public sealed class EventCacheTests(SqliteDatabase fixture) : IClassFixture<SqliteDatabase>
{
    private static readonly RoomVersion Version = RoomVersions.Find("11")!;
    private static readonly Ed25519KeyPair Key = Ed25519KeyPair.Generate("cache");

    private EventCache NewCache(int events) =>
        new(fixture.Database, SingleProcess.Rooms(), new HomeserverConfig { Caches = { Events = events } });

    private static Pdu Message(string roomId, int n)
    {
        var json = new JsonObject
        {
            ["type"] = "m.room.message", ["sender"] = "@alice:local.test", ["room_id"] = roomId, ["depth"] = n,
            ["origin_server_ts"] = 1_700_000_000_000 + n, ["prev_events"] = new JsonArray(), ["auth_events"] = new JsonArray(),
            ["content"] = new JsonObject { ["msgtype"] = "m.text", ["body"] = $"message {n}" },
        };
        EventSigning.HashAndSign(json, Version, "local.test", Key);
        return Pdu.Parse(json, Version);
    }

    [Fact]
    public void Events_beyond_the_parsed_tenth_come_back_equal_until_the_capacity_drops_the_oldest()
    {
        var cache = NewCache(events: 20);
        var events = Enumerable.Range(0, 25).Select(n => Message("!room:local.test", n)).ToList();
        foreach (var pdu in events)
            cache.Add(pdu);

        // The five oldest are gone; of the twenty kept only the two newest are still the objects added.
        Assert.All(events.Take(5), e => Assert.Null(cache.TryGet(e.EventId)));
        Assert.Same(events[24], cache.TryGet(events[24].EventId));
        var reparsed = cache.TryGet(events[5].EventId)!;
        Assert.NotSame(events[5], reparsed);
        Assert.Equal(events[5].Json.ToJsonString(), reparsed.Json.ToJsonString());
        Assert.Equal((events[5].EventId, events[5].RoomId, events[5].Depth), (reparsed.EventId, reparsed.RoomId, reparsed.Depth));
        Assert.All(events.Skip(6), e => Assert.Equal(e.Json.ToJsonString(), cache.TryGet(e.EventId)!.Json.ToJsonString()));
    }

    [Fact]
    public void Forgetting_an_event_or_a_room_reaches_both_tiers()
    {
        var cache = NewCache(events: 20);
        var kept = Enumerable.Range(0, 10).Select(n => Message("!kept:local.test", n)).ToList();
        var forgotten = Enumerable.Range(0, 10).Select(n => Message("!forgotten:local.test", n)).ToList();
        foreach (var pdu in forgotten.Take(5).Concat(kept).Concat(forgotten.Skip(5)))
            cache.Add(pdu);

        cache.ForgetRoom("!forgotten:local.test");
        cache.Forget([kept[0].EventId]);

        Assert.All(forgotten.Append(kept[0]), e => Assert.Null(cache.TryGet(e.EventId)));
        Assert.All(kept.Skip(1), e => Assert.NotNull(cache.TryGet(e.EventId)));
    }
}
