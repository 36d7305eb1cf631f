using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Tests;

/// <summary>The latest event rows kept for woken syncs, through real transactions (their commit and rollback callbacks).</summary>
public sealed class RecentRoomRowsTests(SqliteDatabase fixture) : IClassFixture<SqliteDatabase>
{
    private readonly RecentRoomRows _rows = new(new HomeserverConfig());
    private long _position = 1_000;

    private static EventRow Row(string roomId, long position, long softFailed = 0) =>
        new(position, $"$e{position}", roomId, "m.room.message", null, "@a:test", 1, 0, 1, null, "{}", SoftFailed: softFailed);

    /// <summary>Records rows in one transaction that commits (or, with <paramref name="rollBack"/>, fails).</summary>
    private async Task<List<EventRow>> WriteAsync(string roomId, int count, bool rollBack = false, long softFailed = 0)
    {
        var written = Enumerable.Range(0, count).Select(_ => Row(roomId, ++_position, softFailed)).ToList();
        try
        {
            await fixture.Database.WriteAsync(s =>
            {
                foreach (var row in written)
                    _rows.Record(s, row, null);
                return rollBack ? throw new InvalidOperationException("rolled back") : Task.CompletedTask;
            }, CancellationToken.None);
        }
        catch (InvalidOperationException) when (rollBack)
        {
        }
        return written;
    }

    [Fact]
    public async Task A_window_of_committed_rows_is_answered_newest_first_without_rolled_back_or_soft_failed_ones()
    {
        var start = _position;
        var first = await WriteAsync("!a:test", 3);
        await WriteAsync("!a:test", 2, rollBack: true);
        await WriteAsync("!a:test", 1, softFailed: 1);
        var last = await WriteAsync("!a:test", 1);

        Assert.True(_rows.TryPage("!a:test", start, _position, 100, out var page));
        Assert.Equal(last.Concat(first.AsEnumerable().Reverse()).Select(r => r.EventId), page.Select(r => r.EventId));
        Assert.True(_rows.TryPage("!a:test", first[0].StreamOrdering, first[1].StreamOrdering, 100, out var part));
        Assert.Equal([first[1].EventId], part.Select(r => r.EventId));
        // Before the room's first row here memory cannot tell: the database answers.
        Assert.False(_rows.TryPage("!a:test", start - 1, _position, 100, out _));
        Assert.False(_rows.TryPage("!unknown:test", start, _position, 100, out _));
    }

    [Fact]
    public async Task Rows_beyond_a_room_share_or_the_overall_limit_go_and_their_windows_go_to_the_database()
    {
        var start = _position;
        await WriteAsync("!busy:test", 100);
        Assert.False(_rows.TryPage("!busy:test", start, _position, 200, out _));
        Assert.True(_rows.TryPage("!busy:test", _position - 64, _position, 200, out var kept));
        Assert.Equal(64, kept.Count);

        // Far more rooms than the overall limit holds: the quietest (oldest latest row) give their rows up first and
        // keep where those ended: a window from before that goes to the database, one after it is answered here.
        var busyEnd = _position;
        for (var i = 0; i < 400; i++)
            await WriteAsync($"!r{i}:test", 40);
        Assert.False(_rows.TryPage("!busy:test", busyEnd - 1, _position, 10, out _));
        Assert.True(_rows.TryPage("!busy:test", busyEnd, _position, 10, out var none));
        Assert.Empty(none);
        Assert.True(_rows.TryPage("!r399:test", _position - 40, _position, 100, out var newest));
        Assert.Equal(40, newest.Count);
        var next = await WriteAsync("!busy:test", 1);
        Assert.True(_rows.TryPage("!busy:test", busyEnd, _position, 10, out var news));
        Assert.Equal([next[0].EventId], news.Select(r => r.EventId));
    }

    [Fact]
    public async Task A_redaction_reaches_the_kept_row_when_it_commits_and_not_when_it_rolls_back()
    {
        var start = _position;
        var target = (await WriteAsync("!red:test", 1))[0];
        await Assert.ThrowsAsync<InvalidOperationException>(() => fixture.Database.WriteAsync(s =>
        {
            _rows.Redacted(s, "!red:test", target.EventId, "$failed");
            throw new InvalidOperationException("rolled back");
        }, CancellationToken.None));
        Assert.True(_rows.TryPage("!red:test", start, _position, 10, out var unredacted));
        Assert.Null(unredacted.Single().RedactedBy);

        await fixture.Database.WriteAsync(s =>
        {
            _rows.Redacted(s, "!red:test", target.EventId, "$redaction");
            // While the redaction is in flight the room's rows are not answered from memory.
            Assert.False(_rows.TryPage("!red:test", start, _position, 10, out _));
            return Task.CompletedTask;
        }, CancellationToken.None);
        Assert.True(_rows.TryPage("!red:test", start, _position, 10, out var redacted));
        Assert.Equal("$redaction", redacted.Single().RedactedBy);
    }

    [Fact]
    public async Task A_row_recorded_with_its_event_is_kept_holding_the_event_not_its_text()
    {
        var start = _position;
        var row = Row("!kept:test", ++_position) with { Json = """{"type":"m.room.message"}""" };
        var pdu = new Federation.Events.Pdu
        {
            Version = Federation.Rooms.RoomVersions.Find("11")!, Json = [], EventId = row.EventId, RoomId = row.RoomId, Type = row.Type,
            StateKey = null, Sender = row.Sender, Depth = 1, OriginServerTs = 0, PrevEvents = [], AuthEvents = [],
        };
        await fixture.Database.WriteAsync(s =>
        {
            _rows.Record(s, row, pdu);
            return Task.CompletedTask;
        }, CancellationToken.None);

        Assert.True(_rows.TryPage("!kept:test", start, _position, 10, out var page));
        Assert.Same(pdu, page.Single().Event);
        Assert.Equal("", page.Single().Json);
        Assert.Equal(row.EventId, page.Single().EventId);
    }
}
