using System.Collections.Concurrent;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// The names statements merged into one command use: statement <c>i</c>'s parameter <c>@x</c> becomes <c>@di_x</c>
/// (lower-cased), so statements that share parameter names do not collide. A server runs the same few hundred
/// statements over and over, so each renamed statement and name is worked out once and remembered (up to a bound, for
/// statements with generated lists of parameters).
/// </summary>
internal static partial class BatchNames
{
    private const int MaxRemembered = 20_000;
    private static readonly ConcurrentDictionary<(string Sql, int Index), string> Statements = new();
    private static readonly ConcurrentDictionary<(string Name, int Index), string> Parameters = new();

    public static string Statement(string sql, int index) => Remembered(Statements, (sql, index),
        static ((string Sql, int Index) key) => ParameterReference().Replace(key.Sql, m => "@" + Parameter(m.Groups[1].Value, key.Index)));

    public static string Parameter(string name, int index) => Remembered(Parameters, (name, index),
        static ((string Name, int Index) key) => $"d{key.Index}_{key.Name.ToLowerInvariant()}");

    private static string Remembered<TKey>(ConcurrentDictionary<TKey, string> cache, TKey key, Func<TKey, string> make) where TKey : notnull =>
        cache.TryGetValue(key, out var known) ? known
        : cache.Count < MaxRemembered ? cache.GetOrAdd(key, make)
        : make(key);

    [System.Text.RegularExpressions.GeneratedRegex(@"(?<![@\w])@(\w+)")]
    private static partial System.Text.RegularExpressions.Regex ParameterReference();
}
