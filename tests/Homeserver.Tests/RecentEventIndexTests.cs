using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.Tests;

public sealed class RecentEventIndexTests
{
    [Fact]
    public void Answers_only_windows_after_the_first_position_asked_about()
    {
        var index = new RecentEventIndex(new HomeserverConfig());
        index.Record(5, "!old:x", "m.room.message");
        // Events up to the first position asked about may have been written before the index started.
        Assert.Null(index.Find(3, 10));
        Assert.Null(index.Find(9, 12));
        Assert.Empty(index.Find(10, 10)!.Rooms());
    }

    [Fact]
    public void Finds_the_rooms_and_member_events_of_a_window_whatever_order_they_were_written_in()
    {
        var index = new RecentEventIndex(new HomeserverConfig());
        Assert.NotNull(index.Find(100, 100));
        index.Record(103, "!c:x", "m.room.member");
        index.Record(101, "!a:x", "m.room.message");
        index.Record(102, "!b:x", "m.room.message");
        index.Record(104, "!a:x", "m.room.message");

        var window = index.Find(100, 102)!;
        Assert.Equal(["!a:x", "!b:x"], window.Rooms().Order());
        Assert.False(window.HasMemberEvents);
        window = index.Find(102, 104)!;
        Assert.Equal(["!a:x", "!c:x"], window.Rooms().Order());
        Assert.True(window.HasMemberEvents);
        // Positions past the visible one are left out.
        Assert.Equal(["!a:x"], index.Find(100, 101)!.Rooms());
    }

    [Fact]
    public void Tells_which_of_a_users_rooms_have_events_in_a_window_looking_through_the_fewer_of_the_two()
    {
        var index = new RecentEventIndex(new HomeserverConfig());
        Assert.NotNull(index.Find(100, 100));
        for (var position = 101; position <= 120; position++)
            index.Record(position, $"!r{position % 7}:x", "m.room.message");
        index.Record(121, "!mine:x", "m.room.message");
        index.Record(122, "!other:x", "m.room.member");
        List<MembershipRow> memberships = [new("!mine:x", "join", "$m"), new("!r3:x", "join", "$j"), new("!quiet:x", "join", "$q")];

        // More events than memberships: each membership's room is looked up.
        Assert.Equal(["!mine:x", "!r3:x"], index.Find(100, 121)!.Rooms(memberships).Order());
        Assert.Equal(["!mine:x"], index.Find(117, 122)!.Rooms(memberships).Order());
        Assert.Empty(index.Find(110, 120)!.Rooms(memberships.Take(1).ToList()));
        // Fewer events than memberships: the window's rooms, which hold those of the memberships with events.
        Assert.Equal(["!mine:x", "!other:x"], index.Find(120, 122)!.Rooms(memberships).Order());
        Assert.True(index.Find(121, 122)!.HasMemberEvents);
        Assert.False(index.Find(100, 121)!.HasMemberEvents);
    }

    [Fact]
    public void A_window_whose_entries_were_dropped_after_it_was_found_counts_every_membership_as_having_events()
    {
        var index = new RecentEventIndex(new HomeserverConfig());
        Assert.NotNull(index.Find(0, 0));
        index.Record(1, "!a:x", "m.room.message");
        var window = index.Find(0, 1)!;
        for (var position = 2; position <= 60_000; position++)
            index.Record(position, "!busy:x", "m.room.message");

        List<MembershipRow> memberships = [new("!a:x", "join", "$a"), new("!b:x", "join", "$b")];
        Assert.Equal(["!a:x", "!b:x"], window.Rooms(memberships).Order());
    }

    [Fact]
    public void Dropping_the_oldest_entries_stops_answering_for_windows_that_reach_back_to_them()
    {
        var index = new RecentEventIndex(new HomeserverConfig());
        Assert.NotNull(index.Find(0, 0));
        for (var position = 1; position <= 60_000; position++)
            index.Record(position, $"!r{position}:x", "m.room.message");
        Assert.Null(index.Find(0, 60_000));
        var window = index.Find(59_990, 60_000)!;
        Assert.Equal(10, window.Rooms().Count);
        Assert.Contains("!r60000:x", window.Rooms());
    }

    [Fact]
    public void Vouches_for_events_without_relations_only_after_its_start_and_past_forgotten_targets()
    {
        var index = new RecentEventIndex(new HomeserverConfig());
        // Before any sync has asked, nothing is known.
        Assert.True(index.MayBeRelatedTo("$new", 200));
        Assert.NotNull(index.Find(100, 100));
        Assert.True(index.MayBeRelatedTo("$old", 100));
        Assert.False(index.MayBeRelatedTo("$new", 101));
        index.RecordRelation("$new", 102);
        Assert.True(index.MayBeRelatedTo("$new", 101));

        // Forgetting the targets forgets every relation up to the latest one recorded.
        for (var i = 0; i < 100_000; i++)
            index.RecordRelation($"$t{i}", 1_000 + i);
        index.RecordRelation("$last", 200_000);
        Assert.True(index.MayBeRelatedTo("$new", 101));
        Assert.True(index.MayBeRelatedTo("$unrelated", 100_998));
        Assert.False(index.MayBeRelatedTo("$unrelated", 100_999));
        Assert.True(index.MayBeRelatedTo("$last", 199_000));
        Assert.False(index.MayBeRelatedTo("$unrelated", 200_001));
    }

    [Fact]
    public void A_worker_follows_the_main_process_stretches_and_answers_only_within_what_it_holds_without_a_gap()
    {
        var main = new RecentEventIndex(new HomeserverConfig { Worker = new WorkerConfig { Redis = "127.0.0.1:6379" } });
        main.Record(11, "!a:x", "m.room.message");
        main.Record(12, "!b:x", "m.room.member");
        main.Record(14, "!c:x", "m.room.message");
        main.RecordRelation("$a", 12);
        main.RecordRelation("$c", 15);
        var first = main.Between(10, 13)!;
        Assert.Equal([(11L, "!a:x", false), (12L, "!b:x", true)], first.Events);
        Assert.Equal([(12L, "$a")], first.Relations);

        var worker = new RecentEventIndex(new HomeserverConfig { Worker = new WorkerConfig { Role = WorkerConfig.SyncRole } });
        Assert.Null(worker.Find(10, 10));
        Assert.True(worker.MayBeRelatedTo("$b", 11));
        worker.Follow(10, 13, first);
        // Relations to events after where it began following are known: only those pointed at may have any.
        Assert.True(worker.MayBeRelatedTo("$a", 11));
        Assert.False(worker.MayBeRelatedTo("$b", 11));
        Assert.True(worker.MayBeRelatedTo("$before", 10));
        Assert.Equal(new HashSet<string> { "!a:x", "!b:x" }, worker.Find(10, 13)!.Rooms());
        Assert.True(worker.Find(11, 13)!.HasMemberEvents);
        // Beyond what it followed, or before where it started, it does not know.
        Assert.Null(worker.Find(10, 14));
        Assert.Null(worker.Find(9, 13));
        worker.Follow(13, 14, main.Between(13, 14)!);
        Assert.False(worker.MayBeRelatedTo("$c", 14));
        worker.Follow(14, 15, main.Between(14, 15)!);
        Assert.True(worker.MayBeRelatedTo("$c", 14));
        Assert.Equal(new HashSet<string> { "!c:x" }, worker.Find(12, 14)!.Rooms());
        Assert.False(worker.Find(12, 14)!.HasMemberEvents);

        // A stretch that does not follow on (a message went missing) makes it whole again only from there.
        worker.Follow(20, 21, new RecentEventIndex.Stretch([(21L, "!d:x", false)], [], []));
        Assert.Null(worker.Find(14, 21));
        Assert.Equal(new HashSet<string> { "!d:x" }, worker.Find(20, 21)!.Rooms());
        worker.ForgetFollowed();
        Assert.Null(worker.Find(20, 21));
        Assert.True(worker.MayBeRelatedTo("$anything", 21));
    }
}

public sealed class FollowedRoomRowsTests
{
    private static EventRow Row(long position, string roomId) => new(position, $"$e{position}", roomId, "m.room.message", null, "@a:x", position, 0, 0, null, "{}");

    [Fact]
    public void A_worker_answers_a_window_from_rows_it_read_only_when_it_knows_every_position_of_the_room_there()
    {
        var config = new HomeserverConfig { Worker = new WorkerConfig { Role = WorkerConfig.SyncRole } };
        var index = new RecentEventIndex(config);
        var rows = new FollowedRoomRows(config, index);
        // Positions 11 and 13 are the room's (12 another room's, 14 the room's but never served: rejected).
        index.Follow(10, 14, new RecentEventIndex.Stretch([(11L, "!r:x", false), (12L, "!o:x", false), (13L, "!r:x", false), (14L, "!r:x", false)], [], []));
        Assert.False(rows.TryPage("!r:x", 10, 14, 50, out _));
        Assert.True(rows.TryPage("!q:x", 10, 14, 50, out var none));
        Assert.Empty(none);

        rows.Remember("!r:x", 10, 14, 50, [Row(13, "!r:x"), Row(11, "!r:x")], rows.Generation);
        Assert.True(rows.TryPage("!r:x", 10, 14, 50, out var page));
        Assert.Equal([13L, 11L], page.Select(r => r.StreamOrdering));
        Assert.True(rows.TryPage("!r:x", 11, 13, 50, out page));
        Assert.Equal([13L], page.Select(r => r.StreamOrdering));
        Assert.True(rows.TryPage("!r:x", 10, 14, 1, out page));
        Assert.Equal([13L], page.Select(r => r.StreamOrdering));

        // A page cut at its limit says nothing of the positions before its oldest row.
        index.Follow(14, 17, new RecentEventIndex.Stretch([(15L, "!s:x", false), (16L, "!s:x", false), (17L, "!s:x", false)], [], []));
        rows.Remember("!s:x", 14, 17, 1, [Row(17, "!s:x")], rows.Generation);
        Assert.True(rows.TryPage("!s:x", 16, 17, 1, out page));
        Assert.False(rows.TryPage("!s:x", 14, 17, 50, out _));

        // A redaction (or a purge) in the room drops what was kept of it, and a read begun before that is not kept.
        var before = rows.Generation;
        rows.ForgetRoom("!r:x");
        Assert.False(rows.TryPage("!r:x", 10, 14, 50, out _));
        rows.Remember("!r:x", 10, 14, 50, [Row(13, "!r:x"), Row(11, "!r:x")], before);
        Assert.False(rows.TryPage("!r:x", 10, 14, 50, out _));
        // Beyond what the index followed it does not answer.
        Assert.False(rows.TryPage("!s:x", 14, 18, 50, out _));
    }

    [Fact]
    public void The_main_process_keeps_nothing_here()
    {
        var config = new HomeserverConfig();
        var index = new RecentEventIndex(config);
        index.Record(11, "!r:x", "m.room.message");
        Assert.NotNull(index.Find(10, 10));
        var rows = new FollowedRoomRows(config, index);
        rows.Remember("!r:x", 10, 11, 50, [Row(11, "!r:x")], rows.Generation);
        Assert.False(rows.TryPage("!r:x", 10, 11, 50, out _));
    }
}
