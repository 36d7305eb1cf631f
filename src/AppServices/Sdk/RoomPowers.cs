using System.Text.Json.Nodes;

namespace Matrix.AppServices.Sdk;

/// <summary>
/// Who may do what in a room, read from its power levels and create event: users' levels, and the levels events
/// need. In room versions 12 and later the room's creators (the create event's sender and
/// <c>additional_creators</c>) outrank everyone and are not listed in the power levels.
/// </summary>
public sealed class RoomPowers(JsonObject levels, IReadOnlySet<string> creators)
{
    public long UserLevel(string userId) =>
        creators.Contains(userId) ? long.MaxValue : Number(levels["users"]?[userId], Number(levels["users_default"], 0));

    /// <summary>The level needed to send a state event of <paramref name="type"/>.</summary>
    public long StateLevel(string type) => Number(levels["events"]?[type], Number(levels["state_default"], 50));

    /// <summary>A room admin: may change the room's power levels.</summary>
    public bool IsAdmin(string userId) => UserLevel(userId) >= StateLevel("m.room.power_levels");

    /// <summary>Reads both events as <paramref name="intent"/> (which must be able to see the room's state).</summary>
    public static async Task<RoomPowers> ReadAsync(Intent intent, string roomId, CancellationToken ct)
    {
        var levels = await intent.GetStateAsync(roomId, "m.room.power_levels", "", ct) ?? [];
        var create = await intent.GetStateEventAsync(roomId, "m.room.create", "", ct);
        var creators = new HashSet<string>(StringComparer.Ordinal);
        var version = create?["content"]?["room_version"]?.GetValue<string>() ?? "1";
        if (create is not null && !IsBeforeCreatorPrivilege(version))
        {
            if (create["sender"]?.GetValue<string>() is { } sender)
                creators.Add(sender);
            foreach (var extra in create["content"]?["additional_creators"] as JsonArray ?? [])
                if (extra is JsonValue value && value.TryGetValue<string>(out var userId))
                    creators.Add(userId);
        }
        return new RoomPowers(levels, creators);
    }

    private static bool IsBeforeCreatorPrivilege(string version) => version is "1" or "2" or "3" or "4" or "5" or "6" or "7" or "8" or "9" or "10" or "11";

    private static long Number(JsonNode? node, long fallback) => node is JsonValue value && value.TryGetValue<long>(out var n) ? n : fallback;
}
