using System.Collections.Concurrent;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// Values read from the database, kept by key until a write changes them. A write invalidates its key in its own
/// session, at once and again when its transaction ends; a read stores what it found only if no invalidation of the key
/// came between its <see cref="Begin"/> and its <see cref="Store"/>, so a read racing a write never keeps the old value.
/// </summary>
public sealed class VersionedCache<TKey, TValue>(int maxEntries) : IExpiringCache where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, Entry> _entries = new();
    private readonly Lock _gate = new();
    // Bumped when the entries are dropped for room, so a read begun before cannot store over a forgotten invalidation.
    private long _epoch;

    private sealed record Entry(long Version, bool HasValue, TValue? Value) : UsedEntry;

    public readonly record struct Ticket(TKey Key, long Epoch, long Version);

    public bool TryGet(TKey key, out TValue value)
    {
        if (_entries.TryGetValue(key, out var entry) && entry.HasValue)
        {
            entry.Touch();
            value = entry.Value!;
            return true;
        }
        value = default!;
        return false;
    }

    /// <summary>Taken before reading the value from the database; <see cref="Store"/> takes it back.</summary>
    public Ticket Begin(TKey key)
    {
        lock (_gate)
            return new Ticket(key, _epoch, _entries.TryGetValue(key, out var entry) ? entry.Version : 0);
    }

    public void Store(Ticket ticket, TValue value)
    {
        lock (_gate)
        {
            var version = _entries.TryGetValue(ticket.Key, out var entry) ? entry.Version : 0;
            if (ticket.Epoch != _epoch || ticket.Version != version)
                return;
            if (_entries.Count >= maxEntries)
            {
                _entries.Clear();
                _epoch++;
                return;
            }
            _entries[ticket.Key] = new Entry(version, true, value);
        }
    }

    /// <summary>Called by every write that changes the key's value, in the writing session.</summary>
    public void Invalidate(DbSession s, TKey key)
    {
        Bump(key);
        if (s.InTransaction)
            s.OnCompleted(_ => Bump(key));
    }

    /// <summary>Drops the key's value with no session (a write another process made).</summary>
    public void Invalidate(TKey key) => Bump(key);

    public void Clear()
    {
        lock (_gate)
        {
            _entries.Clear();
            _epoch++;
        }
    }

    public int ExpireUnusedSince(long cutoff)
    {
        if (!_entries.Any(pair => pair.Value.LastUsed < cutoff))
            return 0;
        lock (_gate)
        {
            // A key removed goes back to version 0, which a read begun before its invalidation may hold: the new epoch
            // keeps such a read from storing.
            _epoch++;
            return _entries.RemoveUnusedSince(cutoff);
        }
    }

    private void Bump(TKey key)
    {
        lock (_gate)
            _entries[key] = new Entry((_entries.TryGetValue(key, out var entry) ? entry.Version : 0) + 1, false, default);
    }
}

/// <summary>
/// A cached value found in memory, or the reads that find it (for the caller to run in its own batch) and how to make
/// the value of their results, which is then stored unless a write came between.
/// </summary>
public sealed class CachedLookup<TKey, TValue> where TKey : notnull
{
    private readonly VersionedCache<TKey, TValue> _cache;
    private readonly VersionedCache<TKey, TValue>.Ticket _ticket;
    private readonly Func<TValue>? _compose;
    private TValue? _value;
    private bool _known;

    public CachedLookup(VersionedCache<TKey, TValue> cache, TKey key, Func<(IReadOnlyList<SqlRead> Reads, Func<TValue> Compose)> read)
    {
        _cache = cache;
        if (cache.TryGet(key, out var known))
        {
            (_value, _known, Reads) = (known, true, []);
            return;
        }
        _ticket = cache.Begin(key);
        (Reads, _compose) = read();
    }

    public IReadOnlyList<SqlRead> Reads { get; }

    /// <summary>The value, once <see cref="Reads"/> have run.</summary>
    public TValue Result
    {
        get
        {
            if (_known)
                return _value!;
            _value = _compose!();
            _known = true;
            _cache.Store(_ticket, _value);
            return _value;
        }
    }
}
