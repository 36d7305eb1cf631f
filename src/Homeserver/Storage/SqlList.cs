using Dapper;

namespace Matrix.Homeserver.Storage;

/// <summary>
/// Portable <c>IN (...)</c> lists: Dapper expands lists itself on SQLite but hands them to Npgsql as arrays, which
/// <c>IN @x</c> does not accept; naming each value works on both.
/// </summary>
public static class SqlList
{
    /// <summary>Adds one parameter per value to <paramref name="args"/> and returns the parenthesised list.</summary>
    public static string In<T>(SqlArgs args, string name, IReadOnlyCollection<T> values)
    {
        var names = new List<string>(values.Count);
        foreach (var value in values)
        {
            var parameter = $"{name}{names.Count}";
            args.Add(parameter, value);
            names.Add("@" + parameter);
        }
        return "(" + string.Join(", ", names) + ")";
    }
}
