using System.Data.Common;
using System.Diagnostics;
using Dapper;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Observability;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Matrix.Homeserver.Storage;

public enum DatabaseEngine { Sqlite, Postgres }

/// <summary>
/// The connection source for every store. Reads may run concurrently; on SQLite, writes are serialised
/// in-process (one writer, as SQLite allows) so they never fail with SQLITE_BUSY, and committed in groups
/// (<see cref="SqliteWrites"/>).
/// </summary>
public sealed partial class Database : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly SqliteWrites? _sqliteWrites;
    private readonly NpgsqlDataSource? _postgres;
    private readonly ServerMetrics _metrics;
    private static readonly string[] ReadKind = ["read"], WriteKind = ["write"];

    public DatabaseEngine Engine { get; }

    static Database()
    {
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    /// <param name="applicationName">what PostgreSQL lists this process's connections as (an event writer's, see <c>SharedEventStream</c>)</param>
    public Database(DatabaseConfig config, string dataDir, ServerMetrics metrics, string? applicationName = null)
    {
        _metrics = metrics;
        if (config.Engine == "postgres")
        {
            Engine = DatabaseEngine.Postgres;
            // The server keeps no session state on its connections, so none needs resetting (DISCARD ALL) each time one
            // goes back to the pool; the statements it runs over and over are prepared once per connection (and,
            // after a few runs, planned once: queries that page a room or user by stream position are written so that
            // even a plan made without their values takes the right index, see RoomStore). JIT compilation is off: it
            // costs tens of milliseconds whenever a short query's estimate crosses its threshold (an operator's own
            // "-c jit=on" in Options, which comes later, still wins).
            var builder = new NpgsqlConnectionStringBuilder(config.ConnectionString)
            {
                MaxPoolSize = config.MaxPoolSize,
                NoResetOnClose = true,
                MaxAutoPrepare = 200,
                AutoPrepareMinUsages = 2,
            };
            // A burst (thousands of clients reconnecting after a restart) queues for the pooled connections longer than
            // Npgsql's 15 s, and a request given up on would fail: wait longer unless the operator said otherwise.
            if (applicationName is not null)
                builder.ApplicationName = applicationName;
            if (!new DbConnectionStringBuilder { ConnectionString = config.ConnectionString }.ContainsKey("Timeout"))
                builder.Timeout = PoolWaitSeconds;
            builder.Options = $"-c jit=off {builder.Options}".TrimEnd();
            _connectionString = builder.ConnectionString;
            _postgres = NpgsqlDataSource.Create(_connectionString);
        }
        else
        {
            Engine = DatabaseEngine.Sqlite;
            var path = config.SqlitePath ?? Path.Combine(dataDir, "homeserver.db");
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ConnectionString;
            _sqliteWrites = new SqliteWrites(this);
        }
    }

    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> _configuredSqliteHandles = new();

    private const int PoolWaitSeconds = 120;

    public async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        if (_postgres is not null)
            return await _postgres.OpenConnectionAsync(ct);
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        // WAL lets readers run beside the writer; FULL makes every acknowledged commit survive a crash. The settings
        // stay with the SQLite handle, which the pool hands out again: set once per handle, not on every open.
        if (!_configuredSqliteHandles.TryGetValue(connection.Handle!, out _))
        {
            await connection.ExecuteAsync("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
            _configuredSqliteHandles.AddOrUpdate(connection.Handle!, true);
        }
        return connection;
    }

    /// <summary>
    /// Runs one statement in its own transaction on a connection outside the pool (PostgreSQL only), for work that a
    /// transaction holding a pooled connection waits on: with every pooled connection held by such transactions, a
    /// pooled one would never come.
    /// </summary>
    public async Task<T> ExecuteOutsidePoolAsync<T>(string sql, object args, CancellationToken ct)
    {
        if (Engine != DatabaseEngine.Postgres)
            throw new InvalidOperationException("SQLite has one writer: the caller's transaction is the only one");
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(ct);
        return await connection.ExecuteScalarAsync<T>(new CommandDefinition(sql, args, cancellationToken: ct)) ?? throw new InvalidOperationException("no result");
    }

    /// <summary>Whether a write failed on a unique key of <paramref name="table"/>: the row was there already.</summary>
    public static bool IsDuplicateKey(Exception e, string table) => e switch
    {
        PostgresException pg => pg.SqlState == PostgresErrorCodes.UniqueViolation && pg.TableName == table,
        // SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE; the message names the table's columns.
        SqliteException lite => lite.SqliteExtendedErrorCode is 1555 or 2067 && lite.Message.Contains($" {table}.", StringComparison.Ordinal),
        _ => false,
    };

    public async Task<T> ReadAsync<T>(Func<DbSession, Task<T>> work, CancellationToken ct)
    {
        using var use = Use(ReadKind);
        await using var connection = await OpenAsync(ct);
        return await work(new DbSession(connection, write: false, null, ct, this));
    }

    /// <summary>Runs independent reads in one round trip (<see cref="DbSession.ReadAllAsync"/>) on a connection of their own.</summary>
    public Task ReadAllAsync(IReadOnlyList<SqlRead> reads, CancellationToken ct) => reads.Count == 0 ? Task.CompletedTask :
        ReadAsync(async s =>
        {
            await s.ReadAllAsync(reads);
            return true;
        }, ct);

    /// <summary>Runs <paramref name="work"/> in one transaction: all of it is committed or none.</summary>
    public async Task<T> WriteAsync<T>(Func<DbSession, Task<T>> work, CancellationToken ct)
    {
        if (_sqliteWrites is not null)
            return await _sqliteWrites.SubmitAsync(work, ct);
        using var use = Use(WriteKind);
        await using var connection = await OpenAsync(ct);
        // A PostgreSQL transaction begins when the session first needs the database.
        await using var session = new DbSession(connection, write: true, null, ct, this);
        T result;
        try
        {
            result = await work(session);
            await session.CommitAsync();
        }
        catch
        {
            session.Complete(committed: false);
            throw;
        }
        session.Complete(committed: true);
        return result;
    }

    public Task WriteAsync(Func<DbSession, Task> work, CancellationToken ct) =>
        WriteAsync(async session => { await work(session); return true; }, ct);

    private ConnectionUse Use(string[] kind)
    {
        _metrics.DatabaseConnectionsInUse.Add(1);
        return new ConnectionUse(_metrics, kind, Stopwatch.GetTimestamp());
    }

    /// <summary>A connection held for a read or a write transaction: counted while held, timed when given back.</summary>
    private readonly record struct ConnectionUse(ServerMetrics Metrics, string[] Kind, long Started) : IDisposable
    {
        public void Dispose()
        {
            Metrics.DatabaseConnectionsInUse.Add(-1);
            Metrics.DatabaseTransactionDuration.Observe(Stopwatch.GetElapsedTime(Started).TotalSeconds, Kind);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
            await _postgres.DisposeAsync();
        if (Engine == DatabaseEngine.Sqlite)
            SqliteConnection.ClearAllPools();
    }
}

/// <summary>
/// A connection (and transaction, for writes) handed to store methods. In a transaction, statements whose result
/// nobody reads can be deferred (<see cref="DeferAsync"/>): they go to the database together, in one round trip,
/// before the next statement that reads and before the commit, so every read still sees every earlier write. On
/// PostgreSQL the transaction begins with the first statement sent; a transaction that only deferred statements sends
/// them as one batch at the end, which PostgreSQL runs atomically on its own (no BEGIN and COMMIT round trips).
/// </summary>
public sealed class DbSession(DbConnection connection, bool write, DbTransaction? transaction, CancellationToken ct, Database database)
    : IAsyncDisposable
{
    private List<Action<bool>>? _completions;
    private List<Action<bool>>? _lastCompletions;
    private List<(string Sql, object? Args)>? _deferred;

    public DbConnection Connection => connection;
    public Database Database => database;
    public bool InTransaction => write;

    /// <summary>Runs <paramref name="action"/> once the write transaction has committed (true) or failed (false).</summary>
    public void OnCompleted(Action<bool> action)
    {
        if (!write)
            throw new InvalidOperationException("only a write transaction completes");
        (_completions ??= []).Add(action);
    }

    /// <summary>
    /// As <see cref="OnCompleted"/>, but after every other completion: stream positions become visible there, so what
    /// the transaction's completions keep in memory (caches of what it wrote) is in place before anyone reads its rows.
    /// </summary>
    internal void OnCompletedLast(Action<bool> action)
    {
        if (!write)
            throw new InvalidOperationException("only a write transaction completes");
        (_lastCompletions ??= []).Add(action);
    }

    internal void Complete(bool committed)
    {
        foreach (var action in _completions ?? [])
            action(committed);
        foreach (var action in _lastCompletions ?? [])
            action(committed);
    }

    /// <summary>The write transaction, begun now if nothing has been sent yet; null for a read session.</summary>
    private async ValueTask<DbTransaction?> TransactionAsync() =>
        !write || transaction is not null ? transaction : transaction = await connection.BeginTransactionAsync(ct);

    internal async Task CommitAsync()
    {
        if (transaction is null)
        {
            await SendDeferredAsync(null);
            return;
        }
        await FlushAsync();
        await transaction.CommitAsync(CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        if (transaction is not null)
            await transaction.DisposeAsync();
    }

    public async Task<int> ExecuteAsync(string sql, object? args = null)
    {
        await FlushAsync();
        return await connection.ExecuteAsync(new CommandDefinition(sql, DapperArgs(args), await TransactionAsync(), cancellationToken: ct));
    }

    public async Task<IEnumerable<T>> QueryAsync<T>(string sql, object? args = null)
    {
        if (Batched(args))
            return await ReadAfterDeferredAsync(sql, args, reader => SqlRead.RowsAsync<T>(reader, ct));
        await FlushAsync();
        return await connection.QueryAsync<T>(new CommandDefinition(sql, DapperArgs(args), await TransactionAsync(), cancellationToken: ct));
    }

    public async Task<TResult> QueryAsync<TRow, TResult>(SqlRead<TRow, TResult> read) => read.Map(await QueryAsync<TRow>(read.Sql, read.Args));

    /// <summary>Runs independent reads as one command, in one round trip: a result set each, read back in order.</summary>
    public async Task ReadAllAsync(IReadOnlyList<SqlRead> reads)
    {
        if (reads.Count == 0)
            return;
        if (reads.Any(r => !IsFlat(r.Args)))
            throw new ArgumentException("batched reads take flat arguments", nameof(reads));
        await FlushAsync();
        await using var batch = new StatementBatch(connection, await TransactionAsync(), reads.Select(r => (r.Sql, r.Args)).ToList());
        await using var reader = await batch.ExecuteReaderAsync(ct);
        for (var i = 0; i < reads.Count; i++)
        {
            if (i > 0 && !await reader.NextResultAsync(ct))
                throw new InvalidOperationException($"batched read {i} returned no result");
            await reads[i].ReadFromAsync(reader, ct);
        }
    }

    /// <summary>Rows of two tables joined, each mapped to its own type, split at the column <paramref name="splitOn"/>.</summary>
    public async Task<IEnumerable<TResult>> QueryAsync<T1, T2, TResult>(string sql, Func<T1, T2, TResult> map, object? args, string splitOn)
    {
        await FlushAsync();
        return await connection.QueryAsync(new CommandDefinition(sql, DapperArgs(args), await TransactionAsync(), cancellationToken: ct), map, splitOn);
    }

    public async Task<T?> QuerySingleOrDefaultAsync<T>(string sql, object? args = null)
    {
        if (!Batched(args))
        {
            await FlushAsync();
            return await connection.QuerySingleOrDefaultAsync<T>(new CommandDefinition(sql, DapperArgs(args), await TransactionAsync(), cancellationToken: ct));
        }
        var rows = await ReadAfterDeferredAsync(sql, args, reader => SqlRead.RowsAsync<T>(reader, ct));
        return rows.Count <= 1 ? rows.FirstOrDefault() : throw new InvalidOperationException("the query returned more than one row");
    }

    public async Task<T> ExecuteScalarAsync<T>(string sql, object? args = null)
    {
        await FlushAsync();
        return (await connection.ExecuteScalarAsync<T>(new CommandDefinition(sql, DapperArgs(args), await TransactionAsync(), cancellationToken: ct)))!;
    }

    /// <summary>
    /// A write whose result is not needed: in a transaction queued until the next read or the commit (a failure
    /// surfaces there and rolls everything back), otherwise run at once. Arguments are an object's properties or
    /// <see cref="SqlArgs"/>; a statement with a list for Dapper to expand runs at once.
    /// </summary>
    public Task DeferAsync(string sql, object? args = null)
    {
        if (!write || !IsFlat(args))
            return ExecuteAsync(sql, args);
        (_deferred ??= []).Add((sql, args));
        return Task.CompletedTask;
    }

    /// <summary>Sends the deferred statements in one round trip.</summary>
    internal async Task FlushAsync()
    {
        if (_deferred is { Count: > 0 })
            await SendDeferredAsync(await TransactionAsync());
    }

    private async Task SendDeferredAsync(DbTransaction? inTransaction)
    {
        if (_deferred is not { Count: > 0 } statements)
            return;
        _deferred = null;
        // SQLite runs in-process, so one command saves no round trip, and binding each statement of a merged command
        // looks up every parameter of all of them by name (quadratic in the batch): each goes on its own there.
        if (database.Engine == DatabaseEngine.Sqlite)
        {
            foreach (var statement in statements)
            {
                await using var single = new StatementBatch(connection, inTransaction, [statement]);
                await single.ExecuteNonQueryAsync(ct);
            }
            return;
        }
        await using var batch = new StatementBatch(connection, inTransaction, statements);
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Whether a read goes through a <see cref="StatementBatch"/>: on PostgreSQL every flat one (positional parameters
    /// spare Npgsql parsing it), on SQLite one with deferred statements to send ahead of it.
    /// </summary>
    private bool Batched(object? args) => IsFlat(args) && (database.Engine == DatabaseEngine.Postgres || _deferred is { Count: > 0 });

    /// <summary>
    /// A read sent in one round trip after the deferred statements, if any (they return no rows, so the read's rows are
    /// the first result).
    /// </summary>
    private async Task<TResult> ReadAfterDeferredAsync<TResult>(string sql, object? args, Func<DbDataReader, Task<TResult>> read)
    {
        if (database.Engine == DatabaseEngine.Sqlite)
            await SendDeferredAsync(await TransactionAsync());
        var statements = _deferred ?? [];
        _deferred = null;
        statements.Add((sql, args));
        await using var batch = new StatementBatch(connection, await TransactionAsync(), statements);
        await using var reader = await batch.ExecuteReaderAsync(ct);
        return await read(reader);
    }

    /// <summary>On SQLite an object's properties go as <see cref="SqlArgs"/>, named as statements spell them (see <see cref="SqlArgs.AddTo"/>).</summary>
    private object? DapperArgs(object? args) =>
        database.Engine == DatabaseEngine.Sqlite && args is not null and not SqlArgs && SqlArgs.IsFlat(args) ? new SqlArgs(args) : args;

    private static bool IsFlat(object? args) => args is null or SqlArgs || SqlArgs.IsFlat(args);
}
