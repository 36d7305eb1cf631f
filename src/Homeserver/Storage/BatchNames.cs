using System.Collections.Concurrent;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// The names statements merged into one command use: statement <c>i</c>'s parameter <c>@x</c> becomes <c>@di_x</c>
/// (lower-cased), so statements that share parameter names do not collide. A server runs the same few hundred
/// statements over and over, so each renamed statement and name is worked out once and remembered; long statements
/// (generated lists of parameters, which vary) are not, and what is remembered is bounded.
/// </summary>
internal static partial class BatchNames
{
    private const int MaxRememberedLength = 2048;
    private static readonly Memo<(string Sql, int Index)> Statements = new(key => Rename(key.Sql, key.Index));
    private static readonly Memo<(string Name, int Index)> Parameters = new(key => $"d{key.Index}_{key.Name.ToLowerInvariant()}");

    public static string Statement(string sql, int index) => sql.Length <= MaxRememberedLength ? Statements.Get((sql, index)) : Rename(sql, index);

    public static string Parameter(string name, int index) => Parameters.Get((name, index));

    private static string Rename(string sql, int index) => ParameterReference().Replace(sql, m => "@" + Parameter(m.Groups[1].Value, index));

    /// <summary>Remembers what <paramref name="make"/> made for the first few thousand keys.</summary>
    private sealed class Memo<TKey>(Func<TKey, string> make) where TKey : notnull
    {
        private const int MaxRemembered = 4096;
        private readonly ConcurrentDictionary<TKey, string> _known = new();
        private int _count;

        public string Get(TKey key)
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
