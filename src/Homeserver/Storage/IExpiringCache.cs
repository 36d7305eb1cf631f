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
