using System.Collections.Concurrent;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Access tokens already looked up, with their users: every authenticated request needs one, and they rarely change.
/// Every write to the tokens or to a user's status makes all entries stale, at once and again when its transaction
/// ends (a lookup that raced the write cannot store what it read before the commit), so a logout, a lock or a
/// deactivation holds from the next request on.
/// </summary>
public sealed class AccessTokenCache(Config.HomeserverConfig config, Replication.ReplicationBus replication) : IExpiringCache
{
    /// <summary>A token's row and user, and the requester they make (built once, by the first request that needs it).</summary>
    public sealed record Entry(long Generation, string TokenHash, AccessTokenRow Token, UserRow User) : UsedEntry
    {
        public Requester? Requester { get; set; }
    }

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _generation;

    /// <summary>Read before looking a token up in the database; <see cref="Store"/> takes it back.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>The entry of a token, by its hash made on the stack: a request whose token is known allocates nothing here.</summary>
    public Entry? GetByToken(string token)
    {
        Span<char> hash = stackalloc char[Secrets.HashLength];
        Secrets.Hash(token, hash);
        if (!_entries.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(hash, out var entry) || entry.Generation != Generation)
            return null;
        entry.Touch();
        return entry;
    }

    /// <summary>
    /// Keeps what a lookup found, unless a write happened since <paramref name="generation"/> was read; the entry either
    /// way (a stale one is used for its request only).
    /// </summary>
    public Entry Store(string tokenHash, long generation, AccessTokenRow token, UserRow user)
    {
        var entry = new Entry(generation, tokenHash, token, user);
        if (generation != Generation)
            return entry;
        if (_entries.Count >= config.Caches.AccessTokens)
            _entries.Clear();
        _entries[tokenHash] = entry;
        return entry;
    }

    public int ExpireUnusedSince(long cutoff) => _entries.RemoveUnusedSince(cutoff);

    /// <summary>Called by every write to tokens or users, in the writing session.</summary>
    public void Invalidate(DbSession s)
    {
        Interlocked.Increment(ref _generation);
        if (s.InTransaction)
            s.OnCompleted(_ => Completed());
        else
            Completed();
    }

    private void Completed()
    {
        Interlocked.Increment(ref _generation);
        replication.Publish(new Replication.ReplicationMessage.Invalidation(Replication.ReplicationMessage.Invalidation.AccessTokens));
    }

    /// <summary>A worker: the main process wrote tokens or users (or this worker may have missed such a write).</summary>
    public void ApplyInvalidation() => Interlocked.Increment(ref _generation);
}
