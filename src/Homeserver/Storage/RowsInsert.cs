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
            var args = new SqlArgs();
            for (var c = 0; c < columns.Count; c++)
                args.Add($"c{c}", columns[c]);
            var parameters = string.Join(", ", Enumerable.Range(0, columns.Count).Select(c => $"@c{c}"));
            yield return ($"INSERT INTO {into} SELECT * FROM unnest({parameters}) {onConflict}", args);
            yield break;
        }
        for (var start = 0; start < rowCount; start += SqliteRowsPerStatement)
        {
            var args = new SqlArgs();
            var values = new List<string>();
            for (var row = start; row < Math.Min(rowCount, start + SqliteRowsPerStatement); row++)
            {
                var names = new string[columns.Count];
                for (var c = 0; c < columns.Count; c++)
                {
                    names[c] = $"@c{c}r{row - start}";
                    args.Add(names[c][1..], columns[c].GetValue(row));
                }
                values.Add($"({string.Join(", ", names)})");
            }
            yield return ($"INSERT INTO {into} VALUES {string.Join(", ", values)} {onConflict}", args);
        }
    }
}
