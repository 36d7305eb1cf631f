using System.Text.Json;
using System.Text.RegularExpressions;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// A RoomEventFilter: event types and senders to keep or drop (<c>*</c> matches any sequence of characters), a limit,
/// member lazy-loading (with or without members the client was already sent), and whether unread counts are split per
/// thread.
/// </summary>
public sealed record EventFilter(
    IReadOnlyList<string>? Types, IReadOnlyList<string> NotTypes, IReadOnlyList<string>? Senders, IReadOnlyList<string> NotSenders,
    int? Limit, bool LazyLoadMembers, bool UnreadThreadNotifications = false, bool IncludeRedundantMembers = false)
{
    public static readonly EventFilter All = new(null, [], null, [], null, false);

    public bool Matches(string type, string sender) =>
        (Types is null || Types.Any(t => Glob(t, type))) && !NotTypes.Any(t => Glob(t, type))
        && (Senders is null || Senders.Contains(sender)) && !NotSenders.Contains(sender);

    private static bool Glob(string pattern, string value) =>
        pattern.Contains('*')
            ? Regex.IsMatch(value, "^" + Regex.Escape(pattern).Replace("\\*", ".*") + "$", RegexOptions.None, TimeSpan.FromMilliseconds(50))
            : pattern == value;

    public static EventFilter Parse(JsonElement? element)
    {
        if (element is not { } filter)
            return All;
        var limit = filter.OptionalInteger("limit");
        if (limit < 0)
            throw MatrixException.BadJson("limit must not be negative.");
        // A RoomEventFilter's room lists are checked like the room filter's (the sync filter applies those).
        RoomIds(filter, "rooms");
        RoomIds(filter, "not_rooms");
        var senders = UserIds(filter, "senders");
        var notSenders = UserIds(filter, "not_senders") ?? [];
        return new EventFilter(
            Strings(filter, "types"), Strings(filter, "not_types") ?? [], senders, notSenders,
            limit is null ? null : (int)Math.Min(limit.Value, SyncFilter.MaxTimelineLimit), filter.OptionalBool("lazy_load_members") ?? false,
            filter.OptionalBool("unread_thread_notifications") ?? false, filter.OptionalBool("include_redundant_members") ?? false);
    }

    private static List<string>? Strings(JsonElement filter, string name) =>
        filter.TryGetProperty(name, out _) ? filter.RequiredStringArray(name) : null;

    private static List<string>? UserIds(JsonElement filter, string name) =>
        Identifiers(filter, name, id => Matrix.Federation.Identifiers.UserId.TryParse(id, out _), "user ID");

    public static List<string>? RoomIds(JsonElement filter, string name) =>
        Identifiers(filter, name, id => Matrix.Federation.Identifiers.RoomId.TryParse(id, out _), "room ID");

    private static List<string>? Identifiers(JsonElement filter, string name, Func<string, bool> valid, string what)
    {
        var ids = Strings(filter, name);
        return ids?.FirstOrDefault(id => !valid(id)) is { } bad ? throw MatrixException.BadJson($"{name}: '{bad}' is not a {what}.") : ids;
    }
}

/// <summary>
/// The parts of a sync filter the server applies: timeline, state, account data and presence event filters, rooms, leave
/// inclusion, and whether events come in the federation format.
/// </summary>
public sealed record SyncFilter(EventFilter Timeline, EventFilter State, IReadOnlySet<string>? Rooms, IReadOnlySet<string> NotRooms, bool IncludeLeave)
{
    public const int DefaultTimelineLimit = 10;
    public const int MaxTimelineLimit = 1000;

    public static readonly SyncFilter Default = new(EventFilter.All, EventFilter.All, null, new HashSet<string>(), false);

    public EventFilter AccountData { get; init; } = EventFilter.All;
    public EventFilter RoomAccountData { get; init; } = EventFilter.All;
    public EventFilter Presence { get; init; } = EventFilter.All;
    public bool FederationFormat { get; init; }

    public int TimelineLimit => Timeline.Limit ?? DefaultTimelineLimit;

    public static SyncFilter Parse(JsonElement filter)
    {
        if (filter.ValueKind != JsonValueKind.Object)
            throw MatrixException.BadJson("A filter must be an object.");
        var room = filter.OptionalObject("room");
        IReadOnlySet<string>? rooms = room is { } r ? EventFilter.RoomIds(r, "rooms")?.ToHashSet() : null;
        var notRooms = room is { } n ? EventFilter.RoomIds(n, "not_rooms")?.ToHashSet() ?? [] : [];
        // Filters this server does not apply are still checked, so a client learns of a mistake.
        EventFilter.Parse(room?.OptionalObject("ephemeral"));
        var format = filter.OptionalString("event_format") ?? "client";
        if (format is not ("client" or "federation"))
            throw MatrixException.BadJson("event_format must be 'client' or 'federation'.");
        return new SyncFilter(EventFilter.Parse(room?.OptionalObject("timeline")), EventFilter.Parse(room?.OptionalObject("state")),
            rooms, notRooms, room?.OptionalBool("include_leave") ?? false)
        {
            AccountData = EventFilter.Parse(filter.OptionalObject("account_data")),
            RoomAccountData = EventFilter.Parse(room?.OptionalObject("account_data")),
            Presence = EventFilter.Parse(filter.OptionalObject("presence")),
            FederationFormat = format == "federation",
        };
    }

    public bool IncludesRoom(string roomId) => (Rooms is null || Rooms.Contains(roomId)) && !NotRooms.Contains(roomId);
}
