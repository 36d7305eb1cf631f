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
        Lazy<Task<T>>? created = null;
        created = new Lazy<Task<T>>(() => RunThenForgetAsync(key, created!, operation));
        return _running.GetOrAdd(key, created).Value.WaitAsync(ct);
    }

    /// <summary>
    /// Runs the operation and takes its entry out before the task completes, so whoever sees the outcome and calls
    /// again starts afresh (an operation that throws before its first await still yields a faulted task).
    /// </summary>
    private async Task<T> RunThenForgetAsync(string key, Lazy<Task<T>> entry, Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        finally
        {
            _running.TryRemove(new KeyValuePair<string, Lazy<Task<T>>>(key, entry));
        }
    }
}
