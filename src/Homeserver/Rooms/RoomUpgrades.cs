using System.Text.Json.Nodes;
using Matrix.Federation.Auth;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// Spec: Room upgrades. A replacement room (create event with <c>predecessor</c> and the old room's type), the
/// transferable state copied (with bans, as Synapse does), <c>m.federate</c> kept, local aliases and directory listing
/// moved, a tombstone in the old room, and the old room's power levels raised so nobody keeps talking there.
/// </summary>
public sealed class RoomUpgrades(EventSpine spine, MembershipService memberships, RoomReader reader, RoomSuccession succession)
{
    private static readonly string[] TransferredState =
    [
        "m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic", "m.room.guest_access",
        "m.room.history_visibility", "m.room.join_rules",
    ];

    private readonly SemaphoreSlim _upgrading = new(1, 1);

    public async Task<string> UpgradeAsync(string userId, string oldRoomId, RoomVersion version, IReadOnlyList<string> additionalCreators,
        CancellationToken ct)
    {
        // One upgrade at a time: two racing requests must not both replace the room.
        await _upgrading.WaitAsync(ct);
        try
        {
            var old = await spine.GetRoomAsync(oldRoomId, ct) ?? throw MatrixException.NotFound("Unknown room.");
            if (await reader.MembershipAsync(old, userId, ct) != "join")
                throw MatrixException.Forbidden("You are not in this room.");
            if (old.StateEventId(new StateKey("m.room.tombstone", "")) is not null)
                throw MatrixException.Forbidden("This room has already been replaced.");
            var create = (await spine.GetStateEventAsync(old, StateKey.Create, ct))!;
            var oldLevels = await spine.GetStateEventAsync(old, StateKey.PowerLevels, ct);
            var powers = new RoomPowers(create, oldLevels);
            if (powers.UserLevel(userId) < powers.Levels.RequiredFor("m.room.tombstone", isState: true))
                throw MatrixException.Forbidden("You may not upgrade this room.");
            if (additionalCreators.Count > 0 && !version.PrivilegedCreators)
                throw MatrixException.InvalidParam($"Room version {version.Id} has no additional creators.");

            // The predecessor names the old room's last event, its tombstone (as Synapse does). A version 12 room ID is
            // the hash of its create event, which the tombstone would have to name first: there it names the room only.
            var createContent = new JsonObject { ["room_version"] = version.Id };
            var predecessor = new JsonObject { ["room_id"] = oldRoomId };
            string? newRoomId = null;
            if (!version.RoomIdIsCreateEventHash)
            {
                newRoomId = spine.NewRoomId();
                predecessor["event_id"] = await SendTombstoneAsync(oldRoomId, userId, newRoomId, ct);
            }
            createContent["predecessor"] = predecessor;
            if (create.ContentString("type") is { } roomType)
                createContent["type"] = roomType;
            if (create.Content["m.federate"] is JsonValue federate)
                createContent["m.federate"] = federate.DeepClone();
            if (!version.ImplicitRoomCreator)
                createContent["creator"] = userId;
            if (additionalCreators.Count > 0)
                createContent["additional_creators"] = new JsonArray(additionalCreators.Select(u => (JsonNode)u).ToArray());
            newRoomId = (await spine.CreateRoomAsync(version, userId, createContent, ct, newRoomId)).Pdu.RoomId;
            await memberships.ChangeAsync(newRoomId, userId, userId, "join", null, null, ct);

            // The copied power levels, with the upgrader able to send the rest while copying; exact levels follow.
            var creators = version.PrivilegedCreators ? additionalCreators.Append(userId).ToHashSet() : [];
            var levels = oldLevels is null ? null : LevelsFor(oldLevels.Content, creators);
            if (levels is not null)
            {
                var interim = (JsonObject)levels.DeepClone();
                if (!version.PrivilegedCreators)
                    ((JsonObject)(interim["users"] ??= new JsonObject()))[userId] = Math.Max(powers.UserLevel(userId), LevelToCopyState(levels));
                await SendStateAsync(newRoomId, userId, "m.room.power_levels", "", interim, ct);
            }
            foreach (var type in TransferredState)
                if (await spine.GetStateEventAsync(old, new StateKey(type, ""), ct) is { } state)
                    await SendStateAsync(newRoomId, userId, type, "", (JsonObject)state.Content.DeepClone(), ct);
                else if (type == "m.room.guest_access")
                    // What none meant in the old room (a public_chat room has none), said in the new one as Synapse's
                    // upgrades always say something.
                    await SendStateAsync(newRoomId, userId, type, "", new JsonObject { ["guest_access"] = "forbidden" }, ct);
            foreach (var (key, _) in old.State.Where(s => s.Key.Type == "m.room.member"))
                if (await spine.GetStateEventAsync(old, key, ct) is { Membership: "ban" } ban)
                    await memberships.ChangeAsync(newRoomId, userId, key.Key, "ban", ban.ContentString("reason"), null, ct);
            if (levels is not null)
                await SendStateAsync(newRoomId, userId, "m.room.power_levels", "", levels, ct);

            await MoveAliasesAsync(old, newRoomId, userId, ct);
            if (version.RoomIdIsCreateEventHash)
                await SendTombstoneAsync(oldRoomId, userId, newRoomId, ct);
            if (oldLevels is not null)
                await SendStateAsync(oldRoomId, userId, "m.room.power_levels", "", Restricted(oldLevels.Content), ct);
            // The upgrader joined before a version 12 room's tombstone existed: their tags and DM listing follow now.
            await succession.OnLocalJoinAsync(newRoomId, userId, ct);
            return newRoomId;
        }
        finally
        {
            _upgrading.Release();
        }
    }

    private async Task<string> SendTombstoneAsync(string oldRoomId, string userId, string newRoomId, CancellationToken ct) =>
        (await spine.SendAsync(oldRoomId, new NewEvent("m.room.tombstone", "", userId,
            new JsonObject { ["body"] = "This room has been replaced", ["replacement_room"] = newRoomId }), ct)).Pdu.EventId;

    /// <summary>The old levels, without creators of the new room in <c>users</c> (v12 creators have no level there).</summary>
    private static JsonObject LevelsFor(JsonObject old, IReadOnlySet<string> creators)
    {
        var levels = (JsonObject)old.DeepClone();
        if (levels["users"] is JsonObject users)
            foreach (var creator in creators)
                users.Remove(creator);
        return levels;
    }

    /// <summary>A level that may send every state event being copied, and ban (at least 100, the creator's usual level).</summary>
    private static long LevelToCopyState(JsonObject levels)
    {
        static long Level(JsonNode? node) => node is JsonValue value && value.TryGetValue<long>(out var level) ? level : 0;
        var events = (levels["events"] as JsonObject)?.Select(e => Level(e.Value)) ?? [];
        return events.Append(Level(levels["state_default"])).Append(Level(levels["ban"])).Append(100).Max();
    }

    /// <summary>The spec's suggestion: sending and inviting need max(50, users_default + 1).</summary>
    private static JsonObject Restricted(JsonObject old)
    {
        var levels = (JsonObject)old.DeepClone();
        var usersDefault = levels["users_default"] is JsonValue value && value.TryGetValue<long>(out var d) ? d : 0;
        var required = Math.Max(50, usersDefault + 1);
        levels["events_default"] = required;
        levels["invite"] = required;
        return levels;
    }

    /// <summary>Local aliases, the canonical alias and the directory listing follow the room.</summary>
    private async Task MoveAliasesAsync(RoomSnapshot old, string newRoomId, string userId, CancellationToken ct)
    {
        await succession.MoveDirectoryEntriesAsync(old.RoomId, newRoomId, fallbackCreator: userId, ct);
        if (await spine.GetStateEventAsync(old, new StateKey("m.room.canonical_alias", ""), ct) is { } canonical && canonical.Content.Count > 0)
        {
            await SendStateAsync(newRoomId, userId, "m.room.canonical_alias", "", (JsonObject)canonical.Content.DeepClone(), ct);
            await SendStateAsync(old.RoomId, userId, "m.room.canonical_alias", "", new JsonObject(), ct);
        }
    }

    private Task SendStateAsync(string roomId, string sender, string type, string stateKey, JsonObject content, CancellationToken ct) =>
        spine.SendAsync(roomId, new NewEvent(type, stateKey, sender, content), ct);
}
