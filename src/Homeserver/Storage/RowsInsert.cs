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

    // SQLite reads "INSERT ... SELECT ... ON CONFLICT" as a join's ON unless the SELECT has a WHERE clause. The rows come
    // as their UTF-8 bytes, read as text (a string would be encoded to UTF-8 again to be bound).
    private static string SqliteStatement((string Into, string OnConflict, int Columns) shape) =>
        $"INSERT INTO {shape.Into} SELECT {string.Join(", ", Enumerable.Range(0, shape.Columns).Select(c => $"value ->> {c}"))} FROM json_each(CAST(@rows AS TEXT)) WHERE true {shape.OnConflict}";

    // Each thread writes its rows into a buffer and writer of its own, kept for the next statement.
    [ThreadStatic] private static System.Buffers.ArrayBufferWriter<byte>? _rowsBuffer;
    private const int KeptBufferBytes = 64 * 1024;
    [ThreadStatic] private static System.Text.Json.Utf8JsonWriter? _rowsWriter;

    /// <summary>The rows as a JSON array of arrays, each a row's values in column order, in UTF-8.</summary>
    private static byte[] RowsJson(IReadOnlyList<Array> columns)
    {
        var buffer = _rowsBuffer ??= new System.Buffers.ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = _rowsWriter ??= new System.Text.Json.Utf8JsonWriter(buffer);
        writer.Reset(buffer);
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
        writer.Flush();
        var json = buffer.WrittenSpan.ToArray();
        // A big insert's buffer is not kept: a thread holds at most a small one.
        if (buffer.Capacity > KeptBufferBytes)
            (_rowsBuffer, _rowsWriter) = (null, null);
        return json;
    }
}
