using System.Runtime.InteropServices;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// Gives memory back to the system once the process goes quiet. Under load the garbage collector grows its heaps and
/// keeps them committed for the next burst; with nothing allocated it never runs again, so a server would hold the
/// peak of its busiest hour for ever (240 MB idle after the bench's 100-user row, 101 MB at start). After each busy
/// spell (start-up is one), once the process has allocated little for half a minute, one full compacting collection
/// decommits what the heaps do not use, and glibc's allocator returns its free pages. Quiet means a few idle
/// long-polls and timers: a collection then pauses nobody who is waiting.
/// </summary>
public sealed partial class IdleMemoryTrimmer(TimeProvider clock, ILogger<IdleMemoryTrimmer> logger) : BackgroundService
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(10);
    private int _released;

    /// <summary>Something let go of memory (<see cref="CacheExpiry"/>): the next quiet check trims again.</summary>
    public void MemoryReleased() => Volatile.Write(ref _released, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(CheckInterval, clock);
        var spells = new QuietSpells();
        var allocated = GC.GetTotalAllocatedBytes();
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (Interlocked.Exchange(ref _released, 0) == 1)
                spells.Released();
            if (spells.ShouldTrim(GC.GetTotalAllocatedBytes() - allocated))
                Trim();
            allocated = GC.GetTotalAllocatedBytes();
        }
    }

    /// <summary>
    /// Told what each check's ten seconds allocated, says when to trim: once per busy spell, after three quiet checks,
    /// and again when memory was released since.
    /// </summary>
    internal sealed class QuietSpells
    {
        private const int QuietChecksBeforeTrim = 3;
        // What ten seconds may allocate and still count as quiet (a busy server allocates that in a fraction of a second).
        internal const long QuietBytesPerCheck = 16L << 20;
        private int _quietChecks;
        private bool _trimmedSinceBusy;

        public bool ShouldTrim(long allocatedSinceLastCheck)
        {
            if (allocatedSinceLastCheck >= QuietBytesPerCheck)
            {
                (_quietChecks, _trimmedSinceBusy) = (0, false);
                return false;
            }
            if (++_quietChecks < QuietChecksBeforeTrim || _trimmedSinceBusy)
                return false;
            _trimmedSinceBusy = true;
            return true;
        }

        public void Released() => _trimmedSinceBusy = false;
    }

    private void Trim()
    {
        var before = Environment.WorkingSet;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (OperatingSystem.IsLinux())
            ReturnNativeFreePages();
        logger.LogDebug("Idle: memory trimmed from {Before} MB to {After} MB", before >> 20, Environment.WorkingSet >> 20);
    }

    private static void ReturnNativeFreePages()
    {
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // Not glibc (musl has no malloc_trim): its allocator keeps its pages.
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
