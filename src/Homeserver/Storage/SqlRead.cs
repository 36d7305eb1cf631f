using Dapper;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// A query with the mapping of its rows, which a session runs on its own (<see cref="DbSession.QueryAsync{TRow,TResult}"/>)
/// or together with other reads in one round trip (<see cref="DbSession.ReadAllAsync"/>). Arguments are an object's
/// properties or <see cref="SqlArgs"/>.
/// </summary>
public abstract class SqlRead(string sql, object? args)
{
    public string Sql => sql;
    public object? Args => args;

    internal abstract Task ReadFromAsync(SqlMapper.GridReader grid);
}

public sealed class SqlRead<TRow, TResult>(string sql, object? args, Func<IEnumerable<TRow>, TResult> map) : SqlRead(sql, args)
{
    private TResult? _result;
    private bool _read;

    /// <summary>What the read found, once its batch has run.</summary>
    public TResult Result => _read ? _result! : throw new InvalidOperationException("the read has not run yet");

    internal TResult Map(IEnumerable<TRow> rows) => map(rows);

    internal override async Task ReadFromAsync(SqlMapper.GridReader grid)
    {
        _result = map(await grid.ReadAsync<TRow>());
        _read = true;
    }
}

public static class SqlReads
{
    /// <summary>A read whose result is its rows.</summary>
    public static SqlRead<T, List<T>> Rows<T>(string sql, object? args) => new(sql, args, rows => rows.ToList());
}
