namespace Matrix.Homeserver.Storage;

/// <summary>Many lookups at once: those a cache answers, the rest read together (one query, not one per key).</summary>
public static class CachedOrRead
{
    /// <summary>The values <paramref name="cached"/> knows, and what <paramref name="read"/> finds of the others.</summary>
    public static async Task<Dictionary<string, T>> ManyAsync<T>(IEnumerable<string> keys, Func<string, T?> cached,
        Func<List<string>, Task<IEnumerable<(string Key, T Value)>>> read) where T : class
    {
        var found = new Dictionary<string, T>(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var key in keys)
            if (cached(key) is { } value)
                found[key] = value;
            else
                missing.Add(key);
        if (missing.Count > 0)
            foreach (var (key, value) in await read(missing))
                found[key] = value;
        return found;
    }
}
