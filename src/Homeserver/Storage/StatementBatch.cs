using System.Data.Common;
using Npgsql;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// Statements sent to the database in one round trip, their results read back in order. On PostgreSQL an
/// <see cref="NpgsqlBatch"/> of statements with positional parameters (<see cref="BatchNames.Positional"/>), which
/// Npgsql sends as they are: named ones it would parse and rewrite on every run. On SQLite one command text, each
/// statement's parameters renamed apart. Arguments must be flat: an object's properties or <see cref="SqlArgs"/>.
/// </summary>
internal sealed class StatementBatch : IAsyncDisposable
{
    private readonly NpgsqlBatch? _batch;
    private readonly DbCommand? _command;

    public StatementBatch(DbConnection connection, DbTransaction? transaction, IReadOnlyList<(string Sql, object? Args)> statements)
    {
        if (connection is NpgsqlConnection postgres)
        {
            _batch = new NpgsqlBatch(postgres, (NpgsqlTransaction?)transaction);
            foreach (var (sql, args) in statements)
            {
                var statement = BatchNames.Positional(sql);
                var command = new NpgsqlBatchCommand(statement.Text);
                foreach (var name in statement.Names)
                {
                    var parameter = new NpgsqlParameter();
                    var (value, type) = SqlArgs.Lookup(args, name);
                    SqlArgs.Bind(parameter, value, type);
                    command.Parameters.Add(parameter);
                }
                _batch.BatchCommands.Add(command);
            }
            return;
        }
        _command = connection.CreateCommand();
        _command.Transaction = transaction;
        var parts = new string[statements.Count];
        var merged = new SqlArgs();
        for (var i = 0; i < statements.Count; i++)
        {
            parts[i] = BatchNames.Statement(statements[i].Sql, i);
            merged.AddFrom(i, statements[i].Args);
        }
        _command.CommandText = string.Join(";\n", parts);
        merged.AddTo(_command);
    }

    public Task<DbDataReader> ExecuteReaderAsync(CancellationToken ct) =>
        _batch is not null ? ((DbBatch)_batch).ExecuteReaderAsync(ct) : _command!.ExecuteReaderAsync(ct);

    public Task<int> ExecuteNonQueryAsync(CancellationToken ct) =>
        _batch is not null ? _batch.ExecuteNonQueryAsync(ct) : _command!.ExecuteNonQueryAsync(ct);

    public ValueTask DisposeAsync() => _batch is not null ? _batch.DisposeAsync() : _command!.DisposeAsync();
}
