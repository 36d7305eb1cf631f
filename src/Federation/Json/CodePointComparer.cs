namespace Matrix.Federation.Json;

/// <summary>
/// Orders strings by Unicode code point, as canonical JSON requires. Ordinal UTF-16 order differs from code point
/// order only when a surrogate pair meets a BMP character in U+E000..U+FFFF.
/// </summary>
public sealed class CodePointComparer : IComparer<string>
{
    public static readonly CodePointComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        var length = Math.Min(x.Length, y.Length);
        for (var i = 0; i < length; i++)
        {
            char a = x[i], b = y[i];
            if (a == b) continue;
            if (char.IsSurrogate(a) != char.IsSurrogate(b) && (a >= '\uE000' || b >= '\uE000'))
                return char.IsSurrogate(a) ? 1 : -1;
            return a - b;
        }
        return x.Length - y.Length;
    }
}
