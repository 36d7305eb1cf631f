using Matrix.Bridges.Calendar.CalDav;
using Matrix.Bridges.Calendar.ICalendar;

namespace Matrix.Bridges.Calendar;

/// <summary>One calendar object that appeared, changed or disappeared on the server (Before and After as parsed objects).</summary>
public sealed record CalendarChange(string Href, string? ETag, CalendarObject? Before, CalendarObject? After)
{
    /// <summary>Names this change (href and the version it leads to), so announcing it twice posts once.</summary>
    public string Id => $"{Href}|{(After is null ? "removed " + ETag : ETag)}";
}

/// <summary>
/// What a sync found: the changes to announce, and the new link state and cached objects to keep once they are
/// announced (<see cref="Commit"/>). A crash in between makes the next sync find, and announce, the same changes,
/// under the same transaction IDs, which the homeserver posts once.
/// </summary>
public sealed class SyncResult(CalendarLink link, List<CalendarChange> changes, Dictionary<string, CachedObject?> writes)
{
    public CalendarLink Link { get; } = link;
    /// <summary>Empty on a link's first sync: the calendar's existing events are not news.</summary>
    public IReadOnlyList<CalendarChange> Changes { get; } = changes;

    public void Commit(LinkStore store)
    {
        foreach (var (href, cached) in writes)
            store.SetObject(Link.RoomId, href, cached);
        store.Save(Link);
    }
}

/// <summary>
/// Brings a link's local copy of its calendar up to date: with the collection's sync token when the server has
/// collection sync (RFC 6578, as Radicale, Nextcloud, SOGo, iCloud do), else by comparing the ctag and every
/// resource's etag; only resources whose etag changed are fetched. An expired sync token means a full comparison.
/// </summary>
public sealed class CalendarSync(LinkStore store)
{
    public async Task<SyncResult> SyncAsync(CalendarLink link, CalDavClient client, TimeZoneInfo zone, CancellationToken ct)
    {
        var state = await client.GetStateAsync(ct);
        if (!state.IsCalendar)
            throw new CalDavException($"{client.Collection} is not a calendar collection");
        var cache = store.Objects(link.RoomId);
        List<CalendarResource> changed;
        List<string> removed;
        string? syncToken = null;
        if (state.SyncToken is not null)
        {
            if (link.Baselined && link.SyncToken == state.SyncToken)
                return new SyncResult(link, [], []);
            var since = link.Baselined ? link.SyncToken : null;
            SyncDelta delta;
            try
            {
                delta = await client.SyncAsync(since, ct);
            }
            catch (SyncTokenExpiredException)
            {
                since = null;
                delta = await client.SyncAsync(null, ct);
            }
            changed = delta.Changed.Where(r => !cache.TryGetValue(r.Href, out var c) || c.ETag != r.ETag).ToList();
            removed = [.. delta.Removed.Where(cache.ContainsKey)];
            if (since is null)
                removed.AddRange(cache.Keys.Except(delta.Changed.Select(r => r.Href)));
            syncToken = delta.SyncToken ?? state.SyncToken;
        }
        else
        {
            if (link.Baselined && state.CTag is not null && link.CTag == state.CTag)
                return new SyncResult(link, [], []);
            var all = await client.ListAsync(ct);
            changed = all.Where(r => !cache.TryGetValue(r.Href, out var c) || c.ETag != r.ETag).ToList();
            removed = cache.Keys.Except(all.Select(r => r.Href)).ToList();
        }

        var changes = new List<CalendarChange>();
        var writes = new Dictionary<string, CachedObject?>(StringComparer.Ordinal);
        foreach (var resource in await client.GetAsync(changed.Select(r => r.Href).ToList(), ct))
        {
            cache.TryGetValue(resource.Href, out var before);
            writes[resource.Href] = new CachedObject(resource.ETag, resource.Data!);
            // The bridge's own writes are cached with their text: a new etag for the same text is no news.
            if (before?.Data == resource.Data)
                continue;
            changes.Add(new CalendarChange(resource.Href, resource.ETag, Parse(before?.Data, zone), Parse(resource.Data, zone)));
        }
        foreach (var href in removed.Distinct())
        {
            writes[href] = null;
            changes.Add(new CalendarChange(href, cache[href].ETag, Parse(cache[href].Data, zone), null));
        }
        var next = link with { SyncToken = syncToken, CTag = state.CTag, Baselined = true };
        changes.RemoveAll(c => c.Before is null && c.After is null);
        return new SyncResult(next, link.Baselined ? changes : [], writes);
    }

    /// <summary>The object, or null when it is not valid iCalendar (kept in the cache, never announced).</summary>
    public static CalendarObject? Parse(string? data, TimeZoneInfo zone)
    {
        if (data is null)
            return null;
        try
        {
            var parsed = CalendarObject.Parse(data, zone);
            _ = parsed.Uid;
            return parsed;
        }
        catch (CalendarFormatException)
        {
            return null;
        }
    }
}
