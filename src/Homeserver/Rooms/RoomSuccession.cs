using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>
/// What follows a room to its replacement on this server (spec: Room upgrades, as Synapse does it): a user's tags and
/// direct-chat listing when they join the new room, and the local aliases and the directory listing, moved when the
/// upgrade happens here or, for an upgrade done elsewhere, when a local user first joins the replacement. Only a room
/// the old room's tombstone names counts as its replacement: a room merely claiming a predecessor takes nothing.
/// </summary>
public sealed class RoomSuccession(EventSpine spine, Database db, RoomStore rooms, AccountDataStore accountData, StreamPositions streams,
    Sync.SyncNotifier notifier)
{
    public async Task OnLocalJoinAsync(string roomId, string userId, CancellationToken ct)
    {
        if (await spine.GetRoomAsync(roomId, ct) is not { } room
            || (await spine.GetStateEventAsync(room, StateKey.Create, ct))?.Content["predecessor"]?["room_id"] is not JsonValue predecessorId
            || !predecessorId.TryGetValue<string>(out var predecessor)
            || await spine.GetRoomAsync(predecessor, ct) is not { } old
            || (await spine.GetStateEventAsync(old, new StateKey("m.room.tombstone", ""), ct))?.ContentString("replacement_room") != roomId)
            return;
        await MoveDirectoryEntriesAsync(predecessor, roomId, fallbackCreator: userId, ct);
        if (await CarryUserStateAsync(predecessor, roomId, userId, ct))
            notifier.Notify([userId]);
    }

    /// <summary>Local aliases of the old room name the new one; a listing in the public directory moves with it.</summary>
    public Task MoveDirectoryEntriesAsync(string oldRoomId, string newRoomId, string fallbackCreator, CancellationToken ct) => db.WriteAsync(async s =>
    {
        foreach (var alias in await rooms.AliasesOfAsync(s, oldRoomId))
        {
            var row = await rooms.GetAliasAsync(s, alias);
            await rooms.DeleteAliasAsync(s, alias);
            await rooms.TryCreateAliasAsync(s, alias, newRoomId, row?.Creator ?? fallbackCreator);
        }
        if ((await rooms.GetRoomAsync(s, oldRoomId))?.IsPublic == 1)
        {
            await rooms.SetPublicAsync(s, oldRoomId, false);
            await rooms.SetPublicAsync(s, newRoomId, true);
        }
    }, ct);

    /// <summary>
    /// The user's tags of the old room (unless they tagged the new one already), and the new room listed beside the old
    /// one in their <c>m.direct</c>; whether anything changed.
    /// </summary>
    private Task<bool> CarryUserStateAsync(string oldRoomId, string newRoomId, string userId, CancellationToken ct) => db.WriteAsync(async s =>
    {
        var changed = false;
        if (await accountData.GetAsync(s, userId, oldRoomId, "m.tag") is { } tags && await accountData.GetAsync(s, userId, newRoomId, "m.tag") is null)
        {
            await accountData.SetAsync(s, userId, newRoomId, "m.tag", tags, await streams.NextAsync(s, "account_data"));
            changed = true;
        }
        if (await accountData.GetAsync(s, userId, AccountDataStore.Global, "m.direct") is { } directJson
            && JsonNode.Parse(directJson) is JsonObject direct)
        {
            var listed = false;
            foreach (var (_, roomIds) in direct)
                if (roomIds is JsonArray list && list.Any(r => r is JsonValue v && v.TryGetValue<string>(out var id) && id == oldRoomId)
                    && !list.Any(r => r is JsonValue v && v.TryGetValue<string>(out var id) && id == newRoomId))
                {
                    list.Add(newRoomId);
                    listed = true;
                }
            if (listed)
            {
                await accountData.SetAsync(s, userId, AccountDataStore.Global, "m.direct", direct.ToJsonString(), await streams.NextAsync(s, "account_data"));
                changed = true;
            }
        }
        return changed;
    }, ct);
}
