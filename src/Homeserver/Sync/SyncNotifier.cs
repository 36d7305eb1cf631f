using Matrix.Homeserver.Observability;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// Wakes long-polling syncs. The spine tells it which users a new event concerns; only their waiters wake. Nothing
/// here touches the database. When the server shuts down, every waiter wakes and later ones do not wait, so each
/// long-poll answers at once instead of holding the shutdown up for its timeout. The main process of a deployment of
/// several tells its workers too (with where every stream stands), so the long-polls waiting there wake alike.
/// </summary>
public sealed class SyncNotifier(ServerMetrics metrics, Replication.PositionAnnouncer announcer)
{
    private readonly Dictionary<string, List<TaskCompletionSource>> _waiters = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _shuttingDown;

    /// <summary>Registers interest before the caller checks for news, so nothing committed in between is missed.</summary>
    public Task Register(string userId, out Action unregister)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_shuttingDown)
            {
                unregister = () => { };
                return Task.CompletedTask;
            }
            if (!_waiters.TryGetValue(userId, out var list))
                _waiters[userId] = list = [];
            list.Add(waiter);
        }
        unregister = () =>
        {
            lock (_lock)
            {
                if (_waiters.TryGetValue(userId, out var list) && list.Remove(waiter) && list.Count == 0)
                    _waiters.Remove(userId);
            }
        };
        return waiter.Task;
    }

    /// <summary>
    /// Waits until <paramref name="waiter"/> (from <see cref="Register"/>) wakes or <paramref name="timeout"/> passes,
    /// counted meanwhile as a waiting long-poll of <paramref name="kind"/> (a <see cref="ServerMetrics"/> long-poll kind).
    /// </summary>
    public async Task WaitAsync(Task waiter, TimeSpan timeout, string[] kind, CancellationToken ct)
    {
        metrics.LongPollsWaiting.Add(1, kind);
        try
        {
            // The timeout's timer goes as soon as the waiter wakes (a Task.Delay raced against it would hold its timer,
            // and the request's cancellation registration, for the rest of the timeout).
            await waiter.WaitAsync(timeout, ct);
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            metrics.LongPollsWaiting.Add(-1, kind);
        }
    }

    public void Notify(IEnumerable<string> userIds)
    {
        var users = userIds as IReadOnlyCollection<string> ?? userIds.ToList();
        NotifyHere(users);
        announcer.Announce(users);
    }

    /// <summary>Wakes the users' long-polls in this process only (news another process announced).</summary>
    public void NotifyHere(IReadOnlyCollection<string> users)
    {
        var woken = new List<TaskCompletionSource>();
        lock (_lock)
        {
            foreach (var userId in users)
                if (_waiters.Remove(userId, out var list))
                    woken.AddRange(list);
        }
        Wake(woken);
    }

    /// <summary>Wakes every waiting long-poll (a worker that cannot hear whom news concerns while Redis is away).</summary>
    public void NotifyEveryone()
    {
        List<TaskCompletionSource> woken;
        lock (_lock)
        {
            woken = _waiters.Values.SelectMany(list => list).ToList();
            _waiters.Clear();
        }
        Wake(woken);
    }

    /// <summary>The server is stopping: every waiting long-poll answers now, and later ones answer without waiting.</summary>
    public void WakeAllForShutdown()
    {
        List<TaskCompletionSource> woken;
        lock (_lock)
        {
            _shuttingDown = true;
            woken = _waiters.Values.SelectMany(list => list).ToList();
            _waiters.Clear();
        }
        Wake(woken);
    }

    private void Wake(List<TaskCompletionSource> woken)
    {
        if (woken.Count > 0)
            metrics.SyncWakeups.Add(woken.Count);
        foreach (var waiter in woken)
            waiter.TrySetResult();
    }
}
