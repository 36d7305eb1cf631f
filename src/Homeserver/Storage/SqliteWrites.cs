using Microsoft.Data.Sqlite;

namespace Matrix.Homeserver.Storage;

public sealed partial class Database
{
    /// <summary>
    /// SQLite's writes, one at a time (SQLite has one writer) and each commit waiting for its fsync
    /// (<c>synchronous=FULL</c>: an acknowledged write survives a crash), which left throughput at one fsync per write.
    /// Writes arriving while a transaction runs are run together in the next one, each in a savepoint of its own: one
    /// that fails rolls back only its own statements and sees its own exception, and the rest commit with one fsync.
    /// Every write's completions run once the whole transaction has committed (or failed). A write alone costs what it
    /// did, plus a savepoint.
    /// </summary>
    private sealed class SqliteWrites
    {
        private readonly Database _database;
        private readonly GroupCommit<Pending> _group;

        public SqliteWrites(Database database)
        {
            _database = database;
            _group = new GroupCommit<Pending>(WriteGuardedAsync, maxBatch: 64);
        }

        private abstract class Pending(CancellationToken ct)
        {
            public CancellationToken Ct => ct;
            public abstract bool Settled { get; }
            public abstract Task RunAsync(DbSession session);
            public abstract void Succeed();
            public abstract void Fail(Exception e);
        }

        private sealed class Pending<T>(Func<DbSession, Task<T>> work, CancellationToken ct) : Pending(ct)
        {
            private T _result = default!;
            public readonly TaskCompletionSource<T> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
            public override bool Settled => Done.Task.IsCompleted;
            public override async Task RunAsync(DbSession session) => _result = await work(session);
            public override void Succeed() => Done.SetResult(_result);
            public override void Fail(Exception e) => Done.SetException(e);
        }

        /// <summary>Each write is told its own outcome; the batch as a whole never fails.</summary>
        public Task<T> SubmitAsync<T>(Func<DbSession, Task<T>> work, CancellationToken ct)
        {
            var pending = new Pending<T>(work, ct);
            _ = _group.SubmitAsync(pending, CancellationToken.None);
            return pending.Done.Task;
        }

        private async Task WriteGuardedAsync(IReadOnlyList<Pending> batch)
        {
            try
            {
                await WriteBatchAsync(batch);
            }
            catch (Exception e)
            {
                // A completion that threw while a failure was being handled: the writes not yet told are told of it.
                foreach (var write in batch.Where(w => !w.Settled))
                    write.Fail(e);
            }
        }

        private async Task WriteBatchAsync(IReadOnlyList<Pending> batch)
        {
            var written = new List<(Pending Write, DbSession Session)>();
            DbSession? running = null;
            try
            {
                using var use = _database.Use(WriteKind);
                await using var connection = await _database.OpenAsync(CancellationToken.None);
                await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
                foreach (var write in batch)
                {
                    if (write.Ct.IsCancellationRequested)
                    {
                        write.Fail(new OperationCanceledException(write.Ct));
                        continue;
                    }
                    var session = running = new DbSession(connection, write: true, transaction, write.Ct, _database);
                    await transaction.SaveAsync("write");
                    try
                    {
                        await write.RunAsync(session);
                        await session.FlushAsync();
                    }
                    catch (Exception e)
                    {
                        await transaction.RollbackAsync("write");
                        await transaction.ReleaseAsync("write");
                        running = null;
                        session.Complete(committed: false);
                        write.Fail(e);
                        continue;
                    }
                    await transaction.ReleaseAsync("write");
                    written.Add((write, session));
                    running = null;
                }
                await transaction.CommitAsync();
            }
            catch (Exception e)
            {
                // The transaction itself failed (the disk, the connection): nothing of the batch was written. Undone
                // last first, so what the first write had reserved (stream position blocks) is what is left.
                running?.Complete(committed: false);
                for (var i = written.Count - 1; i >= 0; i--)
                {
                    written[i].Session.Complete(committed: false);
                    written[i].Write.Fail(e);
                }
                foreach (var write in batch.Where(w => !w.Settled))
                    write.Fail(e);
                return;
            }
            foreach (var (write, session) in written)
                try
                {
                    session.Complete(committed: true);
                    write.Succeed();
                }
                catch (Exception e)
                {
                    // A completion that throws fails its own caller, as it did when each write committed alone.
                    write.Fail(e);
                }
        }
    }
}
