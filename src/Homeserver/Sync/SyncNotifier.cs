namespace Matrix.Homeserver.Sync;

/// <summary>
/// Wakes long-polling syncs. The spine tells it which users a new event concerns; only their waiters wake. Nothing
/// here touches the database.
/// </summary>
public sealed class SyncNotifier
{
    private readonly Dictionary<string, List<TaskCompletionSource>> _waiters = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Registers interest before the caller checks for news, so nothing committed in between is missed.</summary>
    public Task Register(string userId, out Action unregister)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
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

    public void Notify(IEnumerable<string> userIds)
    {
        var woken = new List<TaskCompletionSource>();
        lock (_lock)
        {
            foreach (var userId in userIds)
                if (_waiters.Remove(userId, out var list))
                    woken.AddRange(list);
        }
        foreach (var waiter in woken)
            waiter.TrySetResult();
    }
}
