using System.Collections.Concurrent;

namespace Matrix.Homeserver.Hosting;

/// <summary>What one pass over a queue did.</summary>
public enum QueuePass { Sent, Empty, Failed }

/// <summary>How a queue's other end fares: since when its passes fail, the last failure, and the wait before the next try.</summary>
public sealed record QueueHealth(DateTimeOffset? FailingSince, DateTimeOffset? LastFailure, TimeSpan Backoff);

/// <summary>
/// One worker per queue key (a federation destination, an application service) over queues kept in the database:
/// <see cref="Wake"/> runs the queue's passes until it is empty; a failed pass backs off exponentially up to a cap, and
/// <see cref="ResetBackoff"/> retries at once. Memory per key is a few fields, however long a queue is.
/// </summary>
public sealed class RetryingQueues(Func<string, CancellationToken, Task<QueuePass>> passAsync, TimeSpan firstBackoff, TimeSpan maxBackoff,
    TimeProvider clock, CancellationToken stopping)
{
    private sealed class Queue
    {
        public readonly SemaphoreSlim Running = new(1, 1);
        public TimeSpan Backoff = TimeSpan.Zero;
        public DateTimeOffset RetryAt = DateTimeOffset.MinValue;
        public DateTimeOffset? FailingSince;
        public DateTimeOffset? LastFailure;
        public int Pending;

        public void Recovered()
        {
            Backoff = TimeSpan.Zero;
            RetryAt = DateTimeOffset.MinValue;
            FailingSince = null;
            LastFailure = null;
        }
    }

    private readonly ConcurrentDictionary<string, Queue> _queues = new(StringComparer.Ordinal);

    public void Wake(string key)
    {
        var queue = _queues.GetOrAdd(key, _ => new Queue());
        Interlocked.Increment(ref queue.Pending);
        _ = Task.Run(() => DrainAsync(key, queue));
    }

    /// <summary>The other end showed it is back (or an admin says so): retry now if it was backing off.</summary>
    public void ResetBackoff(string key)
    {
        if (_queues.TryGetValue(key, out var queue) && queue.Backoff > TimeSpan.Zero)
        {
            queue.Recovered();
            Wake(key);
        }
    }

    /// <summary>The health of a key's queue, or null when it was never worked on.</summary>
    public QueueHealth? HealthOf(string key) =>
        _queues.TryGetValue(key, out var queue) ? new QueueHealth(queue.FailingSince, queue.LastFailure, queue.Backoff) : null;

    private async Task DrainAsync(string key, Queue queue)
    {
        if (!await queue.Running.WaitAsync(0))
            return;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                Interlocked.Exchange(ref queue.Pending, 0);
                var wait = queue.RetryAt - clock.GetUtcNow();
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait, clock, stopping);
                var pass = await passAsync(key, stopping);
                if (pass == QueuePass.Empty)
                    break;
                if (pass == QueuePass.Sent)
                {
                    queue.Recovered();
                    continue;
                }
                var now = clock.GetUtcNow();
                queue.FailingSince ??= now;
                queue.LastFailure = now;
                queue.Backoff = queue.Backoff == TimeSpan.Zero ? firstBackoff : TimeSpan.FromTicks(Math.Min(queue.Backoff.Ticks * 2, maxBackoff.Ticks));
                queue.RetryAt = now + queue.Backoff;
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            queue.Running.Release();
        }
        // Work queued while this drain was finishing gets its own drain.
        if (Volatile.Read(ref queue.Pending) > 0 && !stopping.IsCancellationRequested)
            _ = Task.Run(() => DrainAsync(key, queue));
    }
}
