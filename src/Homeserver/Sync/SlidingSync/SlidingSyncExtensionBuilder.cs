using System.Globalization;
using System.Text.Json.Nodes;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Receipts;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// The extensions of a sliding sync response, each what <c>/sync</c> gives in the same window: to-device messages
/// (MSC3885), one-time key counts, unused fallback keys and device-list changes (MSC3884), account data (MSC3959),
/// receipts (MSC3960) and typing (MSC3961) of the rooms the extension covers. A room new to the connection gets its
/// account data in full, the receipts on its timeline's events with the user's own, and whoever is typing in it.
/// </summary>
public sealed class SlidingSyncExtensionBuilder(
    Database db, AccountDataStore accountData, ReceiptStore receipts, TypingService typing, E2ee.ToDeviceService toDevice,
    E2ee.DeviceListService deviceLists, E2ee.DeviceKeyStore deviceKeys)
{
    /// <summary>What the extensions need of a response's rooms.</summary>
    /// <param name="RoomsOf">The rooms an extension's lists and subscriptions cover.</param>
    /// <param name="NewRooms">Rooms sent on the connection for the first time.</param>
    /// <param name="Timelines">The timeline event IDs sent per room.</param>
    public sealed record Rooms(Func<ExtensionScope, IReadOnlyCollection<string>> RoomsOf, IReadOnlySet<string> NewRooms,
        IReadOnlyDictionary<string, IReadOnlyList<string>> Timelines);

    public async Task<(JsonObject Extensions, bool HasNews)> BuildAsync(Requester requester, SlidingSyncExtensions request, SyncToken? from, SyncToken upTo,
        Rooms rooms, CancellationToken ct)
    {
        var extensions = new JsonObject();
        var news = false;
        if (request.ToDevice.Enabled)
            news |= await AddToDeviceAsync(extensions, requester, request.ToDevice.Since, upTo.ToDevice, ct);
        if (request.E2ee)
            news |= await AddE2eeAsync(extensions, requester, from, upTo, ct);
        if (request.AccountData.Enabled)
            news |= await AddAccountDataAsync(extensions, requester.UserId.Value, from, upTo.AccountData, rooms.RoomsOf(request.AccountData), rooms.NewRooms, ct);
        if (request.Receipts.Enabled)
            news |= await AddReceiptsAsync(extensions, requester.UserId.Value, from, upTo.Receipts, rooms.RoomsOf(request.Receipts), rooms, ct);
        if (request.Typing.Enabled)
            news |= AddTyping(extensions, from, rooms.RoomsOf(request.Typing), rooms.NewRooms);
        return (extensions, news);
    }

    private async Task<bool> AddToDeviceAsync(JsonObject extensions, Requester requester, long? since, long upTo, CancellationToken ct)
    {
        var user = requester.UserId.Value;
        var reads = toDevice.ReadsForSync(user, requester.DeviceId, since, upTo);
        await db.ReadAllAsync(reads.AddTo(new ReadBatch()).Reads, ct);
        var (events, position) = await toDevice.ForSyncAsync(user, requester.DeviceId, since, upTo, reads, ct);
        extensions["to_device"] = new JsonObject { ["next_batch"] = position.ToString(CultureInfo.InvariantCulture), ["events"] = events };
        return events.Count > 0;
    }

    private async Task<bool> AddE2eeAsync(JsonObject extensions, Requester requester, SyncToken? from, SyncToken upTo, CancellationToken ct)
    {
        var user = requester.UserId.Value;
        var keys = deviceKeys.CountsForSync(user, requester.DeviceId);
        await db.ReadAllAsync(keys.Reads.ToList(), ct);
        var (changed, left) = from is { } since
            ? await deviceLists.ChangesForSyncAsync(user, since.DeviceLists, upTo.DeviceLists, since.Events, upTo.Events, ct)
            : ([], []);
        extensions["e2ee"] = new JsonObject
        {
            ["device_one_time_keys_count"] = E2ee.KeyService.CountsJson(keys.Result.OneTimeKeys),
            ["device_unused_fallback_key_types"] = new JsonArray(keys.Result.UnusedFallbackAlgorithms.Select(a => (JsonNode)a).ToArray()),
            ["device_lists"] = new JsonObject
            {
                ["changed"] = new JsonArray(changed.Select(u => (JsonNode)u).ToArray()),
                ["left"] = new JsonArray(left.Select(u => (JsonNode)u).ToArray()),
            },
        };
        return changed.Count + left.Count > 0;
    }

    private async Task<bool> AddAccountDataAsync(JsonObject extensions, string user, SyncToken? from, long upTo, IReadOnlyCollection<string> roomIds,
        IReadOnlySet<string> newRooms, CancellationToken ct)
    {
        var changes = accountData.ChangedSince(user, from?.AccountData ?? 0, upTo);
        var everything = from is not null && roomIds.Any(newRooms.Contains) ? accountData.ChangedSince(user, 0, upTo) : null;
        await db.ReadAllAsync(new SqlRead?[] { changes, everything }.OfType<SqlRead>().ToList(), ct);
        var global = changes.Result.Where(e => e.RoomId == AccountDataStore.Global).ToList();
        if (from is null)
            SyncService.AddDefaultPushRules(global, user);
        var byRoom = new JsonObject();
        foreach (var roomId in roomIds)
        {
            var entries = (newRooms.Contains(roomId) ? everything?.Result ?? changes.Result : changes.Result).Where(e => e.RoomId == roomId).ToList();
            if (entries.Count > 0)
                byRoom[roomId] = Events(entries);
        }
        extensions["account_data"] = new JsonObject { ["global"] = Events(global), ["rooms"] = byRoom };
        return global.Count > 0 || byRoom.Count > 0;

        static JsonArray Events(IEnumerable<AccountDataStore.Entry> entries) => new(entries
            .Select(e => (JsonNode)new JsonObject { ["type"] = e.DataType, ["content"] = JsonNode.Parse(e.Content) }).ToArray());
    }

    private async Task<bool> AddReceiptsAsync(JsonObject extensions, string user, SyncToken? from, long upTo, IReadOnlyCollection<string> roomIds,
        Rooms rooms, CancellationToken ct)
    {
        var known = from is { } since && since.Receipts < upTo ? roomIds.Where(id => !rooms.NewRooms.Contains(id)).ToList() : [];
        var changed = known.Chunk(500).Select(ids => receipts.ChangedSince(ids, from!.Value.Receipts, upTo)).ToList();
        var fresh = roomIds.Where(rooms.NewRooms.Contains)
            .Select(id => receipts.OnEventsOrBy(id, rooms.Timelines.GetValueOrDefault(id) ?? [], user)).ToList();
        await db.ReadAllAsync([.. changed, .. fresh], ct);
        var byRoom = new JsonObject();
        foreach (var group in changed.Concat(fresh).SelectMany(r => r.Result).GroupBy(r => r.RoomId))
            if (SyncService.ReceiptEvent(group, user) is { } receiptEvent)
                byRoom[group.Key] = receiptEvent;
        extensions["receipts"] = new JsonObject { ["rooms"] = byRoom };
        return byRoom.Count > 0;
    }

    private bool AddTyping(JsonObject extensions, SyncToken? from, IReadOnlyCollection<string> roomIds, IReadOnlySet<string> newRooms)
    {
        var byRoom = new JsonObject();
        foreach (var roomId in roomIds)
        {
            var (users, changed) = typing.Get(roomId, from?.Typing ?? 0);
            if (from is null || newRooms.Contains(roomId) ? users.Count > 0 : changed)
                byRoom[roomId] = new JsonObject
                {
                    ["type"] = "m.typing",
                    ["content"] = new JsonObject { ["user_ids"] = new JsonArray(users.Select(u => (JsonNode)u).ToArray()) },
                };
        }
        extensions["typing"] = new JsonObject { ["rooms"] = byRoom };
        return byRoom.Count > 0;
    }
}
