using System.Text.Json;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>What to send of a room: its latest events and the state asked for.</summary>
public sealed record RoomConfig(int TimelineLimit, RequiredState RequiredState)
{
    public const int MaxTimelineLimit = 1000;

    public RoomConfig Merge(RoomConfig other) => new(Math.Max(TimelineLimit, other.TimelineLimit), RequiredState.Union(other.RequiredState));

    public static RoomConfig Parse(JsonElement config)
    {
        var limit = config.OptionalInteger("timeline_limit") ?? 0;
        if (limit is < 0 or > MaxTimelineLimit)
            throw MatrixException.InvalidParam($"'timeline_limit' must be between 0 and {MaxTimelineLimit}.");
        return new((int)limit, RequiredState.Parse(config.TryGetProperty("required_state", out var state) ? state : null));
    }
}

/// <summary>A list's filters; an absent filter does not filter.</summary>
public sealed record ListFilters(
    bool? IsDm, IReadOnlyList<string>? Spaces, bool? IsEncrypted, bool? IsInvite, IReadOnlyList<string?>? RoomTypes,
    IReadOnlyList<string?>? NotRoomTypes, IReadOnlyList<string>? Tags, IReadOnlyList<string>? NotTags, string? RoomNameLike)
{
    public static readonly ListFilters None = new(null, null, null, null, null, null, null, null, null);

    public bool NeedsTags => Tags is not null || NotTags is not null;

    public static ListFilters Parse(JsonElement? element)
    {
        if (element is not { } filters)
            return None;
        return new(filters.OptionalBool("is_dm"), OptionalStrings(filters, "spaces"), filters.OptionalBool("is_encrypted"),
            filters.OptionalBool("is_invite") ?? filters.OptionalBool("is_invited"), TypeList(filters, "room_types"), TypeList(filters, "not_room_types"),
            OptionalStrings(filters, "tags"), OptionalStrings(filters, "not_tags"), filters.OptionalString("room_name_like"));
    }

    private static List<string>? OptionalStrings(JsonElement filters, string name) =>
        filters.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? filters.RequiredStringArray(name) : null;

    /// <summary>Room types, where null stands for rooms without a type.</summary>
    private static List<string?>? TypeList(JsonElement filters, string name)
    {
        if (!filters.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind is not (JsonValueKind.String or JsonValueKind.Null)))
            throw MatrixException.BadJson($"'{name}' must be a list of strings or nulls.");
        return value.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Null ? null : JsonFields.WithoutNul(v.GetString()!, name)).ToList();
    }
}

/// <summary>A sliding window over the user's rooms: the filtered rooms by recent activity, the ranges of it sent.</summary>
/// <param name="Ranges">Inclusive index ranges; null: every room of the list.</param>
public sealed record ListConfig(RoomConfig Room, IReadOnlyList<(int Start, int End)>? Ranges, ListFilters Filters)
{
    public static ListConfig Parse(JsonElement list)
    {
        List<(int, int)>? ranges = null;
        if (list.TryGetProperty("ranges", out var many) && many.ValueKind != JsonValueKind.Null)
            ranges = many.ValueKind == JsonValueKind.Array ? many.EnumerateArray().Select(Range).ToList()
                : throw MatrixException.BadJson("'ranges' must be a list of [start, end] pairs.");
        else if (list.TryGetProperty("range", out var one) && one.ValueKind != JsonValueKind.Null)
            ranges = [Range(one)];
        return new(RoomConfig.Parse(list), ranges, ListFilters.Parse(list.OptionalObject("filters")));
    }

    private static (int, int) Range(JsonElement range)
    {
        if (range.ValueKind != JsonValueKind.Array || range.GetArrayLength() != 2
            || !range[0].TryGetInt32(out var start) || !range[1].TryGetInt32(out var end))
            throw MatrixException.BadJson("A list range must be a [start, end] pair of integers.");
        if (start < 0 || end < start)
            throw MatrixException.InvalidParam("A list range must be non-negative and end no earlier than it starts.");
        return (start, end);
    }
}

/// <summary>Which lists and subscribed rooms an extension covers: <c>*</c> (the default) for all.</summary>
public sealed record ExtensionScope(bool Enabled, IReadOnlyList<string> Lists, IReadOnlyList<string> Rooms)
{
    public static readonly ExtensionScope Off = new(false, [], []);

    public static ExtensionScope Parse(JsonElement? element) => element is { } e
        ? new(e.OptionalBool("enabled") ?? false, Strings(e, "lists"), Strings(e, "rooms"))
        : Off;

    private static List<string> Strings(JsonElement e, string name) =>
        e.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? e.RequiredStringArray(name) : ["*"];
}

public sealed record ToDeviceExtension(bool Enabled, long? Since)
{
    public static ToDeviceExtension Parse(JsonElement? element)
    {
        if (element is not { } e)
            return new(false, null);
        var since = e.OptionalString("since") is { } text
            ? long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n
                : throw MatrixException.InvalidParam("'extensions.to_device.since' must be a to-device position.")
            : (long?)null;
        return new(e.OptionalBool("enabled") ?? false, since);
    }
}

public sealed record SlidingSyncExtensions(ToDeviceExtension ToDevice, bool E2ee, ExtensionScope AccountData, ExtensionScope Receipts, ExtensionScope Typing)
{
    public static SlidingSyncExtensions Parse(JsonElement? element)
    {
        var e = element ?? default;
        JsonElement? Part(string name) => element is null ? null : e.OptionalObject(name);
        return new(ToDeviceExtension.Parse(Part("to_device")), Part("e2ee")?.OptionalBool("enabled") ?? false,
            ExtensionScope.Parse(Part("account_data")), ExtensionScope.Parse(Part("receipts")), ExtensionScope.Parse(Part("typing")));
    }
}

/// <summary>
/// A simplified sliding sync request (MSC4186), in the shape clients send today (Synapse's: <c>pos</c> and
/// <c>timeout</c> in the query, <c>ranges</c>, pairs for <c>required_state</c>) and in the MSC's latest (both in the
/// body, <c>range</c>, <c>include</c>/<c>exclude</c>).
/// </summary>
public sealed record SlidingSyncRequest(
    string ConnId, string? Pos, int TimeoutMs, string? SetPresence, IReadOnlyDictionary<string, ListConfig> Lists,
    IReadOnlyDictionary<string, RoomConfig> Subscriptions, SlidingSyncExtensions Extensions)
{
    public const int MaxLists = 100;
    public const int MaxSubscriptions = 100;
    public const int MaxListKeyLength = 64;

    public static SlidingSyncRequest Parse(HttpContext context, JsonElement body)
    {
        var lists = new Dictionary<string, ListConfig>(StringComparer.Ordinal);
        if (body.OptionalObject("lists") is { } listsElement)
            foreach (var list in listsElement.EnumerateObject())
            {
                if (list.Name.Length > MaxListKeyLength)
                    throw MatrixException.InvalidParam($"List keys are at most {MaxListKeyLength} characters.");
                if (list.Value.ValueKind != JsonValueKind.Object)
                    throw MatrixException.BadJson($"List '{list.Name}' must be an object.");
                lists[JsonFields.WithoutNul(list.Name, "lists")] = ListConfig.Parse(list.Value);
            }
        if (lists.Count > MaxLists)
            throw MatrixException.InvalidParam($"At most {MaxLists} lists.");
        var subscriptions = new Dictionary<string, RoomConfig>(StringComparer.Ordinal);
        if (body.OptionalObject("room_subscriptions") is { } subscriptionsElement)
            foreach (var subscription in subscriptionsElement.EnumerateObject())
            {
                if (subscription.Value.ValueKind != JsonValueKind.Object)
                    throw MatrixException.BadJson($"The subscription to '{subscription.Name}' must be an object.");
                // A subscription to something that is not a room ID names no room the user can see: ignored, as such rooms are.
                var config = RoomConfig.Parse(subscription.Value);
                if (Matrix.Federation.Identifiers.RoomId.TryParse(subscription.Name, out _))
                    subscriptions[subscription.Name] = config;
            }
        if (subscriptions.Count > MaxSubscriptions)
            throw MatrixException.InvalidParam($"At most {MaxSubscriptions} room subscriptions.");

        var pos = context.Query("pos") is { Length: > 0 } queryPos ? queryPos : body.OptionalString("pos");
        var timeout = context.Query("timeout") is { Length: > 0 } queryTimeout
            ? long.TryParse(queryTimeout, out var ms) ? ms : throw MatrixException.InvalidParam("timeout must be an integer.")
            : body.OptionalInteger("timeout") ?? 0;
        var setPresence = context.Query("set_presence") is { Length: > 0 } queryPresence ? queryPresence : body.OptionalString("set_presence");
        if (setPresence is not null && !Presence.PresenceService.States.Contains(setPresence))
            throw MatrixException.InvalidParam("set_presence must be online, unavailable or offline.");
        return new(body.OptionalString("conn_id") ?? "", pos, (int)Math.Clamp(timeout, 0, SyncService.MaxTimeoutMs), setPresence, lists, subscriptions,
            SlidingSyncExtensions.Parse(body.OptionalObject("extensions")));
    }
}
