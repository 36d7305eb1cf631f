using System.Data.Common;
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

    internal abstract Task ReadFromAsync(DbDataReader reader, CancellationToken ct);

    /// <summary>The rows of the reader's current result, mapped as Dapper maps a query's.</summary>
    internal static async Task<List<TRow>> RowsAsync<TRow>(DbDataReader reader, CancellationToken ct)
    {
        var rows = new List<TRow>();
        var parse = reader.GetRowParser(typeof(TRow));
        while (await reader.ReadAsync(ct))
            rows.Add(As<TRow>(parse(reader)));
        return rows;
    }

    /// <summary>A parsed row as <typeparamref name="T"/>: a single column's value converted as Dapper converts it (a SQLite integer to an int).</summary>
    private static T As<T>(object? value) => value switch
    {
        T typed => typed,
        null when default(T) is null => default!,
        _ => (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture)!,
    };
}

public sealed class SqlRead<TRow, TResult>(string sql, object? args, Func<IEnumerable<TRow>, TResult> map) : SqlRead(sql, args)
{
    private TResult? _result;
    private bool _read;

    /// <summary>What the read found, once its batch has run.</summary>
    public TResult Result => _read ? _result! : throw new InvalidOperationException("the read has not run yet");

    internal TResult Map(IEnumerable<TRow> rows) => map(rows);

    internal override async Task ReadFromAsync(DbDataReader reader, CancellationToken ct)
    {
        _result = map(await RowsAsync<TRow>(reader, ct));
        _read = true;
    }
}

public static class SqlReads
{
    /// <summary>A read whose result is its rows.</summary>
    public static SqlRead<T, List<T>> Rows<T>(string sql, object? args) => new(sql, args, rows => rows.ToList());
}
