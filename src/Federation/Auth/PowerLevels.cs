using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Auth;

/// <summary>
/// The content of an <c>m.room.power_levels</c> event read under the room version's number rules (v1-v9 accept
/// integer strings, v1-v5 also floats, v10+ only integers), with the spec's defaults.
/// </summary>
public sealed partial class PowerLevels
{
    /// <summary>A v12 room creator's level: above every level an event can set.</summary>
    public const long Infinite = long.MaxValue;

    public static readonly string[] LevelKeys = ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"];

    private readonly Dictionary<string, long> _levels;

    public IReadOnlyDictionary<string, long> Users { get; }
    public IReadOnlyDictionary<string, long> Events { get; }
    public IReadOnlyDictionary<string, long> Notifications { get; }

    private PowerLevels(Dictionary<string, long> levels, Dictionary<string, long> users, Dictionary<string, long> events, Dictionary<string, long> notifications)
    {
        _levels = levels;
        Users = users;
        Events = events;
        Notifications = notifications;
    }

    /// <summary>The levels in force when a room has no power levels event.</summary>
    public static readonly PowerLevels Absent = new([], [], [], []);

    /// <summary>A level explicitly present in the content, or null.</summary>
    public long? Explicit(string key) => _levels.TryGetValue(key, out var value) ? value : null;

    public long UsersDefault => Explicit("users_default") ?? 0;
    public long EventsDefault => Explicit("events_default") ?? 0;
    public long StateDefault => Explicit("state_default") ?? 50;
    public long Ban => Explicit("ban") ?? 50;
    public long Kick => Explicit("kick") ?? 50;
    public long Redact => Explicit("redact") ?? 50;
    public long Invite => Explicit("invite") ?? 0;

    /// <summary>The level needed to send an event of this type (the <c>events</c> entry, else the state or events default).</summary>
    public long RequiredFor(string eventType, bool isState) =>
        Events.TryGetValue(eventType, out var level) ? level : isState ? StateDefault : EventsDefault;

    /// <summary>
    /// Parses power levels content. Fails (the auth rules reject the event) when a value is not a valid level for the
    /// room version, or a <c>users</c> key is not a user ID.
    /// </summary>
    public static bool TryParse(JsonObject content, RoomVersion version, out PowerLevels powerLevels)
    {
        powerLevels = Absent;
        var levels = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var key in LevelKeys)
        {
            if (!content.TryGetPropertyValue(key, out var node))
                continue;
            if (!TryLevel(node, version, out var level))
                return false;
            levels[key] = level;
        }
        if (!TryLevelMap(content, "events", version, _ => true, out var events)
            || !TryLevelMap(content, "notifications", version, _ => true, out var notifications)
            || !TryLevelMap(content, "users", version, key => UserId.TryParse(key, out _), out var users))
            return false;
        powerLevels = new PowerLevels(levels, users, events, notifications);
        return true;
    }

    private static bool TryLevelMap(JsonObject content, string key, RoomVersion version, Func<string, bool> validKey, out Dictionary<string, long> map)
    {
        map = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!content.TryGetPropertyValue(key, out var node))
            return true;
        if (node is not JsonObject obj)
            return false;
        foreach (var (entry, value) in obj)
        {
            if (!validKey(entry) || !TryLevel(value, version, out var level))
                return false;
            map[entry] = level;
        }
        return true;
    }

    /// <summary>Reads one level: an integer; in v1-v9 also a string holding an integer; in v1-v5 also a float (truncated).</summary>
    public static bool TryLevel(JsonNode? node, RoomVersion version, out long level)
    {
        level = 0;
        if (node is not JsonValue value)
            return false;
        switch (value.GetValueKind())
        {
            case JsonValueKind.Number:
                if (value.TryGetInteger(out level))
                    return true;
                if (version.StrictCanonicalJson || !value.TryGetDouble(out var number) || !double.IsFinite(number))
                    return false;
                var truncated = Math.Truncate(number);
                if (truncated is > long.MaxValue or < long.MinValue)
                    return false;
                level = (long)truncated;
                return true;
            case JsonValueKind.String when !version.IntegerOnlyPowerLevels:
                var text = value.GetValue<string>();
                return StringLevel().IsMatch(text) && long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out level);
            default:
                return false;
        }
    }

    [GeneratedRegex(@"^\s*[+-]?[0-9]+\s*$")]
    private static partial Regex StringLevel();
}

/// <summary>Who holds which power in a room state: the create event's creators and the power levels event.</summary>
public sealed class RoomPowers
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Pdu, PowerLevels> Parsed = new();

    public Pdu Create { get; }
    public Pdu? PowerLevelsEvent { get; }
    public PowerLevels Levels { get; }
    public IReadOnlySet<string> Creators { get; }

    public RoomPowers(Pdu create, Pdu? powerLevelsEvent)
    {
        Create = create;
        PowerLevelsEvent = powerLevelsEvent;
        Levels = powerLevelsEvent is null ? PowerLevels.Absent : LevelsOf(powerLevelsEvent);
        Creators = CreatorsOf(create);
    }

    /// <summary>v1-v10: <c>content.creator</c>; v11: the sender; v12: the sender plus <c>additional_creators</c>.</summary>
    public static IReadOnlySet<string> CreatorsOf(Pdu create)
    {
        var creators = new HashSet<string>(StringComparer.Ordinal);
        if (!create.Version.ImplicitRoomCreator)
        {
            if (create.ContentString("creator") is { } creator)
                creators.Add(creator);
            return creators;
        }
        creators.Add(create.Sender);
        if (create.Version.PrivilegedCreators && create.Content["additional_creators"] is JsonArray additional)
            foreach (var item in additional)
                if (item is JsonValue value && value.TryGetValue<string>(out var user))
                    creators.Add(user);
        return creators;
    }

    public long UserLevel(string userId)
    {
        if (Create.Version.PrivilegedCreators && Creators.Contains(userId))
            return PowerLevels.Infinite;
        if (PowerLevelsEvent is null)
            return Creators.Contains(userId) ? 100 : 0;
        return Levels.Users.TryGetValue(userId, out var level) ? level : Levels.UsersDefault;
    }

    private static PowerLevels LevelsOf(Pdu powerLevelsEvent) =>
        Parsed.GetValue(powerLevelsEvent, e => PowerLevels.TryParse(e.Content, e.Version, out var levels) ? levels : PowerLevels.Absent);
}
