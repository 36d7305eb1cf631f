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

        Assert.True(changes.Knows(10, 13));
        Assert.Equal(["@a:test", "@a:test", "@b:test"], changes.UsersIn(10, 13));
        Assert.Equal(["@b:test"], changes.UsersIn(12, 13));
        Assert.True(changes.Knows(13, 13));
        Assert.Empty(changes.UsersIn(13, 13)!);
        // Position 10 was taken before (or by a transaction that rolled back, or by another process): the database answers.
        Assert.False(changes.Knows(9, 13));
        Assert.Null(changes.UsersIn(9, 13));
        Assert.False(changes.Knows(10, 14));
        Assert.Null(changes.UsersIn(10, 14));
    }

    [Fact]
    public void A_gap_inside_the_window_leaves_it_to_the_database()
    {
        var changes = new RecentPresenceChanges(capacity: 100);
        changes.Add(1, "@a:test");
        changes.Add(3, "@b:test");

        Assert.False(changes.Knows(0, 3));
        Assert.Null(changes.UsersIn(0, 3));
        Assert.True(changes.Knows(2, 3));
    }

    [Fact]
    public void The_oldest_positions_are_forgotten_beyond_the_capacity()
    {
        var changes = new RecentPresenceChanges(capacity: 3);
        for (var position = 1; position <= 5; position++)
            changes.Add(position, $"@u{position}:test");

        Assert.Equal(["@u3:test", "@u4:test", "@u5:test"], changes.UsersIn(2, 5));
        Assert.False(changes.Knows(1, 5));
        Assert.False(changes.Knows(0, 100));
    }
}
