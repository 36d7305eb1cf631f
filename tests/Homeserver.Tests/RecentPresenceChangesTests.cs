using Matrix.Homeserver.Presence;

namespace Matrix.Homeserver.Tests;

public sealed class RecentPresenceChangesTests
{
    [Fact]
    public void A_window_is_answered_only_when_every_position_in_it_is_known()
    {
        var changes = new RecentPresenceChanges(capacity: 100);
        changes.Add(11, "@a:test");
        changes.Add(13, "@b:test");
        changes.Add(12, "@a:test");

        Assert.True(changes.TryUsersIn(10, 13, out var users));
        Assert.Equal(["@a:test", "@b:test"], users.Order());
        Assert.True(changes.TryUsersIn(12, 13, out users));
        Assert.Equal(["@b:test"], users);
        Assert.True(changes.TryUsersIn(13, 13, out users));
        Assert.Empty(users);
        // Position 10 was taken before (or by a transaction that rolled back, or by another process): the database answers.
        Assert.False(changes.TryUsersIn(9, 13, out _));
        Assert.False(changes.TryUsersIn(10, 14, out _));
    }

    [Fact]
    public void The_oldest_positions_are_forgotten_beyond_the_capacity()
    {
        var changes = new RecentPresenceChanges(capacity: 3);
        for (var position = 1; position <= 5; position++)
            changes.Add(position, $"@u{position}:test");

        Assert.True(changes.TryUsersIn(2, 5, out var users));
        Assert.Equal(["@u3:test", "@u4:test", "@u5:test"], users.Order());
        Assert.False(changes.TryUsersIn(1, 5, out _));
        Assert.False(changes.TryUsersIn(0, 100, out _));
    }
}
