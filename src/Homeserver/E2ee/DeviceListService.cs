using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Federation.Json;
using Matrix.Federation.Transport;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.ServerServer;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.E2ee;

/// <summary>
/// Device lists: every change of a user's devices or cross-signing keys becomes a row of the device-list stream, wakes
/// the syncs of everyone sharing a room with them and, for local users, goes to the servers sharing a room as
/// <c>m.device_list_update</c> (one per device, chained by <c>prev_id</c>) or <c>m.signing_key_update</c>. Remote users'
/// lists are cached from those EDUs; a gap in a chain, or a first update, resyncs the whole list through
/// <c>user/devices</c> (in the background: <see cref="DeviceListResyncer"/>).
/// </summary>
public sealed class DeviceListService(
    Database db, DeviceListStore store, CrossSigningStore crossSigning, LocalKeyReader localKeys, Accounts.DeviceStore devices, RoomReader reader,
    RoomStore rooms, RecentEventIndex recentEvents, DeviceListResyncQueue resyncs,
    SyncNotifier notifier, FederationSender sender, FederationClient client, ApplicationServices.AppServiceDeviceData appServices, HomeserverConfig config,
    ILogger<DeviceListService> logger)
{
    public const int MaxRemoteDevices = 1000;

    private bool IsLocal(string userId) => UserId.TryParse(userId, out var user) && user.Server.Value == config.ServerName;

    /// <summary>
    /// After a commit that recorded changes of these local devices (each with its own stream position, in order): wakes
    /// the syncs concerned and queues one <c>m.device_list_update</c> per device for the servers sharing a room.
    /// </summary>
    public async Task PublishDeviceChangesAsync(string userId, IReadOnlyList<(string DeviceId, long StreamId)> changes, CancellationToken ct)
    {
        if (changes.Count == 0)
            return;
        var sharing = await reader.UsersSharingRoomsAsync(userId, ct);
        await AnnounceChangeAsync(userId, sharing, ct);
        var servers = RemoteServers(sharing);
        if (servers.Count == 0)
            return;
        foreach (var (deviceId, streamId) in changes)
        {
            var (previous, keys, exists) = await db.ReadAsync(async s => (await store.PreviousChangeAsync(s, userId, streamId),
                await localKeys.DeviceAsync(s, userId, deviceId), await devices.GetAsync(s, userId, deviceId) is not null), ct);
            var content = new JsonObject
            {
                ["user_id"] = userId,
                ["device_id"] = deviceId,
                ["stream_id"] = streamId,
                ["prev_id"] = previous is { } p ? new JsonArray(p) : new JsonArray(),
            };
            if (!exists)
                content["deleted"] = true;
            else if (keys is not null)
            {
                if (keys["unsigned"]?["device_display_name"]?.AsString() is { } name)
                    content["device_display_name"] = name;
                keys.Remove("unsigned");
                content["keys"] = keys;
            }
            await sender.SendEduAsync(servers, "m.device_list_update", content, ct);
        }
    }

    /// <summary>After a commit that changed a local user's cross-signing keys: wakes syncs and sends <c>m.signing_key_update</c>.</summary>
    /// <param name="ownerOnly">only the user-signing key changed: the user's own devices are told, nobody else</param>
    public async Task PublishCrossSigningChangeAsync(string userId, CancellationToken ct, bool ownerOnly = false)
    {
        if (ownerOnly)
        {
            await AnnounceChangeAsync(userId, new HashSet<string> { userId }, ct);
            return;
        }
        var sharing = await reader.UsersSharingRoomsAsync(userId, ct);
        await AnnounceChangeAsync(userId, sharing, ct);
        var servers = RemoteServers(sharing);
        if (servers.Count == 0)
            return;
        var published = await db.ReadAsync(s => localKeys.ReadAsync(s, new Dictionary<string, List<string>> { [userId] = [] }, viewer: null), ct);
        var content = new JsonObject { ["user_id"] = userId };
        if (published.MasterKeys[userId] is { } master)
            content["master_key"] = master.DeepClone();
        if (published.SelfSigningKeys[userId] is { } selfSigning)
            content["self_signing_key"] = selfSigning.DeepClone();
        await sender.SendEduAsync(servers, "m.signing_key_update", content, ct);
    }

    /// <summary>Wakes the syncs of the local users sharing a room with the user, and tells the services taking device data.</summary>
    private async Task AnnounceChangeAsync(string userId, IReadOnlyCollection<string> sharing, CancellationToken ct)
    {
        notifier.Notify(sharing);
        await appServices.DeviceListChangedAsync(userId, sharing, ct);
    }

    private List<string> RemoteServers(IEnumerable<string> users) =>
        users.Select(u => UserId.TryParse(u, out var id) ? id.Server.Value : null).OfType<string>()
            .Where(s => s != config.ServerName).Distinct().ToList();

    /// <summary>
    /// What the device-list part of a sync reads (in the sync's batch of reads): users whose devices changed in the
    /// window, and users whose membership changed beside the user's (with the user's own membership changes). Null
    /// where the window cannot hold any.
    /// </summary>
    public sealed record SyncReads(
        SqlRead<string, HashSet<string>>? Devices, SqlRead<string, HashSet<string>>? Members, SqlRead<EventRow, List<EventRow>>? OwnMemberships)
    {
        public ReadBatch AddTo(ReadBatch batch) => batch.Add(Devices).Add(Members).Add(OwnMemberships);
    }

    /// <summary>The reads for <see cref="ChangesForSyncAsync(string, SyncReads, CancellationToken)"/>.</summary>
    public SyncReads ReadsForSync(string userId, long fromDeviceLists, long upToDeviceLists, long fromEvents, long upToEvents) =>
        ReadsForSync(userId, fromDeviceLists, upToDeviceLists, fromEvents, upToEvents,
            fromEvents < upToEvents ? recentEvents.Find(fromEvents, upToEvents) : null, ownMemberships: null);

    /// <summary>
    /// The same for a caller (sync) that has already asked the recent-event index about the event window
    /// (<paramref name="eventWindow"/>, null when it could not tell) and reads the user's own membership changes anyway
    /// (<paramref name="ownMemberships"/>).
    /// </summary>
    public SyncReads ReadsForSync(string userId, long fromDeviceLists, long upToDeviceLists, long fromEvents, long upToEvents,
        RecentEventIndex.Window? eventWindow, SqlRead<EventRow, List<EventRow>>? ownMemberships)
    {
        var memberEvents = fromEvents < upToEvents && eventWindow is not { HasMemberEvents: false };
        return new(fromDeviceLists < upToDeviceLists ? store.ChangedUsers(fromDeviceLists, upToDeviceLists, userId) : null,
            memberEvents ? rooms.MembersChangedBeside(userId, fromEvents, upToEvents) : null,
            memberEvents ? ownMemberships ?? rooms.MembershipEventsSince(userId, fromEvents, upToEvents) : null);
    }

    /// <summary>
    /// The device-list part of a sync (or of <c>/keys/changes</c>): users sharing a room (joined or invited) whose
    /// devices changed in the window, or who began sharing a room with the user in the event window (changed), and users
    /// who stopped sharing every room (left).
    /// </summary>
    public async Task<(List<string> Changed, List<string> Left)> ChangesForSyncAsync(string userId, long fromDeviceLists, long upToDeviceLists,
        long fromEvents, long upToEvents, CancellationToken ct)
    {
        var reads = ReadsForSync(userId, fromDeviceLists, upToDeviceLists, fromEvents, upToEvents);
        await db.ReadAllAsync(reads.AddTo(new ReadBatch()).Reads, ct);
        return await ChangesForSyncAsync(userId, reads, ct);
    }

    /// <summary>The same from reads already run.</summary>
    public async ValueTask<(List<string> Changed, List<string> Left)> ChangesForSyncAsync(string userId, SyncReads reads, CancellationToken ct)
    {
        var changedDevices = reads.Devices?.Result;
        var membershipChanges = reads.Members?.Result;
        // The user's own join (or leave) makes every member of that room new to them (or possibly gone).
        if (reads.OwnMemberships?.Result is { Count: > 0 } ownMemberships)
        {
            membershipChanges ??= [];
            foreach (var roomId in ownMemberships.Select(e => e.RoomId).Distinct())
                membershipChanges.UnionWith(await db.ReadAsync(s => rooms.JoinedMembersAsync(s, roomId), ct));
        }
        // A sync woken by a message mostly finds nothing here.
        if (changedDevices is not { Count: > 0 } && membershipChanges is not { Count: > 0 })
            return ([], []);
        (changedDevices, membershipChanges) = (changedDevices ?? [], membershipChanges ?? []);
        // Invited users count (as Synapse tracks them): clients encrypt for them before they join.
        var sharing = await reader.UsersSharingRoomsAsync(userId, ct, includeInvited: true);
        var changed = changedDevices.Where(sharing.Contains).ToHashSet(StringComparer.Ordinal);
        changed.UnionWith(membershipChanges.Where(u => u != userId && sharing.Contains(u)));
        var left = membershipChanges.Where(u => u != userId && !sharing.Contains(u)).ToList();
        return (changed.Order(StringComparer.Ordinal).ToList(), left.Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>An <c>m.device_list_update</c> EDU from <paramref name="origin"/> about one of its users.</summary>
    public async Task ReceiveDeviceListUpdateAsync(string origin, JsonObject content, CancellationToken ct)
    {
        if (content["user_id"]?.AsString() is not { } userId || !IsFrom(origin, userId) || content["device_id"]?.AsString() is not { } deviceId
            || !content["stream_id"].TryGetInteger(out var streamId))
            return;
        var sharing = await LocalUsersSharingAsync(userId, ct);
        if (sharing.Count == 0)
            return;
        var known = await db.ReadAsync(s => store.RemoteStreamIdAsync(s, userId), ct);
        if (known is { } k && streamId <= k)
            return;
        var prevIds = (content["prev_id"] as JsonArray ?? []).Select(n => n.TryGetInteger(out var id) ? id : (long?)null).OfType<long>().ToList();
        // The update follows on from what this server has when it names that as its predecessor (or names none).
        if (known is null || (prevIds.Count > 0 && !prevIds.Contains(known.Value)))
        {
            resyncs.Enqueue(origin, userId);
            return;
        }
        await db.WriteAsync(async s =>
        {
            if (content["deleted"] is JsonValue deleted && deleted.TryGetValue<bool>(out var isDeleted) && isDeleted)
                await store.DeleteRemoteDeviceAsync(s, userId, deviceId);
            else
                await store.SetRemoteDeviceAsync(s, RemoteDevice(userId, deviceId, content));
            await store.SetRemoteStreamIdAsync(s, userId, streamId);
            await store.AddChangeAsync(s, userId);
        }, ct);
        await AnnounceChangeAsync(userId, sharing, ct);
    }

    /// <summary>An <c>m.signing_key_update</c> EDU: new cross-signing keys of one of the origin's users.</summary>
    public async Task ReceiveSigningKeyUpdateAsync(string origin, JsonObject content, CancellationToken ct)
    {
        if (content["user_id"]?.AsString() is not { } userId || !IsFrom(origin, userId))
            return;
        var sharing = await LocalUsersSharingAsync(userId, ct);
        if (sharing.Count == 0)
            return;
        await db.WriteAsync(async s =>
        {
            await StoreRemoteCrossSigningAsync(s, userId, content["master_key"] as JsonObject, content["self_signing_key"] as JsonObject);
            await store.AddChangeAsync(s, userId);
        }, ct);
        await AnnounceChangeAsync(userId, sharing, ct);
    }

    /// <summary>Replaces the cached device list of a remote user with the one <c>user/devices</c> returns; false when unreachable.</summary>
    public async Task<bool> ResyncAsync(string server, string userId, CancellationToken ct)
    {
        JsonObject response;
        try
        {
            response = await client.SendAsync(HttpMethod.Get, server, $"/_matrix/federation/v1/user/devices/{Uri.EscapeDataString(userId)}", null, ct)
                as JsonObject ?? throw new FederationException(502, null, "user/devices returned no object");
        }
        catch (FederationException e)
        {
            logger.LogInformation("Resyncing the device list of {User} failed: {Reason}", userId, e.Message);
            return false;
        }
        if (response["user_id"]?.AsString() != userId || !response["stream_id"].TryGetInteger(out var streamId))
            return false;
        var devices = (response["devices"] as JsonArray ?? []).OfType<JsonObject>().Take(MaxRemoteDevices).ToList();
        await db.WriteAsync(async s =>
        {
            await store.DeleteRemoteDevicesAsync(s, userId);
            foreach (var device in devices)
                if (device["device_id"]?.AsString() is { } deviceId)
                    await store.SetRemoteDeviceAsync(s, RemoteDevice(userId, deviceId, device));
            await StoreRemoteCrossSigningAsync(s, userId, response["master_key"] as JsonObject, response["self_signing_key"] as JsonObject);
            await store.SetRemoteStreamIdAsync(s, userId, streamId);
            await store.AddChangeAsync(s, userId);
        }, ct);
        await AnnounceChangeAsync(userId, await reader.UsersSharingRoomsAsync(userId, ct), ct);
        return true;
    }

    /// <summary>
    /// Resyncs the device lists of those of <paramref name="userIds"/> who share a room with a local user (their servers
    /// keep such a cache current with updates from then on), one server's users after another; returns those now cached.
    /// </summary>
    public async Task<HashSet<string>> StartTrackingAsync(IReadOnlyCollection<string> userIds, CancellationToken ct)
    {
        var shared = new List<string>();
        foreach (var userId in userIds)
            if ((await LocalUsersSharingAsync(userId, ct)).Count > 0)
                shared.Add(userId);
        var resynced = await Task.WhenAll(shared.GroupBy(u => EventSigning.ServerOf(u)!).Select(async group =>
        {
            var done = new List<string>();
            foreach (var userId in group)
                try
                {
                    if (await ResyncAsync(group.Key, userId, ct))
                        done.Add(userId);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            return done;
        }));
        return resynced.SelectMany(users => users).ToHashSet(StringComparer.Ordinal);
    }

    private async Task StoreRemoteCrossSigningAsync(DbSession s, string userId, JsonObject? master, JsonObject? selfSigning)
    {
        foreach (var (key, type) in new[] { (master, CrossSigningStore.Master), (selfSigning, CrossSigningStore.SelfSigning) })
        {
            if (key is null)
                continue;
            try
            {
                var publicKey = KeyObjects.CrossSigningPublicKey(key, userId, type, type);
                await crossSigning.SetAsync(s, userId, type, publicKey, key.ToJsonString());
            }
            catch (Http.MatrixException e)
            {
                logger.LogInformation("Ignored a malformed {Type} key of {User}: {Reason}", type, userId, e.Message);
            }
        }
    }

    /// <summary>
    /// The remote users among <paramref name="userIds"/> whose cached device lists are current: tracked, and sharing a
    /// room with a local user (so their server sends updates here). A cache nobody shares a room with any more is
    /// forgotten, so the next update starts with a full resync.
    /// </summary>
    public async Task<HashSet<string>> CurrentlyTrackedAsync(IReadOnlyCollection<string> userIds, CancellationToken ct)
    {
        var tracked = await db.ReadAsync(s => store.TrackedRemoteUsersAsync(s, userIds), ct);
        foreach (var userId in tracked.ToList())
            if ((await LocalUsersSharingAsync(userId, ct)).Count == 0)
            {
                tracked.Remove(userId);
                await db.WriteAsync(s => store.ForgetRemoteUserAsync(s, userId), ct);
            }
        return tracked;
    }

    /// <summary>
    /// A device as an update or <c>user/devices</c> describes it. Its keys are kept as the remote server sent them: the
    /// spec leaves checking their signatures to the clients (as Synapse does), but keys naming another user or device
    /// are not passed off as this one's.
    /// </summary>
    private static RemoteDeviceRow RemoteDevice(string userId, string deviceId, JsonObject device)
    {
        var keys = device["keys"] as JsonObject;
        if (keys is not null && (NamesAnother(keys, "user_id", userId) || NamesAnother(keys, "device_id", deviceId)))
            keys = null;
        return new RemoteDeviceRow(userId, deviceId, device["device_display_name"]?.AsString(), keys?.ToJsonString());
    }

    private static bool NamesAnother(JsonObject keys, string field, string expected) => keys[field] is { } value && value.AsString() != expected;

    private static bool IsFrom(string origin, string userId) => UserId.TryParse(userId, out var user) && user.Server.Value == origin;

    private async Task<List<string>> LocalUsersSharingAsync(string remoteUserId, CancellationToken ct) =>
        (await reader.UsersSharingRoomsAsync(remoteUserId, ct)).Where(u => u != remoteUserId && IsLocal(u)).ToList();
}
