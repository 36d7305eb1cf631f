using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.Tests;

/// <summary>The event cache keeps its most recently used events parsed, the others compacted, and evicts past its capacity.</summary>
public sealed class EventCacheTests
{
    private static Pdu Message(int i)
    {
        var json = new JsonObject
        {
            ["type"] = "m.room.message",
            ["sender"] = "@alice:local.test",
            ["room_id"] = i % 2 == 0 ? "!even:local.test" : "!odd:local.test",
            ["content"] = new JsonObject { ["body"] = $"message {i}", ["msgtype"] = "m.text" },
            ["origin_server_ts"] = 1_765_000_000_000L + i,
            ["depth"] = (long)i,
            ["prev_events"] = new JsonArray("$prev"),
            ["auth_events"] = new JsonArray("$create"),
            ["hashes"] = new JsonObject { ["sha256"] = "abc" },
            ["signatures"] = new JsonObject(),
        };
        Assert.True(PduParser.TryParse(json, RoomVersions.Find("11")!, out var pdu, out var error, trustedEventId: $"$event{i}"), error);
        return pdu;
    }

    private static EventCache Cache(int events, int parsed) =>
        new(null!, null!, new HomeserverConfig { Caches = new CachesConfig { Events = events, ParsedEvents = parsed } });

    [Fact]
    public void Events_past_the_parsed_ones_are_compacted_and_parsed_again_when_read()
    {
        var cache = Cache(events: 10, parsed: 2);
        var messages = Enumerable.Range(0, 4).Select(Message).ToList();
        var trees = messages.Select(m => m.Json).ToList();
        messages.ForEach(cache.Add);

        Assert.Same(trees[3], cache.TryGet("$event3")!.Json);
        Assert.Same(trees[2], cache.TryGet("$event2")!.Json);
        var oldest = cache.TryGet("$event0")!;
        Assert.NotSame(trees[0], oldest.Json);
        Assert.Equal("message 0", oldest.ContentString("body"));
        // Reading it made it recent again: the least recent of the parsed ones (event 3) was compacted instead.
        var reparsed = oldest.Json;
        Assert.Same(reparsed, cache.TryGet("$event0")!.Json);
        Assert.NotSame(trees[3], cache.TryGet("$event3")!.Json);
    }

    [Fact]
    public void The_least_recently_used_event_leaves_past_the_capacity()
    {
        var cache = Cache(events: 3, parsed: 1);
        for (var i = 0; i < 3; i++)
            cache.Add(Message(i));
        Assert.NotNull(cache.TryGet("$event0"));
        cache.Add(Message(3));
        Assert.Null(cache.TryGet("$event1"));
        Assert.NotNull(cache.TryGet("$event0"));
        Assert.NotNull(cache.TryGet("$event2"));
        Assert.NotNull(cache.TryGet("$event3"));

        cache.ForgetRoom("!even:local.test");
        Assert.Null(cache.TryGet("$event0"));
        Assert.Null(cache.TryGet("$event2"));
        Assert.NotNull(cache.TryGet("$event3"));
    }

    [Fact]
    public void A_row_kept_with_its_event_gives_that_event_back_to_the_cache_without_parsing_text()
    {
        var cache = Cache(events: 1, parsed: 1);
        var kept = Message(0);
        var row = new EventRow(1, kept.EventId, kept.RoomId, kept.Type, null, kept.Sender, kept.Depth, kept.OriginServerTs, 1, null, "")
        {
            Event = kept,
        };
        cache.Add(Message(1));
        Assert.Null(cache.TryGet(kept.EventId));

        Assert.Same(kept, cache.FromRow(row, RoomVersions.Find("11")!));
        Assert.Same(kept, cache.TryGet(kept.EventId));
    }

    /// <summary>A moment after everything used so far: what is used from now on is used at or after it.</summary>
    internal static long Later()
    {
        var mark = Environment.TickCount64 + 1;
        SpinWait.SpinUntil(() => Environment.TickCount64 >= mark);
        return mark;
    }

    [Fact]
    public void Events_unused_since_the_cutoff_expire_whether_parsed_or_compacted()
    {
        var cache = Cache(events: 10, parsed: 2);
        for (var i = 0; i < 4; i++)
            cache.Add(Message(i));
        var cutoff = Later();
        // Event 0 was compacted, event 3 still parsed; reading them again keeps them.
        Assert.NotNull(cache.TryGet("$event0"));
        Assert.NotNull(cache.TryGet("$event3"));

        Assert.Equal(2, cache.ExpireUnusedSince(cutoff));
        Assert.Null(cache.TryGet("$event1"));
        Assert.Null(cache.TryGet("$event2"));
        Assert.Equal("message 0", cache.TryGet("$event0")!.ContentString("body"));
        Assert.NotNull(cache.TryGet("$event3"));
        Assert.Equal(0, cache.ExpireUnusedSince(cutoff));

        Assert.Equal(2, cache.ExpireUnusedSince(Later()));
        Assert.Null(cache.TryGet("$event0"));
        cache.Add(Message(5));
        Assert.NotNull(cache.TryGet("$event5"));
    }
}
