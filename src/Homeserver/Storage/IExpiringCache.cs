namespace Matrix.Homeserver.Storage;

/// <summary>
/// A cache that drops the entries nobody has used for <c>caches.expire_after_ms</c> (Synapse's <c>cache_entry_ttl</c>):
/// a server busy an hour ago need not hold that hour's working set for ever (<see cref="Hosting.CacheExpiry"/>).
/// Entries note when they were last used in <see cref="Environment.TickCount64"/> milliseconds.
/// </summary>
public interface IExpiringCache
{
    /// <summary>Drops the entries last used before <paramref name="cutoff"/>; says how many went.</summary>
    int ExpireUnusedSince(long cutoff);
}

/// <summary>A cache entry that notes when it was last used.</summary>
public abstract record UsedEntry
{
    public long LastUsed { get; private set; } = Environment.TickCount64;

    public void Touch() => LastUsed = Environment.TickCount64;
}

public static class UsedEntries
{
    /// <summary>Removes the entries last used before <paramref name="cutoff"/>; says how many went.</summary>
    public static int RemoveUnusedSince<TKey, TEntry>(this System.Collections.Concurrent.ConcurrentDictionary<TKey, TEntry> entries, long cutoff)
        where TKey : notnull where TEntry : UsedEntry =>
        entries.Count(pair => pair.Value.LastUsed < cutoff && entries.TryRemove(pair));
}
