namespace Matrix.Homeserver.Storage;

/// <summary>
/// Many rows of a table inserted in one statement. On PostgreSQL its columns are array parameters (<c>unnest</c>): a
/// single prepared statement serves any number of rows, where a <c>VALUES</c> list per row count would be planned anew
/// for each and bind a parameter object per value. On SQLite, which has no arrays, the rows go as one JSON array of
/// arrays read back with <c>json_each</c>: a parameter per value cost an object (and a boxed number) each, and SQLite
/// finds each bound parameter by a linear search of the statement's names, so binding cost the square of their number.
/// </summary>
internal static class RowsInsert
{
    /// <param name="into">The table and its column list, as in <c>INSERT INTO t (a, b)</c> after <c>INSERT INTO</c>.</param>
    /// <param name="columns">Each column's values, one per row (a <c>string</c> or <c>long</c> array; nulls allowed in strings).</param>
    /// <param name="onConflict">What follows the rows (an <c>ON CONFLICT</c> clause), or empty.</param>
    public static IEnumerable<(string Sql, SqlArgs Args)> Statements(DatabaseEngine engine, string into, IReadOnlyList<Array> columns, string onConflict)
    {
        if (columns[0].Length == 0)
            yield break;
        var args = new SqlArgs(columns.Count);
        if (engine == DatabaseEngine.Postgres)
        {
            for (var c = 0; c < columns.Count; c++)
                args.Add(ArrayParameterName(c), columns[c]);
            yield return (PostgresStatements.GetOrAdd((into, onConflict, columns.Count), PostgresStatement), args);
            yield break;
        }
        args.Add("rows", RowsJson(columns));
        yield return (SqliteStatements.GetOrAdd((into, onConflict, columns.Count), SqliteStatement), args);
    }

    // A server inserts into few tables: each statement's text is made once.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Into, string OnConflict, int Columns), string> PostgresStatements = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Into, string OnConflict, int Columns), string> SqliteStatements = new();
    private const int NamedColumns = 16;

    private static string PostgresStatement((string Into, string OnConflict, int Columns) shape) =>
        $"INSERT INTO {shape.Into} SELECT * FROM unnest({string.Join(", ", Enumerable.Range(0, shape.Columns).Select(c => "@" + ArrayParameterName(c)))}) {shape.OnConflict}";

    private static readonly string?[] ArrayNames = new string?[NamedColumns];

    private static string ArrayParameterName(int column) => column < NamedColumns ? ArrayNames[column] ??= $"c{column}" : $"c{column}";

    // SQLite reads "INSERT ... SELECT ... ON CONFLICT" as a join's ON unless the SELECT has a WHERE clause.
    private static string SqliteStatement((string Into, string OnConflict, int Columns) shape) =>
        $"INSERT INTO {shape.Into} SELECT {string.Join(", ", Enumerable.Range(0, shape.Columns).Select(c => $"value ->> {c}"))} FROM json_each(@rows) WHERE true {shape.OnConflict}";

    /// <summary>The rows as a JSON array of arrays, each a row's values in column order.</summary>
    private static string RowsJson(IReadOnlyList<Array> columns)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256 * columns[0].Length);
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            for (var row = 0; row < columns[0].Length; row++)
            {
                writer.WriteStartArray();
                foreach (var column in columns)
                    switch (column)
                    {
                        case long[] numbers:
                            writer.WriteNumberValue(numbers[row]);
                            break;
                        case string?[] strings when strings[row] is { } text:
                            writer.WriteStringValue(text);
                            break;
                        case string?[]:
                            writer.WriteNullValue();
                            break;
                        default:
                            throw new ArgumentException($"a column of {column.GetType()} cannot be inserted as rows", nameof(columns));
                    }
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
