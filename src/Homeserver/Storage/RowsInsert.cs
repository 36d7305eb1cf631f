namespace Matrix.Homeserver.Storage;

/// <summary>
/// Many rows of a table inserted in few statements. On PostgreSQL one statement whose columns are array parameters
/// (<c>unnest</c>): a single prepared statement serves any number of rows, where a <c>VALUES</c> list per row count
/// would be planned anew for each and bind a parameter object per value. On SQLite, which has no arrays, rows of
/// <c>VALUES</c> in chunks (SQLite finds each bound parameter by a linear search of the statement's names, so binding
/// costs the square of their number: 800 in one statement made that a server's main CPU cost).
/// </summary>
internal static class RowsInsert
{
    private const int SqliteRowsPerStatement = 32;

    /// <param name="into">The table and its column list, as in <c>INSERT INTO t (a, b)</c> after <c>INSERT INTO</c>.</param>
    /// <param name="columns">Each column's values, one per row (a <c>string</c> or <c>long</c> array; nulls allowed in strings).</param>
    /// <param name="onConflict">What follows the rows (an <c>ON CONFLICT</c> clause), or empty.</param>
    public static IEnumerable<(string Sql, SqlArgs Args)> Statements(DatabaseEngine engine, string into, IReadOnlyList<Array> columns, string onConflict)
    {
        var rowCount = columns[0].Length;
        if (rowCount == 0)
            yield break;
        if (engine == DatabaseEngine.Postgres)
        {
            var args = new SqlArgs(columns.Count);
            for (var c = 0; c < columns.Count; c++)
                args.Add(ArrayParameterName(c), columns[c]);
            yield return (PostgresStatements.GetOrAdd((into, onConflict, columns.Count), PostgresStatement), args);
            yield break;
        }
        for (var start = 0; start < rowCount; start += SqliteRowsPerStatement)
        {
            var rows = Math.Min(rowCount - start, SqliteRowsPerStatement);
            var args = new SqlArgs(rows * columns.Count);
            for (var row = 0; row < rows; row++)
                for (var c = 0; c < columns.Count; c++)
                    args.Add(ParameterName(c, row), columns[c].GetValue(start + row));
            yield return (SqliteStatements.GetOrAdd((into, onConflict, columns.Count, rows), SqliteStatement), args);
        }
    }

    // A server inserts into few tables with few row counts: each statement's text is made once.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Into, string OnConflict, int Columns), string> PostgresStatements = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Into, string OnConflict, int Columns, int Rows), string> SqliteStatements = new();
    private const int NamedColumns = 16;
    private static readonly string?[] Names = new string?[NamedColumns * SqliteRowsPerStatement];

    private static string PostgresStatement((string Into, string OnConflict, int Columns) shape) =>
        $"INSERT INTO {shape.Into} SELECT * FROM unnest({string.Join(", ", Enumerable.Range(0, shape.Columns).Select(c => "@" + ArrayParameterName(c)))}) {shape.OnConflict}";

    private static readonly string?[] ArrayNames = new string?[NamedColumns];

    private static string ArrayParameterName(int column) => column < NamedColumns ? ArrayNames[column] ??= $"c{column}" : $"c{column}";

    private static string SqliteStatement((string Into, string OnConflict, int Columns, int Rows) shape)
    {
        var values = Enumerable.Range(0, shape.Rows)
            .Select(row => "(" + string.Join(", ", Enumerable.Range(0, shape.Columns).Select(c => "@" + ParameterName(c, row))) + ")");
        return $"INSERT INTO {shape.Into} VALUES {string.Join(", ", values)} {shape.OnConflict}";
    }

    private static string ParameterName(int column, int row) => column < NamedColumns
        ? Names[column * SqliteRowsPerStatement + row] ??= $"c{column}r{row}"
        : $"c{column}r{row}";
}
