using System.Collections.Concurrent;

namespace Matrix.Homeserver.Media;

/// <summary>
/// One run of an operation per key at a time: concurrent callers with the same key share it (one remote download, one
/// thumbnail rendering). The entry goes when the run ends, failed or not, so a later caller starts afresh; a caller that
/// gives up stops waiting, not the run others share.
/// </summary>
public sealed class SingleFlight<T>
{
    private readonly ConcurrentDictionary<string, Lazy<Task<T>>> _running = new();

    public Task<T> RunAsync(string key, Func<Task<T>> operation, CancellationToken ct)
    {
        var created = new Lazy<Task<T>>(() => StartAsync(operation));
        var entry = _running.GetOrAdd(key, created);
        if (ReferenceEquals(entry, created))
            _ = entry.Value.ContinueWith(_ => _running.TryRemove(new KeyValuePair<string, Lazy<Task<T>>>(key, entry)), TaskScheduler.Default);
        return entry.Value.WaitAsync(ct);
    }

    /// <summary>An operation that throws before its first await still yields a (faulted) task, never a cached exception.</summary>
    private static async Task<T> StartAsync(Func<Task<T>> operation) => await operation();
}
