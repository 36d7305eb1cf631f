using System.Collections.Concurrent;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// How statements sent together (<see cref="StatementBatch"/>) name their parameters. On SQLite they are merged into one
/// command text, so statement <c>i</c>'s parameter <c>@x</c> becomes <c>@di_x</c> (lower-cased) and statements that
/// share parameter names do not collide. On PostgreSQL each statement is its own command with positional parameters:
/// <c>@x</c> becomes <c>$n</c>, numbered in order of first use. A server runs the same few hundred statements over and
/// over, so each rewritten statement and name is worked out once and remembered; long statements (generated lists of
/// parameters, which vary) are not, and what is remembered is bounded.
/// </summary>
internal static partial class BatchNames
{
    private const int MaxRememberedLength = 2048;
    private static readonly Memo<(string Sql, int Index), string> Statements = new(key => Rename(key.Sql, key.Index));
    private static readonly Memo<(string Name, int Index), string> Parameters = new(key => $"d{key.Index}_{key.Name.ToLowerInvariant()}");
    private static readonly Memo<string, PositionalStatement> PositionalStatements = new(MakePositional);
    private static readonly Memo<string, string> WrittenNames = new(name => "@" + name);

    public static string Statement(string sql, int index) => sql.Length <= MaxRememberedLength ? Statements.Get((sql, index)) : Rename(sql, index);

    public static string Parameter(string name, int index) => Parameters.Get((name, index));

    /// <summary>A parameter's name as a statement writes it (<c>@x</c>), which SQLite binds by.</summary>
    public static string AsWritten(string name) => WrittenNames.Get(name);

    /// <summary>The statement with <c>$1</c>, <c>$2</c>… in place of its named parameters, and those names in order.</summary>
    public static PositionalStatement Positional(string sql) => sql.Length <= MaxRememberedLength ? PositionalStatements.Get(sql) : MakePositional(sql);

    private static string Rename(string sql, int index) => ParameterReference().Replace(sql, m => "@" + Parameter(m.Groups[1].Value, index));

    private static PositionalStatement MakePositional(string sql)
    {
        var positions = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var names = new List<string>();
        var text = ParameterReference().Replace(sql, m =>
        {
            var name = m.Groups[1].Value;
            if (!positions.TryGetValue(name, out var position))
            {
                names.Add(name);
                positions[name] = position = names.Count;
            }
            return "$" + position;
        });
        return new PositionalStatement(text, names.ToArray());
    }

    /// <summary>Remembers what <paramref name="make"/> made for the first few thousand keys.</summary>
    private sealed class Memo<TKey, TValue>(Func<TKey, TValue> make) where TKey : notnull
    {
        private const int MaxRemembered = 4096;
        private readonly ConcurrentDictionary<TKey, TValue> _known = new();
        private int _count;

        public TValue Get(TKey key)
        {
            if (_known.TryGetValue(key, out var known))
                return known;
            var made = make(key);
            if (Volatile.Read(ref _count) < MaxRemembered && _known.TryAdd(key, made))
                Interlocked.Increment(ref _count);
            return made;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(?<![@\w])@(\w+)")]
    private static partial System.Text.RegularExpressions.Regex ParameterReference();
}

/// <summary>A statement whose parameters are <c>$1</c>, <c>$2</c>…, bound in the order of <see cref="Names"/>.</summary>
internal sealed record PositionalStatement(string Text, string[] Names);
