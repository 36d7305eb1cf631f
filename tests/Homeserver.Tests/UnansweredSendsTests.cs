using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.Tests;

/// <summary>A device's own sends as its syncs see them, through real transactions, on a clock the test moves.</summary>
public sealed class UnansweredSendsTests : IClassFixture<SqliteDatabase>
{
    private readonly SqliteDatabase _fixture;
    private readonly ManualClock _clock = new();
    private readonly UnansweredSends _sends;

    public UnansweredSendsTests(SqliteDatabase fixture)
    {
        _fixture = fixture;
        _sends = new UnansweredSends(_clock);
    }

    private Task SendAsync(string deviceId, long position, bool relatesToAnother = true) =>
        _fixture.Database.WriteAsync(s =>
        {
            _sends.Add(s, "@a:test", deviceId, position, relatesToAnother);
            return Task.CompletedTask;
        }, CancellationToken.None);

    [Fact]
    public async Task A_sync_stops_short_of_unanswered_sends_and_is_held_only_for_the_rest_of_the_moment_after_a_related_events_answer()
    {
        await SendAsync("D1", 10);
        await SendAsync("D1", 12);
        Assert.Equal(10, _sends.FirstUnanswered("@a:test", "D1"));
        Assert.Null(_sends.FirstUnanswered("@a:test", "D2"));
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D1", since: 5));

        _sends.Answered("@a:test", "D1", 10);
        Assert.Equal(12, _sends.FirstUnanswered("@a:test", "D1"));
        Assert.Equal(UnansweredSends.AfterAnswer, _sends.HoldAfterAnswers("@a:test", "D1", since: 5));
        _clock.Advance(TimeSpan.FromMilliseconds(70));
        Assert.Equal(UnansweredSends.AfterAnswer - TimeSpan.FromMilliseconds(70), _sends.HoldAfterAnswers("@a:test", "D1", since: 5));
        // The device was given event 10 already: nothing holds its next sync.
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D1", since: 10));
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D2", since: 5));

        _clock.Advance(UnansweredSends.AfterAnswer - TimeSpan.FromMilliseconds(70));
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D1", since: 5));
        _sends.Answered("@a:test", "D1", 12);
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));
    }

    [Fact]
    public async Task A_send_whose_transaction_rolled_back_or_never_answered_holds_nothing_back()
    {
        await Assert.ThrowsAsync<InvalidOperationException>(() => _fixture.Database.WriteAsync(s =>
        {
            _sends.Add(s, "@a:test", "D1", 20, relatesToAnother: true);
            throw new InvalidOperationException("rolled back");
        }, CancellationToken.None));
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));

        await SendAsync("D1", 21);
        Assert.Equal(21, _sends.FirstUnanswered("@a:test", "D1"));
        _clock.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));
    }

    [Fact]
    public async Task An_event_relating_to_none_holds_its_devices_sync_only_until_its_send_is_answered()
    {
        await SendAsync("D1", 30, relatesToAnother: false);
        Assert.Equal(30, _sends.FirstUnanswered("@a:test", "D1"));
        _sends.Answered("@a:test", "D1", 30);
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D1", since: 25));

        // A related event answered just before it still holds the sync that would bring both.
        await SendAsync("D1", 31);
        await SendAsync("D1", 32, relatesToAnother: false);
        _sends.Answered("@a:test", "D1", 31);
        _sends.Answered("@a:test", "D1", 32);
        Assert.Equal(UnansweredSends.AfterAnswer, _sends.HoldAfterAnswers("@a:test", "D1", since: 30));
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D1", since: 31));
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
