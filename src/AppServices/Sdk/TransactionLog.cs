namespace Matrix.AppServices.Sdk;

/// <summary>
/// The transaction IDs this service has processed, kept in an append-only file (flushed to disk before the
/// homeserver is answered), so a transaction retried after a crash or a lost answer is processed once.
/// </summary>
public sealed class TransactionLog : IDisposable
{
    private readonly HashSet<string> _done = new(StringComparer.Ordinal);
    private readonly FileStream _file;
    private readonly SemaphoreSlim _lock = new(1, 1);

    public TransactionLog(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (File.Exists(path))
            foreach (var line in File.ReadLines(path))
                if (line.Length > 0)
                    _done.Add(line);
        _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    /// <summary>
    /// Runs <paramref name="process"/> unless the transaction was processed before; records it once processed. One
    /// transaction at a time, so events are handled in the order the homeserver sent them.
    /// </summary>
    public async Task ProcessOnceAsync(string txnId, Func<Task> process, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            if (_done.Contains(txnId))
                return;
            await process();
            var line = System.Text.Encoding.UTF8.GetBytes(txnId.Replace('\n', ' ') + "\n");
            await _file.WriteAsync(line, ct);
            _file.Flush(flushToDisk: true);
            _done.Add(txnId);
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose() => _file.Dispose();
}
