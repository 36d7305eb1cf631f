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

    private Task SendAsync(string deviceId, long position) =>
        _fixture.Database.WriteAsync(s =>
        {
            _sends.Add(s, "@a:test", deviceId, position);
            return Task.CompletedTask;
        }, CancellationToken.None);

    [Fact]
    public async Task A_sync_stops_short_of_unanswered_sends_and_is_held_only_for_the_rest_of_the_moment_after_an_answer()
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

        _clock.Advance(TimeSpan.FromMilliseconds(30));
        Assert.Equal(TimeSpan.Zero, _sends.HoldAfterAnswers("@a:test", "D1", since: 5));
        _sends.Answered("@a:test", "D1", 12);
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));
    }

    [Fact]
    public async Task A_send_whose_transaction_rolled_back_or_never_answered_holds_nothing_back()
    {
        await Assert.ThrowsAsync<InvalidOperationException>(() => _fixture.Database.WriteAsync(s =>
        {
            _sends.Add(s, "@a:test", "D1", 20);
            throw new InvalidOperationException("rolled back");
        }, CancellationToken.None));
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));

        await SendAsync("D1", 21);
        Assert.Equal(21, _sends.FirstUnanswered("@a:test", "D1"));
        _clock.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(_sends.FirstUnanswered("@a:test", "D1"));
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
