using System.Text.Json;
using Matrix.AppServices.Sdk;

namespace Matrix.Bridges.Calendar;

/// <summary>A room's link to a calendar collection, with its settings and the collection's change markers.</summary>
public sealed record CalendarLink
{
    public required string RoomId { get; init; }
    public required string Url { get; init; }
    /// <summary>The credential encrypted by the <see cref="CredentialVault"/>; null for a calendar without authentication.</summary>
    public string? Credential { get; init; }
    public int LeadMinutes { get; init; }
    /// <summary>"HH:MM" in <see cref="TimeZone"/>, or "off".</summary>
    public string AgendaTime { get; init; } = "off";
    public string TimeZone { get; init; } = "UTC";
    public bool FromConfig { get; init; }
    public string? SyncToken { get; init; }
    public string? CTag { get; init; }
    /// <summary>False until the first sync has read the calendar (whose events are not announced: they are not news).</summary>
    public bool Baselined { get; init; }
    public DateOnly? LastAgenda { get; init; }
}

/// <summary>The local copy of one calendar object resource: its etag and text.</summary>
public sealed record CachedObject(string? ETag, string Data);

/// <summary>
/// What the calendar bridge keeps between runs, in the SDK's state store: links by room, each linked calendar's
/// objects (so reminders, agendas and listings work while the calendar server is down), and the occurrences already
/// reminded. Every change that stands for a message sent is flushed to disk before the next step.
/// </summary>
public sealed class LinkStore(BridgeStateStore state)
{
    private const string LinksNs = "calendar links";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public IReadOnlyList<CalendarLink> Links() =>
        state.All(LinksNs).Values.Select(v => JsonSerializer.Deserialize<CalendarLink>(v, Json)!).OrderBy(l => l.RoomId, StringComparer.Ordinal).ToList();

    public CalendarLink? Link(string roomId) =>
        state.Get(LinksNs, roomId) is { } json ? JsonSerializer.Deserialize<CalendarLink>(json, Json) : null;

    public void Save(CalendarLink link)
    {
        state.Set(LinksNs, link.RoomId, JsonSerializer.Serialize(link, Json));
        state.Flush();
    }

    /// <summary>Removes a room's link with its cached objects and reminder marks.</summary>
    public void Remove(string roomId)
    {
        state.Set(LinksNs, roomId, null);
        foreach (var ns in new[] { ObjectsNs(roomId), RemindedNs(roomId) })
            foreach (var key in state.All(ns).Keys)
                state.Set(ns, key, null);
        state.Flush();
    }

    public Dictionary<string, CachedObject> Objects(string roomId) =>
        state.All(ObjectsNs(roomId)).ToDictionary(p => p.Key, p => JsonSerializer.Deserialize<CachedObject>(p.Value, Json)!, StringComparer.Ordinal);

    public void SetObject(string roomId, string href, CachedObject? cached) =>
        state.Set(ObjectsNs(roomId), href, cached is null ? null : JsonSerializer.Serialize(cached, Json));

    public bool WasReminded(string roomId, string occurrenceKey) => state.Get(RemindedNs(roomId), occurrenceKey) is not null;

    public void MarkReminded(string roomId, string occurrenceKey, DateTimeOffset start)
    {
        state.Set(RemindedNs(roomId), occurrenceKey, start.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        state.Flush();
    }

    /// <summary>Forgets reminder marks of occurrences that started before <paramref name="before"/>.</summary>
    public void PruneReminded(string roomId, DateTimeOffset before)
    {
        var cutoff = before.ToUnixTimeMilliseconds();
        foreach (var (key, value) in state.All(RemindedNs(roomId)))
            if (long.TryParse(value, out var start) && start < cutoff)
                state.Set(RemindedNs(roomId), key, null);
    }

    public void Flush() => state.Flush();

    private static string ObjectsNs(string roomId) => "calendar objects " + roomId;
    private static string RemindedNs(string roomId) => "calendar reminded " + roomId;
}
