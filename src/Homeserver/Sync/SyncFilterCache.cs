using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// Stored filters, parsed, by user and filter ID: a client names the same filter in every <c>/sync</c>, and a filter
/// never changes once uploaded, so each is read from the database and parsed once.
/// </summary>
public sealed class SyncFilterCache(Database db, Config.HomeserverConfig config)
{

    private readonly ConcurrentDictionary<(string UserId, string FilterId), SyncFilter> _filters = new();

    /// <summary>The user's filter with this ID, or null when they have none by it.</summary>
    public async Task<SyncFilter?> GetAsync(string userId, string filterId, CancellationToken ct)
    {
        if (_filters.TryGetValue((userId, filterId), out var known))
            return known;
        if (await FilterEndpoints.LoadAsync(db, userId, filterId, ct) is not { } text)
            return null;
        var filter = Parse(text);
        if (_filters.Count >= config.Caches.SyncFilters)
            _filters.Clear();
        _filters[(userId, filterId)] = filter;
        return filter;
    }

    /// <summary>A filter's JSON (stored, or given inline in the request).</summary>
    public static SyncFilter Parse(string text)
    {
        if (Encoding.UTF8.GetByteCount(text) > FilterEndpoints.MaxFilterBytes)
            throw MatrixException.TooLarge("Filter is too large.");
        try
        {
            using var document = JsonDocument.Parse(text);
            return SyncFilter.Parse(document.RootElement);
        }
        catch (JsonException)
        {
            throw MatrixException.NotJson("The filter is not valid JSON.");
        }
    }
}
