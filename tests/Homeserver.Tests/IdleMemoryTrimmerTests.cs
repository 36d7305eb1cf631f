using Matrix.Homeserver.Hosting;

namespace Matrix.Homeserver.Tests;

public sealed class IdleMemoryTrimmerTests
{
    private const long Busy = IdleMemoryTrimmer.QuietSpells.QuietBytesPerCheck;
    private const long Quiet = 1 << 20;

    [Fact]
    public void Trims_once_after_three_quiet_checks_and_again_only_after_the_next_busy_spell()
    {
        var spells = new IdleMemoryTrimmer.QuietSpells();
        Assert.Equal([false, false, true, false, false], Enumerable.Range(0, 5).Select(_ => spells.ShouldTrim(Quiet)));

        Assert.False(spells.ShouldTrim(Busy));
        Assert.Equal([false, false, true, false], Enumerable.Range(0, 4).Select(_ => spells.ShouldTrim(Quiet)));
    }

    [Fact]
    public void A_busy_check_within_the_quiet_ones_starts_the_count_again()
    {
        var spells = new IdleMemoryTrimmer.QuietSpells();
        Assert.False(spells.ShouldTrim(Quiet));
        Assert.False(spells.ShouldTrim(Quiet));
        Assert.False(spells.ShouldTrim(Busy));
        Assert.False(spells.ShouldTrim(Quiet));
        Assert.False(spells.ShouldTrim(Quiet));
        Assert.True(spells.ShouldTrim(Quiet));
    }

    [Fact]
    public void Memory_released_while_quiet_is_trimmed_at_the_next_check()
    {
        var spells = new IdleMemoryTrimmer.QuietSpells();
        Assert.Equal([false, false, true, false], Enumerable.Range(0, 4).Select(_ => spells.ShouldTrim(Quiet)));

        spells.Released();
        Assert.Equal([true, false], Enumerable.Range(0, 2).Select(_ => spells.ShouldTrim(Quiet)));
    }
}
