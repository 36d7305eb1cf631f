namespace Matrix.Homeserver.Storage;

/// <summary>
/// Writes what callers submit in batches: while one batch is being written the next one gathers, so a crowd arriving
/// at once (ten thousand clients polling again after a restart) costs a transaction per batch, not one each. A caller
/// alone is written at once. Each caller waits for the end of its batch and sees its failure.
/// </summary>
public sealed class GroupCommit<T>(Func<IReadOnlyList<T>, Task> write, int maxBatch = 500)
{
    private readonly Lock _lock = new();
    private List<(T Item, TaskCompletionSource Done)> _pending = [];
    private bool _writing;

    public Task SubmitAsync(T item, CancellationToken ct)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool start;
        lock (_lock)
        {
            _pending.Add((item, done));
            start = !_writing;
            _writing = true;
        }
        if (start)
            _ = Task.Run(WriteAllAsync, CancellationToken.None);
        return done.Task.WaitAsync(ct);
    }

    private async Task WriteAllAsync()
    {
        while (true)
        {
            List<(T Item, TaskCompletionSource Done)> batch;
            lock (_lock)
            {
                if (_pending.Count == 0)
                {
                    _writing = false;
                    return;
                }
                if (_pending.Count <= maxBatch)
                    (batch, _pending) = (_pending, []);
                else
                {
                    batch = _pending[..maxBatch];
                    _pending.RemoveRange(0, maxBatch);
                }
            }
            try
            {
                await write(batch.Select(b => b.Item).ToList());
                foreach (var (_, done) in batch)
                    done.SetResult();
            }
            catch (Exception e)
            {
                foreach (var (_, done) in batch)
                    done.SetException(e);
            }
        }
    }
}
